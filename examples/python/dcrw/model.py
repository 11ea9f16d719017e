"""dcrw.Model: a DRAW or DCRW model, or DRAW's attention classifier, and the
operations over NumPy arrays."""

import ctypes
from collections import namedtuple

import numpy as np

from . import _ffi
from ._util import (
    INT32,
    Handle,
    Owner,
    as_f32,
    as_labels,
    batch_int,
    c_string,
    dptr,
    fptr,
    integer,
    iptr,
    path_bytes,
    real,
    seed_int,
    view,
)

#: The fields of dcrw_config a caller may set (Model.create's keywords), in
#: the struct's order, as the library lists them (dcrw_config_field).
CONFIG_FIELDS = tuple(f.name for f in _ffi.CONFIG_FIELD_INFO)
_FIELD_TYPES = {f.name: f.type for f in _ffi.CONFIG_FIELD_INFO}

_PRESETS = {
    "draw": _ffi.PRESET_DRAW,
    "draw-noattn": _ffi.PRESET_DRAW_NOATTN,
    "dcrw": _ffi.PRESET_DCRW,
    "dcrw-noread": _ffi.PRESET_DCRW_NOREAD,
    "draw-classify": _ffi.PRESET_DRAW_CLASSIFY,
}

#: Model.precision's values, in dcrw_precision order.
_PRECISIONS = ("float32", "bf16")

#: Batch means of the loss in nats per image (dcrw_loss).
Loss = namedtuple("Loss", "loss lx lz")
#: Per-image losses of Model.evaluate(per_image=True), float64 arrays [B].
ImageLosses = namedtuple("ImageLosses", "lx lz")
#: Model.encode's result, each [T, B, Z].
Encoded = namedtuple("Encoded", "z mu logsigma")
#: Model.decode(canvases=..., windows=...)'s result; unrequested fields are None.
Decoded = namedtuple("Decoded", "images canvases write_windows")
#: Model.reconstruct(canvases=..., windows=...)'s result; unrequested fields
#: and windows of an attention the model lacks are None.
Reconstruction = namedtuple("Reconstruction", "images canvases read_windows write_windows")
#: Model.classify_windows's result: probs [B, K] and the read window of
#: every glimpse, windows [T, B, 5] = (gX, gY, delta, sigma2, gamma).
Classification = namedtuple("Classification", "probs windows")


def preset_value(preset):
    """dcrw_preset of a name ("draw", ...) or number; DcrwError for an unknown name."""
    if isinstance(preset, str):
        out = ctypes.c_int()
        _ffi.dcrw_preset_from_name(c_string(preset, "preset"), ctypes.byref(out))
        return out.value
    if isinstance(preset, bool):
        raise TypeError("preset: expected a name such as 'draw' or a number, got %r" % (preset,))
    try:
        value = integer(preset, "preset", *INT32)
    except TypeError:
        raise TypeError("preset: expected a name such as 'draw' or a number, got %r" % (preset,)) from None
    except ValueError:
        value = None
    if value is None or _ffi.dcrw_preset_name(value) is None:
        raise ValueError("unknown preset %d (expected one of %s)" % (preset, ", ".join(_PRESETS)))
    return value


def preset_config(preset, **overrides):
    """The dcrw_config of `preset` with `overrides` applied, as a dict.

    Keys are the dcrw_config field names (CONFIG_FIELDS). Values are
    numbers; the encoder also takes "lstm" or "cnn" and the attention
    switches booleans or the words dcrw_config_set() reads ("true", "no").
    """
    cfg = _make_config(preset, overrides)
    return {f: getattr(cfg, f) for f in CONFIG_FIELDS}


def _set_field(cfg, key, value):
    """One override: a word for a switch or the encoder through the
    library's parser (dcrw_config_set), a number checked against the
    field's C type and stored as it is."""
    if key not in _FIELD_TYPES:
        raise TypeError("unknown configuration field %r (fields: %s)" % (key, ", ".join(CONFIG_FIELDS)))
    kind = _FIELD_TYPES[key]
    if isinstance(value, str) and kind in (_ffi.FIELD_BOOL, _ffi.FIELD_ENCODER):
        try:
            _ffi.dcrw_config_set(ctypes.byref(cfg), c_string(key, "field"), c_string(value, key))
        except _ffi.DcrwError as e:
            if e.code == _ffi.EINVAL:  # text that is not a value of the field
                raise ValueError(e.message) from None
            raise
    elif kind == _ffi.FIELD_FLOAT:
        setattr(cfg, key, real(value, key))
    else:
        setattr(cfg, key, integer(value, key, *INT32))


def _make_config(preset, overrides):
    cfg = _ffi.Config()
    _ffi.dcrw_config_preset(ctypes.byref(cfg), preset_value(preset))
    for key, value in overrides.items():
        _set_field(cfg, key, value)
    _ffi.dcrw_config_validate(ctypes.byref(cfg))
    return cfg


class Model(Owner):
    """A model: its configuration and the parameters the library owns.

    Create one with Model.create() or Model.load(). Arrays passed in may be
    of any real dtype and memory layout: anything that is not already
    float32 and C-contiguous is converted once with
    np.ascontiguousarray(a, dtype=np.float32) before the call (a float32
    C-contiguous array is used in place, without a copy). Shapes are checked
    before the call; a wrong shape raises ValueError naming the expected one.
    Integers (seeds, batch sizes) must be integers within the C type's
    range, else TypeError or ValueError; nothing is wrapped around.
    Images are given as [B, P], [B, C, H, W], [B, H, W, C] (more than one
    channel) or [B, H, W] (one channel); images returned are [B, P].

    A model made from the preset "draw-classify" (or with classify=True) is
    the attention classifier of MODEL.md §9 (is_classifier): it has
    classify() and classify_windows() and trains on labels
    (Trainer.step_labels); the generative operations refuse it, and a
    generative model refuses the classifier's, with the library's
    DcrwError(EINVAL).

    The operations that do not train (encode, decode, sample, evaluate,
    read, write, reconstruct, classify) may run in several threads at once;
    ctypes releases the GIL during each call. A trainer's step waits for
    them to finish and they wait for it.

    Ctrl-C interrupts a long operation at once: KeyboardInterrupt is raised
    while the library finishes the interrupted call in the background (the
    model stays usable; its next operation waits for that call).

    The C model is freed by close() or the end of a `with` block, or when the
    object is garbage collected. Parameter views, trainers and calls running
    in other threads keep it alive: if any exist when close() is called, the
    memory is freed when the last of them is gone.
    """

    _kind = "Model"

    def __init__(self, _handle):
        if not isinstance(_handle, Handle):
            raise TypeError("use Model.create() or Model.load()")
        self._h = _handle
        ptr = _handle.ptr
        cfg = _ffi.Config()
        cfg.size = ctypes.sizeof(cfg)
        _ffi.dcrw_model_config(ptr, ctypes.byref(cfg))
        self._config = {f: getattr(cfg, f) for f in CONFIG_FIELDS}
        sizes = _ffi.Sizes()
        sizes.size = ctypes.sizeof(sizes)
        _ffi.dcrw_model_sizes(ptr, ctypes.byref(sizes))
        self._P, self._R, self._Z = sizes.input, sizes.read, sizes.z
        self._D, self._T = sizes.dec, sizes.glimpses
        self._image_shape = (cfg.channels, cfg.height, cfg.width)
        names, shapes = [], {}
        for i in range(_ffi.dcrw_model_param_count(ptr)):
            name = ctypes.c_char_p()
            ndim = ctypes.c_int()
            shape = ctypes.POINTER(ctypes.c_int64)()
            _ffi.dcrw_model_param(ptr, i, ctypes.byref(name), ctypes.byref(ndim), ctypes.byref(shape), None)
            n = name.value.decode()
            names.append(n)
            shapes[n] = tuple(int(shape[k]) for k in range(ndim.value))
        self._names = tuple(names)
        self._shapes = shapes
        self._nfloats = _ffi.dcrw_model_param_floats(ptr)

    # ---- construction and files
    @classmethod
    def create(cls, preset="draw", seed=0, **overrides):
        """A freshly initialised model of `preset` ("draw", "draw-noattn",
        "dcrw", "dcrw-noread", "draw-classify" or a DCRW_PRESET_* number)
        with its defaults (MNIST's 1x28x28; the classifier's 1x100x100 with
        classes=10), changed by `overrides` (dcrw_config field names, e.g.
        height=12, glimpses=3; encoder="cnn"; read_attention=False).
        DcrwError(ECONFIG) names a field the library refuses."""
        cfg = _make_config(preset, overrides)
        seed = seed_int(seed)
        out = ctypes.c_void_p()
        _ffi.dcrw_model_create(ctypes.byref(out), ctypes.byref(cfg), seed)
        return cls(Handle(out.value, _ffi.dcrw_model_destroy))

    @classmethod
    def load(cls, path):
        """Load a safetensors checkpoint (a model's or a trainer's)."""
        out = ctypes.c_void_p()
        _ffi.dcrw_model_load(ctypes.byref(out), path_bytes(path))
        return cls(Handle(out.value, _ffi.dcrw_model_destroy))

    def save(self, path):
        """Save configuration and parameters atomically to `path`."""
        self._call(_ffi.dcrw_model_save, path_bytes(path))

    def __repr__(self):
        state = "closed" if self._h is None else "%d parameters" % self._nfloats
        c = self._config
        if self.is_classifier:
            return "<dcrw.Model classifier T=%d K=%d %dx%dx%d, %s>" % (
                c["glimpses"], c["classes"], c["channels"], c["height"], c["width"], state
            )
        return "<dcrw.Model %s T=%d Z=%d %dx%dx%d, %s>" % (
            "cnn" if c["encoder"] == _ffi.ENCODER_CNN else "lstm",
            c["glimpses"],
            c["z_size"],
            c["channels"],
            c["height"],
            c["width"],
            state,
        )

    # ---- shape and parameters
    @property
    def config(self):
        """The dcrw_config fields as a dict (a copy)."""
        return dict(self._config)

    @property
    def input_size(self):
        """P = channels * height * width."""
        return self._P

    @property
    def image_shape(self):
        """(C, H, W)."""
        return self._image_shape

    @property
    def glimpses(self):
        return self._T

    @property
    def is_classifier(self):
        """True for the attention classifier (MODEL.md §9, classify=True)."""
        return bool(self._config["classify"])

    @property
    def is_conditional(self):
        """True for a class-conditional generative model (MODEL.md §10): its
        operations take a label per image (decode_labels, reconstruct_labels,
        evaluate_labels, Trainer.step_labels)."""
        return bool(self._config["classes"]) and not self.is_classifier

    @property
    def num_classes(self):
        """K: the classifier's classes (the rows of classify()), or the
        labels a conditional model takes; 0 for an unconditional model."""
        return self._config["classes"]

    @property
    def precision(self):
        """"float32" (the default) or "bf16": the model's large products with
        bfloat16 operands and float32 sums (CPUs with AVX-512 BF16; see
        dcrw.precision_supported). Assign to change it for every later
        operation; a runtime choice, not saved with the model."""
        return _PRECISIONS[self._call(_ffi.dcrw_model_precision)]

    @precision.setter
    def precision(self, value):
        if value not in _PRECISIONS:
            raise ValueError("precision must be one of %s, got %r" % (", ".join(map(repr, _PRECISIONS)), value))
        self._call(_ffi.dcrw_model_set_precision, _PRECISIONS.index(value))

    @property
    def z_size(self):
        return self._Z

    @property
    def dec_size(self):
        return self._D

    @property
    def read_size(self):
        """Floats of one read r_t (2*C*N_r**2, or 2*P without read attention)."""
        return self._R

    @property
    def param_names(self):
        """Tensor names in MODEL.md §7 order."""
        return self._names

    @property
    def param_shapes(self):
        """{name: shape tuple}."""
        return dict(self._shapes)

    @property
    def param_floats(self):
        return self._nfloats

    def param(self, name):
        """A writable float32 view of tensor `name` in the library's memory."""
        cname = c_string(name, "name")
        data = _ffi.f32p()
        count = ctypes.c_size_t()
        h = self._h

        def find(ptr):
            _ffi.dcrw_model_find_param(ptr, cname, ctypes.byref(data), ctypes.byref(count))
            return view(h, data, self._shapes[name])

        return self._call(find)

    @property
    def params(self):
        """{name: writable view} of every tensor, in MODEL.md §7 order.

        Writing to a view changes the model (not while another thread uses
        it). The views keep the model's memory alive."""
        return {n: self.param(n) for n in self._names}

    @property
    def flat_params(self):
        """All parameters as one writable view, tensors in MODEL.md §7 order."""
        count = ctypes.c_size_t()
        h = self._h

        def params(ptr):
            data = _ffi.dcrw_model_params(ptr, ctypes.byref(count))
            return view(h, data, (count.value,))

        return self._call(params)

    # ---- argument checks
    def _images(self, x, name="x"):
        """x as [B, P] float32: given as [B, P], [B, C, H, W], [B, H, W, C]
        (channels last, C > 1) or, for one channel, [B, H, W]."""
        C, H, W = self._image_shape
        shapes = [(self._P,), (C, H, W)] + ([(H, W)] if C == 1 else [(H, W, C)])
        doc = " or ".join("(B, %s)" % ", ".join(str(d) for d in s) for s in shapes)
        arr = np.asarray(x)
        if arr.ndim not in (2, 3, 4) or arr.shape[1:] not in shapes:
            raise ValueError("%s: expected shape %s, got %s" % (name, doc, arr.shape))
        if arr.ndim == 4 and arr.shape[1:] != (C, H, W):
            arr = arr.transpose(0, 3, 1, 2)
        arr = as_f32(arr, name, doc, (2, 3, 4))
        return arr.reshape(arr.shape[0], self._P), batch_int(arr.shape[0])

    def _tbz(self, a, name, B):
        if a is None:
            return None
        shape = (self._T, B, self._Z)
        arr = as_f32(a, name, str(shape), (3,))
        if arr.shape != shape:
            raise ValueError("%s: expected shape (T, B, Z) = %s, got %s" % (name, shape, arr.shape))
        return arr

    def _bd(self, a, name, B):
        shape = (B, self._D)
        arr = as_f32(a, name, str(shape), (2,))
        if arr.shape != shape:
            raise ValueError("%s: expected shape (B, D) = %s, got %s" % (name, shape, arr.shape))
        return arr

    def _out(self, *shape):
        return np.empty(shape, dtype=np.float32)

    def _work(self, B, glimpses=True):
        """Multiply-adds of a pass over B images, roughly: each parameter
        once per image and glimpse."""
        return B * self._nfloats * (self._T if glimpses else 1)

    # ---- operations
    def encode(self, x, eps=None):
        """The inference pass on images x: Encoded(z, mu, logsigma), each [T, B, Z].

        eps [T, B, Z] is the noise; None draws the library's seed-0 noise
        (the same evaluate() and reconstruct() draw); zeros give the means."""
        x, B = self._images(x)
        eps = self._tbz(eps, "eps", B)
        z, mu, ls = (self._out(self._T, B, self._Z) for _ in range(3))
        self._call(_ffi.dcrw_encode, B, fptr(x), fptr(eps), fptr(z), fptr(mu), fptr(ls), work=self._work(B))
        return Encoded(z, mu, ls)

    def decode(self, z=None, *, batch=None, seed=0, canvases=False, windows=False):
        """The generative pass: images [B, P] from latents z [T, B, Z].

        With z None, `batch` images are generated from z ~ N(0, I) drawn from
        `seed`. With canvases or windows set, returns Decoded(images,
        canvases [T, B, P], write_windows [T, B, 5]) instead."""
        seed = seed_int(seed)
        if batch is not None:
            batch = batch_int(batch)
        if z is None:
            if batch is None:
                raise ValueError("decode: give z [T, B, Z] or batch=B to draw z from seed")
            B = batch
        else:
            zt = as_f32(z, "z", "(T, B, Z) = (%d, B, %d)" % (self._T, self._Z), (3,))
            B = batch_int(zt.shape[1])
            if batch is not None and batch != B:
                raise ValueError("decode: batch=%d but z has %d images" % (batch, B))
            z = self._tbz(zt, "z", B)
        images = self._out(B, self._P)
        cv = self._out(self._T, B, self._P) if canvases else None
        ww = None
        if windows and self._config["write_attention"]:
            ww = self._out(self._T, B, 5)
        if windows:
            self._call(_ffi.dcrw_decode_windows, B, fptr(z), seed, fptr(images), fptr(cv), fptr(ww),
                       work=self._work(B))
        else:
            self._call(_ffi.dcrw_decode, B, fptr(z), seed, fptr(images), fptr(cv), work=self._work(B))
        if not canvases and not windows:
            return images
        return Decoded(images, cv, ww)

    def sample(self, n, seed=0, canvases=False):
        """`n` generated images [n, P] (Bernoulli means), deterministic for a seed."""
        return self.decode(None, batch=batch_int(n), seed=seed, canvases=canvases)

    def reconstruct(self, x, eps=None, canvases=False, windows=False):
        """The reconstruction of x, [B, P]; with canvases or windows set,
        Reconstruction(images, canvases [T, B, P], read_windows [T, B, 5],
        write_windows [T, B, 5]) where windows are (gX, gY, delta, sigma2,
        gamma); a window the model does not have is None."""
        x, B = self._images(x)
        eps = self._tbz(eps, "eps", B)
        images = self._out(B, self._P)
        cv = self._out(self._T, B, self._P) if canvases else None
        rw = ww = None
        if windows:
            if self._config["read_attention"]:
                rw = self._out(self._T, B, 5)
            if self._config["write_attention"]:
                ww = self._out(self._T, B, 5)
            self._call(_ffi.dcrw_reconstruct_windows, B, fptr(x), fptr(eps), fptr(images), fptr(cv), fptr(rw),
                       fptr(ww), work=self._work(B))
        else:
            self._call(_ffi.dcrw_reconstruct, B, fptr(x), fptr(eps), fptr(images), fptr(cv), work=self._work(B))
        if not canvases and not windows:
            return images
        return Reconstruction(images, cv, rw, ww)

    def evaluate(self, x, eps=None, per_image=False):
        """The loss of MODEL.md §5: Loss(loss, lx, lz) batch means in nats, or
        with per_image=True ImageLosses(lx, lz), float64 arrays [B]."""
        x, B = self._images(x)
        eps = self._tbz(eps, "eps", B)
        if per_image:
            lx = np.empty(B, dtype=np.float64)
            lz = np.empty(B, dtype=np.float64)
            self._call(_ffi.dcrw_evaluate_images, B, fptr(x), fptr(eps), dptr(lx), dptr(lz), work=self._work(B))
            return ImageLosses(lx, lz)
        out = _ffi.Loss()
        self._call(_ffi.dcrw_evaluate, B, fptr(x), fptr(eps), ctypes.byref(out), work=self._work(B))
        return Loss(out.loss, out.lx, out.lz)

    # ---- a class-conditional model (MODEL.md §10)
    def decode_labels(self, labels, z=None, *, seed=0, first=0, canvases=False, windows=False):
        """decode() of images of the classes `labels`, integers [B] in [0, K):
        images [B, P], or Decoded(...) with canvases or windows set. With z
        None the prior is drawn from `seed`, image b keyed by first + b, so
        an image does not depend on the batch it is in."""
        shape = np.shape(labels)
        labels = as_labels(labels, batch_int(shape[0] if len(shape) == 1 else 0))
        B = labels.shape[0]
        z = self._tbz(z, "z", B)
        images = self._out(B, self._P)
        cv = self._out(self._T, B, self._P) if canvases else None
        ww = self._out(self._T, B, 5) if windows and self._config["write_attention"] else None
        self._call(_ffi.dcrw_decode_labels, B, iptr(labels), fptr(z), seed_int(seed),
                   integer(first, "first", 0, 2**62), fptr(images), fptr(cv), fptr(ww),
                   work=self._work(B))
        if not canvases and not windows:
            return images
        return Decoded(images, cv, ww)

    def reconstruct_labels(self, x, labels, *, seed=0, first=0, canvases=False, windows=False):
        """reconstruct() of images x given their classes `labels` [B]; the
        noise is drawn from `seed`, image b keyed by first + b."""
        x, B = self._images(x)
        labels = as_labels(labels, B)
        images = self._out(B, self._P)
        cv = self._out(self._T, B, self._P) if canvases else None
        rw = self._out(self._T, B, 5) if windows and self._config["read_attention"] else None
        ww = self._out(self._T, B, 5) if windows and self._config["write_attention"] else None
        self._call(_ffi.dcrw_reconstruct_labels, B, fptr(x), iptr(labels), seed_int(seed),
                   integer(first, "first", 0, 2**62), fptr(images), fptr(cv), fptr(rw), fptr(ww),
                   work=self._work(B))
        if not canvases and not windows:
            return images
        return Reconstruction(images, cv, rw, ww)

    def evaluate_labels(self, x, labels, *, seed=0, first=0):
        """The bound on -log p(x | label) of each image: ImageLosses(lx, lz),
        float64 arrays [B]; the noise as reconstruct_labels()."""
        x, B = self._images(x)
        labels = as_labels(labels, B)
        lx = np.empty(B, dtype=np.float64)
        lz = np.empty(B, dtype=np.float64)
        self._call(_ffi.dcrw_evaluate_labels, B, fptr(x), iptr(labels), seed_int(seed),
                   integer(first, "first", 0, 2**62), dptr(lx), dptr(lz), work=self._work(B))
        return ImageLosses(lx, lz)

    def classify(self, x):
        """The class probabilities of images x after the last glimpse,
        float32 [B, K], each row summing to 1. DcrwError(EINVAL) for a
        generative model."""
        x, B = self._images(x)
        probs = self._out(B, self.num_classes)
        self._call(_ffi.dcrw_classify, B, fptr(x), fptr(probs), work=self._work(B))
        return probs

    def classify_windows(self, x):
        """classify() and where the classifier looked: Classification(probs
        [B, K], windows [T, B, 5]), the read window of every glimpse as
        (gX, gY, delta, sigma2, gamma), centres 1-based, as reconstruct's
        read_windows."""
        x, B = self._images(x)
        probs = self._out(B, self.num_classes)
        windows = self._out(self._T, B, 5)
        self._call(_ffi.dcrw_classify_windows, B, fptr(x), fptr(probs), fptr(windows),
                   work=self._work(B))
        return Classification(probs, windows)

    def read(self, x, xhat, h_dec=None):
        """The read operation: r [B, read_size] from images x, error images
        xhat and decoder state h_dec [B, D] (required with read attention,
        ignored without)."""
        x, B = self._images(x)
        xhat, B2 = self._images(xhat, "xhat")
        if B2 != B:
            raise ValueError("xhat: expected %d images like x, got %d" % (B, B2))
        h = None
        if self._config["read_attention"]:
            if h_dec is None:
                raise ValueError("read: h_dec (B, %d) is required with read attention" % self._D)
            h = self._bd(h_dec, "h_dec", B)
        r = self._out(B, self._R)
        self._call(_ffi.dcrw_read, B, fptr(x), fptr(xhat), fptr(h), fptr(r), work=self._work(B, False))
        return r

    def write(self, h_dec):
        """The canvas increment [B, P] of decoder state h_dec [B, D]."""
        arr = as_f32(h_dec, "h_dec", "(B, %d)" % self._D, (2,))
        B = batch_int(arr.shape[0])
        h = self._bd(arr, "h_dec", B)
        delta = self._out(B, self._P)
        self._call(_ffi.dcrw_write, B, fptr(h), fptr(delta), work=self._work(B, False))
        return delta
