"""Reading MNIST's IDX files (plain or gzip) with NumPy, for the data set
scripts beside this file."""

import gzip
import os
import sys

import numpy as np

NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _open(path):
    for candidate in (path, path + ".gz"):
        if os.path.isfile(candidate):
            with open(candidate, "rb") as f:
                head = f.read(2)
            if head == b"\x1f\x8b":
                return gzip.open(candidate, "rb")
            return open(candidate, "rb")
    sys.exit(f"{path}: not found (fetch MNIST with examples/fetch-mnist.sh)")


def _read_idx(path, ndim):
    with _open(path) as f:
        data = f.read()
    if len(data) < 4 + 4 * ndim or data[:3] != b"\0\0\x08" or data[3] != ndim:
        sys.exit(f"{path}: not an IDX file of unsigned bytes with {ndim} dimensions")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        sys.exit(f"{path}: holds {body.size} values, its header declares {int(np.prod(dims))}")
    return body.reshape(dims)


def load(folder, split):
    """(images [N, 28, 28] uint8, labels [N] uint8) of one split."""
    images, labels = (os.path.join(folder, n) for n in NAMES[split])
    x, y = _read_idx(images, 3), _read_idx(labels, 1)
    if len(x) != len(y):
        sys.exit(f"{folder}: {len(x)} images but {len(y)} labels")
    return x, y


def arguments(doc, out_help, seed_of, train=60000, test=10000, what="canvases", extra=None):
    """The command line every script shares: --out, --mnist, --seed and the
    size of each split (None: all of MNIST's); extra(parser) adds a
    script's own."""
    import argparse

    def size(default, split):
        return "%s of the %s set (default %s)" % (what, split, "all" if default is None else default)

    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--out", required=True, help=out_help)
    p.add_argument("--mnist", default=default_mnist(), help="folder of the MNIST IDX files")
    p.add_argument("--seed", type=int, default=1, help="seed of %s (default 1)" % seed_of)
    p.add_argument("--train", type=int, default=train, help=size(train, "training"))
    p.add_argument("--test", type=int, default=test, help=size(test, "test"))
    if extra:
        extra(p)
    return p.parse_args()


def splits(args):
    """(split, n, images, labels, rng) for "train" then "test": MNIST's own
    split and a generator of its own, so that --train does not change the
    test set; n is the size asked for (None: all)."""
    for split, n in (("train", args.train), ("test", args.test)):
        if n is not None and n < 1:
            sys.exit(f"--{split} must be at least 1")
        images, labels = load(args.mnist, split)
        yield split, n, images, labels, np.random.default_rng([args.seed, 0 if split == "train" else 1])


def default_mnist():
    """data/mnist at the root of the source tree."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "..", "data", "mnist")
