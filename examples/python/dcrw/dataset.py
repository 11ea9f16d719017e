"""dcrw.Dataset: images (and labels) held by the library, read from a path in
any format it knows or copied from a NumPy array."""

import ctypes
import math

import numpy as np

from . import _ffi
from ._util import INT32, SIZE, Handle, Owner, batch_int, integer, path_bytes, seed_int, view

_SPLITS = {"train": _ffi.SPLIT_TRAIN, "test": _ffi.SPLIT_TEST}
_DTYPES = {np.dtype(np.uint8): _ffi.DTYPE_U8, np.dtype(np.float32): _ffi.DTYPE_F32,
           np.dtype(np.float64): _ffi.DTYPE_F64}


def channels_last(shape):
    """The library's rule for a 4-D array [N, a, b, c] of images: channels
    last (NHWC) when c is 1, 3 or 4 and a is none of them, channels first
    (NCHW) otherwise."""
    a, c = shape[1], shape[3]
    return c in (1, 3, 4) and a not in (1, 3, 4)


def _as_nchw(x, layout):
    """x [N, H, W], [N, C, H, W] or [N, H, W, C] as a C-contiguous
    [N, C, H, W] array of the same dtype."""
    if x.ndim == 3:
        if layout not in (None, "nhw"):
            raise ValueError("layout: %r is for 4-D arrays; x is [N, H, W] %s" % (layout, x.shape))
        return np.ascontiguousarray(x[:, None, :, :])
    if x.ndim != 4:
        raise ValueError("x: expected images [N, H, W], [N, C, H, W] or [N, H, W, C], got shape %s" % (x.shape,))
    if layout is None:
        layout = "nhwc" if channels_last(x.shape) else "nchw"
    if layout == "nhwc":
        x = x.transpose(0, 3, 1, 2)
    elif layout != "nchw":
        raise ValueError("layout: expected None, 'nchw' or 'nhwc', got %r" % (layout,))
    return np.ascontiguousarray(x)


def _labels(labels, n):
    if labels is None:
        return None
    lab = np.asarray(labels)
    if lab.shape != (n,):
        raise ValueError("labels: expected shape (%d,), one per image, got %s" % (n, lab.shape))
    if n and lab.dtype.kind not in "iu":
        raise TypeError("labels: expected integers, got dtype %s" % lab.dtype)
    if n and (lab.min() < 0 or lab.max() > np.iinfo(np.int32).max):
        raise ValueError("labels: expected integers in [0, 2**31), got %d to %d" % (lab.min(), lab.max()))
    return np.ascontiguousarray(lab, dtype=np.int32)


_BINARIZE = {
    "none": _ffi.BINARIZE_NONE,
    "dynamic": _ffi.BINARIZE_DYNAMIC,
    "threshold": _ffi.BINARIZE_THRESHOLD,
}


class Dataset(Owner):
    """Images as float32 in [0, 1] with optional labels, read-only.

    Dataset.open(path, split="train") (or dcrw.load_dataset) reads a path of
    any format the library knows: a folder of IDX files (MNIST's names,
    plain or gzip, any prefix), an IDX or NumPy .npy file, train.npy/test.npy
    or train/ and test/ in a folder, a folder of PNG images (class folders
    give labels). Dataset.from_array(x, labels=None) copies a NumPy array;
    Dataset.load_idx(images_path, labels_path=None) reads two IDX files.
    May be shared between threads. Freed by close(), a
    `with` block or garbage collection (the `images` view and calls running
    in other threads keep it alive).
    """

    _kind = "Dataset"

    def __init__(self, _handle):
        if not isinstance(_handle, Handle):
            raise TypeError("use Dataset.open(), Dataset.from_array() or Dataset.load_idx()")
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

    @classmethod
    def open(cls, path, split="train"):
        """The data set at path, whatever its format; split ("train" or
        "test") picks the part of a folder that holds both (a single file
        or a folder of PNGs is the same set for either)."""
        if split not in _SPLITS:
            raise ValueError("split: expected 'train' or 'test', got %r" % (split,))
        out = ctypes.c_void_p()
        _ffi.dcrw_dataset_open(ctypes.byref(out), path_bytes(path, "path"), _SPLITS[split])
        return cls(Handle(out.value, _ffi.dcrw_dataset_destroy))

    @classmethod
    def from_array(cls, x, labels=None, layout=None):
        """A data set copied from images x: uint8 (0 to 255), float32 or
        float64 (in [0, 1]); bool is taken as 0 and 1. Shaped [N, H, W],
        [N, C, H, W] or [N, H, W, C]: a 4-D array is channels-last when its
        last dimension is 1, 3 or 4 and its second is none of them, else
        channels-first; layout="nchw" or "nhwc" says which instead. labels:
        None or N integers >= 0. The arrays are copied; nothing refers to
        them afterwards."""
        arr = np.asarray(x)
        if arr.dtype == np.bool_:
            arr = arr.astype(np.float32)
        if arr.dtype not in _DTYPES:
            raise TypeError(
                "x: expected uint8 (0 to 255), float32 or float64 (in [0, 1]) images, got dtype %s: "
                "convert with x.astype(np.uint8) or (x / 255).astype(np.float32)" % arr.dtype
            )
        arr = _as_nchw(arr, layout)
        n, c, h, w = arr.shape
        if n < 1:
            raise ValueError("x: no images (shape %s)" % (arr.shape,))
        lab = _labels(labels, n)
        out = ctypes.c_void_p()
        _ffi.dcrw_dataset_from_memory(
            ctypes.byref(out),
            arr.ctypes.data_as(ctypes.c_void_p),
            _DTYPES[arr.dtype],
            n,
            integer(c, "channels", *INT32),
            integer(h, "height", *INT32),
            integer(w, "width", *INT32),
            None if lab is None else lab.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
        )
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
