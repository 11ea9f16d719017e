"""ctypes declarations of the whole public API of libdcrw (include/dcrw/dcrw.h).

The library is taken from the environment variable DCRW_LIBRARY (a path), else
from the path `meson install` recorded in _install.py when it installed this
package with the library, else from the system through
ctypes.util.find_library('dcrw'), else by its soname libdcrw.so.MAJOR. Every function is declared once by `_fn` with its argument
and result types; fallible functions get `_check` as errcheck, so a negative
status becomes a DcrwError in exactly one place (python-libarchive-c's
ffi.py does the same).
"""

import collections
import ctypes
import ctypes.util
import os

# The major version of the C API this package was written against; the
# library's soname carries the same number.
EXPECTED_MAJOR = 0
# the least minor version whose functions this package binds (0.5: the classifier)
LEAST_MINOR = 6

# Status codes of dcrw.h, for comparing with DcrwError.code.
OK = 0
EINVAL = -1
ENOMEM = -2
EIO = -3
EFORMAT = -4
ETRUNCATED = -5
ESHAPE = -6
ENOTFOUND = -7
EUNSUPPORTED = -8
ECONFIG = -9
ENUMERIC = -10

PRESET_DRAW = 0
PRESET_DRAW_NOATTN = 1
PRESET_DCRW = 2
PRESET_DCRW_NOREAD = 3
PRESET_DRAW_CLASSIFY = 4

ENCODER_LSTM = 0
ENCODER_CNN = 1

BINARIZE_NONE = 0
BINARIZE_DYNAMIC = 1
BINARIZE_THRESHOLD = 2

SPLIT_TRAIN = 0
SPLIT_TEST = 1

DTYPE_U8 = 0
DTYPE_F32 = 1
DTYPE_F64 = 2


def _recorded_library():
    """The library installed together with this package, if it is there."""
    try:
        from ._install import LIBRARY
    except ImportError:  # not installed by meson: the source tree or pip
        return None
    return LIBRARY if LIBRARY and os.path.exists(LIBRARY) else None


def library_candidates(env, recorded, found):
    """Where to look for the library, in order: DCRW_LIBRARY alone when set,
    else the recorded path, what find_library found, the soname."""
    if env:
        # An explicit choice is final: silently falling back to another copy
        # would hide a broken test setup.
        return [env]
    names = [recorded, found, "libdcrw.so.%d" % EXPECTED_MAJOR]
    return [n for i, n in enumerate(names) if n and n not in names[:i]]


def _load():
    env = os.environ.get("DCRW_LIBRARY")
    recorded = None if env else _recorded_library()
    found = None if env or recorded else ctypes.util.find_library("dcrw")
    candidates = library_candidates(env, recorded, found)
    errors = []
    for name in candidates:
        try:
            return ctypes.CDLL(name)
        except OSError as e:
            errors.append("%s: %s" % (name, e))
    raise ImportError(
        "cannot load libdcrw (set DCRW_LIBRARY to the path of libdcrw.so): " + "; ".join(errors)
    )


lib = _load()


class _DlInfo(ctypes.Structure):
    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


def library_path():
    """The file the library was loaded from (dladdr of one of its functions),
    else the name it was loaded by."""
    try:
        dladdr = ctypes.CDLL(None).dladdr
    except (OSError, AttributeError):
        return lib._name
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    dladdr.restype = ctypes.c_int
    info = _DlInfo()
    if dladdr(ctypes.cast(lib.dcrw_version, ctypes.c_void_p), ctypes.byref(info)) and info.dli_fname:
        return os.path.abspath(os.fsdecode(info.dli_fname))
    return lib._name


def _fn(name, restype, argtypes, fallible):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = argtypes
    if fallible:
        f.errcheck = _check
    return f


# The version check comes before any other symbol is looked up, so that a
# library of another major version fails with this message rather than with
# an AttributeError about some renamed function.
dcrw_version = _fn("dcrw_version", ctypes.c_uint, [], False)
dcrw_version_string = _fn("dcrw_version_string", ctypes.c_char_p, [], False)


def check_version(version):
    """Raise ImportError unless the encoded @p version has the expected major
    and at least the minor whose functions this package binds."""
    major, minor = version >> 16, (version >> 8) & 0xFF
    if major != EXPECTED_MAJOR:
        raise ImportError(
            "libdcrw %d.%d.%d is loaded, but this package needs major version %d"
            % (major, minor, version & 0xFF, EXPECTED_MAJOR)
        )
    if minor < LEAST_MINOR:
        raise ImportError(
            "libdcrw %d.%d.%d is loaded, but this package needs %d.%d or later"
            % (major, minor, version & 0xFF, EXPECTED_MAJOR, LEAST_MINOR)
        )


check_version(dcrw_version())


class DcrwError(Exception):
    """A libdcrw function returned an error.

    Attributes: code (the negative DCRW_E* value), name (dcrw_strerror of the
    code), message (dcrw_last_error() right after the failure) and function
    (the C function that failed).
    """

    def __init__(self, code, function="", message=None):
        self.code = code
        self.name = strerror(code)
        self.message = last_error() if message is None else message
        self.function = function
        text = self.message or self.name
        if function:
            text = "%s: %s" % (function, text)
        super().__init__("%s [%s]" % (text, self.name))


def _check(result, func, args):
    if result < 0:
        raise DcrwError(result, func.__name__)
    return result


# Field types of dcrw_config_field().
FIELD_INT = 0
FIELD_BOOL = 1
FIELD_ENCODER = 2
FIELD_FLOAT = 3

#: One field of dcrw_config as the library describes it (dcrw_config_field).
ConfigField = collections.namedtuple("ConfigField", "name type offset min max")


def _config_fields():
    """The library's own list of dcrw_config's fields, so that this package
    keeps none: a field a later library adds appears here by itself."""
    try:
        count, field = lib.dcrw_config_field_count, lib.dcrw_config_field
    except AttributeError:
        raise ImportError("this package needs libdcrw 0.3 or later (dcrw_config_field)") from None
    count.restype, count.argtypes = ctypes.c_int, []
    field.restype = ctypes.c_int
    out = []
    for i in range(count()):
        name, kind = ctypes.c_char_p(), ctypes.c_int()
        offset, lo, hi = ctypes.c_size_t(), ctypes.c_double(), ctypes.c_double()
        if field(i, ctypes.byref(name), ctypes.byref(kind), ctypes.byref(offset), ctypes.byref(lo), ctypes.byref(hi)):
            raise ImportError("dcrw_config_field(%d) failed" % i)
        out.append(ConfigField(name.value.decode("ascii"), kind.value, offset.value, lo.value, hi.value))
    return tuple(sorted(out, key=lambda f: f.offset))


#: dcrw_config's fields (all but size) in the struct's order.
CONFIG_FIELD_INFO = _config_fields()


class Config(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32)] + [
        (f.name, ctypes.c_float if f.type == FIELD_FLOAT else ctypes.c_int32) for f in CONFIG_FIELD_INFO
    ]


for _f in CONFIG_FIELD_INFO:
    if getattr(Config, _f.name).offset != _f.offset:  # a layout ctypes cannot mirror
        raise ImportError("dcrw_config.%s is at offset %d, not %d" % (_f.name, _f.offset, getattr(Config, _f.name).offset))
del _f


class Sizes(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("input", ctypes.c_size_t),
        ("read", ctypes.c_size_t),
        ("z", ctypes.c_size_t),
        ("dec", ctypes.c_size_t),
        ("glimpses", ctypes.c_size_t),
    ]


class Loss(ctypes.Structure):
    _fields_ = [("loss", ctypes.c_double), ("lx", ctypes.c_double), ("lz", ctypes.c_double)]


class TrainConfig(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("learning_rate", ctypes.c_float),
        ("beta1", ctypes.c_float),
        ("beta2", ctypes.c_float),
        ("adam_eps", ctypes.c_float),
        ("clip_norm", ctypes.c_float),
        ("seed", ctypes.c_uint64),
        ("threads", ctypes.c_int32),
    ]


class CheckpointSummary(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("preset", ctypes.c_char * 16),
        ("has_step", ctypes.c_int32),
        ("step", ctypes.c_uint64),
        ("optimizer", ctypes.c_int32),
        ("params", ctypes.c_size_t),
        ("tensors", ctypes.c_size_t),
    ]


class _Opaque(ctypes.Structure):
    pass


c_int = ctypes.c_int
c_size = ctypes.c_size_t
c_u64 = ctypes.c_uint64
c_str = ctypes.c_char_p
f32p = ctypes.POINTER(ctypes.c_float)
f64p = ctypes.POINTER(ctypes.c_double)
i32p = ctypes.POINTER(ctypes.c_int32)
# Handles are plain addresses on the Python side; c_void_p keeps them hashable
# integers and lets None stand for NULL.
handle = ctypes.c_void_p
handlep = ctypes.POINTER(ctypes.c_void_p)

dcrw_strerror = _fn("dcrw_strerror", c_str, [c_int], False)
dcrw_last_error = _fn("dcrw_last_error", c_str, [], False)

dcrw_set_threads = _fn("dcrw_set_threads", c_int, [c_int], True)
dcrw_get_threads = _fn("dcrw_get_threads", c_int, [], False)
dcrw_workspace_release = _fn("dcrw_workspace_release", None, [], False)

dcrw_config_preset = _fn("dcrw_config_preset", c_int, [ctypes.POINTER(Config), c_int], True)
dcrw_config_validate = _fn("dcrw_config_validate", c_int, [ctypes.POINTER(Config)], True)
dcrw_preset_from_name = _fn("dcrw_preset_from_name", c_int, [c_str, ctypes.POINTER(c_int)], True)
dcrw_preset_name = _fn("dcrw_preset_name", c_str, [c_int], False)
dcrw_config_field_count = _fn("dcrw_config_field_count", c_int, [], False)
dcrw_config_field = _fn(
    "dcrw_config_field",
    c_int,
    [c_int, ctypes.POINTER(c_str), ctypes.POINTER(c_int), ctypes.POINTER(c_size), f64p, f64p],
    True,
)
dcrw_config_set = _fn("dcrw_config_set", c_int, [ctypes.POINTER(Config), c_str, c_str], True)
dcrw_config_get = _fn("dcrw_config_get", c_int, [ctypes.POINTER(Config), c_str, ctypes.c_char_p, c_size], True)
dcrw_config_equal = _fn("dcrw_config_equal", c_int, [ctypes.POINTER(Config), ctypes.POINTER(Config)], True)

dcrw_model_create = _fn("dcrw_model_create", c_int, [handlep, ctypes.POINTER(Config), c_u64], True)
dcrw_model_load = _fn("dcrw_model_load", c_int, [handlep, c_str], True)
dcrw_model_save = _fn("dcrw_model_save", c_int, [handle, c_str], True)
dcrw_model_destroy = _fn("dcrw_model_destroy", None, [handle], False)
dcrw_model_config = _fn("dcrw_model_config", c_int, [handle, ctypes.POINTER(Config)], True)
dcrw_model_input_size = _fn("dcrw_model_input_size", c_size, [handle], False)
dcrw_model_param_count = _fn("dcrw_model_param_count", c_size, [handle], False)
dcrw_model_param_floats = _fn("dcrw_model_param_floats", c_size, [handle], False)
dcrw_model_param = _fn(
    "dcrw_model_param",
    c_int,
    [
        handle,
        c_size,
        ctypes.POINTER(c_str),
        ctypes.POINTER(c_int),
        ctypes.POINTER(ctypes.POINTER(ctypes.c_int64)),
        ctypes.POINTER(f32p),
    ],
    True,
)
dcrw_model_find_param = _fn("dcrw_model_find_param", c_int, [handle, c_str, ctypes.POINTER(f32p), ctypes.POINTER(c_size)], True)
dcrw_model_params = _fn("dcrw_model_params", f32p, [handle, ctypes.POINTER(c_size)], False)
dcrw_model_sizes = _fn("dcrw_model_sizes", c_int, [handle, ctypes.POINTER(Sizes)], True)
dcrw_model_set_precision = _fn("dcrw_model_set_precision", c_int, [handle, c_int], True)
dcrw_model_precision = _fn("dcrw_model_precision", c_int, [handle], False)
dcrw_precision_supported = _fn("dcrw_precision_supported", c_int, [c_int], False)

dcrw_read = _fn("dcrw_read", c_int, [handle, c_int, f32p, f32p, f32p, f32p], True)
dcrw_write = _fn("dcrw_write", c_int, [handle, c_int, f32p, f32p], True)
dcrw_encode = _fn("dcrw_encode", c_int, [handle, c_int, f32p, f32p, f32p, f32p, f32p], True)
dcrw_decode = _fn("dcrw_decode", c_int, [handle, c_int, f32p, c_u64, f32p, f32p], True)
dcrw_reconstruct = _fn("dcrw_reconstruct", c_int, [handle, c_int, f32p, f32p, f32p, f32p], True)
dcrw_reconstruct_windows = _fn("dcrw_reconstruct_windows", c_int, [handle, c_int, f32p, f32p, f32p, f32p, f32p, f32p], True)
dcrw_decode_windows = _fn("dcrw_decode_windows", c_int, [handle, c_int, f32p, c_u64, f32p, f32p, f32p], True)
dcrw_evaluate = _fn("dcrw_evaluate", c_int, [handle, c_int, f32p, f32p, ctypes.POINTER(Loss)], True)
dcrw_evaluate_images = _fn("dcrw_evaluate_images", c_int, [handle, c_int, f32p, f32p, f64p, f64p], True)
c_i64 = ctypes.c_int64
dcrw_encode_part = _fn("dcrw_encode_part", c_int, [handle, c_int, f32p, c_u64, c_i64, f32p, f32p, f32p], True)
dcrw_decode_part = _fn("dcrw_decode_part", c_int, [handle, c_int, c_u64, c_i64, f32p, f32p, f32p], True)
dcrw_reconstruct_part = _fn(
    "dcrw_reconstruct_part", c_int, [handle, c_int, f32p, c_u64, c_i64, f32p, f32p, f32p, f32p], True
)
dcrw_evaluate_images_part = _fn("dcrw_evaluate_images_part", c_int, [handle, c_int, f32p, c_u64, c_i64, f64p, f64p], True)
dcrw_evaluate_iw = _fn("dcrw_evaluate_iw", c_int, [handle, c_int, f32p, c_int, c_u64, c_i64, f64p, f64p], True)
dcrw_classify = _fn("dcrw_classify", c_int, [handle, c_int, f32p, f32p], True)
dcrw_decode_labels = _fn(
    "dcrw_decode_labels", c_int, [handle, c_int, i32p, f32p, c_u64, c_i64, f32p, f32p, f32p], True
)
dcrw_reconstruct_labels = _fn(
    "dcrw_reconstruct_labels",
    c_int,
    [handle, c_int, f32p, i32p, c_u64, c_i64, f32p, f32p, f32p, f32p],
    True,
)
dcrw_evaluate_labels = _fn(
    "dcrw_evaluate_labels", c_int, [handle, c_int, f32p, i32p, c_u64, c_i64, f64p, f64p], True
)
dcrw_classify_windows = _fn("dcrw_classify_windows", c_int, [handle, c_int, f32p, f32p, f32p], True)

dcrw_train_config_default = _fn("dcrw_train_config_default", c_int, [ctypes.POINTER(TrainConfig)], True)
dcrw_trainer_create = _fn("dcrw_trainer_create", c_int, [handlep, handle, ctypes.POINTER(TrainConfig)], True)
dcrw_trainer_destroy = _fn("dcrw_trainer_destroy", None, [handle], False)
dcrw_trainer_backward = _fn("dcrw_trainer_backward", c_int, [handle, c_int, f32p, f32p, ctypes.POINTER(Loss)], True)
dcrw_trainer_backward_part = _fn("dcrw_trainer_backward_part", c_int, [handle, c_int, f32p, f32p, ctypes.c_int64, ctypes.c_int64, ctypes.POINTER(Loss)], True)
dcrw_trainer_find_grad = _fn("dcrw_trainer_find_grad", c_int, [handle, c_str, ctypes.POINTER(f32p), ctypes.POINTER(c_size)], True)
dcrw_trainer_grads = _fn("dcrw_trainer_grads", f32p, [handle, ctypes.POINTER(c_size)], False)
dcrw_trainer_apply = _fn("dcrw_trainer_apply", c_int, [handle], True)
dcrw_trainer_step = _fn("dcrw_trainer_step", c_int, [handle, c_int, f32p, f32p, ctypes.POINTER(Loss)], True)
dcrw_trainer_backward_labels = _fn(
    "dcrw_trainer_backward_labels",
    c_int,
    [handle, c_int, f32p, i32p, f32p, ctypes.POINTER(Loss)],
    True,
)
dcrw_trainer_backward_labels_part = _fn(
    "dcrw_trainer_backward_labels_part",
    c_int,
    [handle, c_int, f32p, i32p, f32p, ctypes.c_int64, ctypes.c_int64, ctypes.POINTER(Loss)],
    True,
)
dcrw_trainer_step_labels = _fn(
    "dcrw_trainer_step_labels",
    c_int,
    [handle, c_int, f32p, i32p, f32p, ctypes.POINTER(Loss)],
    True,
)
dcrw_trainer_step_count = _fn("dcrw_trainer_step_count", c_u64, [handle], False)
dcrw_trainer_set_learning_rate = _fn("dcrw_trainer_set_learning_rate", c_int, [handle, ctypes.c_float], True)
dcrw_trainer_learning_rate = _fn("dcrw_trainer_learning_rate", ctypes.c_float, [handle], False)
dcrw_trainer_set_kl_weight = _fn("dcrw_trainer_set_kl_weight", c_int, [handle, ctypes.c_float], True)
dcrw_trainer_kl_weight = _fn("dcrw_trainer_kl_weight", ctypes.c_float, [handle], False)
dcrw_trainer_save = _fn("dcrw_trainer_save", c_int, [handle, c_str], True)
dcrw_trainer_resume = _fn("dcrw_trainer_resume", c_int, [handle, c_str], True)

dcrw_checkpoint_info = _fn(
    "dcrw_checkpoint_info", c_int, [c_str, ctypes.POINTER(CheckpointSummary), ctypes.POINTER(Config)], True
)

dcrw_dataset_load_idx = _fn("dcrw_dataset_load_idx", c_int, [handlep, c_str, c_str], True)
dcrw_dataset_open = _fn("dcrw_dataset_open", c_int, [handlep, c_str, c_int], True)
dcrw_dataset_from_memory = _fn(
    "dcrw_dataset_from_memory",
    c_int,
    [handlep, ctypes.c_void_p, c_int, c_size, c_int, c_int, c_int, ctypes.POINTER(ctypes.c_int32)],
    True,
)
dcrw_dataset_count = _fn("dcrw_dataset_count", c_size, [handle], False)
dcrw_dataset_shape = _fn("dcrw_dataset_shape", c_int, [handle, ctypes.POINTER(c_int), ctypes.POINTER(c_int), ctypes.POINTER(c_int)], True)
dcrw_dataset_label = _fn("dcrw_dataset_label", c_int, [handle, c_size], False)
dcrw_dataset_batch = _fn("dcrw_dataset_batch", c_int, [handle, ctypes.POINTER(c_size), c_int, c_int, c_u64, f32p], True)
dcrw_dataset_images = _fn("dcrw_dataset_images", f32p, [handle], False)
dcrw_dataset_destroy = _fn("dcrw_dataset_destroy", None, [handle], False)


def strerror(code):
    return dcrw_strerror(code).decode("utf-8", "replace")


def last_error():
    return dcrw_last_error().decode("utf-8", "replace")


def set_threads(n):
    """Threads of the const operations and of trainers configured with 0;
    0 means the CPUs this process may run on. Process-wide."""
    from ._util import INT32, integer

    dcrw_set_threads(integer(n, "threads", *INT32))


def get_threads():
    """The number of threads set_threads() currently implies (>= 1)."""
    return dcrw_get_threads()


def version():
    """The loaded library's version as a (major, minor, patch) tuple."""
    v = dcrw_version()
    return (v >> 16, (v >> 8) & 0xFF, v & 0xFF)


def version_string():
    return dcrw_version_string().decode("ascii")
