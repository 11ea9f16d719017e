"""pip install ./examples/python: the dcrw package, with what it needs to
know about the installed library written at build time, as meson does with
-Dpython=true:
 - _install.py records the path of libdcrw.so.MAJOR and of the shipped
   model, found through pkg-config (set PKG_CONFIG_PATH for a private
   prefix); without pkg-config's answer the package looks the library up
   on the system when imported;
 - dcrw.cdef, the header's declarations for cffi, preprocessed with $CC
   (default cc) from the installed header, else from this source tree's.
Everything else is in pyproject.toml.
"""

import os
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_cdef  # noqa: E402  (next to this file)


def pkg_config(*args):
    try:
        r = subprocess.run(["pkg-config"] + list(args) + ["dcrw"], capture_output=True, text=True)
    except OSError:
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def installed_library():
    """(library path, models folder, header) of the installed libdcrw, each
    None if not found."""
    version = pkg_config("--modversion")
    if not version:
        return None, None, None
    major = version.split(".")[0]
    name = "libdcrw.%s.dylib" % major if sys.platform == "darwin" else "libdcrw.so.%s" % major
    library = os.path.join(pkg_config("--variable=libdir") or "", name)
    models = os.path.join(pkg_config("--variable=prefix") or "", "share", "dcrw", "models")
    header = os.path.join(pkg_config("--variable=includedir") or "", "dcrw", "dcrw.h")
    return (
        library if os.path.isfile(library) else None,
        models if os.path.isdir(models) else None,
        header if os.path.isfile(header) else None,
    )


class BuildPy(build_py):
    def run(self):
        super().run()
        out = os.path.join(self.build_lib, "dcrw")
        library, models, header = installed_library()
        if library is None:
            print("setup.py: libdcrw not found through pkg-config; the package will look it up when imported")
        with open(os.path.join(out, "_install.py"), "w", encoding="utf-8") as f:
            f.write("# Written by setup.py at build time: the library this package was built for.\n")
            f.write("MODELS_DIR = %r\nLIBRARY = %r\n" % (models or "", library or ""))
        source_header = os.path.join(HERE, "..", "..", "include", "dcrw", "dcrw.h")
        header = header or (source_header if os.path.isfile(source_header) else None)
        if header is None:
            print("setup.py: no dcrw.h found; dcrw.cdef() will not be available")
            return
        cc = os.environ.get("CC", "cc").split()
        try:
            make_cdef.write(header, os.path.join(out, "dcrw.cdef"), cc)
        except (OSError, subprocess.CalledProcessError, RuntimeError) as e:
            print("setup.py: cannot preprocess %s (%s); dcrw.cdef() will not be available" % (header, e))


setup(cmdclass={"build_py": BuildPy})
