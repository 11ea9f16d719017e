"""dcrw.Trainer: gradients, Adam state and step count of one model's training."""

import ctypes

from . import _ffi
from ._util import (
    INT32,
    INT64,
    Handle,
    Owner,
    as_labels,
    c_string,
    fptr,
    integer,
    iptr,
    leave_all,
    path_bytes,
    real,
    seed_int,
    view,
)
from .model import Loss, Model

#: The fields of dcrw_train_config a caller may set (Trainer's keywords).
TRAIN_FIELDS = tuple(name for name, _ in _ffi.TrainConfig._fields_ if name != "size")


def default_train_config():
    """dcrw_train_config_default() as a dict."""
    tc = _ffi.TrainConfig()
    _ffi.dcrw_train_config_default(ctypes.byref(tc))
    return {f: getattr(tc, f) for f in TRAIN_FIELDS}


def _train_config(config):
    tc = _ffi.TrainConfig()
    _ffi.dcrw_train_config_default(ctypes.byref(tc))
    for key, value in config.items():
        if key not in TRAIN_FIELDS:
            raise TypeError("unknown training field %r (fields: %s)" % (key, ", ".join(TRAIN_FIELDS)))
        if key == "seed":
            value = seed_int(value)
        elif key == "threads":
            value = integer(value, key, *INT32)
        else:
            value = real(value, key)
        setattr(tc, key, value)
    return tc


class Trainer(Owner):
    """Trains `model` with Adam: Trainer(model, learning_rate=1e-3, ...).

    Keywords are dcrw_train_config fields (TRAIN_FIELDS); the rest keep the
    library's defaults. A trainer's operations run one at a time (calls
    from several threads wait for each other) and not at the same time as
    its model's operations. The trainer keeps its model alive (the C model
    is freed only after the C trainer), and is freed by close(), a `with`
    block or garbage collection; gradient views keep it alive as parameter
    views keep a model. Input arrays follow Model's rules (converted once to
    C-contiguous float32, shapes checked before the call). Ctrl-C during a
    long step raises KeyboardInterrupt at once; the step itself completes
    in the background, and the trainer's next operation waits for it.
    """

    _kind = "Trainer"

    def __init__(self, model, **config):
        if not isinstance(model, Model):
            raise TypeError("Trainer(model): expected a dcrw.Model, got %r" % (model,))
        tc = _train_config(config)
        out = ctypes.c_void_p()
        mh = model._h
        # the model's pointer is the second argument: bracketed by hand
        if mh is None:
            raise ValueError("operation on a closed Model")
        held = []
        try:
            mptr = mh.enter("Model", held)
            _ffi.dcrw_trainer_create(ctypes.byref(out), mptr, ctypes.byref(tc))
        finally:
            leave_all(held)
        self._h = Handle(out.value, _ffi.dcrw_trainer_destroy, parent=mh)
        self.model = model
        self.config = {f: getattr(tc, f) for f in TRAIN_FIELDS}

    def _locks(self):
        # A step changes the model too: exclusive on both, the trainer first
        # (model operations take only the model's lock, so no cycle). The
        # model may be closed already; the trainer keeps it alive.
        h = self._h
        return [(h, True, False), (None if h is None else h.parent, True, True)]

    def __repr__(self):
        if self._h is None:
            return "<dcrw.Trainer closed>"
        return "<dcrw.Trainer step %d>" % self.step_count

    def _batch(self, x, eps):
        x, B = self.model._images(x)
        return x, B, self.model._tbz(eps, "eps", B)

    def _work(self, B):
        # forward and backward: about three passes
        return 3 * self.model._work(B)

    def backward(self, x, eps=None):
        """Forward and backward on images x [B, P] or [B, C, H, W]; the
        gradients replace the previous ones. eps [T, B, Z] or None (noise
        drawn from (seed, step count, image)). Returns Loss batch means.
        A classifier trains with backward_labels() instead."""
        x, B, eps = self._batch(x, eps)
        out = _ffi.Loss()
        self._call(_ffi.dcrw_trainer_backward, B, fptr(x), fptr(eps), ctypes.byref(out), work=self._work(B))
        return Loss(out.loss, out.lx, out.lz)

    def backward_part(self, x, first, total, eps=None):
        """backward() over images first .. first + B - 1 of a global batch
        of `total` (data parallelism): the gradients are the global batch
        mean's share of these images, so summing them over all parts gives
        the whole batch's gradient. Returns the Loss means over this part."""
        x, B, eps = self._batch(x, eps)
        first = integer(first, "first", *INT64)
        total = integer(total, "total", *INT64)
        out = _ffi.Loss()
        self._call(_ffi.dcrw_trainer_backward_part, B, fptr(x), fptr(eps), first, total, ctypes.byref(out),
                   work=self._work(B))
        return Loss(out.loss, out.lx, out.lz)

    def _labelled(self, fn, x, labels, eps, part=()):
        x, B = self.model._images(x)
        labels = as_labels(labels, B)
        eps = self.model._tbz(eps, "eps", B)
        out = _ffi.Loss()
        self._call(fn, B, fptr(x), iptr(labels), fptr(eps), *part, ctypes.byref(out), work=self._work(B))
        return Loss(out.loss, out.lx, out.lz)

    def backward_labels(self, x, labels, eps=None):
        """backward() of a model that takes labels on images x and their
        classes `labels`, integers [B] in [0, K): the classifier
        (Model.is_classifier), with the gradients of the batch mean of
        -log p(label | x) and Loss(loss, lx=loss, lz=0); or a conditional
        model (Model.is_conditional), with those of the bound on
        -log p(x | label), eps as in backward() (a classifier takes none).
        DcrwError(EINVAL) for a label outside [0, K) (the message names the
        image) and for a model that takes no labels."""
        return self._labelled(_ffi.dcrw_trainer_backward_labels, x, labels, eps)

    def backward_labels_part(self, x, labels, first, total, eps=None):
        """backward_labels() over images first .. first + B - 1 of a global
        batch of `total`, as backward_part() (data parallelism for the
        classifier and conditional models). Needs libdcrw 0.6."""
        first = integer(first, "first", *INT64)
        total = integer(total, "total", *INT64)
        return self._labelled(_ffi.dcrw_trainer_backward_labels_part, x, labels, eps, (first, total))

    def step_labels(self, x, labels, eps=None):
        """backward_labels() then apply(); returns the Loss of the batch
        before the update."""
        return self._labelled(_ffi.dcrw_trainer_step_labels, x, labels, eps)

    def apply(self):
        """Clip the gradients and take one Adam step (step_count + 1)."""
        self._call(_ffi.dcrw_trainer_apply)

    def step(self, x, eps=None):
        """backward() then apply(); returns the Loss of the batch before the update."""
        x, B, eps = self._batch(x, eps)
        out = _ffi.Loss()
        self._call(_ffi.dcrw_trainer_step, B, fptr(x), fptr(eps), ctypes.byref(out), work=self._work(B))
        return Loss(out.loss, out.lx, out.lz)

    @property
    def step_count(self):
        return int(self._call(_ffi.dcrw_trainer_step_count))

    @property
    def learning_rate(self):
        """The Adam step size; assign to change it between steps (a schedule)."""
        return float(self._call(_ffi.dcrw_trainer_learning_rate))

    @learning_rate.setter
    def learning_rate(self, value):
        self._call(_ffi.dcrw_trainer_set_learning_rate, real(value, "learning_rate"))

    @property
    def kl_weight(self):
        """The weight w of the KL term in the gradient (of Lx + w*Lz), 1 by
        default; assign between steps for KL warm-up. The losses reported
        stay the true bound."""
        return float(self._call(_ffi.dcrw_trainer_kl_weight))

    @kl_weight.setter
    def kl_weight(self, value):
        self._call(_ffi.dcrw_trainer_set_kl_weight, real(value, "kl_weight"))

    @property
    def grads(self):
        """All gradients as one writable view laid out like Model.flat_params
        (change them before apply(), e.g. after an allreduce)."""
        count = ctypes.c_size_t()
        h = self._h

        def grads(ptr):
            data = _ffi.dcrw_trainer_grads(ptr, ctypes.byref(count))
            return view(h, data, (count.value,))

        return self._call(grads)

    def grad(self, name):
        """A writable view of the gradient of tensor `name`, shaped like it."""
        cname = c_string(name, "name")
        data = _ffi.f32p()
        count = ctypes.c_size_t()
        h = self._h

        def find(ptr):
            _ffi.dcrw_trainer_find_grad(ptr, cname, ctypes.byref(data), ctypes.byref(count))
            return view(h, data, self.model._shapes[name])

        return self._call(find)

    def named_grads(self):
        """{name: gradient view} in MODEL.md §7 order."""
        return {n: self.grad(n) for n in self.model._names}

    def save(self, path):
        """Save model, Adam moments and step count atomically."""
        self._call(_ffi.dcrw_trainer_save, path_bytes(path))

    def resume(self, path):
        """Restore parameters, moments and step count from a trainer (or model)
        checkpoint of the same configuration; on failure nothing changes."""
        self._call(_ffi.dcrw_trainer_resume, path_bytes(path))
