#!/usr/bin/env python3
"""lib/amalgamation/amalgamate.py on small made-up source trees: what one
translation unit changes (macros of one file reaching the next, feature
macros after a system header, names defined twice) is handled or refused
with a message naming the files, and new sources are picked up.

    test_amalgamate.py            (needs a C compiler: $CC or cc)
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(ROOT, "lib", "amalgamation", "amalgamate.py")
CC = os.environ.get("CC", "cc").split()

PUBLIC_HEADER = """\
#ifndef DCRW_DCRW_H
#define DCRW_DCRW_H
#define DCRW_VERSION_MAJOR 1
#define DCRW_VERSION_MINOR 2
#define DCRW_VERSION_PATCH 3
int dcrw_a(void);
int dcrw_b(void);
#endif
"""
INTERNAL_HEADER = """\
#ifndef COMMON_H
#define COMMON_H
#include "dcrw/dcrw.h"
#define SHARED_LIMIT 10
int dcrw_helper(int x);
#endif
"""


class Tree:
    """A source tree: lib/meson.build naming SOURCES, and FILES {path: text}."""

    def __init__(self, files, sources):
        self.root = tempfile.mkdtemp(prefix="amalgamate-test-")
        listed = ", ".join(f"'{s}'" for s in sources)
        base = {
            "COPYING": "Copyright test\n",
            "include/dcrw/dcrw.h": PUBLIC_HEADER,
            "examples/cpp/include/dcrw/dcrw.hpp": "#include <dcrw/dcrw.h>\n",
            "lib/amalgamation/CMakeLists.txt.in": "project(dcrw VERSION @VERSION@)\n",
            "lib/common.h": INTERNAL_HEADER,
            "lib/meson.build": f"# not 'commented.c'\nlib_sources = files({listed})\n",
        }
        base.update(files)
        for path, text in base.items():
            full = os.path.join(self.root, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(textwrap.dedent(text))
        self.out = os.path.join(self.root, "out")

    def amalgamate(self):
        return subprocess.run([sys.executable, SCRIPT, "--source-root", self.root, "--out",
                               self.out], capture_output=True, text=True)

    def compile(self, *flags):
        return subprocess.run(CC + ["-std=c11", "-Wall", "-Wextra", "-Werror",
                                    "-Werror=implicit-function-declaration", *flags,
                                    "-c", os.path.join(self.out, "dcrw.c"), "-o",
                                    os.path.join(self.out, "dcrw.o")],
                              capture_output=True, text=True)

    def dcrw_c(self):
        with open(os.path.join(self.out, "dcrw.c")) as f:
            return f.read()

    def remove(self):
        shutil.rmtree(self.root)


class AmalgamateTest(unittest.TestCase):
    def tree(self, files, sources):
        t = Tree(files, sources)
        self.addCleanup(t.remove)
        return t

    def assertBuilt(self, t):
        r = t.amalgamate()
        self.assertEqual(r.returncode, 0, r.stderr)
        c = t.compile()
        self.assertEqual(c.returncode, 0, c.stderr)

    def assertRefused(self, t, *words):
        r = t.amalgamate()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        for w in words:
            self.assertIn(w, r.stderr)
        self.assertFalse(os.path.exists(os.path.join(t.out, "dcrw.c")))

    def test_macro_of_one_file_does_not_reach_the_next(self):
        # b.c's variable N would become "static int 4 = 1" if a.c's N leaked
        t = self.tree({
            "lib/a.c": """\
                #include "common.h"
                #define N 4
                int dcrw_a(void) { return N; }
            """,
            "lib/b.c": """\
                #include "common.h"
                static int N = 1;
                int dcrw_b(void) { return N + SHARED_LIMIT; }
            """}, ["a.c", "b.c"])
        self.assertBuilt(t)
        self.assertIn("#undef N", t.dcrw_c())

    def test_feature_macros_precede_every_system_header(self):
        # a.c includes <stdio.h> first; b.c needs POSIX's fileno from it
        t = self.tree({
            "lib/a.c": """\
                #include <stdio.h>
                #ifndef _POSIX_C_SOURCE
                #define _POSIX_C_SOURCE 200809L // the same value
                #endif
                int dcrw_a(void) { return (int)sizeof(FILE *); }
            """,
            "lib/b.c": """\
                #define _POSIX_C_SOURCE 200809L /* fileno */
                #include <stdio.h>
                int dcrw_b(void) { return fileno(stdin); }
            """}, ["a.c", "b.c"])
        self.assertBuilt(t)
        text = t.dcrw_c()
        self.assertLess(text.index("#define _POSIX_C_SOURCE 200809L"), text.index("#include <stdio.h>"))

    def test_two_values_of_a_feature_macro_are_refused(self):
        t = self.tree({
            "lib/a.c": "#define _POSIX_C_SOURCE 200809L /* a */\nint dcrw_a(void) { return 0; }\n",
            "lib/b.c": "#define _POSIX_C_SOURCE 200112L\nint dcrw_b(void) { return 0; }\n",
        }, ["a.c", "b.c"])
        self.assertRefused(t, "lib/b.c:1", "lib/a.c:1", "_POSIX_C_SOURCE")

    def test_a_name_defined_in_two_files_is_refused(self):
        for kind, a, b in [
            ("static function", "static int helper(void) { return 1; }",
             "static int helper(void) { return 2; }"),
            ("static variable", "static const float table[2] = {1, 2};", "static int table;"),
            ("typedef", "typedef struct job { int n; } job;", "typedef int job;"),
            ("enum constant", "enum { READY, DONE };", "enum state { IDLE, DONE };"),
            ("function pointer", "static void (*hook)(void);", "static int hook(void) { return 0; }"),
        ]:
            with self.subTest(kind):
                names = {"static function": "helper", "static variable": "table",
                         "typedef": "job", "enum constant": "DONE", "function pointer": "hook"}
                t = self.tree({"lib/a.c": a + "\nint dcrw_a(void) { return 0; }\n",
                               "lib/b.c": b + "\nint dcrw_b(void) { return 0; }\n"},
                              ["a.c", "b.c"])
                self.assertRefused(t, "lib/a.c", "lib/b.c", f"'{names[kind]}'")

    def test_prototypes_and_externs_repeated_are_no_collision(self):
        t = self.tree({
            "lib/a.c": """\
                void openblas_set_num_threads(int);
                extern int shared_counter;
                int dcrw_a(void) { return 0; }
            """,
            "lib/b.c": """\
                void openblas_set_num_threads(int);
                extern int shared_counter;
                int dcrw_b(void) { return 0; }
            """}, ["a.c", "b.c"])
        r = t.amalgamate()
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_a_macro_of_a_header_redefined_in_a_source_is_refused(self):
        t = self.tree({
            "lib/a.c": '#include "common.h"\nint dcrw_a(void) { return SHARED_LIMIT; }\n',
            "lib/b.c": "#define SHARED_LIMIT 3\nint dcrw_b(void) { return SHARED_LIMIT; }\n",
        }, ["a.c", "b.c"])
        self.assertRefused(t, "lib/b.c", "SHARED_LIMIT", "lib/common.h")

    def test_new_sources_are_picked_up_and_headers_inlined_once(self):
        t = self.tree({
            "lib/a.c": '#include "common.h"\nint dcrw_a(void) { return dcrw_helper(1); }\n',
            "lib/b.c": '#include "common.h"\nint dcrw_b(void) { return 2; }\n',
            "lib/sub/c.c": '#include "../common.h"\n'
                           'int dcrw_helper(int x) { return x + SHARED_LIMIT; }\n',
            "lib/sub/meson.build": "lib_sources += files('c.c')\n",
            "lib/unlisted.c": "int unlisted_function(void) { return 0; }\n",
        }, ["a.c", "b.c", "gone.c"])
        self.assertBuilt(t)
        text = t.dcrw_c()
        for name in ("lib/a.c", "lib/b.c", "lib/sub/c.c"):
            self.assertIn(f'#line 1 "{name}"', text)
        self.assertNotIn("unlisted_function", text)
        self.assertNotIn("commented", text)
        self.assertEqual(text.count("int dcrw_helper(int x);"), 1)
        self.assertEqual(text.count("int dcrw_a(void);"), 1)
        self.assertIsNone(re.search(r'^\s*#\s*include\s*"', text, re.M))

    def test_messages_point_at_the_source_lines(self):
        # line 3 of b.c, after an inlined header
        t = self.tree({
            "lib/a.c": "int dcrw_a(void) { return 0; }\n",
            "lib/b.c": '#include "common.h"\n\nint dcrw_b(void) { return undeclared_name; }\n',
        }, ["a.c", "b.c"])
        self.assertEqual(t.amalgamate().returncode, 0)
        c = t.compile()
        self.assertNotEqual(c.returncode, 0)
        self.assertIn("lib/b.c:3", c.stderr)

    def test_unused_inline_functions_of_headers_stay_quiet_with_clang(self):
        # clang warns of an unused static inline function in the main file,
        # never in a header: the inlined headers must keep that
        if not shutil.which("clang"):
            self.skipTest("no clang")
        t = self.tree({
            "lib/util.h": "static inline int unused_helper(void) { return 1; }\n",
            "lib/a.c": '#include "util.h"\nint dcrw_a(void) { return 0; }\n',
        }, ["a.c"])
        self.assertEqual(t.amalgamate().returncode, 0)
        c = t.compile()  # $CC, gcc or clang
        self.assertEqual(c.returncode, 0, c.stderr)
        r = subprocess.run(["clang", "-std=c11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
                            os.path.join(t.out, "dcrw.c")], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_a_missing_header_is_refused(self):
        t = self.tree({"lib/a.c": '#include "nowhere.h"\nint dcrw_a(void) { return 0; }\n'},
                      ["a.c"])
        self.assertRefused(t, "lib/a.c", "nowhere.h")

    def test_outputs(self):
        t = self.tree({"lib/a.c": "#define _POSIX_C_SOURCE 200809L\nint dcrw_a(void) { return 0; }\n"},
                      ["a.c"])
        self.assertEqual(t.amalgamate().returncode, 0)
        with open(os.path.join(t.out, "dcrw.h")) as f:
            h = f.read()
        with open(os.path.join(t.out, "dcrw.hpp")) as f:
            hpp = f.read()
        with open(os.path.join(t.out, "CMakeLists.txt")) as f:
            cmake = f.read()
        self.assertTrue(h.endswith(PUBLIC_HEADER))
        self.assertIn("libdcrw 1.2.3", h)
        self.assertIn("Copyright test", h)
        self.assertIn('#include "dcrw.h"', hpp)
        self.assertNotIn("<dcrw/dcrw.h>", hpp)
        self.assertIn("VERSION 1.2.3", cmake)


if __name__ == "__main__":
    unittest.main(verbosity=2)
