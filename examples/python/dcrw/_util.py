"""Ownership of C handles, argument checks and the NumPy conversions shared
by the wrappers."""

import atexit
import ctypes
import math
import numbers
import operator
import os
import queue
import signal
import sys
import threading
import weakref

import numpy as np

from . import _ffi

# ---- argument checks -------------------------------------------------------
# ctypes converts a Python int to a C integer by dropping the high bits, so
# seed=-1 would reach the library as 2**64 - 1 and a batch of 2**32 + 1 as 1.
# Every integer the package hands to C goes through integer() first.

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
UINT64 = (0, 2**64 - 1)
SIZE = (0, 2 ** (8 * ctypes.sizeof(ctypes.c_size_t)) - 1)
FLOAT32_MAX = float(np.finfo(np.float32).max)


def integer(value, name, lo, hi):
    """`value` as a Python int in [lo, hi].

    TypeError for anything that is not an integer (a float, even 2.0, or a
    string: what range() refuses too), ValueError outside [lo, hi]."""
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError("%s: expected an integer, got %r" % (name, value)) from None
    if v < lo:
        raise ValueError("%s must be >= %d, got %d" % (name, lo, v))
    if v > hi:
        raise ValueError("%s must be <= %d, got %d" % (name, hi, v))
    return v


def seed_int(value, name="seed"):
    """A uint64_t seed."""
    return integer(value, name, *UINT64)


def batch_int(B, name="batch size"):
    """A batch size: the C API's int, at least 1."""
    return integer(B, name, 1, INT32[1])


def real(value, name):
    """`value` as a float for a C float: TypeError for strings and other
    non-numbers, ValueError for a finite value float32 cannot hold (it would
    become infinite). NaN and infinities pass: the library names them."""
    if not isinstance(value, numbers.Real):
        raise TypeError("%s: expected a real number, got %r" % (name, value))
    v = float(value)
    if math.isfinite(v) and abs(v) > FLOAT32_MAX:
        raise ValueError("%s: %r does not fit a 32-bit float" % (name, value))
    return v


def c_string(s, name):
    """A str for a C string, UTF-8 encoded; ValueError if it holds a NUL,
    which C would take as its end."""
    if not isinstance(s, str):
        raise TypeError("%s: expected a string, got %r" % (name, s))
    b = s.encode("utf-8")
    if b"\0" in b:
        raise ValueError("%s: embedded null byte in %r" % (name, s))
    return b


def path_bytes(path, name="path"):
    """A path (str, bytes or os.PathLike) for a C string, as open() takes it."""
    if path is None:
        raise TypeError("%s: expected a path, got None" % name)
    try:
        b = os.fsencode(path)
    except TypeError:
        raise TypeError("%s: expected a path, got %r" % (name, path)) from None
    if b"\0" in b:
        raise ValueError("%s: embedded null byte in %r" % (name, path))
    return b


# ---- handles ---------------------------------------------------------------


class Handle:
    """Owns one C object and frees it exactly once, never while it is in use.

    A Handle is referenced by the Python object that created it, by every
    NumPy view into the C object's memory and by dependent handles (a
    trainer's handle holds its model's). The C object is therefore freed when
    the last of them goes away, and a model can never be freed before its
    trainer or while an array still points into it. A Handle holds no
    reference back to any Python object, so it never sits in a reference
    cycle and CPython frees it as soon as the last reference is dropped.

    Calls into the library bracket themselves with enter()/leave(): shared
    for operations that only read the object, exclusive for those that
    change it (a trainer's step changes its model too). close() during a
    call only marks the handle closed; the last call to leave frees it.
    Waiting for a lock is interruptible (Ctrl-C), and leave() may run in
    another thread than enter() (see run_long).
    """

    __slots__ = (
        "ptr",
        "_destroy",
        "parent",
        "_deps",
        "_cond",
        "_readers",
        "_waiting",
        "_writer",
        "_closed",
        "__weakref__",
    )

    def __init__(self, ptr, destroy, parent=None):
        self.ptr = ptr
        self._destroy = destroy
        self.parent = parent
        # views and child handles, tracked weakly so that close() can tell
        # whether freeing now would leave one of them dangling
        self._deps = weakref.WeakSet()
        self._cond = threading.Condition(threading.Lock())
        self._readers = self._waiting = 0  # calls inside; exclusive ones waiting
        self._writer = False
        self._closed = False
        if parent is not None:
            parent._deps.add(self)
        _live_handles.add(self)

    def _reset_after_fork(self):
        # Only the forking thread lives in the child: calls other threads
        # had running are not running there, and a lock they held is free.
        self._cond = threading.Condition(threading.Lock())
        self._readers = self._waiting = 0
        self._writer = False

    def enter(self, kind, held, exclusive=False, closed_ok=False):
        """The C pointer, in use until leave(); (self, exclusive) is added to
        `held`. ValueError once closed (closed_ok: unless already freed, for
        a trainer's model). Readers share; an exclusive user waits for
        them to leave, and new readers wait for it."""
        with self._cond:
            waiting = False
            try:
                while True:
                    if self.ptr is None or (self._closed and not closed_ok):
                        raise ValueError("operation on a closed %s" % kind)
                    if exclusive and not self._writer and not self._readers:
                        break
                    if not exclusive and not self._writer and not self._waiting:
                        break
                    if exclusive and not waiting:
                        waiting = True
                        self._waiting += 1
                    # a timeout, so that a signal delivered to another
                    # thread still reaches this one's handler soon
                    self._cond.wait(0.1)
            finally:
                if waiting:
                    self._waiting -= 1
                    self._cond.notify_all()
            # no call between the count and the record: a signal handler
            # (KeyboardInterrupt) cannot run between them
            if exclusive:
                self._writer = True
            else:
                self._readers += 1
            held.append((self, exclusive))
            return self.ptr

    def leave(self, exclusive=False):
        with self._cond:
            if exclusive:
                self._writer = False
            else:
                self._readers -= 1
            self._cond.notify_all()
            free = self._closed and not self._busy() and len(self._deps) == 0
        if free:
            self.release()

    def _busy(self):
        return self._writer or self._readers > 0

    def close(self):
        """Free now if nothing uses or depends on the C object, else when
        the last call returns or the last dependant goes."""
        with self._cond:
            self._closed = True
            free = not self._busy() and len(self._deps) == 0
        if free:
            self.release()

    def release(self):
        with self._cond:
            ptr, self.ptr = self.ptr, None
            self._closed = True
        if ptr is not None:
            self._destroy(ptr)
        self.parent = None

    def __del__(self):
        # The destroy function is kept on the instance: at interpreter exit
        # the module's globals may already be gone. No call can be running:
        # each holds a reference.
        if self.ptr is not None:
            self.release()


# every Handle, for _reset_after_fork
_live_handles = weakref.WeakSet()


class Owner:
    """Base of Model, Trainer and Dataset: the object's Handle is in _h
    (None once closed) and every library call goes through _call."""

    _kind = "object"
    _h = None

    def _locks(self):
        """[(handle, exclusive, closed_ok)] a call on this object takes, in
        this order; the first handle's pointer is the call's first argument."""
        return [(self._h, False, False)]

    def _call(self, fn, *args, work=0):
        """fn(ptr, *args) with the C object kept alive and locked for the
        call. A call from the main thread estimated to cost more than
        LONG_WORK multiply-adds runs in the helper thread, so that Ctrl-C
        interrupts it (see run_long)."""
        held = []
        job = None
        if work > LONG_WORK and threading.current_thread() is threading.main_thread():
            job = _Job(held)
        try:
            ptrs = []
            for h, exclusive, closed_ok in self._locks():
                if h is None:
                    raise ValueError("operation on a closed %s" % self._kind)
                ptrs.append(h.enter(self._kind, held, exclusive, closed_ok))
            if job is None:
                return fn(ptrs[0], *args)
            job.fn, job.args = fn, (ptrs[0],) + args
            return run_long(job)
        finally:
            # the helper thread leaves for a job it started; else we do
            if job is None or job.claim.acquire(False):
                leave_all(held)

    def close(self):
        """Free the C object (now, or when its last view, trainer or running
        call is done); later operations raise ValueError. Idempotent."""
        h, self._h = self._h, None
        if h is not None:
            h.close()

    @property
    def closed(self):
        return self._h is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def leave_all(held):
    """Leave every handle in `held`, last entered first, emptying it."""
    while held:
        h, exclusive = held.pop()
        h.leave(exclusive)


# ---- long calls: interruptible from the main thread ------------------------
# Python runs signal handlers (Ctrl-C's KeyboardInterrupt) only in the main
# thread and only between bytecodes, so a C call of seconds would hold
# Ctrl-C back until it returns. The main thread's long calls therefore run
# in one helper thread while the main thread waits in short slices: Ctrl-C
# raises KeyboardInterrupt at once. The C call itself cannot be stopped: it
# finishes in the helper thread, which holds the object's locks (so close()
# frees nothing under it, and the next call on the object waits for it)
# and the arrays it writes into. The library's noise is keyed by each
# image's place in the batch, so splitting a batch into several calls would
# change results; this keeps them bit for bit those of one call.

#: Multiply-adds above which a call from the main thread runs in the helper
#: thread (about 10 ms of work); below it the thread switch is not worth it.
LONG_WORK = 10**8


class _Job:
    """A call for the helper thread. Its locks (`held`) are left by whoever
    takes `claim` first: the helper thread when it starts the call, or the
    caller when it gives up (Ctrl-C) before that, and then the call never
    runs."""

    __slots__ = ("fn", "args", "held", "claim", "done", "result", "error")

    def __init__(self, held):
        self.held = held
        self.fn = self.args = self.result = self.error = None
        self.claim = threading.Lock()
        self.done = threading.Event()


class _Runner:
    def __init__(self):
        self.jobs = queue.SimpleQueue()
        self.thread = None
        self.last = None  # the last job submitted: FIFO, so the last to end
        self.lock = threading.Lock()

    def submit(self, job):
        with self.lock:
            if self.thread is None:
                # a daemon: an interrupted program exits without waiting for it
                self.thread = threading.Thread(target=self.serve, name="dcrw-long-calls", daemon=True)
                self.thread.start()
            self.last = job
            self.jobs.put(job)

    def serve(self):
        while True:
            job = self.jobs.get()
            if job.claim.acquire(False):
                try:
                    job.result = job.fn(*job.args)
                except BaseException as e:  # handed to the waiting thread
                    job.error = e
                finally:
                    leave_all(job.held)
            job.fn = job.args = None
            job.done.set()


_runner = _Runner()


def run_long(job):
    """Runs `job` in the helper thread and waits for it in slices, so that a
    signal handler's exception (Ctrl-C's KeyboardInterrupt) is raised here
    at once. The call itself then goes on in the helper thread, which keeps
    its locks, and so the C object, until it returns; its result is
    dropped."""
    _runner.submit(job)
    while not job.done.wait(0.1):
        pass
    if job.error is not None:
        raise job.error
    return job.result


def _reset_after_fork():
    # The child has no helper thread (only the forking thread survives a
    # fork); it starts its own on its first long call. Handles forget the
    # calls of the parent's other threads, which would otherwise keep a
    # step waiting for them forever.
    global _runner
    _runner = _Runner()
    for h in list(_live_handles):
        h._reset_after_fork()


def _finish_at_exit():
    """At exit, let a call abandoned by Ctrl-C finish, unless the program
    is ending from that Ctrl-C: then Python ends the process with SIGINT,
    without running C exit handlers that could free memory under it.
    Exiting normally while it still runs could free OpenBLAS's buffers under
    it. A second Ctrl-C during the wait ends the process at once."""
    job = _runner.last
    if job is None or job.done.is_set():
        return
    last = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    if isinstance(last, KeyboardInterrupt):
        return
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    job.done.wait()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
atexit.register(_finish_at_exit)


# ---- arrays ----------------------------------------------------------------


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


def as_labels(labels, B, name="labels"):
    """`labels` as a C-contiguous int32 ndarray of shape (B,).

    Integer arrays and lists of integers only: a float label (even 2.0) is a
    TypeError, as integer() refuses it, and a value outside int32 a
    ValueError before the conversion, which would wrap it around (2**32 + 1
    would become the valid class 1). Whether a label is a class of the
    model is the library's to say (its message names the image)."""
    arr = np.asarray(labels)
    if arr.dtype.kind not in "iu":
        raise TypeError("%s: expected integers (B,) = (%d,), got dtype %s" % (name, B, arr.dtype))
    if arr.shape != (B,):
        raise ValueError("%s: expected shape (B,) = (%d,), got %s" % (name, B, arr.shape))
    if arr.dtype != np.int32:
        lo, hi = INT32
        if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
            bad = int(arr.min()) if int(arr.min()) < lo else int(arr.max())
            raise ValueError("%s: %d does not fit a 32-bit int" % (name, bad))
        arr = arr.astype(np.int32)
    return np.ascontiguousarray(arr)


def fptr(arr):
    """float * for a float32 C-contiguous array, None (NULL) for None."""
    if arr is None:
        return None
    return arr.ctypes.data_as(_ffi.f32p)


def dptr(arr):
    if arr is None:
        return None
    return arr.ctypes.data_as(_ffi.f64p)


def iptr(arr):
    """int32_t * for an int32 C-contiguous array, None (NULL) for None."""
    if arr is None:
        return None
    return arr.ctypes.data_as(_ffi.i32p)
