#!/usr/bin/env python3
"""Write libdcrw's amalgamation: the whole library as one C file.

    amalgamate.py --out DIR [--builddir BUILD] [--source-root SRC] [LIB_SOURCE.c ...]
    amalgamate.py --list-sources [--builddir BUILD] [--source-root SRC]

writes into DIR:
  dcrw.c          every source file of the library and its internal headers
                  in one translation unit, the public header included, so
                  that `cc -O2 -c dcrw.c` builds the library (like SQLite's
                  sqlite3.c);
  dcrw.h          the public header, for the programs that use it;
  dcrw.hpp        the C++ wrapper, including "dcrw.h" beside it;
  CMakeLists.txt  for add_subdirectory() of DIR: the target dcrw::dcrw.

The library's sources, in their build order, are the files given on the
command line (meson passes its list), else those of the library target of
a configured meson build folder (--builddir), else the '*.c' names quoted
in the meson.build files under lib/ that exist: a new source file is
picked up without editing this script.

One translation unit sees what separate ones did not, so the script:
  - hoists the feature-test macros (_POSIX_C_SOURCE, _GNU_SOURCE, ...) that
    the sources define to the top, before any system header, and fails if
    two sources want different values;
  - inlines each internal header once, where it is first included;
  - #undefs, after each .c file, every macro that file defined, so no macro
    of one file rewrites a later file's identifiers;
  - fails, naming the files, when two .c files define the same file-scope
    name (static function or variable, type, tag, enum constant), or a .c
    file defines or #undefs a macro of a header.
#line directives keep the compiler's messages pointing at lib/*.c.

Python 3 standard library only. Exit status 0 on success, 1 on a failure
(message on stderr), 2 on bad arguments.
"""
import argparse
import json
import os
import re
import sys
import tempfile
import textwrap

PUBLIC_HEADER = os.path.join("include", "dcrw", "dcrw.h")
CPP_HEADER = os.path.join("examples", "cpp", "include", "dcrw", "dcrw.hpp")
CMAKE_TEMPLATE = os.path.join("lib", "amalgamation", "CMakeLists.txt.in")
LIBRARY_TARGET = "dcrw"

# must precede every system header of the translation unit
FEATURE_MACROS = {"_POSIX_C_SOURCE", "_XOPEN_SOURCE", "_GNU_SOURCE", "_DEFAULT_SOURCE",
                  "_BSD_SOURCE", "_DARWIN_C_SOURCE", "_FILE_OFFSET_BITS"}

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
DEFINE_RE = re.compile(r"^\s*#\s*define\s+([A-Za-z_]\w*)(.*)$")
PRAGMA_ONCE_RE = re.compile(r"^\s*#\s*pragma\s+once\b")
UNDEF_RE = re.compile(r"^\s*#\s*undef\s+([A-Za-z_]\w*)")
VERSION_RE = re.compile(r"^\s*#\s*define\s+DCRW_VERSION_(MAJOR|MINOR|PATCH)\s+(\d+)", re.M)

CLANG_PUSH_UNUSED = ["#ifdef __clang__", "#pragma clang diagnostic push",
                     '#pragma clang diagnostic ignored "-Wunused-function"', "#endif"]
CLANG_POP = ["#ifdef __clang__", "#pragma clang diagnostic pop", "#endif"]


class AmalgamationError(Exception):
    pass


def read_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def uncommented(line):
    """LINE without its comments, to quote it inside one."""
    return re.sub(r"/\*.*?\*/|//.*|/\*.*", "", line).strip()


def rel(path, root):
    return os.path.relpath(path, root).replace(os.sep, "/")


# ---- the list of sources

def sources_from_builddir(builddir):
    """The sources of the library target of a configured meson build."""
    info = os.path.join(builddir, "meson-info", "intro-targets.json")
    try:
        targets = json.loads(read_text(info))
    except (OSError, ValueError) as e:
        raise AmalgamationError(f"cannot read the targets of {builddir}: {e}")
    for t in targets:
        if t.get("name") == LIBRARY_TARGET and t.get("type") in ("static library",
                                                                  "shared library"):
            found = []
            for group in t.get("target_sources", []):
                found += [s for s in group.get("sources", []) if s.endswith(".c")]
            if found:
                return found
    raise AmalgamationError(f"no library target '{LIBRARY_TARGET}' with C sources in {info}")


def sources_from_meson_files(root):
    """The '*.c' names quoted in lib/**/meson.build that exist, in order."""
    found = []
    for folder, dirs, files in sorted(os.walk(os.path.join(root, "lib"))):
        dirs.sort()
        if "meson.build" not in files:
            continue
        text = re.sub(r"#[^\n]*", "", read_text(os.path.join(folder, "meson.build")))
        for name in re.findall(r"'([^'\s]+\.c)'", text):
            path = os.path.normpath(os.path.join(folder, name))
            if os.path.isfile(path) and path not in found:
                found.append(path)
    if not found:
        raise AmalgamationError(f"no library source named in {root}/lib/**/meson.build")
    return found


# ---- C text scanning, for the collision checks

KEYWORDS = set("""auto break case char const continue default do double else enum extern
float for goto if inline int long register restrict return short signed sizeof static
struct switch typedef union unsigned void volatile while _Alignas _Alignof _Atomic _Bool
_Complex _Generic _Imaginary _Noreturn _Static_assert _Thread_local __attribute__
__restrict __inline __extension__ __asm__ asm""".split())

LITERAL_OR_COMMENT = re.compile(
    r"//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'", re.S)
TOKEN = re.compile(r"[A-Za-z_]\w*|\d[\w.]*|\S")


def tokens_of(text):
    """C tokens of TEXT without comments, literals and preprocessor lines."""
    text = LITERAL_OR_COMMENT.sub(lambda m: " " if m.group(0)[0] == "/" else '""', text)
    text = re.sub(r"\\\n", " ", text)
    text = "\n".join(line for line in text.split("\n") if not line.lstrip().startswith("#"))
    return TOKEN.findall(text)


def drop_attributes(toks):
    """TOKS without __attribute__((...)) groups."""
    out, i = [], 0
    while i < len(toks):
        if toks[i] == "__attribute__" and i + 1 < len(toks) and toks[i + 1] == "(":
            depth, i = 0, i + 1
            while i < len(toks):
                depth += {"(": 1, ")": -1}.get(toks[i], 0)
                i += 1
                if depth == 0:
                    break
            continue
        out.append(toks[i])
        i += 1
    return out


def top_level_statements(toks):
    """Split file-scope tokens into declarations (up to ';') and function
    definitions (a head whose last token is ')' followed by a body)."""
    stmts, cur, depth = [], [], 0
    for t in toks:
        cur.append(t)
        if t in "([{":
            depth += 1
        elif t in ")]}":
            depth -= 1
            if t == "}" and depth == 0:
                head = cur[:cur.index("{")] if "{" in cur else []
                if head and head[-1] == ")" and "=" not in head:
                    stmts.append(cur)
                    cur = []
        elif t == ";" and depth == 0:
            stmts.append(cur)
            cur = []
    return stmts


def tags_and_enumerators(stmt):
    names = set()
    for i, t in enumerate(stmt[:-2]):
        if t in ("struct", "union", "enum") and stmt[i + 2] == "{" and stmt[i + 1] not in KEYWORDS:
            names.add(stmt[i + 1])
        if t == "enum":
            j = i + 1 if stmt[i + 1] == "{" else i + 2
            if j < len(stmt) and stmt[j] == "{":
                depth, prev = 0, "{"
                for u in stmt[j:]:
                    if u in "([{":
                        depth += 1
                    elif u in ")]}":
                        depth -= 1
                        if depth == 0:
                            break
                    elif depth == 1 and prev in ("{", ",") and re.match(r"[A-Za-z_]", u):
                        names.add(u)
                    prev = u if depth == 1 else prev
    return names


def declarator_names(stmt):
    """The names a declaration declares (outside braces)."""
    flat, depth = [], 0
    for t in stmt:
        if t == "{":
            depth += 1
        elif t == "}":
            depth -= 1
        elif depth == 0:
            flat.append(t)
    parts, cur, depth = [], [], 0
    for t in flat:
        if t in "([":
            depth += 1
        elif t in ")]":
            depth -= 1
        if t in (",", ";") and depth == 0:
            parts.append(cur)
            cur = []
        else:
            cur.append(t)
    names = []
    for part in parts:
        for i in range(len(part) - 3):  # ( * name ) : a pointer to function
            if part[i] == "(" and part[i + 1] == "*" and part[i + 3] == ")":
                names.append(part[i + 2])
                break
        else:
            ids = []
            for t in part:
                if t in ("(", "[", "=", ":"):
                    break
                if re.match(r"[A-Za-z_]\w*$", t) and t not in KEYWORDS:
                    ids.append(t)
            if ids:
                names.append(ids[-1])
    return names


def defined_names(text):
    """File-scope names TEXT (a .c file) defines: functions, variables,
    typedefs, struct/union/enum tags, enum constants. Prototypes and extern
    declarations define nothing."""
    names = set()
    for stmt in top_level_statements(drop_attributes(tokens_of(text))):
        names |= tags_and_enumerators(stmt)
        if stmt[-1] == "}":  # a function definition: the name before its '('
            head = stmt[:stmt.index("{")]
            ids = [t for t in head[:head.index("(")] if re.match(r"[A-Za-z_]", t)]
            if ids:
                names.add(ids[-1])
            continue
        if "extern" in stmt or stmt[0] == "_Static_assert":
            continue
        flat = [t for t in stmt if t not in KEYWORDS or t == "typedef"]
        is_typedef = "typedef" in stmt
        is_prototype = ("(" in flat and "=" not in flat and not is_typedef and
                        not any(stmt[i] == "(" and stmt[i + 1] == "*" for i in range(len(stmt) - 1)))
        if not is_prototype:
            names.update(declarator_names(stmt))
    return names


# ---- the amalgamation

class Amalgamator:
    def __init__(self, root):
        self.root = root
        self.public = os.path.join(root, PUBLIC_HEADER)
        self.seen = set()         # headers already inlined
        self.read = []            # every file read, for the depfile
        self.features = {}        # feature macro -> (value, where)
        self.header_macros = {}   # macro -> header defining it
        self.out = []

    def resolve(self, name, including):
        for folder in (os.path.dirname(including), os.path.join(self.root, "include"),
                       os.path.join(self.root, "lib")):
            path = os.path.normpath(os.path.join(folder, name))
            if os.path.isfile(path):
                return path
        raise AmalgamationError(f"{rel(including, self.root)}: #include \"{name}\" not found "
                                "in its folder, include/ or lib/")

    def feature(self, m, where):
        name = m.group(1)
        value = re.sub(r"/\*.*?\*/|//.*", "", m.group(2)).strip()
        old = self.features.get(name)
        if old and old[0] != value:
            raise AmalgamationError(f"{where} defines {name} {value}, but {old[1]} defines it "
                                    f"{old[0]}: one translation unit needs one value")
        self.features.setdefault(name, (value, where))

    def emit_file(self, path, is_source):
        """Append PATH to the output, inlining the internal headers it
        includes; returns the macros PATH itself #defines and #undefs."""
        self.read.append(path)
        where = rel(path, self.root)
        lines = read_text(path).split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        defined, undefined = [], []
        self.out.append(f'#line 1 "{where}"')
        for n, line in enumerate(lines, 1):
            inc = INCLUDE_RE.match(line)
            if inc:
                target = self.resolve(inc.group(1), path)
                if target == self.public or target in self.seen:
                    self.out.append(f"/* {uncommented(line)}: above */")
                    continue
                self.seen.add(target)
                # clang, unlike gcc, reports unused static inline functions
                # of the main file, never of a header: keep it so
                self.out += CLANG_PUSH_UNUSED
                self.emit_file(target, False)
                self.out += CLANG_POP
                self.out.append(f'#line {n + 1} "{where}"')
                continue
            if PRAGMA_ONCE_RE.match(line):  # inlined once anyway; an error outside a header
                self.out.append("/* #pragma once */")
                continue
            d = DEFINE_RE.match(line)
            if d and d.group(1) in FEATURE_MACROS:
                self.feature(d, f"{where}:{n}")
                self.out.append(f"/* {uncommented(line)}: hoisted to the top */")
                continue
            if d:
                if is_source:
                    defined.append(d.group(1))
                else:
                    self.header_macros.setdefault(d.group(1), where)
            u = UNDEF_RE.match(line)
            if u and is_source:
                undefined.append(u.group(1))
            self.out.append(line)
        return defined, undefined

    def emit_public_header(self):
        self.seen.add(self.public)
        self.emit_file(self.public, False)

    def emit_source(self, path, locals_seen):
        where = rel(path, self.root)
        self.out += ["", f"/* ==== {where} {'=' * max(0, 66 - len(where))} */"]
        text = read_text(path)
        for name in sorted(defined_names(text)):
            if name in locals_seen:
                raise AmalgamationError(f"{where} and {locals_seen[name]} both define '{name}' at "
                                        "file scope: in one translation unit they collide "
                                        "(rename one)")
            locals_seen[name] = where
        defined, undefined = self.emit_file(path, True)
        for name in sorted(set(defined) | set(undefined)):
            if name in self.header_macros:
                raise AmalgamationError(f"{where} #defines or #undefs {name}, a macro of "
                                        f"{self.header_macros[name]}: later files would see it "
                                        "changed (rename one)")
        # a macro of one file must not rewrite a later file's identifiers
        for name in sorted(set(defined)):
            self.out.append(f"#undef {name}")

    def version(self):
        found = dict(VERSION_RE.findall(read_text(self.public)))
        try:
            return f"{found['MAJOR']}.{found['MINOR']}.{found['PATCH']}"
        except KeyError:
            raise AmalgamationError(f"no DCRW_VERSION_MAJOR/MINOR/PATCH in {PUBLIC_HEADER}")

    def licence(self):
        path = os.path.join(self.root, "COPYING")
        self.read.append(path)
        return read_text(path).rstrip("\n").split("\n")

    def c_file(self, sources):
        self.emit_public_header()
        locals_seen = {}
        for s in sources:
            self.emit_source(s, locals_seen)
        body, self.out = self.out, []
        hoisted = []
        for name in sorted(self.features):
            value = self.features[name][0]
            hoisted += [f"#ifndef {name}", f"#define {name}{' ' + value if value else ''}",
                        "#endif"]
        made_from = textwrap.wrap(
            f"Made from {PUBLIC_HEADER.replace(os.sep, '/')}, the internal headers and, in this "
            "order: " + ", ".join(rel(s, self.root) for s in sources) + ".", 76)
        banner = self.banner("the whole library in one translation unit", made_from + [
            "",
            "Build (C11; cblas.h and cjson/cJSON.h on the include path):",
            "    cc -O2 -c dcrw.c",
            "and link the program with -lopenblas (or another CBLAS) -lcjson -lz -lm",
            "-pthread. -DDCRW_HAVE_ZLIB=0: no zlib (gzip-compressed IDX files are then",
            "refused). -DDCRW_NO_CLONES: no AVX2 copies of the elementwise kernels. For a",
            "shared library add -fPIC -fvisibility=hidden: only the DCRW_API functions",
            "of dcrw.h are then exported.",
        ])
        return "\n".join(banner + hoisted + body) + "\n"

    def banner(self, what, extra):
        lines = [f"libdcrw {self.version()}, amalgamated: {what}.",
                 "Generated by lib/amalgamation/amalgamate.py; do not edit."]
        if extra:
            lines += [""] + extra
        lines += [""] + self.licence()
        return ["/*"] + [(" * " + s).rstrip() for s in lines] + [" */"]

    def h_file(self):
        self.read.append(self.public)
        return "\n".join(self.banner("the public header", []) + [read_text(self.public)])

    def hpp_file(self):
        path = os.path.join(self.root, CPP_HEADER)
        self.read.append(path)
        text, n = re.subn(r"#include\s*<dcrw/dcrw\.h>", '#include "dcrw.h"', read_text(path))
        if n != 1:
            raise AmalgamationError(f"{CPP_HEADER} does not #include <dcrw/dcrw.h> once")
        return "\n".join(self.banner("the C++ wrapper", []) + [text])

    def cmake_file(self):
        path = os.path.join(self.root, CMAKE_TEMPLATE)
        self.read.append(path)
        return read_text(path).replace("@VERSION@", self.version())


def write_atomically(path, text):
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".amalgamate-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def depfile_path(p):
    return p.replace("\\", "\\\\").replace(" ", "\\ ").replace("$", "$$")


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="folder to write dcrw.c, dcrw.h, ... into")
    ap.add_argument("--source-root", default=os.path.dirname(os.path.dirname(here)),
                    help="the libdcrw source tree (default: the one holding this script)")
    ap.add_argument("--builddir", help="a configured meson build folder: take its sources")
    ap.add_argument("--list-sources", action="store_true",
                    help="print the library's sources, one a line, and write nothing")
    ap.add_argument("--depfile", help="write a Makefile-style list of the files read here")
    ap.add_argument("sources", nargs="*", help="the library's .c files, in build order")
    args = ap.parse_args(argv)
    root = os.path.abspath(args.source_root)
    try:
        if args.sources:
            sources = [os.path.abspath(s) for s in args.sources]
        elif args.builddir:
            sources = [os.path.abspath(os.path.join(args.builddir, s))
                       for s in sources_from_builddir(args.builddir)]
        else:
            sources = sources_from_meson_files(root)
        if args.list_sources:
            print("\n".join(sources))
            return 0
        if not args.out:
            ap.error("--out is required")
        am = Amalgamator(root)
        outputs = {"dcrw.c": am.c_file(sources), "dcrw.h": am.h_file(),
                   "dcrw.hpp": am.hpp_file(), "CMakeLists.txt": am.cmake_file()}
        os.makedirs(args.out, exist_ok=True)
        for name, text in outputs.items():
            write_atomically(os.path.join(args.out, name), text)
        if args.depfile:
            deps = " ".join(depfile_path(p) for p in sorted(set(am.read + [__file__])))
            write_atomically(args.depfile,
                             f"{depfile_path(os.path.join(args.out, 'dcrw.c'))}: {deps}\n")
    except (AmalgamationError, OSError, UnicodeDecodeError) as e:
        print(f"amalgamate.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
