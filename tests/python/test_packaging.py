"""The package finds its library by itself once installed: `meson install`
(with -Dpython=true) and `pip install ./examples/python` both record the
library's path in the package, which it loads before searching the system
(DCRW_LIBRARY still comes first), and both ship the declarations for cffi.
The installs are staged in temporary folders; pip runs offline with the
system's setuptools."""

import configparser
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest

import dcrw
from dcrw import _ffi
from conftest import SOURCE_ROOT

BUILD = os.environ.get("DCRW_TEST_BUILD_DIR")
PACKAGE_SRC = os.path.join(SOURCE_ROOT, "examples", "python")


def header_version():
    with open(os.path.join(SOURCE_ROOT, "include", "dcrw", "dcrw.h")) as f:
        v = dict(re.findall(r"^#define DCRW_VERSION_(MAJOR|MINOR|PATCH) (\d+)$", f.read(), re.M))
    return "%s.%s.%s" % (v["MAJOR"], v["MINOR"], v["PATCH"])


def clean_env(**extra):
    """The environment of a user who set nothing: no DCRW_LIBRARY, no
    LD_LIBRARY_PATH, no PYTHONPATH pointing at the source tree."""
    env = {k: v for k, v in os.environ.items() if k not in ("DCRW_LIBRARY", "LD_LIBRARY_PATH", "PYTHONPATH")}
    env.update(PYTHONDONTWRITEBYTECODE="1", OPENBLAS_NUM_THREADS="1", **extra)
    return env


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert r.returncode == 0, "%s\n%s\n%s" % (cmd, r.stdout, r.stderr)
    return r.stdout


# What an installed package is checked for, run by its own interpreter.
CHECK = r"""
import os, sys
import cffi
import numpy as np
import dcrw
lib_path = dcrw.library_path()
print(lib_path)
# cffi, ABI mode, from the declarations shipped in the package
ffi = cffi.FFI()
ffi.cdef(dcrw.cdef())
lib = ffi.dlopen(lib_path)
assert lib.dcrw_version() == dcrw.version()[0] << 16 | dcrw.version()[1] << 8 | dcrw.version()[2]
cfg = ffi.new("dcrw_config *")
assert lib.dcrw_config_preset(cfg, lib.DCRW_PRESET_DRAW) == lib.DCRW_OK
cfg.glimpses = 0
m = ffi.new("dcrw_model **")
assert lib.dcrw_model_create(m, cfg, 1) == lib.DCRW_ECONFIG
assert b"glimpses" in ffi.string(lib.dcrw_last_error())
# and the ctypes package itself
x = (np.random.default_rng(0).random((4, 144)) > 0.5).astype(np.float32)
with dcrw.Model.create("draw", height=12, width=12, glimpses=3, enc_size=16, dec_size=16, z_size=4) as m:
    with dcrw.Trainer(m) as t:
        assert np.isfinite(t.step(x).loss)
print("ok")
"""


def check_installed(python, cwd, env):
    out = run([python, "-c", CHECK], cwd=cwd, env=env).splitlines()
    assert out[-1] == "ok", out
    return out[0]


def test_library_lookup_order():
    assert _ffi.library_candidates("/x/libdcrw.so", "/p/libdcrw.so.0", "libdcrw.so.0") == ["/x/libdcrw.so"]
    assert _ffi.library_candidates("", "/p/libdcrw.so.0", "libdcrw.so.0") == ["/p/libdcrw.so.0", "libdcrw.so.0"]
    assert _ffi.library_candidates(None, None, None) == ["libdcrw.so.%d" % dcrw.EXPECTED_MAJOR]


def test_recorded_library_is_loaded_without_any_setting(tmp_path):
    """A package whose _install.py names the library loads it with no
    DCRW_LIBRARY and no LD_LIBRARY_PATH; DCRW_LIBRARY still wins."""
    pkg = tmp_path / "site" / "dcrw"
    shutil.copytree(os.path.join(PACKAGE_SRC, "dcrw"), pkg)
    built = os.environ["DCRW_LIBRARY"]
    (pkg / "_install.py").write_text("MODELS_DIR = ''\nLIBRARY = %r\n" % built)
    env = clean_env(PYTHONPATH=str(tmp_path / "site"))
    out = run([sys.executable, "-c", "import dcrw; print(dcrw.library_path())"], cwd=tmp_path, env=env)
    assert os.path.samefile(out.strip(), built)
    env["DCRW_LIBRARY"] = str(tmp_path / "elsewhere.so")
    r = subprocess.run([sys.executable, "-c", "import dcrw"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "elsewhere.so" in r.stderr, r.stderr
    # a recorded library that is gone is skipped, not fatal: the system
    # lookup follows (here it finds nothing, so the error lists the soname)
    (pkg / "_install.py").write_text("MODELS_DIR = ''\nLIBRARY = %r\n" % str(tmp_path / "gone.so.0"))
    del env["DCRW_LIBRARY"]
    r = subprocess.run([sys.executable, "-c", "import dcrw"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "libdcrw.so.%d" % dcrw.EXPECTED_MAJOR in r.stderr, r.stderr


def test_pyproject_version_is_the_library_version():
    with open(os.path.join(PACKAGE_SRC, "pyproject.toml")) as f:
        text = f.read()
    version = re.search(r'^version = "([^"]+)"$', text, re.M).group(1)
    assert version == header_version()


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """`meson install` of this build into a temporary DESTDIR: the shared
    library, header, dcrw.pc and (with -Dpython=true) the package."""
    meson = shutil.which("meson")
    if not BUILD or not meson:
        pytest.skip("needs meson and the build folder (meson test sets DCRW_TEST_BUILD_DIR)")
    dest = tmp_path_factory.mktemp("destdir")
    run([meson, "install", "-C", BUILD, "--destdir", str(dest), "--no-rebuild", "--quiet",
         "--tags", "runtime,devel,python-runtime"])
    libs = glob.glob(str(dest / "**" / "libdcrw.so.*.*.*"), recursive=True)
    pcs = glob.glob(str(dest / "**" / "pkgconfig" / "dcrw.pc"), recursive=True)
    assert len(libs) == 1 and len(pcs) == 1, (libs, pcs)
    return dest, libs[0], pcs[0]


def test_meson_install_records_the_library(staged):
    dest, lib, _ = staged
    inits = glob.glob(str(dest / "**" / "dcrw" / "__init__.py"), recursive=True)
    if not inits:
        pytest.skip("the package is installed only with -Dpython=true")
    pkg = os.path.dirname(inits[0])
    namespace = {}
    with open(os.path.join(pkg, "_install.py")) as f:
        exec(f.read(), namespace)
    # the recorded path is where the install put the library (the staged
    # copy sits under DESTDIR), named by its soname
    recorded = namespace["LIBRARY"]
    assert os.path.isabs(recorded)
    assert os.path.samefile(str(dest) + recorded, lib)
    assert os.path.basename(recorded) == "libdcrw.so.%d" % dcrw.EXPECTED_MAJOR
    assert os.path.isfile(os.path.join(pkg, dcrw.CDEF_FILE))
    # the staged package works; its library is named by DCRW_LIBRARY since
    # the recorded path exists only under DESTDIR
    env = clean_env(PYTHONPATH=os.path.dirname(pkg), DCRW_LIBRARY=str(dest) + recorded)
    assert os.path.samefile(check_installed(sys.executable, dest, env), lib)


def test_pip_install_offline(staged, tmp_path):
    """pip install of examples/python into a virtual environment, with no
    network and the system's setuptools, against a library installed in a
    private prefix that pkg-config knows about (PKG_CONFIG_PATH)."""
    missing = [m for m in ("ensurepip", "setuptools", "wheel") if importlib.util.find_spec(m) is None]
    if missing or not shutil.which("pkg-config"):
        pytest.skip("needs pkg-config, python3-venv, python3-setuptools and python3-wheel (missing: %s)"
                    % " ".join(missing or ["pkg-config"]))
    dest, lib, pc = staged
    with open(pc) as f:
        text = f.read()
    prefix = re.search(r"^prefix=(.*)$", text, re.M).group(1)
    pcdir = tmp_path / "pkgconfig"
    pcdir.mkdir()
    (pcdir / "dcrw.pc").write_text(text.replace("prefix=" + prefix, "prefix=" + str(dest) + prefix, 1))
    # a copy: an in-tree build writes build/ and *.egg-info next to setup.py
    src = tmp_path / "src"
    shutil.copytree(PACKAGE_SRC, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)])
    python = str(venv / "bin" / "python")
    env = clean_env(PKG_CONFIG_PATH=str(pcdir), PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    run([python, "-m", "pip", "install", "--no-build-isolation", "--no-index", "--no-cache-dir", "-q", str(src)],
        cwd=tmp_path, env=env)
    meta = configparser.ConfigParser()
    out = run([python, "-m", "pip", "show", "dcrw"], cwd=tmp_path, env=env)
    meta.read_string("[m]\n" + out)
    assert meta["m"]["version"] == header_version()
    assert str(venv) in meta["m"]["location"]
    # nothing set: the recorded path finds the library in the private prefix
    loaded = check_installed(python, tmp_path, clean_env())
    assert os.path.samefile(loaded, lib)


def test_version_check_needs_the_bound_minor():
    """A library of the right major but older than the functions the
    package binds is refused with a message naming the version needed."""
    from dcrw import _ffi

    _ffi.check_version(_ffi.dcrw_version())
    old = (_ffi.EXPECTED_MAJOR << 16) | ((_ffi.LEAST_MINOR - 1) << 8)
    with pytest.raises(ImportError, match="needs %d.%d or later" % (_ffi.EXPECTED_MAJOR, _ffi.LEAST_MINOR)):
        _ffi.check_version(old)
    with pytest.raises(ImportError, match="major version"):
        _ffi.check_version((_ffi.EXPECTED_MAJOR + 1) << 16)
