#!/usr/bin/python3
"""Golden file for the attention classifier (`draw-classify`, doc/MODEL.md §9).

An independent float64 NumPy implementation of the classifier, written
literally from doc/MODEL.md (§3.2 LSTM, §3.4 Gaussian attention, §9); it uses
nothing from libdcrw. It draws a small model (C=2, H=10, W=12, T=3, E=8,
N_r=3, K=4) and a batch of B=3 grey-level images from numpy's default_rng(1),
computes the batch-mean loss, the probabilities, every glimpse's read window
and d loss / d parameter (central differences in float64), and writes them
with the parameters to a safetensors file, all as float32.

Run from anywhere (takes a few seconds, output is byte-for-byte reproducible):

    /usr/bin/python3 tests/golden/make_classify_golden.py [--out FILE]
    /usr/bin/python3 tests/golden/make_classify_golden.py --check FILE
"""
import argparse
import os
import sys

import numpy as np

# the safetensors reader and writer of the generative models' reference
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import read_safetensors, write_safetensors  # noqa: E402

C, H, W, T, E, N, K, B = 2, 10, 12, 3, 8, 3, 4, 3
SEED = 1
LABELS = [2, 0, 3]
FD_STEP = 1e-6
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "golden-draw-classify-small.safetensors")

# (name, shape, half-width of the uniform initialisation), in file order (§9)
PARAMS = [
    ("enc.lstm.weight_ih", (4 * E, C * N * N), 0.5),
    ("enc.lstm.weight_hh", (4 * E, E), 0.5),
    ("enc.lstm.bias", (4 * E,), 0.5),
    ("read.attn.weight", (5, E), 0.3),
    ("read.attn.bias", (5,), 0.3),
    ("class.weight", (K, E), 0.5),
    ("class.bias", (K,), 0.5),
]


def sigmoid(u):
    return 1.0 / (1.0 + np.exp(-u))


# ---------------------------------------------------------------- literal forward


def window(p, h):
    """§3.4: (gX, gY, δ, σ², γ) from the state h (N > 1 here)."""
    gx_t, gy_t, log_sigma2, log_delta_t, log_gamma = p["read.attn.weight"] @ h + p["read.attn.bias"]
    gx = (W + 1) / 2 * (gx_t + 1)
    gy = (H + 1) / 2 * (gy_t + 1)
    delta = (max(W, H) - 1) / (N - 1) * np.exp(log_delta_t)
    return gx, gy, delta, np.exp(log_sigma2), np.exp(log_gamma)


def filterbank(g, delta, sigma2, size):
    """§3.4: F[i, a] for i = 1..N, a = 1..size (stored 0-based), rows normalised."""
    F = np.zeros((N, size))
    a = np.arange(1, size + 1, dtype=np.float64)
    for i in range(1, N + 1):
        mu = g + (i - N / 2 - 0.5) * delta
        e = np.exp(-(a - mu) ** 2 / (2 * sigma2))
        F[i - 1] = e / max(e.sum(), 1e-8)
    return F


def lstm(p, u, h, s):
    """§3.2, gate order i, f, g, o, one bias vector."""
    q = p["enc.lstm.weight_ih"] @ u + p["enc.lstm.weight_hh"] @ h + p["enc.lstm.bias"]
    i, f, g, o = sigmoid(q[0:E]), sigmoid(q[E:2 * E]), np.tanh(q[2 * E:3 * E]), sigmoid(q[3 * E:])
    s = f * s + i * g
    return o * np.tanh(s), s


def forward_literal(p, x, labels):
    """Batch-mean loss, probabilities [B, K] and windows [T, B, 5], image by image."""
    losses, probs, windows = [], [], np.zeros((T, B, 5))
    for b in range(B):
        img = x[b].reshape(C, H, W)
        h, s = np.zeros(E), np.zeros(E)
        for t in range(T):
            gx, gy, delta, sigma2, gamma = window(p, h)
            windows[t, b] = gx, gy, delta, sigma2, gamma
            FX = filterbank(gx, delta, sigma2, W)
            FY = filterbank(gy, delta, sigma2, H)
            r = np.zeros((C, N, N))  # r[c, j, i] = γ Σ_b Σ_a FY[j, b] x_c[b, a] FX[i, a]
            for c in range(C):
                for j in range(N):
                    for i in range(N):
                        r[c, j, i] = gamma * np.sum(np.outer(FY[j], FX[i]) * img[c])
            h, s = lstm(p, r.reshape(-1), h, s)
        y = p["class.weight"] @ h + p["class.bias"]
        m = y.max()
        logsumexp = m + np.log(np.sum(np.exp(y - m)))
        losses.append(logsumexp - y[labels[b]])
        probs.append(np.exp(y - logsumexp))
    return np.mean(losses), np.array(probs), windows


# ------------------------------------------------------------- vectorised forward


def forward_matrix(p, x, labels):
    """The same model for the whole batch at once, read as FY · x_c · FXᵀ (self-check)."""
    h, s = np.zeros((B, E)), np.zeros((B, E))
    ax, ay = np.arange(1, W + 1.0), np.arange(1, H + 1.0)
    offs = np.arange(1, N + 1.0) - N / 2 - 0.5
    imgs = x.reshape(B, C, H, W)
    for t in range(T):
        a = h @ p["read.attn.weight"].T + p["read.attn.bias"]
        gx, gy = (W + 1) / 2 * (a[:, 0] + 1), (H + 1) / 2 * (a[:, 1] + 1)
        sigma2, gamma = np.exp(a[:, 2]), np.exp(a[:, 4])
        delta = (max(W, H) - 1) / (N - 1) * np.exp(a[:, 3])
        fb = []
        for g, coords in ((gx, ax), (gy, ay)):
            mu = g[:, None] + offs[None, :] * delta[:, None]
            e = np.exp(-(coords[None, None, :] - mu[:, :, None]) ** 2 / (2 * sigma2[:, None, None]))
            fb.append(e / np.maximum(e.sum(axis=2, keepdims=True), 1e-8))
        FX, FY = fb
        r = FY[:, None] @ imgs @ np.swapaxes(FX, 1, 2)[:, None]  # [B, C, N, N]
        r = gamma[:, None] * r.reshape(B, C * N * N)
        q = r @ p["enc.lstm.weight_ih"].T + h @ p["enc.lstm.weight_hh"].T + p["enc.lstm.bias"]
        i, f = sigmoid(q[:, :E]), sigmoid(q[:, E:2 * E])
        g, o = np.tanh(q[:, 2 * E:3 * E]), sigmoid(q[:, 3 * E:])
        s = f * s + i * g
        h = o * np.tanh(s)
    y = h @ p["class.weight"].T + p["class.bias"]
    m = y.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(y - m).sum(axis=1))
    return np.mean(lse - y[np.arange(B), labels])


# ---------------------------------------------------------------- reading a file back


def check(path):
    tensors, meta = read_safetensors(path)
    for key, value in meta.items():
        print("meta %s = %s" % (key, value))
    for name, v in tensors.items():
        print("%-26s %-10s max|v| %.6g" % (name, list(v.shape), np.abs(v).max()))
    print("ok: %d tensors" % len(tensors))


# --------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output file (default: %(default)s)")
    ap.add_argument("--check", metavar="FILE", help="read FILE back, print names and shapes")
    args = ap.parse_args()
    if args.check:
        check(args.check)
        return

    rng = np.random.default_rng(SEED)
    p32 = {name: rng.uniform(-a, a, shape).astype(np.float32) for name, shape, a in PARAMS}
    x32 = rng.random((B, C * H * W)).astype(np.float32)
    p = {name: v.astype(np.float64) for name, v in p32.items()}
    x = x32.astype(np.float64)

    loss, probs, windows = forward_literal(p, x, LABELS)
    loss_m = forward_matrix(p, x, LABELS)
    assert abs(loss - loss_m) <= 1e-12 * abs(loss), (loss, loss_m)

    grads = {}
    for name, _, _ in PARAMS:
        v, g = p[name].reshape(-1), np.zeros(p[name].size)  # v is a view into p[name]
        for k in range(v.size):
            keep = v[k]
            v[k] = keep + FD_STEP
            up = forward_literal(p, x, LABELS)[0]
            v[k] = keep - FD_STEP
            down = forward_literal(p, x, LABELS)[0]
            v[k] = keep
            g[k] = (up - down) / (2 * FD_STEP)
        grads[name] = g.reshape(p[name].shape)

    print("loss %.10f (matrix form %.10f)" % (loss, loss_m))
    print("probs\n%s" % np.array2string(probs, precision=8))
    print("max |grad| %.6g" % max(np.abs(g).max() for g in grads.values()))

    meta = {
        "dcrw.format": "1", "dcrw.preset": "draw-classify", "dcrw.channels": str(C),
        "dcrw.height": str(H), "dcrw.width": str(W), "dcrw.glimpses": str(T),
        "dcrw.enc_size": str(E), "dcrw.dec_size": "0", "dcrw.z_size": "0",
        "dcrw.read_n": str(N), "dcrw.write_n": "0", "dcrw.conv1": "0", "dcrw.conv2": "0",
        "dcrw.encoder": "lstm", "dcrw.read_attention": "true", "dcrw.write_attention": "false",
        "dcrw.classify": "true", "dcrw.classes": str(K),
        "golden.note": (
            "libdcrw golden file made by tests/golden/make_classify_golden.py (seed %d), an "
            "independent float64 NumPy implementation of doc/MODEL.md section 9. B=%d. "
            "golden.x [B,C*H*W] grey levels in [0,1), channel-major then row-major; "
            "golden.labels [B] integer class ids stored as F32; golden.loss = batch mean of "
            "-log p_label (nats/image); golden.probs [B,K] softmax probabilities; "
            "golden.windows [T,B,5] = (gX, gY, delta, sigma^2, gamma) of each glimpse's read "
            "window in 1-based pixel terms (section 3.4). grad.<name> = d golden.loss / d "
            "<name>, by central differences (step %g) in float64. Computed in float64 from "
            "the float32 values stored here, then rounded to float32. Unused config sizes "
            "are 0." % (SEED, B, FD_STEP)),
    }
    tensors = [(name, p32[name]) for name, _, _ in PARAMS]
    tensors += [("golden.x", x32), ("golden.labels", np.array(LABELS, dtype=np.float32)),
                ("golden.loss", np.array([loss])), ("golden.probs", probs),
                ("golden.windows", windows)]
    tensors += [("grad." + name, grads[name]) for name, _, _ in PARAMS]
    write_safetensors(args.out, tensors, meta)
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
