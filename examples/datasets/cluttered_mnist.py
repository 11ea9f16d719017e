#!/usr/bin/env python3
"""Cluttered MNIST, the DRAW paper's classification set (after Mnih et al.
2014): one MNIST digit at a random place on a 100x100 black canvas, with
eight 8x8 fragments cut at random from other digits as clutter, saved as
gzipped IDX files with the digit's label.

    examples/datasets/cluttered_mnist.py --out data/cluttered-mnist

writes OUT/train-images-idx3-ubyte.gz and OUT/train-labels-idx1-ubyte.gz
(60000 canvases from MNIST's training digits), and OUT/t10k-images-idx3-
ubyte.gz and OUT/t10k-labels-idx1-ubyte.gz (10000 from its test digits), so
that `dcrw train --data OUT` reads the folder as it reads MNIST's. A
canvas's digit and its clutter come from the same split, the clutter from
other images than the digit. Everything comes from --seed alone, so the same
seed writes the same bytes.

--test-from-train N makes the test canvases from the last N training digits
instead (the digits `dcrw train --valid N` holds out), to score a model on
digits of MNIST's training split that it never saw, drawn by this script.

Needs Python 3 and NumPy; MNIST is read from data/mnist
(examples/fetch-mnist.sh) or --mnist DIR.
"""

import gzip
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _mnist  # noqa: E402

CANVAS = 100
DIGIT = 28
FRAGMENT = 8
FRAGMENTS = 8


def canvases(rng, digits, n):
    """n canvases [n, 100, 100] uint8 and the index of each one's digit.
    Fragments and digit are combined by the brighter pixel, so clutter
    never erases the digit's strokes."""
    pick = rng.integers(0, len(digits), size=n)
    at = rng.integers(0, CANVAS - DIGIT + 1, size=(n, 2))
    # each fragment: another image (never the canvas's digit), a corner in
    # it and a place on the canvas
    other = rng.integers(0, len(digits) - 1, size=(n, FRAGMENTS))
    other += other >= pick[:, None]
    cut = rng.integers(0, DIGIT - FRAGMENT + 1, size=(n, FRAGMENTS, 2))
    put = rng.integers(0, CANVAS - FRAGMENT + 1, size=(n, FRAGMENTS, 2))
    out = np.zeros((n, CANVAS, CANVAS), np.uint8)
    for i in range(n):
        c = out[i]
        for k in range(FRAGMENTS):
            (sy, sx), (py, px) = cut[i, k], put[i, k]
            patch = digits[other[i, k], sy : sy + FRAGMENT, sx : sx + FRAGMENT]
            window = c[py : py + FRAGMENT, px : px + FRAGMENT]
            np.maximum(window, patch, out=window)
        y, x = at[i]
        window = c[y : y + DIGIT, x : x + DIGIT]
        np.maximum(window, digits[pick[i]], out=window)
    return out, pick


def write_idx_gz(path, array):
    """An IDX file of unsigned bytes, gzipped with no time stamp (the same
    array gives the same bytes), written to a temporary name then renamed."""
    header = b"\0\0\x08" + bytes([array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    tmp = path + ".part"
    with open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
            f.write(header)
            f.write(np.ascontiguousarray(array, np.uint8).tobytes())
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, path)


def main():
    def extra(p):
        p.add_argument("--test-from-train", type=int, default=0, metavar="N",
                       help="make the test canvases from the last N training digits")

    args = _mnist.arguments(__doc__, "folder to write the IDX files into", "digits and clutter",
                            extra=extra)
    tail = args.test_from_train
    if tail < 0 or tail == 1:
        sys.exit("--test-from-train needs at least 2 digits")
    os.makedirs(args.out, exist_ok=True)
    for split, n, digits, labels, rng in _mnist.splits(args):
        if split == "train":
            train = digits, labels
        elif tail:
            if tail > len(train[0]):
                sys.exit(f"--test-from-train {tail}: MNIST has {len(train[0])} training digits")
            digits, labels = train[0][-tail:], train[1][-tail:]
        x, pick = canvases(rng, digits, n)
        images, label_file = (os.path.join(args.out, name + ".gz") for name in _mnist.NAMES[split])
        write_idx_gz(images, x)
        write_idx_gz(label_file, labels[pick])
        print(f"{images}: {n} canvases of {CANVAS}x{CANVAS}")


if __name__ == "__main__":
    main()
