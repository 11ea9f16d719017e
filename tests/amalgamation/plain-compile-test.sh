#!/bin/sh
# The library's sources build without meson: every .c of the library
# compiles with `cc -O2 -c FILE -Iinclude` and nothing else (no generated
# header, no -D), as strict C11 with -Wall -Wextra -Werror, with gcc and
# with clang; the gcc objects, linked with tests/consumer/golden-loss.c,
# compute a golden file's loss.
#   plain-compile-test.sh BUILD_DIR SOURCE_DIR
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sources=$(python3 "$src/lib/amalgamation/amalgamate.py" --list-sources --builddir "$build")
[ -n "$sources" ] || { echo "no library sources listed"; exit 1; }
cd "$tmp" # nothing of the build folder within reach

checked=0
for compiler in gcc clang; do
    command -v "$compiler" > /dev/null || { echo "no $compiler: not checked"; continue; }
    mkdir "$tmp/$compiler"
    for s in $sources; do
        if ! "$compiler" -std=c11 -O2 -Wall -Wextra -Werror -I"$src/include" -c "$s" \
                -o "$tmp/$compiler/$(basename "$s" .c).o"; then
            echo "$compiler: $s does not compile on its own"
            exit 1
        fi
    done
    echo "$compiler: $(echo "$sources" | wc -l) sources compiled with -std=c11 -O2 -Wall -Wextra -Werror -I include"
    checked=$((checked + 1))
done
[ "$checked" -gt 0 ] || { echo "neither gcc nor clang found"; exit 77; }

cc=gcc
command -v gcc > /dev/null || cc=clang
"$cc" -O2 -I"$src/include" "$src/tests/consumer/golden-loss.c" "$tmp/$cc"/*.o \
    -lopenblas -lcjson -lz -lm -pthread -o "$tmp/golden-loss"
OPENBLAS_NUM_THREADS=1 "$tmp/golden-loss" "$src/tests/golden/golden-dcrw-small.safetensors"
