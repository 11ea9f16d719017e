#!/bin/sh
# The installed library as outside projects see it. Installs into a DESTDIR,
# then:
#  - checks the versioned shared object and its soname, the headers, dcrw.pc;
#  - builds examples/quickstart.c with `pkg-config --cflags --libs dcrw`
#    under -std=c99 -pedantic -Werror and runs it against the staged .so,
#    found through LD_LIBRARY_PATH, then through an rpath (the private
#    prefix case of the README);
#  - links the same program statically (`pkg-config --static`), which proves
#    dcrw.pc's private requirements are complete;
#  - builds the C++ wrapper's example (examples/cpp) with pkg-config and
#    the installed <dcrw/dcrw.hpp>, if a C++ compiler exists;
#  - imports the Python package (the installed one with -Dpython=true, else
#    the source tree's) with no DCRW_LIBRARY set, so the system lookup finds
#    the staged library, and trains and samples a small model.
#   install-test.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >/dev/null
prefix=$(meson introspect "$build" --buildoptions |
    /usr/bin/python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
pc=$(find "$dest" -name dcrw.pc | head -n 1)
[ -n "$pc" ] || { echo "dcrw.pc not installed"; exit 1; }
[ -f "$dest$prefix/include/dcrw/dcrw.h" ] || { echo "header not installed"; exit 1; }
[ -f "$dest$prefix/include/dcrw/dcrw.hpp" ] || { echo "C++ wrapper not installed"; exit 1; }
so=$(find "$dest" -name 'libdcrw.so.*.*.*' | head -n 1)
[ -n "$so" ] || { echo "versioned libdcrw.so not installed"; exit 1; }
libdir=$(dirname "$so")
[ -f "$libdir/libdcrw.a" ] || { echo "libdcrw.a not installed next to the .so"; exit 1; }
major=$(sed -n 's/^#define DCRW_VERSION_MAJOR \([0-9]*\)$/\1/p' "$src/include/dcrw/dcrw.h")
objdump -p "$so" | grep -q "SONAME *libdcrw.so.$major\$" || { echo "soname is not libdcrw.so.$major"; exit 1; }
[ -e "$libdir/libdcrw.so.$major" ] || { echo "no libdcrw.so.$major link"; exit 1; }

# point pkg-config at the staged tree
export PKG_CONFIG_PATH="$(dirname "$pc")"
export PKG_CONFIG_SYSROOT_DIR="$dest"
version=$(meson introspect "$build" --projectinfo |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
[ "$(pkg-config --modversion dcrw)" = "$version" ] || { echo "dcrw.pc version is not $version"; exit 1; }
flags=$(pkg-config --cflags --libs dcrw)
cc -std=c99 -Wall -Wextra -Werror -pedantic "$src/examples/quickstart.c" $flags -o "$dest/quickstart"
LD_LIBRARY_PATH="$libdir" "$dest/quickstart" "$dest"
# only the .so's dependency on the right soname, nothing from the build tree
objdump -p "$dest/quickstart" | grep -q "NEEDED *libdcrw.so.$major\$" ||
    { echo "quickstart does not need libdcrw.so.$major"; exit 1; }
echo "pkg-config: quickstart built and ran against the staged shared library"

# a private prefix without LD_LIBRARY_PATH: the rpath the README shows
cc -std=c99 "$src/examples/quickstart.c" $flags -Wl,-rpath,"$(pkg-config --variable=libdir dcrw)" \
    -o "$dest/quickstart-rpath"
mkdir "$dest/rpath-out"
(unset LD_LIBRARY_PATH; "$dest/quickstart-rpath" "$dest/rpath-out" >/dev/null)
echo "pkg-config: quickstart with -Wl,-rpath,\$(pkg-config --variable=libdir dcrw) ran without LD_LIBRARY_PATH"

# static: the archive itself plus everything --static says it needs
static_libs=$(pkg-config --static --libs dcrw | sed "s#-ldcrw\\( \\|\$\\)#$libdir/libdcrw.a #")
cc -std=c99 -Wall -Wextra -Werror -pedantic $(pkg-config --cflags dcrw) "$src/examples/quickstart.c" \
    $static_libs -o "$dest/quickstart-static"
if objdump -p "$dest/quickstart-static" | grep -q 'NEEDED *libdcrw'; then
    echo "quickstart-static still needs libdcrw.so"
    exit 1
fi
mkdir "$dest/static-out"
"$dest/quickstart-static" "$dest/static-out" >/dev/null
echo "pkg-config --static: quickstart linked with libdcrw.a and ran"

if command -v c++ >/dev/null 2>&1; then
    # from a copy, so that only the installed <dcrw/dcrw.hpp> can be found
    cp "$src/examples/cpp/example.cpp" "$dest/example.cpp"
    c++ -std=c++17 -Wall -Wextra -Werror -pedantic "$dest/example.cpp" $flags -o "$dest/cpp-example"
    LD_LIBRARY_PATH="$libdir" OPENBLAS_NUM_THREADS=1 "$dest/cpp-example" "$dest" >/dev/null
    echo "pkg-config: the C++ wrapper's example built with the installed dcrw.hpp and ran"
else
    echo "no C++ compiler: C++ consumer not checked"
fi

if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    init=$(find "$dest" -path '*/dcrw/__init__.py' | head -n 1)
    if [ -n "$init" ]; then
        pypath=$(dirname "$(dirname "$init")")
        where="installed package"
    else
        pypath="$src/examples/python"
        where="source tree's package (configure with -Dpython=true to install it)"
    fi
    (
        unset DCRW_LIBRARY
        cd "$dest"
        LD_LIBRARY_PATH="$libdir" PYTHONPATH="$pypath" PYTHONDONTWRITEBYTECODE=1 OPENBLAS_NUM_THREADS=1 \
            /usr/bin/python3 - "$so" <<'PY'
import os, sys
import numpy as np
import dcrw
# found by the system lookup, and it is the staged library
with open("/proc/self/maps") as maps:
    mapped = {line.split()[-1] for line in maps if "libdcrw.so" in line}
assert len(mapped) == 1 and os.path.samefile(mapped.pop(), sys.argv[1]), mapped
rng = np.random.default_rng(0)
x = (rng.random((8, 144)) > 0.7).astype(np.float32)
with dcrw.Model.create("draw", height=12, width=12, glimpses=3, enc_size=16, dec_size=16, z_size=4) as m:
    with dcrw.Trainer(m, learning_rate=1e-2) as t:
        losses = [t.step(x).loss for _ in range(20)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    s = m.sample(4, seed=1)
    assert s.shape == (4, 144) and np.all((s > 0) & (s < 1))
print("python: loss %.1f -> %.1f, 4 samples" % (losses[0], losses[-1]))
PY
    )
    echo "python: the $where trained and sampled with the staged library"
else
    echo "no NumPy for /usr/bin/python3: Python consumer not checked"
fi
echo "installed library, header and dcrw.pc work from outside builds"
