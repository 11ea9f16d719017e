#!/usr/bin/python3
"""Writes the declarations of dcrw.h as cffi's FFI.cdef() takes them.

    make_cdef.py HEADER OUTPUT [CC ...]

cdef() parses plain C declarations but not preprocessor conditionals,
includes or attributes, so the header goes through the C preprocessor
(CC, default $CC or cc) with DCRW_API empty and empty stand-ins for
<stddef.h> and <stdint.h>: their system versions use extensions cdef
cannot parse, and cdef knows size_t, int64_t and friends itself. The
version macros are kept as integer #defines, which cdef accepts.
Run by meson at build time and by setup.py (pip install).
"""

import os
import re
import shlex
import subprocess
import sys
import tempfile


def preprocess(header, cc):
    with tempfile.TemporaryDirectory() as stubs:
        for name in ("stddef.h", "stdint.h"):
            open(os.path.join(stubs, name), "w").close()
        include = os.path.dirname(os.path.dirname(os.path.abspath(header)))
        cmd = list(cc) + ["-E", "-P", "-nostdinc", "-I", stubs, "-I", include, "-DDCRW_API=", header]
        text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    # what cdef() cannot take must not survive
    for bad in ("__attribute__", "__extension__", "__asm", "#"):
        if bad in text:
            raise RuntimeError("%s: %r left after preprocessing" % (header, bad))
    return text


def cdef_text(header, cc):
    with open(header, encoding="utf-8") as f:
        source = f.read()
    version = dict(re.findall(r"^#define DCRW_VERSION_(MAJOR|MINOR|PATCH) (\d+)$", source, re.M))
    if len(version) != 3:
        raise RuntimeError("%s: no DCRW_VERSION_MAJOR/MINOR/PATCH" % header)
    lines = [
        "/* The declarations of dcrw.h %s.%s.%s for cffi: ffi.cdef(dcrw.cdef()). */"
        % (version["MAJOR"], version["MINOR"], version["PATCH"])
    ]
    lines += ["#define DCRW_VERSION_%s %s" % (k, version[k]) for k in ("MAJOR", "MINOR", "PATCH")]
    # drop the blank lines the preprocessor leaves for comments and directives
    # and the space an empty DCRW_API leaves before each declaration
    lines += [re.sub(r"^ (?=\S)", "", line.rstrip()) for line in preprocess(header, cc).splitlines() if line.strip()]
    return "\n".join(lines) + "\n"


def write(header, output, cc):
    text = cdef_text(header, cc)
    tmp = output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, output)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    cc = argv[2:] or shlex.split(os.environ.get("CC", "cc"))
    write(argv[0], argv[1], cc)


if __name__ == "__main__":
    main(sys.argv[1:])
