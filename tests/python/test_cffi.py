"""The public header stays mechanically bindable: the declarations the build
generates from include/dcrw/dcrw.h for cffi (dcrw.cdef() once installed)
go to cffi's cdef as they are (ABI mode, no compiler involved in the
binding), and calls into the library through them work. The parsed
declarations also check the ctypes package: every function of the header is
declared there with the same number, kinds and sizes of arguments, and the
structs have the same layout."""

import ctypes
import os
import re
import shlex
import sys

import cffi
import pytest

import dcrw
from dcrw import _ffi
from conftest import SOURCE_ROOT

HEADER = os.path.join(SOURCE_ROOT, "include", "dcrw", "dcrw.h")
sys.path.insert(0, os.path.join(SOURCE_ROOT, "examples", "python"))
import make_cdef  # noqa: E402


def fresh_cdef(tmp_path_factory):
    out = tmp_path_factory.mktemp("cdef") / "dcrw.cdef"
    make_cdef.write(HEADER, str(out), shlex.split(os.environ.get("CC", "cc")))
    return out.read_text()


@pytest.fixture(scope="module")
def cdef_source(tmp_path_factory):
    """The file this build generated (meson passes its path), else one made
    now from the header, for a run by hand."""
    shipped = os.environ.get("DCRW_TEST_CDEF")
    if shipped:
        with open(shipped, encoding="utf-8") as f:
            return f.read()
    return fresh_cdef(tmp_path_factory)


@pytest.fixture(scope="module")
def ffi_lib(cdef_source):
    ffi = cffi.FFI()
    ffi.cdef(cdef_source)  # must parse as is
    return ffi, ffi.dlopen(os.environ["DCRW_LIBRARY"])


def test_generated_file_is_the_current_header(cdef_source, tmp_path_factory):
    if not os.environ.get("DCRW_TEST_CDEF"):
        pytest.skip("no generated file given (meson test sets DCRW_TEST_CDEF)")
    assert cdef_source == fresh_cdef(tmp_path_factory)


def test_source_tree_package_says_where_the_declarations_are():
    # in the source tree (not built), cdef() names what is missing
    if os.path.exists(os.path.join(os.path.dirname(dcrw.__file__), dcrw.CDEF_FILE)):
        pytest.skip("this copy of the package has its declarations")
    with pytest.raises(FileNotFoundError, match="not generated for this copy"):
        dcrw.cdef()


def header_functions(src):
    return sorted(set(re.findall(r"\b(dcrw_[a-z0-9_]+)\s*\(", src)))


def test_header_preprocesses_to_plain_declarations(cdef_source):
    funcs = header_functions(cdef_source)
    assert len(funcs) >= 40 and "dcrw_trainer_step" in funcs
    assert "__attribute__" not in cdef_source


def test_cffi_abi_mode_calls(ffi_lib):
    ffi, lib = ffi_lib
    v = lib.dcrw_version()
    assert v >> 16 == dcrw.EXPECTED_MAJOR
    assert v == lib.DCRW_VERSION_MAJOR << 16 | lib.DCRW_VERSION_MINOR << 8 | lib.DCRW_VERSION_PATCH
    assert ffi.string(lib.dcrw_version_string()).decode() == dcrw.version_string()
    cfg = ffi.new("dcrw_config *")
    assert lib.dcrw_config_preset(cfg, lib.DCRW_PRESET_DRAW) == lib.DCRW_OK
    assert cfg.size == ffi.sizeof("dcrw_config") and cfg.height == 28
    cfg.height = cfg.width = 12
    cfg.glimpses, cfg.enc_size, cfg.dec_size, cfg.z_size = 3, 16, 16, 4
    m = ffi.new("dcrw_model **")
    assert lib.dcrw_model_create(m, cfg, 42) == lib.DCRW_OK, ffi.string(lib.dcrw_last_error())
    try:
        assert lib.dcrw_model_input_size(m[0]) == 144
        assert lib.dcrw_model_param_count(m[0]) > 0
        n = ffi.new("size_t *")
        p = lib.dcrw_model_params(m[0], n)
        assert p != ffi.NULL and n[0] == lib.dcrw_model_param_floats(m[0])
        loss = ffi.new("dcrw_loss *")
        x = ffi.new("float[]", 2 * 144)
        assert lib.dcrw_evaluate(m[0], 2, x, ffi.NULL, loss) == lib.DCRW_OK
        assert loss.loss > 0
        assert lib.dcrw_evaluate(m[0], 0, x, ffi.NULL, loss) == lib.DCRW_EINVAL
    finally:
        lib.dcrw_model_destroy(m[0])
    lib.dcrw_model_destroy(ffi.NULL)
    cfg.glimpses = 0
    assert lib.dcrw_model_create(m, cfg, 42) == lib.DCRW_ECONFIG
    assert m[0] == ffi.NULL
    assert b"glimpses" in ffi.string(lib.dcrw_last_error())


def _ctypes_kind(t):
    if t is None:
        return ("void", 0)
    if t in (ctypes.c_void_p, ctypes.c_char_p) or issubclass(t, ctypes._Pointer):
        return ("pointer", ctypes.sizeof(ctypes.c_void_p))
    if t in (ctypes.c_float, ctypes.c_double):
        return ("float", ctypes.sizeof(t))
    return ("int", ctypes.sizeof(t))


def _cffi_kind(ffi, t):
    if t.kind == "void" or (t.kind == "primitive" and t.cname == "void"):
        return ("void", 0)
    if t.kind == "pointer":
        return ("pointer", ffi.sizeof(t))
    if t.kind == "primitive" and t.cname in ("float", "double"):
        return ("float", ffi.sizeof(t))
    return ("int", ffi.sizeof(t))


def test_ctypes_declarations_match_header(ffi_lib, cdef_source):
    ffi, lib = ffi_lib
    for name in header_functions(cdef_source):
        assert hasattr(_ffi, name), "%s is in dcrw.h but not declared in dcrw/_ffi.py" % name
        ct = getattr(_ffi, name)
        ft = ffi.typeof(getattr(lib, name))
        got = [_ctypes_kind(a) for a in ct.argtypes]
        want = [_cffi_kind(ffi, a) for a in ft.args]
        assert got == want, "%s: arguments %s in ctypes, %s in the header" % (name, got, want)
        res = ft.result
        assert _ctypes_kind(ct.restype) == (("void", 0) if res.kind == "void" else _cffi_kind(ffi, res)), name


@pytest.mark.parametrize(
    "cname,ctype",
    [
        ("dcrw_config", _ffi.Config),
        ("dcrw_sizes", _ffi.Sizes),
        ("dcrw_loss", _ffi.Loss),
        ("dcrw_train_config", _ffi.TrainConfig),
        ("dcrw_checkpoint_summary", _ffi.CheckpointSummary),
    ],
)
def test_struct_layouts_match_header(ffi_lib, cname, ctype):
    ffi, _ = ffi_lib
    assert ffi.sizeof(cname) == ctypes.sizeof(ctype)
    fields = [f for f, _ in ffi.typeof(cname).fields]
    assert fields == [f for f, _ in ctype._fields_]
    for f in fields:
        assert ffi.offsetof(cname, f) == getattr(ctype, f).offset, (cname, f)
