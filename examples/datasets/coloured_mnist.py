#!/usr/bin/env python3
"""Coloured MNIST: each digit drawn in one colour on a background of
another, as a folder of 3x28x28 PNG files with one subfolder per digit.

    examples/datasets/coloured_mnist.py --out data/coloured-mnist

writes OUT/train/<digit>/<index>.png and OUT/test/<digit>/<index>.png, which
`dcrw train --data OUT/train` reads with the digits as labels. The colours
come from --seed alone, so the same seed writes the same files. Needs
Python 3 and NumPy; MNIST is read from data/mnist (examples/fetch-mnist.sh)
or --mnist DIR.
"""

import os
import struct
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _mnist  # noqa: E402

# the least difference in luma between a digit and its background, so that
# every digit stays visible
MIN_CONTRAST = 0.35


def luma(rgb):
    return rgb @ np.array([0.299, 0.587, 0.114])


def colour_pairs(rng, n):
    """n (foreground, background) RGB pairs in [0, 1], drawn until each pair
    differs enough in luma."""
    fg, bg = rng.random((n, 3)), rng.random((n, 3))
    bad = np.abs(luma(fg) - luma(bg)) < MIN_CONTRAST
    while bad.any():
        k = int(bad.sum())
        fg[bad], bg[bad] = rng.random((k, 3)), rng.random((k, 3))
        bad = np.abs(luma(fg) - luma(bg)) < MIN_CONTRAST
    return fg, bg


def colourize(digits, fg, bg):
    """[N, 28, 28] uint8 grey digits to [N, 28, 28, 3] uint8: the ink blends
    the background into the foreground colour."""
    a = digits.astype(np.float64)[..., None] / 255.0
    rgb = bg[:, None, None, :] * (1.0 - a) + fg[:, None, None, :] * a
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def png_bytes(rgb):
    """An 8-bit RGB PNG of rgb [H, W, 3] uint8, written with zlib alone."""
    h, w, _ = rgb.shape

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    # filter type 0 (none) before every row
    rows = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
        + chunk(b"IEND", b"")
    )


def write_split(out, images, labels):
    for digit in range(10):
        os.makedirs(os.path.join(out, str(digit)), exist_ok=True)
    width = len(str(len(images) - 1))
    for i, (img, label) in enumerate(zip(images, labels)):
        path = os.path.join(out, str(int(label)), f"{i:0{width}d}.png")
        with open(path, "wb") as f:
            f.write(png_bytes(img))


def main():
    args = _mnist.arguments(__doc__, "folder to write train/ and test/ into", "the colours",
                            train=None, test=None, what="images")
    for split, limit, x, y, rng in _mnist.splits(args):
        x, y = x[:limit], y[:limit]
        fg, bg = colour_pairs(rng, len(x))
        target = os.path.join(args.out, split)
        if os.path.isdir(target) and os.listdir(target):
            sys.exit(f"{target}: exists and is not empty; choose another --out")
        write_split(target, colourize(x, fg, bg), y)
        print(f"{target}: {len(x)} images of 3x28x28")


if __name__ == "__main__":
    main()
