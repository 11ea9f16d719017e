"""libdcrw from Python: DRAW and DCRW sequential VAEs, and DRAW's attention
classifier, over NumPy arrays.

A pure-Python ctypes binding of include/dcrw/dcrw.h. The shared library is
loaded from the path in the environment variable DCRW_LIBRARY, else from
the path recorded when the package was installed with the library, else
found on the system (ctypes.util.find_library('dcrw'), then libdcrw.so.0).
Import fails with ImportError if the library's major version is not the one
this package was written for.

    import numpy as np, dcrw
    with dcrw.Model.create("dcrw", height=12, width=12, glimpses=3) as m:
        with dcrw.Trainer(m, learning_rate=1e-3) as t:
            x = (np.random.rand(8, m.input_size) > 0.5)
            for _ in range(10):
                print(t.step(x).loss)
        images = m.sample(4, seed=1)
        m.save("model.safetensors")

The classifier (preset "draw-classify") trains on labels:

    with dcrw.Model.create("draw-classify", height=24, width=24, classes=4) as m:
        with dcrw.Trainer(m) as t:
            t.step_labels(x, labels)       # labels: integers [B] in [0, 4)
        probs = m.classify(x)              # [B, 4]

Errors of the library raise DcrwError (code, name, message from
dcrw_last_error()); wrong shapes and types are refused before the call with
ValueError / TypeError, and so are integers outside their C type (a
negative seed, a batch size beyond int) and strings holding a NUL.

Objects may be shared between threads: close() while another thread is
inside a call frees the C object only when that call returns, and a
trainer's step never overlaps an operation of its model. Ctrl-C interrupts
a long call (a large evaluate, sample or step) at once with
KeyboardInterrupt; the library finishes that call in the background and
the object's next call waits for it.

For cffi users, dcrw.cdef() returns the header's declarations in the form
cffi's FFI.cdef() takes as is.
"""

from . import _ffi
from ._ffi import (
    EFORMAT,
    EINVAL,
    EIO,
    ENOMEM,
    ENOTFOUND,
    ENUMERIC,
    ECONFIG,
    ESHAPE,
    ETRUNCATED,
    EUNSUPPORTED,
    EXPECTED_MAJOR,
    OK,
    DcrwError,
    strerror,
    last_error,
    get_threads,
    set_threads,
    version,
    version_string,
)
from .dataset import Dataset, channels_last
from .model import (
    CONFIG_FIELDS,
    Classification,
    Decoded,
    Encoded,
    ImageLosses,
    Loss,
    Model,
    Reconstruction,
    preset_config,
)
from .trainer import TRAIN_FIELDS, Trainer, default_train_config

__version__ = version_string()


def load_dataset(path, split="train"):
    """The data set at path in any format the library reads (Dataset.open):
    a folder of IDX files (MNIST's names, plain or gzip, any prefix), an IDX
    or NumPy .npy file, train.npy/test.npy or train/ and test/ in a folder,
    a folder of PNG images (class folders give labels). split, "train" or
    "test", picks the part of a folder that holds both."""
    return Dataset.open(path, split)


def shipped_model():
    """The path of the model trained on MNIST that libdcrw ships
    (doc/RESULTS.md): $DCRW_MODEL if set, else the copy installed with
    this package, else the one in the source tree beside it."""
    import os

    env = os.environ.get("DCRW_MODEL")
    if env:
        return env
    name = "dcrw-mnist.safetensors"
    try:
        from ._install import MODELS_DIR
    except ImportError:  # not installed: the source tree
        MODELS_DIR = None
    if MODELS_DIR and os.path.exists(os.path.join(MODELS_DIR, name)):
        return os.path.join(MODELS_DIR, name)
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(os.path.dirname(os.path.dirname(here)), "models", name)

CDEF_FILE = "dcrw.cdef"


def cdef():
    """The declarations of dcrw.h, preprocessed for cffi (ABI mode):

        ffi = cffi.FFI()
        ffi.cdef(dcrw.cdef())
        lib = ffi.dlopen(dcrw.library_path())

    Generated from the header when the package was built and installed
    with it; OSError if this copy of the package has none (the source tree
    before a build)."""
    import os

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), CDEF_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise FileNotFoundError(
            "%s: not generated for this copy of the package (it is made when the package is built "
            "with the library: meson -Dpython=true, or pip install)" % path
        ) from None


def library_path():
    """The path of the shared library this package loaded."""
    return _ffi.library_path()


def precision_supported(precision):
    """Whether Model.precision = precision works on this CPU: "float32"
    always, "bf16" with AVX-512 BF16."""
    names = ("float32", "bf16")
    return precision in names and bool(_ffi.dcrw_precision_supported(names.index(precision)))


__all__ = [
    "cdef",
    "library_path",
    "precision_supported",
    "shipped_model",
    "load_dataset",
    "channels_last",
    "CONFIG_FIELDS",
    "TRAIN_FIELDS",
    "Classification",
    "Dataset",
    "DcrwError",
    "Decoded",
    "Encoded",
    "ImageLosses",
    "Loss",
    "Model",
    "Reconstruction",
    "Trainer",
    "default_train_config",
    "last_error",
    "get_threads",
    "set_threads",
    "preset_config",
    "strerror",
    "version",
    "version_string",
    "OK",
    "EINVAL",
    "ENOMEM",
    "EIO",
    "EFORMAT",
    "ETRUNCATED",
    "ESHAPE",
    "ENOTFOUND",
    "EUNSUPPORTED",
    "ECONFIG",
    "ENUMERIC",
    "EXPECTED_MAJOR",
]

