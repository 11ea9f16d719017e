#!/usr/bin/python3
"""An independent float64 NumPy reference of libdcrw's generative models.

Written literally from doc/MODEL.md sections 1-7 and 10 (the four generative
presets draw, draw-noattn, dcrw and dcrw-noread, with canvas_init, and their
class-conditional forms); it imports only NumPy and the standard library,
nothing from the project. It provides

- forward(config, params, x, eps, labels=None) -> (loss, lx, lz): the batch
  means of L = Lx + Lz, Lx and Lz of MODEL.md §5 for images x [B, P] and
  noise eps [T, B, Z]; config is the `dcrw.*` metadata of a checkpoint (with
  or without the `dcrw.` prefix, strings or Python values), params a dict of
  float64 arrays by the names of §7; labels [B] (integers in [0, K)) are
  required when the configuration's `classes` K >= 2 (§10) and refused when
  it is 0;
- fd_gradient / fd_gradients: d loss / d parameter by central finite
  differences (step 1e-6) in float64, so the gradients depend on the forward
  text alone (labels=... as for forward);
- read_safetensors / write_safetensors: a hand-written safetensors reader and
  writer (u64 LE header length, JSON header padded with spaces to a multiple
  of 8, raw little-endian F32 data);
- check_file(path): recompute the loss, Lx, Lz and every gradient of a golden
  file (tests/golden/golden-*-small.safetensors, made by a different
  implementation) from its float32 values in float64, and measure the
  disagreement.

Every function accepts parameters with extra leading dimensions: a tensor of
shape [M, 1, *shape] (the 1 broadcasts over the batch) evaluates M variants
of the model in one pass, and the losses come back with shape [M]. The finite
differences use this to perturb many coordinates at once; each variant is
still the plain forward below, and the tests compare it with one-at-a-time
perturbations.

Run from anywhere (checks the eight generative golden files by default:
the five unconditional ones and the three class-conditional ones made by
make_conditional_golden.py):

    /usr/bin/python3 tests/golden/reference.py --check [FILE...]
    /usr/bin/python3 tests/golden/reference.py --check --coords 200 FILE
    /usr/bin/python3 tests/golden/reference.py --check -v --step 1e-4

(-v prints every tensor's error; --coords checks a fixed random subset of
each larger gradient tensor; --step changes the finite-difference step.)
The five unconditional files take about 2 s, every coordinate of every
gradient included.

Each layer's input is assembled in one function (encoder_lstm_input,
cnn_encoder_output, decoder_input) with its size in one more
(encoder_lstm_input_size, encoder_output_size, decoder_input_size), so that
the one-hot label of §10 is added in one place per layer (append_label).

The exit status is 0 only if every file agrees: the loss within 1e-6 of
|loss| (and Lx, Lz within 1e-6 of |loss|), every gradient tensor within
1e-4 of its largest magnitude in the file.
"""
import argparse
import json
import os
import struct
import sys
import time

import numpy as np

FD_STEP = 1e-6
LOSS_TOL = 1e-6
GRAD_TOL = 1e-4
GOLDEN_DIR = os.path.dirname(os.path.abspath(__file__))
GOLDEN_FILES = [
    "golden-draw-small.safetensors",
    "golden-draw-noattn-small.safetensors",
    "golden-dcrw-small.safetensors",
    "golden-dcrw-noread-small.safetensors",
    "golden-draw-canvas-small.safetensors",
]
# the class-conditional ones (MODEL.md §10), made by make_conditional_golden.py
GOLDEN_COND_FILES = [
    "golden-draw-cond-small.safetensors",
    "golden-dcrw-cond-small.safetensors",
    "golden-dcrw-noread-cond-small.safetensors",
]

# ---------------------------------------------------------------- configuration

INT_KEYS = ("channels", "height", "width", "glimpses", "enc_size", "dec_size", "z_size",
            "read_n", "write_n", "conv1", "conv2")
BOOL_KEYS = ("read_attention", "write_attention", "classify")


def _as_bool(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if v in ("true", "false"):
        return v == "true"
    raise ValueError("not a boolean: %r" % (v,))


def parse_config(meta):
    """The configuration of §2 / §8 from `dcrw.*` metadata (prefix optional).

    Values may be the checkpoint's strings or Python values. Keys this model
    does not use (format, preset, step, notes, ...) are ignored."""
    raw = {}
    for key, value in meta.items():
        if key.startswith("dcrw."):
            key = key[len("dcrw."):]
        raw[key] = value
    cfg = {k: int(raw.get(k, 0)) for k in INT_KEYS}
    cfg["encoder"] = str(raw["encoder"])
    for k in BOOL_KEYS:
        cfg[k] = _as_bool(raw.get(k, "false"))
    cfg["canvas_init"] = float(raw.get("canvas_init", 0.0))
    cfg["classes"] = int(raw.get("classes", 0))  # K of §10; 0: unconditional
    if cfg["classify"]:
        raise ValueError("the attention classifier (MODEL.md §9) is outside this reference")
    if cfg["encoder"] not in ("lstm", "cnn"):
        raise ValueError("encoder must be lstm or cnn, not %r" % cfg["encoder"])
    if cfg["classes"] != 0 and cfg["classes"] < 2:
        raise ValueError("classes must be 0 (unconditional) or >= 2, not %d" % cfg["classes"])
    return cfg


def image_size(cfg):
    """P = C·H·W (§1)."""
    return cfg["channels"] * cfg["height"] * cfg["width"]


def read_size(cfg):
    """Length of r_t (§3.4): 2·C·N_r² with read attention, else 2P."""
    if cfg["read_attention"]:
        return 2 * cfg["channels"] * cfg["read_n"] ** 2
    return 2 * image_size(cfg)


def cnn_output_size(cfg, h, w):
    """K2·⌊⌊h/2⌋/2⌋·⌊⌊w/2⌋/2⌋ (§3.3, §7)."""
    return cfg["conv2"] * ((h // 2) // 2) * ((w // 2) // 2)


def encoder_lstm_input_size(cfg):
    """Rin of §7 (+ K of §10): the length of encoder_lstm_input's result."""
    return read_size(cfg) + cfg["dec_size"] + cfg["classes"]


def encoder_output_size(cfg):
    """Q of §7 (+ K of §10 for a CNN encoder): the length of e_t (see
    encoder_lstm_input / cnn_encoder_output). An LSTM encoder's e_t = h_t^enc
    has no label: §10 gives ŷ to that encoder's input, not to e_t."""
    if cfg["encoder"] == "lstm":
        return cfg["enc_size"]
    if cfg["read_attention"]:
        q = cnn_output_size(cfg, cfg["read_n"], cfg["read_n"]) + cfg["dec_size"]
    else:
        q = cnn_output_size(cfg, cfg["height"], cfg["width"])
    return q + cfg["classes"]


def decoder_input_size(cfg):
    """The decoder LSTM's input length (see decoder_input): Z (+ K, §10)."""
    return cfg["z_size"] + cfg["classes"]


def param_shapes(cfg):
    """[(name, shape)] of §7 for this configuration, in the table's order."""
    C, E, D, Z = cfg["channels"], cfg["enc_size"], cfg["dec_size"], cfg["z_size"]
    K1, K2, Q = cfg["conv1"], cfg["conv2"], encoder_output_size(cfg)
    shapes = []
    if cfg["encoder"] == "lstm":
        shapes += [("enc.lstm.weight_ih", (4 * E, encoder_lstm_input_size(cfg))),
                   ("enc.lstm.weight_hh", (4 * E, E)),
                   ("enc.lstm.bias", (4 * E,))]
    else:
        cin = 2 * C if cfg["read_attention"] else C
        shapes += [("enc.conv1.weight", (K1, cin, 3, 3)), ("enc.conv1.bias", (K1,)),
                   ("enc.conv2.weight", (K2, K1, 3, 3)), ("enc.conv2.bias", (K2,))]
    shapes += [("q.mu.weight", (Z, Q)), ("q.mu.bias", (Z,)),
               ("q.logsigma.weight", (Z, Q)), ("q.logsigma.bias", (Z,)),
               ("dec.lstm.weight_ih", (4 * D, decoder_input_size(cfg))),
               ("dec.lstm.weight_hh", (4 * D, D)),
               ("dec.lstm.bias", (4 * D,))]
    if cfg["read_attention"]:
        shapes += [("read.attn.weight", (5, D)), ("read.attn.bias", (5,))]
    if cfg["write_attention"]:
        shapes += [("write.attn.weight", (5, D)), ("write.attn.bias", (5,))]
    out = C * cfg["write_n"] ** 2 if cfg["write_attention"] else image_size(cfg)
    shapes += [("write.weight", (out, D)), ("write.bias", (out,))]
    return shapes


def label_weights(cfg):
    """The weights whose last K columns multiply ŷ (§10), in §7's order; none
    when K = 0. q.mu / q.logsigma take ŷ only with a CNN encoder (an LSTM
    encoder's e_t = h_t^enc: the label enters through its input instead)."""
    if cfg["classes"] == 0:
        return []
    names = ["enc.lstm.weight_ih"] if cfg["encoder"] == "lstm" else []
    if cfg["encoder"] == "cnn":
        names += ["q.mu.weight", "q.logsigma.weight"]
    return names + ["dec.lstm.weight_ih"]


def check_params(cfg, params):
    """Raise ValueError unless params has exactly the names and shapes of §7."""
    want = dict(param_shapes(cfg))
    if set(want) != set(params):
        raise ValueError("parameters %s, expected %s" % (sorted(params), sorted(want)))
    for name, shape in want.items():
        if tuple(np.shape(params[name])[-len(shape):]) != shape:
            raise ValueError("%s has shape %s, expected %s"
                             % (name, np.shape(params[name]), shape))


# ---------------------------------------------------------------- building blocks
# Arrays carry the batch (and possibly variant) dimensions first: [..., features].


def sigmoid(u):
    """σ(u) = 1/(1+e^-u), as ½(1 + tanh(u/2)) so that no exp overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * u))


def softplus(u):
    """log(1+e^u) = max(u, 0) + log(1 + e^-|u|)."""
    return np.maximum(u, 0.0) + np.log1p(np.exp(-np.abs(u)))


def concat(*parts):
    """[a, b, ...] along the last axis, the leading dimensions broadcast."""
    lead = np.broadcast_shapes(*(p.shape[:-1] for p in parts))
    return np.concatenate([np.broadcast_to(p, lead + p.shape[-1:]) for p in parts], axis=-1)


def dense(weight, bias, u):
    """§3.1: A u + a, A [out, in]."""
    return (weight @ u[..., None])[..., 0] + bias


def lstm(p, prefix, u, h, s):
    """§3.2: one step, gate order i, f, g, o, one bias; returns (h', s')."""
    q = dense(p[prefix + ".weight_ih"], p[prefix + ".bias"], u)
    q = q + (p[prefix + ".weight_hh"] @ h[..., None])[..., 0]
    S = q.shape[-1] // 4
    i = sigmoid(q[..., 0:S])
    f = sigmoid(q[..., S:2 * S])
    g = np.tanh(np.ascontiguousarray(q[..., 2 * S:3 * S]))  # see attention()
    o = sigmoid(q[..., 3 * S:4 * S])
    s_new = f * s + i * g
    h_new = o * np.tanh(s_new)
    return h_new, s_new


def conv3x3_relu(weight, bias, img):
    """§3.3: 3×3 cross-correlation, stride 1, zero padding 1, then ReLU.

    img [..., Cin, H, W], weight [..., Kout, Cin, 3, 3], bias [..., Kout];
    out[k, y, x] = b[k] + Σ_c Σ_dy Σ_dx w[k, c, dy, dx] · img[c, y+dy-1, x+dx-1]."""
    H, W = img.shape[-2:]
    padded = np.zeros(img.shape[:-2] + (H + 2, W + 2))
    padded[..., 1:H + 1, 1:W + 1] = img
    out = bias[..., :, None]  # [..., Kout, 1], broadcast over the H·W positions
    for dy in range(3):
        for dx in range(3):
            window = padded[..., dy:dy + H, dx:dx + W]
            window = window.reshape(window.shape[:-2] + (H * W,))
            out = out + weight[..., dy, dx] @ window
    out = out.reshape(out.shape[:-1] + (H, W))
    return np.maximum(out, 0.0)


def maxpool2x2(img):
    """§3.3: 2×2 max, stride 2, floor (an odd last row / column is dropped)."""
    Ho, Wo = img.shape[-2] // 2, img.shape[-1] // 2
    v = img[..., :2 * Ho, :2 * Wo]
    return np.maximum(np.maximum(v[..., 0::2, 0::2], v[..., 0::2, 1::2]),
                      np.maximum(v[..., 1::2, 0::2], v[..., 1::2, 1::2]))


def cnn(p, img):
    """§3.3: conv1, ReLU, pool1, conv2, ReLU, pool2, flatten in (channel, y, x) order."""
    a = maxpool2x2(conv3x3_relu(p["enc.conv1.weight"], p["enc.conv1.bias"], img))
    a = maxpool2x2(conv3x3_relu(p["enc.conv2.weight"], p["enc.conv2.bias"], a))
    return a.reshape(a.shape[:-3] + (-1,))


def filterbank(g, delta, sigma2, N, size):
    """§3.4: F[i, a], i = 1..N, a = 1..size (stored 0-based), rows normalised.

    g, delta, sigma2 have shape [...]; the result is [..., N, size]."""
    i = np.arange(1, N + 1, dtype=np.float64)
    a = np.arange(1, size + 1, dtype=np.float64)
    mu = g[..., None] + (i - N / 2 - 0.5) * delta[..., None]  # [..., N]
    e = np.exp(-(a - mu[..., None]) ** 2 / (2 * sigma2[..., None, None]))  # [..., N, size]
    return e / np.maximum(np.sum(e, axis=-1, keepdims=True), 1e-8)


def attention(cfg, p, prefix, h, N):
    """§3.4: (γ, FX, FY) of the attention layer `prefix` from the decoder state h."""
    H, W = cfg["height"], cfg["width"]
    v = dense(p[prefix + ".weight"], p[prefix + ".bias"], h)
    # contiguous copies: NumPy may compute exp of a strided view with libm or
    # with its SIMD code depending on where the arrays lie in memory (the two
    # differ in the last bit), which would make the results vary from run to run
    gx_t, gy_t, log_sigma2, log_delta_t, log_gamma = (
        np.ascontiguousarray(v[..., k]) for k in range(5))
    gx = (W + 1) / 2 * (gx_t + 1)
    gy = (H + 1) / 2 * (gy_t + 1)
    if N == 1:
        delta = np.exp(log_delta_t)
    else:
        delta = (max(W, H) - 1) / (N - 1) * np.exp(log_delta_t)
    sigma2 = np.exp(log_sigma2)
    gamma = np.exp(log_gamma)
    FX = filterbank(gx, delta, sigma2, N, W)  # [..., N, W]
    FY = filterbank(gy, delta, sigma2, N, H)  # [..., N, H]
    return gamma, FX, FY


def as_image(cfg, v):
    """[..., P] -> [..., C, H, W] (channel-major, row-major, §1)."""
    return v.reshape(v.shape[:-1] + (cfg["channels"], cfg["height"], cfg["width"]))


def read(cfg, p, x, xhat, h):
    """§3.4: γ·[FY x_c FXᵀ for the channels of x, then of x̂], or [x, x̂] without attention."""
    if not cfg["read_attention"]:
        return concat(x, xhat)
    gamma, FX, FY = attention(cfg, p, "read.attn", h, cfg["read_n"])
    patches = []
    for v in (x, xhat):
        img = as_image(cfg, v)  # [..., C, H, W]
        patch = FY[..., None, :, :] @ img @ np.swapaxes(FX, -1, -2)[..., None, :, :]
        patch = gamma[..., None, None, None] * patch  # [..., C, N, N], row-major (j, i)
        patches.append(patch.reshape(patch.shape[:-3] + (-1,)))
    return concat(*patches)


def write(cfg, p, h):
    """§3.4: (1/γ)·FYᵀ w_c FX with write.attn's own window, or dense_write(h)."""
    w = dense(p["write.weight"], p["write.bias"], h)
    if not cfg["write_attention"]:
        return w
    N = cfg["write_n"]
    gamma, FX, FY = attention(cfg, p, "write.attn", h, N)
    w = w.reshape(w.shape[:-1] + (cfg["channels"], N, N))  # channel-major, row-major patch
    out = np.swapaxes(FY, -1, -2)[..., None, :, :] @ w @ FX[..., None, :, :]  # [..., C, H, W]
    out = out / gamma[..., None, None, None]
    return out.reshape(out.shape[:-3] + (-1,))


# --------------------------------------------------------------- input assembly
# One function per layer input; the one-hot label ŷ of §10 (None for an
# unconditional model) is appended last in each, matching the size functions
# above (encoder_lstm_input_size, encoder_output_size, decoder_input_size).


def one_hot(cfg, labels, B):
    """ŷ [B, K] of §10 for integer labels [B] in [0, K), or None when K = 0."""
    K = cfg["classes"]
    if K == 0:
        if labels is not None:
            raise ValueError("labels given to an unconditional model (classes = 0)")
        return None
    if labels is None:
        raise ValueError("a conditional model (classes = %d) needs labels" % K)
    labels = np.asarray(labels)
    ints = np.rint(labels).astype(np.int64)
    if labels.shape != (B,) or np.any(ints != labels) or np.any((ints < 0) | (ints >= K)):
        raise ValueError("labels must be %d integers in [0, %d), not %r" % (B, K, labels))
    return np.eye(K)[ints]


def append_label(parts, yhat):
    """[parts..., ŷ] (§10), or [parts...] without a label."""
    return concat(*parts) if yhat is None else concat(*parts, yhat)


def encoder_lstm_input(r, h_dec, yhat=None):
    """§4, §10: the encoder LSTM's input [r_t, h_{t-1}^dec(, ŷ)]."""
    return append_label((r, h_dec), yhat)


def cnn_encoder_output(features, h_dec, yhat=None):
    """§4, §10: e_t = [CNN(r_t), h_{t-1}^dec(, ŷ)] with read attention (h_dec
    given), e = [CNN(x)(, ŷ)] without it (h_dec None)."""
    if h_dec is None:
        return append_label((features,), yhat)
    return append_label((features, h_dec), yhat)


def decoder_input(z, yhat=None):
    """§4, §10: the decoder LSTM's input [z_t(, ŷ)]."""
    return append_label((z,), yhat)


# ---------------------------------------------------------------- forward and loss


def forward(cfg, params, x, eps, labels=None):
    """§4 and §5: (loss, Lx, Lz), each the mean over the batch.

    cfg: a configuration (parse_config's result or raw `dcrw.*` metadata);
    params: {name: float64 array} of §7; x [B, P]; eps [T, B, Z]; labels [B]
    integers in [0, K) when cfg's classes K >= 2 (§10), else None. Parameters
    may carry leading variant dimensions (see the module docstring); then
    the results are arrays of those dimensions, else Python floats."""
    cfg = parse_config(cfg)  # idempotent: accepts raw metadata or a parsed configuration
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    x = np.asarray(x, dtype=np.float64)
    eps = np.asarray(eps, dtype=np.float64)
    B, P = x.shape
    T, D, E = cfg["glimpses"], cfg["dec_size"], cfg["enc_size"]
    C, Nr = cfg["channels"], cfg["read_n"]
    assert P == image_size(cfg), (P, image_size(cfg))
    assert eps.shape == (T, B, cfg["z_size"]), eps.shape
    yhat = one_hot(cfg, labels, B)  # [B, K] or None

    c = np.full((B, P), cfg["canvas_init"])  # c_0 = κ
    h_dec, s_dec = np.zeros((B, D)), np.zeros((B, D))
    h_enc, s_enc = np.zeros((B, E)), np.zeros((B, E))
    lstm_encoder = cfg["encoder"] == "lstm"
    if not lstm_encoder and not cfg["read_attention"]:
        e_once = cnn_encoder_output(cnn(p, as_image(cfg, x)), None, yhat)  # once, Cin = C
    lz = 0.0
    for t in range(T):
        if lstm_encoder or cfg["read_attention"]:  # r_t is unused by dcrw-noread
            xhat = x - sigmoid(c)
            r = read(cfg, p, x, xhat, h_dec)
        if lstm_encoder:
            u = encoder_lstm_input(r, h_dec, yhat)
            h_enc, s_enc = lstm(p, "enc.lstm", u, h_enc, s_enc)
            e = h_enc
        elif cfg["read_attention"]:
            img = r.reshape(r.shape[:-1] + (2 * C, Nr, Nr))  # x_1..x_C, then x̂_1..x̂_C
            e = cnn_encoder_output(cnn(p, img), h_dec, yhat)
        else:
            e = e_once
        mu = dense(p["q.mu.weight"], p["q.mu.bias"], e)
        logsigma = dense(p["q.logsigma.weight"], p["q.logsigma.bias"], e)
        sigma = np.exp(logsigma)
        z = mu + sigma * eps[t]
        h_dec, s_dec = lstm(p, "dec.lstm", decoder_input(z, yhat), h_dec, s_dec)
        c = c + write(cfg, p, h_dec)
        lz = lz + np.sum(0.5 * (mu ** 2 + sigma ** 2 - 2 * logsigma - 1), axis=-1)
    lx = np.sum(softplus(c) - x * c, axis=-1)  # [..., B]
    loss = np.mean(lx + lz, axis=-1)
    lx, lz = np.mean(lx, axis=-1), np.mean(lz, axis=-1)
    if np.ndim(loss) == 0:
        return float(loss), float(lx), float(lz)
    return loss, lx, lz


# ------------------------------------------------------------ finite differences


def fd_gradient(cfg, params, x, eps, name, coords=None, step=FD_STEP, budget=2_000_000,
                labels=None):
    """Central differences of the batch-mean loss w.r.t. params[name].

    coords: flat indices to differentiate (default all); labels as for
    forward (required by a conditional model); returns the flat
    indices and the derivatives. Many coordinates go through one forward as
    variants (2 per coordinate, ±step), as many as keep the perturbed
    tensors within `budget` values."""
    cfg = parse_config(cfg)  # idempotent: accepts raw metadata or a parsed configuration
    base = np.asarray(params[name], dtype=np.float64)
    coords = np.arange(base.size) if coords is None else np.asarray(coords, dtype=np.int64)
    chunk = max(1, min(256, budget // (2 * base.size)))
    grads = np.zeros(len(coords))
    for start in range(0, len(coords), chunk):
        ks = coords[start:start + chunk]
        m = len(ks)
        stack = np.repeat(base.reshape(1, -1), 2 * m, axis=0)
        rows = np.arange(m)
        stack[2 * rows, ks] += step
        stack[2 * rows + 1, ks] -= step
        variant = dict(params)
        variant[name] = stack.reshape((2 * m, 1) + base.shape)  # the 1 broadcasts over B
        loss = forward(cfg, variant, x, eps, labels)[0]
        grads[start:start + m] = (loss[0::2] - loss[1::2]) / (2 * step)
    return coords, grads


def fd_gradient_one(cfg, params, x, eps, name, k, step=FD_STEP, labels=None):
    """d loss / d params[name].flat[k], perturbing one coordinate (self-check)."""
    up, down = dict(params), dict(params)
    for variant, sign in ((up, 1.0), (down, -1.0)):
        v = np.array(params[name], dtype=np.float64)
        v.flat[k] += sign * step
        variant[name] = v
    return (forward(cfg, up, x, eps, labels)[0]
            - forward(cfg, down, x, eps, labels)[0]) / (2 * step)


def fd_gradients(cfg, params, x, eps, step=FD_STEP, labels=None):
    """{name: d loss / d params[name]} for every parameter, full tensors."""
    out = {}
    for name, value in params.items():
        _, g = fd_gradient(cfg, params, x, eps, name, step=step, labels=labels)
        out[name] = g.reshape(np.shape(value))
    return out


# ---------------------------------------------------------------- safetensors I/O


def read_safetensors(path):
    """({name: float32 ndarray}, {key: str}) of a safetensors file (F32 only)."""
    with open(path, "rb") as fh:
        blob = fh.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))  # trailing spaces are JSON whitespace
    data = blob[8 + n:]
    meta = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise ValueError("%s: dtype %s, only F32 is read" % (name, info["dtype"]))
        begin, end = info["data_offsets"]
        count = int(np.prod(info["shape"], dtype=np.int64))
        if not 0 <= begin <= end <= len(data) or end - begin != 4 * count:
            raise ValueError("%s: data_offsets %s do not fit" % (name, info["data_offsets"]))
        v = np.frombuffer(data[begin:end], dtype="<f4").reshape(info["shape"])
        tensors[name] = v.astype(np.float32)
    return tensors, dict(meta)


def write_safetensors(path, tensors, metadata=None):
    """Write [(name, array)] (or a dict) as F32, in order, with string metadata."""
    items = list(tensors.items()) if isinstance(tensors, dict) else list(tensors)
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, value in items:
        data = np.ascontiguousarray(value, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(np.shape(value)),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


# ----------------------------------------------------------------- golden check


def load_golden(path):
    """(cfg, params, x, eps, reference) of a golden file, all float64.

    reference holds loss, lx, lz (floats), grads {name: array} and labels
    (the int array of golden.labels, stored as F32, or None without it)."""
    tensors, meta = read_safetensors(path)
    cfg = parse_config(meta)
    f64 = {k: v.astype(np.float64) for k, v in tensors.items()}
    params = {k: v for k, v in f64.items() if not k.startswith(("golden.", "grad."))}
    check_params(cfg, params)
    ref = {"loss": float(f64["golden.loss"][0]), "lx": float(f64["golden.lx"][0]),
           "lz": float(f64["golden.lz"][0]),
           "grads": {k: f64["grad." + k] for k in params}, "labels": None}
    if "golden.labels" in f64:
        ref["labels"] = np.rint(f64["golden.labels"]).astype(np.int64)
    return cfg, params, f64["golden.x"], f64["golden.eps"], ref


def check_file(path, max_coords=None, seed=0, step=FD_STEP):
    """Recompute a golden file; returns a dict of relative errors.

    loss_err = |ours − file| / |file loss|; lx_err, lz_err likewise relative
    to |file loss|; grad_err[name] = max |ours − file| / max |file| over the
    tensor. With max_coords, tensors larger than that are checked on a fixed
    random subset (numpy default_rng(seed)) of max_coords coordinates.

    With the default step (1e-6) the differences are limited by float64
    rounding of a loss near 100: about 2e-8 absolute, which is up to ~2e-5
    of the smallest gradient tensors' largest magnitude (~1e-3). A step of
    1e-4 brings every tensor to the file's float32 rounding (~3e-7)."""
    t0 = time.time()
    cfg, params, x, eps, ref = load_golden(path)
    labels = ref["labels"]
    loss, lx, lz = forward(cfg, params, x, eps, labels)
    scale = abs(ref["loss"])
    result = {"path": path, "loss": loss, "file_loss": ref["loss"],
              "loss_err": abs(loss - ref["loss"]) / scale,
              "lx_err": abs(lx - ref["lx"]) / scale, "lz_err": abs(lz - ref["lz"]) / scale,
              "grad_err": {}, "coords": {}}
    rng = np.random.default_rng(seed)
    for name, value in params.items():
        gref = ref["grads"][name].reshape(-1)
        coords = None
        if max_coords is not None and value.size > max_coords:
            coords = np.sort(rng.choice(value.size, size=max_coords, replace=False))
        ks, g = fd_gradient(cfg, params, x, eps, name, coords, step=step, labels=labels)
        denom = float(np.max(np.abs(gref)))
        diff = float(np.max(np.abs(g - gref[ks])))
        result["grad_err"][name] = diff / denom if denom > 0 else diff
        result["coords"][name] = (len(ks), value.size)
    result["grad_worst"] = max(result["grad_err"].items(), key=lambda kv: kv[1])
    result["ok"] = (max(result["loss_err"], result["lx_err"], result["lz_err"]) <= LOSS_TOL
                    and result["grad_worst"][1] <= GRAD_TOL)
    result["seconds"] = time.time() - t0
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", nargs="*", metavar="FILE", required=True,
                    help="golden files to recompute (default: the eight generative ones)")
    ap.add_argument("--coords", type=int, default=None,
                    help="check at most this many coordinates of each gradient tensor")
    ap.add_argument("--step", type=float, default=FD_STEP,
                    help="finite-difference step (default: %(default)g)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every tensor's error")
    args = ap.parse_args(argv)
    files = args.check or [os.path.join(GOLDEN_DIR, f)
                           for f in GOLDEN_FILES + GOLDEN_COND_FILES]
    ok, t0 = True, time.time()
    for path in files:
        try:
            r = check_file(path, max_coords=args.coords, step=args.step)
        except (OSError, ValueError, KeyError) as exc:
            print("FAIL %s: %s" % (os.path.basename(path), exc))
            ok = False
            continue
        ok = ok and r["ok"]
        print("%s %s: loss %.10g (file %.10g) rel %.2e, lx %.2e, lz %.2e; "
              "worst gradient %.2e (%s); %.1f s"
              % ("ok  " if r["ok"] else "FAIL", os.path.basename(path), r["loss"],
                 r["file_loss"], r["loss_err"], r["lx_err"], r["lz_err"],
                 r["grad_worst"][1], r["grad_worst"][0], r["seconds"]))
        if args.verbose:
            for name, err in r["grad_err"].items():
                n, size = r["coords"][name]
                print("    %-22s %.2e  (%d of %d coordinates)" % (name, err, n, size))
    print("%s in %.1f s" % ("all agree" if ok else "DISAGREEMENT", time.time() - t0))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
