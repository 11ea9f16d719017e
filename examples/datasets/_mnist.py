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


def default_mnist():
    """data/mnist at the root of the source tree."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "..", "data", "mnist")
