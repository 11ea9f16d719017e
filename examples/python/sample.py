#!/usr/bin/python3
"""Samples from a trained DCRW model, written as a PNG grid: no training needed.

    /usr/bin/python3 examples/python/sample.py [--model CKPT] [--out samples.png]
                                               [--n 64] [--seed 1] [--glimpses]

Without --model it uses dcrw.shipped_model(): the model trained on MNIST
that libdcrw installs (doc/RESULTS.md tells how it was trained and what it
scores). With --glimpses every row is one sample's canvas after each glimpse.
Needs the dcrw package (installed with -Dpython=true, or PYTHONPATH pointing
at examples/python) and NumPy.
"""
import argparse
import math
import struct
import sys
import zlib

import numpy as np

import dcrw


def write_png(path, grey):
    """An 8-bit greyscale PNG of the 2-D array grey (values in [0, 1])."""
    g = np.clip(np.rint(np.asarray(grey, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
    h, w = g.shape
    raw = b"".join(b"\0" + g[r].tobytes() for r in range(h))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def tile(images, cols, pad=2):
    """[n, H, W] images into one grid with a black border of `pad` pixels."""
    n, H, W = images.shape
    rows = math.ceil(n / cols)
    out = np.zeros((rows * (H + pad) + pad, cols * (W + pad) + pad))
    for i in range(n):
        r, c = divmod(i, cols)
        out[pad + r * (H + pad):pad + r * (H + pad) + H, pad + c * (W + pad):pad + c * (W + pad) + W] = images[i]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="a checkpoint (default: the shipped model)")
    ap.add_argument("--out", default="samples.png")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--glimpses", action="store_true", help="one row of canvases per sample")
    a = ap.parse_args(argv)
    path = a.model or dcrw.shipped_model()
    try:
        model = dcrw.Model.load(path)
    except dcrw.DcrwError as e:
        sys.exit("sample.py: %s: %s" % (path, e))
    with model:
        C, H, W = model.image_shape
        if C != 1:
            sys.exit("sample.py: %s has %d channels; this example draws grey images" % (path, C))
        if a.glimpses:
            d = model.sample(a.n, seed=a.seed, canvases=True)
            T = model.glimpses
            means = d.canvases  # [T, n, P], sigma(c_t) after every glimpse
            grid = tile(means.transpose(1, 0, 2).reshape(a.n * T, H, W), T)
        else:
            images = model.sample(a.n, seed=a.seed)
            grid = tile(images.reshape(a.n, H, W), math.ceil(math.sqrt(a.n)))
    write_png(a.out, grid)
    print("%s: %d samples of %s" % (a.out, a.n, path))


if __name__ == "__main__":
    main()
