"""Ownership of C handles and the NumPy conversions shared by the wrappers."""

import ctypes
import os
import weakref

import numpy as np

from . import _ffi


class Handle:
    """Owns one C object and frees it exactly once.

    A Handle is referenced by the Python object that created it, by every
    NumPy view into the C object's memory and by dependent handles (a
    trainer's handle holds its model's). The C object is therefore freed when
    the last of them goes away, and a model can never be freed before its
    trainer or while an array still points into it. A Handle holds no
    reference back to any Python object, so it never sits in a reference
    cycle and CPython frees it as soon as the last reference is dropped.
    """

    __slots__ = ("ptr", "_destroy", "parent", "_deps", "__weakref__")

    def __init__(self, ptr, destroy, parent=None):
        self.ptr = ptr
        self._destroy = destroy
        self.parent = parent
        # views and child handles, tracked weakly so that close() can tell
        # whether freeing now would leave one of them dangling
        self._deps = weakref.WeakSet()
        if parent is not None:
            parent._deps.add(self)

    def close(self):
        """Free now if nothing depends on the C object, else when the last dependant goes."""
        if len(self._deps) == 0:
            self.release()

    def release(self):
        ptr, self.ptr = self.ptr, None
        if ptr is not None:
            self._destroy(ptr)
        self.parent = None

    def __del__(self):
        # The destroy function is kept on the instance: at interpreter exit
        # the module's globals may already be gone.
        if self.ptr is not None:
            self.release()


class _Anchor:
    """Ties a view's ctypes array to its Handle; weakly tracked by the Handle
    (ctypes arrays themselves are unhashable, so cannot sit in a WeakSet)."""

    __slots__ = ("handle", "__weakref__")

    def __init__(self, handle):
        self.handle = handle


def view(handle, ptr, shape, writeable=True):
    """A NumPy array over `ptr` (float32, C order) that keeps `handle` alive."""
    n = 1
    for s in shape:
        n *= int(s)
    if n == 0 or not ptr:
        return np.zeros(shape, dtype=np.float32)
    addr = ctypes.cast(ptr, ctypes.c_void_p).value
    carr = (ctypes.c_float * n).from_address(addr)
    # The ctypes array is the base of the NumPy array (through a memoryview),
    # so the attribute keeps the C object alive as long as any view of it.
    anchor = _Anchor(handle)
    carr._dcrw_owner = anchor
    handle._deps.add(anchor)
    arr = np.ctypeslib.as_array(carr).reshape(shape)
    if not writeable:
        arr.flags.writeable = False
    return arr


def as_f32(a, name, shape_doc, ndims):
    """Return `a` as a C-contiguous float32 ndarray, converting at most once.

    Integer, boolean and other real-valued inputs are converted (a copy);
    a float32 C-contiguous array is passed as is, without a copy. Complex,
    object and string arrays cannot be converted without losing meaning and
    raise TypeError.
    """
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError("%s: expected real numbers %s, got dtype %s" % (name, shape_doc, arr.dtype))
    if arr.ndim not in ndims:
        raise ValueError("%s: expected shape %s, got %s" % (name, shape_doc, arr.shape))
    if arr.dtype != np.float32 or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    return arr


def fptr(arr):
    """float * for a float32 C-contiguous array, None (NULL) for None."""
    if arr is None:
        return None
    return arr.ctypes.data_as(_ffi.f32p)


def dptr(arr):
    if arr is None:
        return None
    return arr.ctypes.data_as(_ffi.f64p)


def path_bytes(path, name="path"):
    if path is None:
        raise TypeError("%s: expected a path, got None" % name)
    return os.fsencode(path)


def batch_int(B):
    if B < 1:
        raise ValueError("batch size must be >= 1, got %d" % B)
    if B > 2**31 - 1:
        raise ValueError("batch size %d does not fit the C int of the API" % B)
    return int(B)
