#!/usr/bin/python3
"""The four presets of libdcrw's model (doc/MODEL.md) in PyTorch, to measure
libdcrw against and to rerun that comparison anywhere (tests/bench/compare.sh).

  torch_draw.py check GOLDEN.safetensors ...   loss and every gradient of a
      golden file (parameters, batch, noise and the float64 reference's loss
      and gradients) computed here in float32; exit 1 unless the loss agrees
      to 1e-4 relative and each gradient to 1e-4 of its largest magnitude,
      77 (skip) without torch
  torch_draw.py bench [--presets draw,dcrw] [--steps 10] [--batch 100]
                      [--configs t1b2,t2b1,...] [--clip 0]
      training-step throughput of each preset (random binary 28×28 images,
      eps ~ N(0, I) drawn each step, forward + backward + Adam), each thread
      setting in its own process; prints each and the best per preset

A training step is the library's recipe: Adam (1e-3, 0.9, 0.999, 1e-8) on the
batch-mean loss, the global gradient norm clipped to --clip (the library's
trainer clips at 5; dcrw-bench turns clipping off, and so does this bench
unless told otherwise), parameters initialised as the library does.

Thread settings (bench): tNbM runs torch with N intra-op threads
(torch.set_num_threads; one inter-op thread) and OpenBLAS, which Debian's
torch uses for its matrix products, with M threads. Each runs in a child
process with glibc's malloc told to keep its memory (torch frees and
reallocates large temporaries every step; returning them to the system costs
page faults) and OpenMP threads that sleep when idle.

Needs Debian's python3-torch and python3-numpy; run with /usr/bin/python3.
"""
import argparse
import json
import math
import os
import statistics
import struct
import subprocess
import sys
import time

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError:  # the meson test skips, the bench says why
    torch = None

SKIP = 77

# ---- configuration (MODEL.md §2, §7) -------------------------------------

PRESETS = {
    "draw": dict(encoder="lstm", read_attention=True, write_attention=True, glimpses=64,
                 enc_size=256, read_n=2, write_n=5),
    "draw-noattn": dict(encoder="lstm", read_attention=False, write_attention=False,
                        glimpses=64, enc_size=256),
    "dcrw": dict(encoder="cnn", read_attention=True, write_attention=True, glimpses=10,
                 read_n=7, write_n=5, conv1=32, conv2=64),
    "dcrw-noread": dict(encoder="cnn", read_attention=False, write_attention=True,
                        glimpses=10, write_n=5, conv1=32, conv2=64),
}


class Config:
    """Sizes of one model; the derived sizes of MODEL.md §7."""

    def __init__(self, **kw):
        self.channels, self.height, self.width = 1, 28, 28
        self.dec_size, self.z_size, self.enc_size = 256, 100, 0
        self.read_n = self.write_n = self.conv1 = self.conv2 = 0
        self.canvas_init = 0.0
        for key, value in kw.items():
            setattr(self, key, value)
        self.lstm = self.encoder == "lstm"
        C, H, W = self.channels, self.height, self.width
        self.P = C * H * W
        self.R = 2 * C * self.read_n ** 2 if self.read_attention else 2 * self.P
        self.Rin = self.R + self.dec_size
        if self.lstm:
            self.Q = self.enc_size
        elif self.read_attention:
            self.Q = self.conv2 * ((self.read_n // 2) // 2) ** 2 + self.dec_size
        else:
            self.Q = self.conv2 * ((H // 2) // 2) * ((W // 2) // 2)
        self.Wout = C * self.write_n ** 2 if self.write_attention else self.P

    @staticmethod
    def from_metadata(meta):
        """The configuration in a checkpoint's __metadata__ (MODEL.md §8)."""
        ints = ["channels", "height", "width", "glimpses", "enc_size", "dec_size", "z_size",
                "read_n", "write_n", "conv1", "conv2"]
        kw = {k: int(meta["dcrw." + k]) for k in ints}
        kw["encoder"] = meta["dcrw.encoder"]
        kw["read_attention"] = meta["dcrw.read_attention"] == "true"
        kw["write_attention"] = meta["dcrw.write_attention"] == "true"
        kw["canvas_init"] = float(meta.get("dcrw.canvas_init", "0"))
        return Config(**kw)

    def shapes(self):
        """Parameter name -> shape, MODEL.md §7."""
        E, D, Z, Q = self.enc_size, self.dec_size, self.z_size, self.Q
        s = {}
        if self.lstm:
            s["enc.lstm.weight_ih"] = (4 * E, self.Rin)
            s["enc.lstm.weight_hh"] = (4 * E, E)
            s["enc.lstm.bias"] = (4 * E,)
        else:
            cin = 2 * self.channels if self.read_attention else self.channels
            s["enc.conv1.weight"] = (self.conv1, cin, 3, 3)
            s["enc.conv1.bias"] = (self.conv1,)
            s["enc.conv2.weight"] = (self.conv2, self.conv1, 3, 3)
            s["enc.conv2.bias"] = (self.conv2,)
        s["q.mu.weight"], s["q.mu.bias"] = (Z, Q), (Z,)
        s["q.logsigma.weight"], s["q.logsigma.bias"] = (Z, Q), (Z,)
        s["dec.lstm.weight_ih"] = (4 * D, Z)
        s["dec.lstm.weight_hh"] = (4 * D, D)
        s["dec.lstm.bias"] = (4 * D,)
        if self.read_attention:
            s["read.attn.weight"], s["read.attn.bias"] = (5, D), (5,)
        if self.write_attention:
            s["write.attn.weight"], s["write.attn.bias"] = (5, D), (5,)
        s["write.weight"], s["write.bias"] = (self.Wout, D), (self.Wout,)
        return s


def init_params(cfg, seed, dtype):
    """The library's initialisation (lib/model.c): uniform ±1/sqrt(fan-in),
    the LSTMs' fan-in their cell count, attention weights ±0.01 and biases 0,
    forget-gate biases 1. Same distribution, not the same numbers."""
    gen = torch.Generator().manual_seed(seed)
    params = {}
    shapes = cfg.shapes()
    for name, shape in shapes.items():
        if name.startswith("enc.lstm"):
            fan = cfg.enc_size
        elif name.startswith("dec.lstm"):
            fan = cfg.dec_size
        elif name.startswith("enc.conv"):
            w = shapes[name.rsplit(".", 1)[0] + ".weight"]
            fan = w[1] * 9
        else:
            fan = shapes[name.rsplit(".", 1)[0] + ".weight"][1]
        bound = 1.0 / math.sqrt(fan)
        if ".attn." in name:
            bound = 0.01 if name.endswith("weight") else 0.0
        p = (torch.rand(shape, generator=gen, dtype=dtype) * 2 - 1) * bound
        if name in ("enc.lstm.bias", "dec.lstm.bias"):
            S = shape[0] // 4
            p[S:2 * S] = 1.0
        params[name] = p.requires_grad_()
    return params


# ---- the model (MODEL.md §3-5) -------------------------------------------

def lstm(q, s):
    """Gates i, f, g, o from q = W_ih u + W_hh h + b; the new (h, s)."""
    i, f, g, o = q.chunk(4, dim=1)
    s = torch.sigmoid(f) * s + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(s), s


def filterbank(p5, N, H, W):
    """FX [B,N,W], FY [B,N,H] and γ [B] from the five attention numbers."""
    gx_, gy_, log_s2, log_d, log_g = p5.unbind(1)
    gx = (W + 1) / 2 * (gx_ + 1)
    gy = (H + 1) / 2 * (gy_ + 1)
    scale = (max(W, H) - 1) / (N - 1) if N > 1 else 1.0
    delta = scale * torch.exp(log_d)
    two_s2 = 2 * torch.exp(log_s2)
    grid = torch.arange(1, N + 1, dtype=p5.dtype) - N / 2 - 0.5
    mux = gx[:, None] + grid * delta[:, None]
    muy = gy[:, None] + grid * delta[:, None]

    def bank(mu, size):
        pix = torch.arange(1, size + 1, dtype=p5.dtype)
        e = torch.exp(-(pix - mu[:, :, None]) ** 2 / two_s2[:, None, None])
        return e / torch.clamp(e.sum(2, keepdim=True), min=1e-8)

    return bank(mux, W), bank(muy, H), torch.exp(log_g)


def cnn(x, p):
    y = F.max_pool2d(F.relu(F.conv2d(x, p["enc.conv1.weight"], p["enc.conv1.bias"], padding=1)), 2)
    y = F.max_pool2d(F.relu(F.conv2d(y, p["enc.conv2.weight"], p["enc.conv2.bias"], padding=1)), 2)
    return y.flatten(1)


def kl(mu, ls):
    return 0.5 * (mu * mu + torch.exp(2 * ls) - 2 * ls - 1).sum(1)


def forward(cfg, p, x, eps):
    """Batch means (L, Lx, Lz) of MODEL.md §5 for images x [B,P], noise eps
    [T,B,Z]."""
    B = x.shape[0]
    C, H, W, D, E = cfg.channels, cfg.height, cfg.width, cfg.dec_size, cfg.enc_size
    P = cfg.P
    img = x.view(B, C, H, W)
    zeros = x.new_zeros
    c = torch.full_like(x, cfg.canvas_init)
    h_dec, s_dec = zeros(B, D), zeros(B, D)
    h_enc = s_enc = None
    if cfg.lstm:
        h_enc, s_enc = zeros(B, E), zeros(B, E)
        w_ih = p["enc.lstm.weight_ih"]
        if not cfg.read_attention:
            # the x columns of the encoder input are the same every step;
            # the other columns sliced once (a slice per step would cost a
            # full-size gradient per step in the backward)
            xq = F.linear(x, w_ih[:, :P], p["enc.lstm.bias"])
            w_u = w_ih[:, P:]
    lz = zeros(B)
    once = not cfg.lstm and not cfg.read_attention
    if once:  # dcrw-noread: one CNN pass and one q(z|x) for all T draws
        e = cnn(img, p)
        mu = F.linear(e, p["q.mu.weight"], p["q.mu.bias"])
        ls = F.linear(e, p["q.logsigma.weight"], p["q.logsigma.bias"])
        lz = cfg.glimpses * kl(mu, ls)
    for t in range(cfg.glimpses):
        if not once:
            xhat = x - torch.sigmoid(c)
            if cfg.read_attention:
                fx, fy, gamma = filterbank(
                    F.linear(h_dec, p["read.attn.weight"], p["read.attn.bias"]), cfg.read_n, H, W)
                both = torch.cat([img, xhat.view(B, C, H, W)], 1)
                patch = fy[:, None] @ both @ fx.transpose(1, 2)[:, None]
                r = gamma[:, None, None, None] * patch
            if cfg.lstm:
                if cfg.read_attention:
                    q = F.linear(torch.cat([r.flatten(1), h_dec], 1), w_ih, p["enc.lstm.bias"])
                else:
                    q = xq + F.linear(torch.cat([xhat, h_dec], 1), w_u)
                h_enc, s_enc = lstm(q + F.linear(h_enc, p["enc.lstm.weight_hh"]), s_enc)
                e = h_enc
            else:
                e = torch.cat([cnn(r, p), h_dec], 1)
            mu = F.linear(e, p["q.mu.weight"], p["q.mu.bias"])
            ls = F.linear(e, p["q.logsigma.weight"], p["q.logsigma.bias"])
            lz = lz + kl(mu, ls)
        z = mu + torch.exp(ls) * eps[t]
        q = F.linear(z, p["dec.lstm.weight_ih"], p["dec.lstm.bias"])
        h_dec, s_dec = lstm(q + F.linear(h_dec, p["dec.lstm.weight_hh"]), s_dec)
        w = F.linear(h_dec, p["write.weight"], p["write.bias"])
        if cfg.write_attention:
            N = cfg.write_n
            fx, fy, gamma = filterbank(
                F.linear(h_dec, p["write.attn.weight"], p["write.attn.bias"]), N, H, W)
            out = fy.transpose(1, 2)[:, None] @ w.view(B, C, N, N) @ fx[:, None]
            w = (out / gamma[:, None, None, None]).flatten(1)
        c = c + w
    lx = (F.softplus(c) - x * c).sum(1)
    return (lx + lz).mean(), lx.mean(), lz.mean()


# ---- safetensors (MODEL.md §8) -------------------------------------------

def read_safetensors(path):
    """(tensors as float32 numpy arrays, __metadata__)"""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = memoryview(blob)[8 + n:]
    tensors = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            continue
        begin, end = info["data_offsets"]
        arr = np.frombuffer(data[begin:end], dtype="<f4").reshape(info["shape"])
        tensors[name] = arr.astype(np.float32)
    return tensors, meta


# ---- check mode ----------------------------------------------------------

def check_golden(path, dtype, tol):
    """Loss and gradients of the golden file at path; a list of failures."""
    tensors, meta = read_safetensors(path)
    cfg = Config.from_metadata(meta)
    params = {name: torch.tensor(tensors[name], dtype=dtype).requires_grad_()
              for name in cfg.shapes()}
    x = torch.tensor(tensors["golden.x"], dtype=dtype)
    eps = torch.tensor(tensors["golden.eps"], dtype=dtype)
    loss, lx, lz = forward(cfg, params, x, eps)
    loss.backward()
    ref = float(tensors["golden.loss"][0])
    fails = []
    err = abs(loss.item() - ref) / abs(ref)
    name = os.path.basename(path)
    print(f"{name}: loss {loss.item():.6f} (ref {ref:.6f}, rel {err:.2g}) "
          f"lx {lx.item():.6f} (ref {float(tensors['golden.lx'][0]):.6f}) "
          f"lz {lz.item():.6f} (ref {float(tensors['golden.lz'][0]):.6f})")
    if not err <= tol:
        fails.append(f"{name}: loss {loss.item()!r} vs {ref!r}")
    worst = (0.0, "")
    for pname, p in params.items():
        g_ref = tensors["grad." + pname].astype(np.float64)
        g = p.grad.detach().double().numpy()
        e = np.abs(g - g_ref).max() / max(np.abs(g_ref).max(), 1e-6)
        worst = max(worst, (float(e), pname))
        if not e <= tol:
            fails.append(f"{name}: grad.{pname} relative error {e:.3g}")
    print(f"  {len(params)} gradients, largest relative error {worst[0]:.2g} ({worst[1]})")
    return fails


def cmd_check(args):
    if torch is None:
        print("torch or numpy is not importable (Debian: python3-torch): skipped")
        return SKIP
    torch.set_num_threads(1)
    dtype = torch.float64 if args.float64 else torch.float32
    fails = []
    for path in args.files:
        fails += check_golden(path, dtype, args.tol)
    for f in fails:
        print("FAIL " + f)
    return 1 if fails else 0


# ---- bench mode ----------------------------------------------------------

MALLOC_KEEP = {"MALLOC_MMAP_THRESHOLD_": "1073741824", "MALLOC_TRIM_THRESHOLD_": "4294967296",
               "MALLOC_TOP_PAD_": "268435456", "OMP_WAIT_POLICY": "passive"}


def parse_config(name):
    """'t2b1' -> (2 torch threads, 1 OpenBLAS thread)"""
    if not (name.startswith("t") and "b" in name):
        raise ValueError(f"thread setting {name!r}: expected tNbM, e.g. t1b2")
    t, b = name[1:].split("b")
    return int(t), int(b)


def train_steps(preset, batch, steps, clip, warmup=2):
    """Median seconds per training step of preset."""
    cfg = Config(**PRESETS[preset])
    params = init_params(cfg, 1, torch.float32)
    opt = torch.optim.Adam(params.values(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    gen = torch.Generator().manual_seed(2)
    batches = [(torch.rand(batch, cfg.P, generator=gen) < 0.5).float() for _ in range(4)]
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        eps = torch.randn(cfg.glimpses, batch, cfg.z_size)
        loss, _, _ = forward(cfg, params, batches[i % 4], eps)
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(params.values(), clip)
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_child(args):
    """One thread setting, in this process: a JSON line per preset."""
    torch.set_num_threads(args.torch_threads)
    torch.set_num_interop_threads(1)
    for preset in args.presets.split(","):
        sec = train_steps(preset, args.batch, args.steps, args.clip)
        print(json.dumps({"preset": preset, "ms": 1e3 * sec, "img_s": args.batch / sec}),
              flush=True)
    return 0


def cmd_bench(args):
    if torch is None:
        print("torch or numpy is not importable (Debian: python3-torch)", file=sys.stderr)
        return 2
    if args.child:
        return bench_child(args)
    ncpu = os.cpu_count() or 1
    configs = args.configs or ",".join(
        sorted({"t1b1", f"t1b{ncpu}", f"t{ncpu}b1", f"t{ncpu}b{ncpu}"}))
    print(f"torch_draw.py bench: torch {torch.__version__}, {ncpu} CPUs, batch {args.batch}, "
          f"median of {args.steps} steps after 2 warm-up, clip {args.clip}")
    best = {}
    for name in configs.split(","):
        tt, bt = parse_config(name)
        env = dict(os.environ, **MALLOC_KEEP, OPENBLAS_NUM_THREADS=str(bt),
                   OMP_NUM_THREADS=str(tt))
        cmd = [sys.executable, os.path.abspath(__file__), "bench", "--child",
               "--torch-threads", str(tt), "--presets", args.presets, "--steps", str(args.steps),
               "--batch", str(args.batch), "--clip", str(args.clip)]
        t0 = time.time()
        out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=True).stdout
        print(f"\n[{name}] torch threads {tt}, OpenBLAS threads {bt} ({time.time() - t0:.0f} s)")
        for line in out.splitlines():
            r = json.loads(line)
            print(f"  {r['preset']:<12} {r['ms']:8.1f} ms/step {r['img_s']:8.1f} img/s")
            if r["preset"] not in best or r["img_s"] > best[r["preset"]][0]:
                best[r["preset"]] = (r["img_s"], r["ms"], name)
    print("\n| preset | ms/step | img/s | best thread setting |\n|---|---|---|---|")
    for preset in args.presets.split(","):
        img_s, ms, name = best[preset]
        print(f"| {preset} | {ms:.1f} | {img_s:.1f} | {name} |")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="agree with golden files")
    c.add_argument("files", nargs="+")
    c.add_argument("--tol", type=float, default=1e-4)
    c.add_argument("--float64", action="store_true", help="compute in float64")
    b = sub.add_parser("bench", help="training-step throughput")
    b.add_argument("--presets", default="draw,draw-noattn,dcrw,dcrw-noread")
    b.add_argument("--steps", type=int, default=10)
    b.add_argument("--batch", type=int, default=100)
    b.add_argument("--clip", type=float, default=0.0)
    b.add_argument("--configs", default="", help="thread settings tNbM, comma-separated")
    b.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    b.add_argument("--torch-threads", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cmd == "bench":
        for p in args.presets.split(","):
            if p not in PRESETS:
                ap.error(f"unknown preset {p!r} (expected {', '.join(PRESETS)})")
        return cmd_bench(args)
    return cmd_check(args)


if __name__ == "__main__":
    sys.exit(main())
