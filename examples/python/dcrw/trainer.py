"""dcrw.Trainer: gradients, Adam state and step count of one model's training."""

import ctypes

from . import _ffi
from ._util import Handle, path_bytes, view
from .model import Loss, Model

#: The fields of dcrw_train_config a caller may set (Trainer's keywords).
TRAIN_FIELDS = tuple(name for name, _ in _ffi.TrainConfig._fields_ if name != "size")


def default_train_config():
    """dcrw_train_config_default() as a dict."""
    tc = _ffi.TrainConfig()
    _ffi.dcrw_train_config_default(ctypes.byref(tc))
    return {f: getattr(tc, f) for f in TRAIN_FIELDS}


class Trainer:
    """Trains `model` with Adam: Trainer(model, learning_rate=1e-3, ...).

    Keywords are dcrw_train_config fields (TRAIN_FIELDS); the rest keep the
    library's defaults. A trainer and its model belong to one thread at a
    time. The trainer keeps its model alive (the C model is freed only after
    the C trainer), and is freed by close(), a `with` block or garbage
    collection; gradient views keep it alive as parameter views keep a
    model. Input arrays follow Model's rules (converted once to C-contiguous
    float32, shapes checked before the call).
    """

    def __init__(self, model, **config):
        if not isinstance(model, Model):
            raise TypeError("Trainer(model): expected a dcrw.Model, got %r" % (model,))
        tc = _ffi.TrainConfig()
        _ffi.dcrw_train_config_default(ctypes.byref(tc))
        for key, value in config.items():
            if key not in TRAIN_FIELDS:
                raise TypeError("unknown training field %r (fields: %s)" % (key, ", ".join(TRAIN_FIELDS)))
            if key in ("seed", "threads"):
                if isinstance(value, float):
                    raise TypeError("%s: expected an integer, got %r" % (key, value))
                value = int(value)
                if key == "seed" and not 0 <= value < 2**64:
                    raise ValueError("seed: expected 0 <= seed < 2**64, got %d" % value)
                if key == "threads" and not -(2**31) <= value < 2**31:
                    raise ValueError("threads: %d does not fit int32" % value)
            else:
                value = float(value)
            setattr(tc, key, value)
        out = ctypes.c_void_p()
        _ffi.dcrw_trainer_create(ctypes.byref(out), model._ptr, ctypes.byref(tc))
        self._h = Handle(out.value, _ffi.dcrw_trainer_destroy, parent=model._h)
        self.model = model
        self.config = {f: getattr(tc, f) for f in TRAIN_FIELDS}

    @property
    def _ptr(self):
        if self._h is None:
            raise ValueError("operation on a closed Trainer")
        return self._h.ptr

    def close(self):
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

    def __repr__(self):
        if self._h is None:
            return "<dcrw.Trainer closed>"
        return "<dcrw.Trainer step %d>" % self.step_count

    def _batch(self, x, eps):
        x, B = self.model._images(x)
        return x, B, self.model._tbz(eps, "eps", B)

    def backward(self, x, eps=None):
        """Forward and backward on images x [B, P] or [B, C, H, W]; the
        gradients replace the previous ones. eps [T, B, Z] or None (noise
        drawn from (seed, step count, image)). Returns Loss batch means."""
        x, B, eps = self._batch(x, eps)
        out = _ffi.Loss()
        _ffi.dcrw_trainer_backward(self._ptr, B, x.ctypes.data_as(_ffi.f32p), _p(eps), ctypes.byref(out))
        return Loss(out.loss, out.lx, out.lz)

    def backward_part(self, x, first, total, eps=None):
        """backward() over images first .. first + B - 1 of a global batch
        of `total` (data parallelism): the gradients are the global batch
        mean's share of these images, so summing them over all parts gives
        the whole batch's gradient. Returns the Loss means over this part."""
        x, B, eps = self._batch(x, eps)
        out = _ffi.Loss()
        _ffi.dcrw_trainer_backward_part(self._ptr, B, x.ctypes.data_as(_ffi.f32p), _p(eps),
                                        int(first), int(total), ctypes.byref(out))
        return Loss(out.loss, out.lx, out.lz)

    def apply(self):
        """Clip the gradients and take one Adam step (step_count + 1)."""
        _ffi.dcrw_trainer_apply(self._ptr)

    def step(self, x, eps=None):
        """backward() then apply(); returns the Loss of the batch before the update."""
        x, B, eps = self._batch(x, eps)
        out = _ffi.Loss()
        _ffi.dcrw_trainer_step(self._ptr, B, x.ctypes.data_as(_ffi.f32p), _p(eps), ctypes.byref(out))
        return Loss(out.loss, out.lx, out.lz)

    @property
    def step_count(self):
        return int(_ffi.dcrw_trainer_step_count(self._ptr))

    @property
    def learning_rate(self):
        """The Adam step size; assign to change it between steps (a schedule)."""
        return float(_ffi.dcrw_trainer_learning_rate(self._ptr))

    @learning_rate.setter
    def learning_rate(self, value):
        _ffi.dcrw_trainer_set_learning_rate(self._ptr, float(value))

    @property
    def grads(self):
        """All gradients as one writable view laid out like Model.flat_params
        (change them before apply(), e.g. after an allreduce)."""
        count = ctypes.c_size_t()
        data = _ffi.dcrw_trainer_grads(self._ptr, ctypes.byref(count))
        return view(self._h, data, (count.value,))

    def grad(self, name):
        """A writable view of the gradient of tensor `name`, shaped like it."""
        data = _ffi.f32p()
        count = ctypes.c_size_t()
        _ffi.dcrw_trainer_find_grad(self._ptr, name.encode(), ctypes.byref(data), ctypes.byref(count))
        return view(self._h, data, self.model._shapes[name])

    def named_grads(self):
        """{name: gradient view} in MODEL.md §7 order."""
        return {n: self.grad(n) for n in self.model._names}

    def save(self, path):
        """Save model, Adam moments and step count atomically."""
        _ffi.dcrw_trainer_save(self._ptr, path_bytes(path))

    def resume(self, path):
        """Restore parameters, moments and step count from a trainer (or model)
        checkpoint of the same configuration; on failure nothing changes."""
        _ffi.dcrw_trainer_resume(self._ptr, path_bytes(path))


def _p(arr):
    return None if arr is None else arr.ctypes.data_as(_ffi.f32p)
