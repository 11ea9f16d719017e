#!/bin/sh
# A CMake project that vendors the amalgamation with add_subdirectory():
# amalgamate.py writes dcrw.c, dcrw.h, dcrw.hpp and CMakeLists.txt into
# vendor/dcrw of a fresh copy of tests/consumer/cmake/subdir, then, with
# Debian's cmake:
#  - the default build (a static dcrw::dcrw): golden-loss computes a golden
#    file's loss and needs no libdcrw.so; the C++ wrapper's example, which
#    includes <dcrw/dcrw.hpp>, builds and runs;
#  - -DBUILD_SHARED_LIBS=ON: golden-loss runs on the libdcrw.so built there,
#    which exports the DCRW_API functions and nothing else.
#   cmake-subdir-test.sh BUILD_DIR SOURCE_DIR
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OPENBLAS_NUM_THREADS=1
golden=$src/tests/golden/golden-dcrw-small.safetensors

mkdir "$tmp/src"
cp "$src/tests/consumer/cmake/subdir/CMakeLists.txt" "$src/tests/consumer/golden-loss.c" \
    "$src/examples/cpp/example.cpp" "$tmp/src/"
python3 "$src/lib/amalgamation/amalgamate.py" --builddir "$build" --out "$tmp/src/vendor/dcrw"

cmake_build() { # build dir, cmake arguments...
    b=$1
    shift
    if ! cmake -S "$tmp/src" -B "$tmp/$b" -DCMAKE_BUILD_TYPE=Release "$@" > "$tmp/$b.log" 2>&1 ||
        ! cmake --build "$tmp/$b" >> "$tmp/$b.log" 2>&1; then
        cat "$tmp/$b.log"
        echo "cmake: the add_subdirectory project does not build ($*)"
        exit 1
    fi
}

cmake_build static
if objdump -p "$tmp/static/golden-loss" | grep -q 'NEEDED *libdcrw'; then
    echo "the static dcrw::dcrw of add_subdirectory needs a libdcrw.so"
    exit 1
fi
"$tmp/static/golden-loss" "$golden"
echo "cmake add_subdirectory: the static dcrw::dcrw computed the golden loss"
if [ -x "$tmp/static/cpp-example" ]; then
    "$tmp/static/cpp-example" > /dev/null
    echo "cmake add_subdirectory: the C++ wrapper's example built and ran"
else
    echo "no C++ compiler for CMake: C++ consumer not checked"
fi

cmake_build shared -DBUILD_SHARED_LIBS=ON
so=$(find "$tmp/shared" -name 'libdcrw.so*' -type f | head -n 1)
[ -n "$so" ] || { echo "-DBUILD_SHARED_LIBS=ON built no libdcrw.so"; exit 1; }
(
    unset LD_LIBRARY_PATH
    ldd "$tmp/shared/golden-loss" | grep -q "libdcrw.so.* => $tmp/shared/" ||
        { ldd "$tmp/shared/golden-loss"; echo "golden-loss does not load the libdcrw.so built beside it"; exit 1; }
    "$tmp/shared/golden-loss" "$golden"
)
nm -D --defined-only "$so" | awk '{ print $3 }' | sort > "$tmp/exported"
grep -E '^DCRW_API ' "$tmp/src/vendor/dcrw/dcrw.h" |
    sed -E 's/^[^(]*[ *](dcrw_[a-z0-9_]+)\(.*/\1/' | sort -u > "$tmp/declared"
[ -s "$tmp/declared" ] || { echo "no DCRW_API declaration found in dcrw.h"; exit 1; }
if ! cmp -s "$tmp/exported" "$tmp/declared"; then
    echo "libdcrw.so of add_subdirectory: exports (>) against the DCRW_API functions of dcrw.h (<):"
    diff "$tmp/declared" "$tmp/exported" | grep '^[<>]' | sed 's/^/    /'
    exit 1
fi
echo "cmake add_subdirectory: the shared dcrw::dcrw computed the golden loss and exports exactly the $(wc -l < "$tmp/declared") DCRW_API functions"
