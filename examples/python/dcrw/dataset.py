"""dcrw.Dataset: images (and labels) read from IDX files, held by the library."""

import ctypes
import math

import numpy as np

from . import _ffi
from ._util import INT32, SIZE, Handle, Owner, batch_int, integer, path_bytes, seed_int, view

_BINARIZE = {
    "none": _ffi.BINARIZE_NONE,
    "dynamic": _ffi.BINARIZE_DYNAMIC,
    "threshold": _ffi.BINARIZE_THRESHOLD,
}


class Dataset(Owner):
    """Images as float32 in [0, 1] with optional labels, read-only.

    Dataset.load_idx(images_path, labels_path=None) reads MNIST-style IDX
    files, plain or gzip. May be shared between threads. Freed by close(), a
    `with` block or garbage collection (the `images` view and calls running
    in other threads keep it alive).
    """

    _kind = "Dataset"

    def __init__(self, _handle):
        if not isinstance(_handle, Handle):
            raise TypeError("use Dataset.load_idx()")
        self._h = _handle
        c, h, w = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        _ffi.dcrw_dataset_shape(_handle.ptr, ctypes.byref(c), ctypes.byref(h), ctypes.byref(w))
        self._shape = (c.value, h.value, w.value)
        self._count = _ffi.dcrw_dataset_count(_handle.ptr)

    @classmethod
    def load_idx(cls, images, labels=None):
        out = ctypes.c_void_p()
        lab = None if labels is None else path_bytes(labels, "labels")
        _ffi.dcrw_dataset_load_idx(ctypes.byref(out), path_bytes(images, "images"), lab)
        return cls(Handle(out.value, _ffi.dcrw_dataset_destroy))

    def __len__(self):
        return self._count

    @property
    def count(self):
        return self._count

    @property
    def shape(self):
        """(C, H, W) of one image."""
        return self._shape

    @property
    def input_size(self):
        c, h, w = self._shape
        return c * h * w

    def __repr__(self):
        return "<dcrw.Dataset %d images of %dx%dx%d>" % ((self._count,) + self._shape)

    def batch(self, indices, binarize="none", seed=0):
        """Images `indices` as a float32 array [B, P].

        binarize: "none" (grey levels), "dynamic" (each pixel 1 with
        probability its grey level, drawn from (seed, index, pixel): the same
        seed and index give the same bits in any batch) or "threshold"
        (> 0.5), or a DCRW_BINARIZE_* number."""
        idx = np.asarray(indices)
        if idx.ndim != 1:
            raise ValueError("indices: expected a 1-D sequence of image numbers, got shape %s" % (idx.shape,))
        if idx.size and idx.dtype.kind not in "iu":
            raise TypeError("indices: expected integers, got dtype %s" % idx.dtype)
        B = batch_int(idx.shape[0])
        if idx.dtype.kind == "i" and idx.min() < 0:
            raise ValueError("indices: negative index %d" % idx.min())
        idx = np.ascontiguousarray(idx, dtype=np.uintp)
        if isinstance(binarize, str):
            if binarize not in _BINARIZE:
                raise ValueError("binarize: expected one of %s, got %r" % (", ".join(_BINARIZE), binarize))
            binarize = _BINARIZE[binarize]
        binarize = integer(binarize, "binarize", *INT32)
        seed = seed_int(seed)
        x = np.empty((B, self.input_size), dtype=np.float32)
        self._call(
            _ffi.dcrw_dataset_batch,
            idx.ctypes.data_as(ctypes.POINTER(ctypes.c_size_t)),
            B,
            binarize,
            seed,
            x.ctypes.data_as(_ffi.f32p),
        )
        return x

    def label(self, i):
        """Label of image i, or -1 without labels or out of range."""
        i = integer(i, "i", -math.inf, math.inf)
        if not SIZE[0] <= i <= SIZE[1]:
            return -1
        return self._call(_ffi.dcrw_dataset_label, i)

    @property
    def labels(self):
        """All labels as an int32 array [count], or None without labels."""
        def labels(ptr):
            if self._count == 0 or _ffi.dcrw_dataset_label(ptr, 0) < 0:
                return None
            return np.array([_ffi.dcrw_dataset_label(ptr, i) for i in range(self._count)], dtype=np.int32)

        return self._call(labels)

    @property
    def images(self):
        """A read-only view [count, P] of the library's image buffer."""
        h = self._h

        def images(ptr):
            return view(h, _ffi.dcrw_dataset_images(ptr), (self._count, self.input_size), writeable=False)

        return self._call(images)
