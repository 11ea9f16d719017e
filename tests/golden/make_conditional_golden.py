#!/usr/bin/python3
"""Golden files of the class-conditional generative models (doc/MODEL.md §10).

The sizes are those of golden-draw-small, golden-dcrw-small and
golden-dcrw-noread-small, with classes K = 3. Each file's parameters (float32,
uniform), binary images x, labels and standard-normal eps come from numpy's
default_rng(seed); the loss, Lx, Lz and every gradient (central differences,
step 1e-6) are computed in float64 by reference.py from the float32 values
stored, then rounded to float32. Two self-checks run before writing:

- the conditional loss with every label column of the weights set to 0
  equals the unconditional loss of the same parameters without those columns
  (the assembly of [.., ŷ] in each layer), asserted;
- the label columns' gradients are nonzero exactly in the columns of the
  labels present in the batch (printed and asserted; one file leaves a class
  out so that its columns' gradients are exactly 0).

Run from anywhere (about a second; the output is byte-for-byte reproducible
with the same NumPy and BLAS):

    /usr/bin/python3 tests/golden/make_conditional_golden.py [--out-dir DIR]
"""
import argparse
import os
import sys
import time

# one BLAS thread (light on the machine, and no thread-count-dependent sums);
# reference.py itself avoids NumPy's address-dependent exp/tanh code paths
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ beside reference.py
import reference as ref  # noqa: E402

K, B = 3, 3
BASE = {"format": "1", "channels": 1, "height": 12, "width": 12, "dec_size": 16,
        "z_size": 5, "write_n": 3, "write_attention": "true"}
# name, preset, seed, labels, configuration (beyond BASE)
FILES = [
    ("golden-draw-cond-small", "draw", 11, [2, 0, 1],
     dict(glimpses=4, enc_size=16, read_n=2, conv1=0, conv2=0, encoder="lstm",
          read_attention="true")),
    ("golden-dcrw-cond-small", "dcrw", 12, [1, 2, 1],  # class 0 absent
     dict(glimpses=3, enc_size=0, read_n=7, conv1=4, conv2=6, encoder="cnn",
          read_attention="true")),
    ("golden-dcrw-noread-cond-small", "dcrw-noread", 13, [0, 2, 1],
     dict(glimpses=3, enc_size=0, read_n=0, conv1=4, conv2=6, encoder="cnn",
          read_attention="false")),
]
KEYS = ["format", "preset", "channels", "height", "width", "glimpses", "enc_size",
        "dec_size", "z_size", "read_n", "write_n", "conv1", "conv2", "encoder",
        "read_attention", "write_attention", "classes"]


def half_width(name):
    """Uniform ±a as in the other golden files; attention weights larger
    (0.15, not 0.05) so that the windows move with the state."""
    return 0.15 if name.endswith("attn.weight") else 0.3


def self_check(cfg, params, x, eps, labels):
    """Zeroed label columns: the conditional loss is the unconditional one."""
    zeroed, stripped = dict(params), dict(params)
    for n in ref.label_weights(cfg):
        zeroed[n] = params[n].copy()
        zeroed[n][:, -K:] = 0.0
        stripped[n] = params[n][:, :-K]
    ucfg = dict(cfg, classes=0)
    ref.check_params(ucfg, stripped)
    cond = ref.forward(cfg, zeroed, x, eps, labels)
    uncond = ref.forward(ucfg, stripped, x, eps)
    assert np.allclose(cond, uncond, rtol=1e-13, atol=0), (cond, uncond)
    return cond[0], uncond[0]


def make(name, preset, seed, labels, extra, out_dir):
    t0 = time.time()
    meta = dict(BASE, preset=preset, classes=K, **extra)
    cfg = ref.parse_config(meta)
    rng = np.random.default_rng(seed)
    p32 = {n: rng.uniform(-half_width(n), half_width(n), shape).astype(np.float32)
           for n, shape in ref.param_shapes(cfg)}
    x32 = (rng.random((B, ref.image_size(cfg))) < 0.4).astype(np.float32)
    eps32 = rng.standard_normal((cfg["glimpses"], B, cfg["z_size"])).astype(np.float32)
    p = {n: v.astype(np.float64) for n, v in p32.items()}
    x, eps = x32.astype(np.float64), eps32.astype(np.float64)
    labels = np.array(labels)

    loss, lx, lz = ref.forward(cfg, p, x, eps, labels)
    cond0, uncond = self_check(cfg, p, x, eps, labels)
    grads = ref.fd_gradients(cfg, p, x, eps, labels=labels)

    present = sorted(set(labels.tolist()))
    print("%s: loss %.10g (lx %.10g, lz %.10g); zeroed label columns %.12g = "
          "unconditional %.12g" % (name, loss, lx, lz, cond0, uncond))
    for n in ref.label_weights(cfg):
        g = np.abs(grads[n][:, -K:]).max(axis=0)
        nonzero = [k for k in range(K) if g[k] != 0.0]
        print("    %-20s label columns max|grad| %s, nonzero %s, labels present %s"
              % (n, np.array2string(g, precision=3), nonzero, present))
        assert nonzero == present, (n, nonzero, present)

    note = (
        "libdcrw golden file made by tests/golden/make_conditional_golden.py (seed %d): "
        "the class-conditional model of doc/MODEL.md section 10, preset=%s, classes=%d, "
        "B=%d, x=binary 0/1. golden.x [B,P] channel-major then row-major; golden.labels "
        "[B] integer class ids stored as F32; golden.eps [T,B,Z] time-major, standard "
        "normal. golden.loss = batch mean of (Lx+Lz); golden.lx = batch mean of Lx; "
        "golden.lz = batch mean of Lz (nats/image). grad.<name> = d golden.loss / d "
        "<name>, by central differences (step %g) in float64 (tests/golden/reference.py). "
        "Computed in float64 from the float32 values stored here, then rounded to "
        "float32. Unused config sizes are 0." % (seed, preset, K, B, ref.FD_STEP))
    metadata = {"dcrw." + k: str(meta[k]) for k in KEYS}
    metadata["golden.note"] = note
    tensors = list(p32.items())
    tensors += [("golden.x", x32), ("golden.labels", labels.astype(np.float32)),
                ("golden.eps", eps32), ("golden.loss", np.array([loss])),
                ("golden.lx", np.array([lx])), ("golden.lz", np.array([lz]))]
    tensors += [("grad." + n, grads[n]) for n in p32]
    path = os.path.join(out_dir, name + ".safetensors")
    ref.write_safetensors(path, tensors, metadata)
    print("    wrote %s in %.1f s" % (path, time.time() - t0))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default=HERE, help="directory (default: %(default)s)")
    args = ap.parse_args()
    for name, preset, seed, labels, extra in FILES:
        make(name, preset, seed, labels, extra, args.out_dir)


if __name__ == "__main__":
    main()
