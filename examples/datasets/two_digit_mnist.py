#!/usr/bin/env python3
"""Two-digit MNIST, the DRAW paper's cluttered-canvas experiment: two MNIST
digits placed at random on a 60x60 black canvas, their 28x28 boxes never
overlapping, saved as NumPy arrays [N, 60, 60] of uint8.

    examples/datasets/two_digit_mnist.py --out data/two-digit-mnist

writes OUT/train.npy (60000 canvases, from MNIST's training digits),
OUT/test.npy (10000, from its test digits), and OUT/train-digits.npy,
OUT/test-digits.npy: [N, 2] uint8, the two digits of each canvas, left one
first. `dcrw train --data OUT/train.npy` reads a canvas set as it is. The
canvases come from --seed alone, so the same seed writes the same files.
Needs Python 3 and NumPy; MNIST is read from data/mnist
(examples/fetch-mnist.sh) or --mnist DIR.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _mnist  # noqa: E402

CANVAS = 60
DIGIT = 28


def positions(rng, n):
    """Top-left corners [n, 2, 2] (digit, (y, x)) of two 28x28 boxes inside
    the canvas that do not overlap: apart by a whole box on one axis at
    least. Drawn uniformly among such pairs, by rejection."""
    span = CANVAS - DIGIT + 1
    pos = rng.integers(0, span, size=(n, 2, 2))
    while True:
        d = np.abs(pos[:, 0] - pos[:, 1])
        bad = (d[:, 0] < DIGIT) & (d[:, 1] < DIGIT)
        if not bad.any():
            return pos
        pos[bad] = rng.integers(0, span, size=(int(bad.sum()), 2, 2))


def canvases(rng, digits, labels, n):
    """n canvases [n, 60, 60] uint8 and their two digits [n, 2], left first."""
    pick = rng.integers(0, len(digits), size=(n, 2))
    pos = positions(rng, n)
    out = np.zeros((n, CANVAS, CANVAS), np.uint8)
    for i in range(n):
        for k in range(2):
            y, x = pos[i, k]
            # the boxes are disjoint, so each pixel is written once at most
            out[i, y : y + DIGIT, x : x + DIGIT] = digits[pick[i, k]]
    left_first = np.where(pos[:, 0, 1] <= pos[:, 1, 1], 0, 1)
    rows = np.arange(n)
    which = np.stack([labels[pick[rows, left_first]], labels[pick[rows, 1 - left_first]]], axis=1)
    return out, which.astype(np.uint8)


def main():
    args = _mnist.arguments(__doc__, "folder to write the .npy files into", "the placement")
    os.makedirs(args.out, exist_ok=True)
    for split, n, digits, labels, rng in _mnist.splits(args):
        x, which = canvases(rng, digits, labels, n)
        for name, array in ((f"{split}.npy", x), (f"{split}-digits.npy", which)):
            path = os.path.join(args.out, name)
            tmp = path + ".part"
            with open(tmp, "wb") as f:
                np.save(f, array)
            os.replace(tmp, path)
        print(f"{os.path.join(args.out, split + '.npy')}: {n} canvases of 60x60")


if __name__ == "__main__":
    main()
