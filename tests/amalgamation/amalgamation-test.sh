#!/bin/sh
# The amalgamation as a vendoring project uses it: lib/amalgamation/
# amalgamate.py writes dcrw.c and dcrw.h from the library's sources, then,
# with nothing but a C compiler and the libraries libdcrw needs:
#  - dcrw.c compiles alone (no -I, no -D) as strict C11 with -Wall -Wextra
#    -Werror, with gcc and with clang, and defines no global name but
#    dcrw_*; with -DDCRW_HAVE_ZLIB=0 it links without zlib;
#  - tests/consumer/golden-loss.c, built on the amalgamation's dcrw.h and
#    linked with that object, computes the loss of a golden file (to 1e-5 of
#    its float64 reference), and the same loss (to 1e-6) as golden-loss
#    linked with the library this build made;
#  - without meson's probe, the library still finds openblas_set_num_threads
#    (a weak reference) and keeps OpenBLAS to one thread (blas-threads.c).
#   amalgamation-test.sh BUILD_DIR SOURCE_DIR
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
golden=$src/tests/golden/golden-dcrw-small.safetensors
export OPENBLAS_NUM_THREADS=1

python3 "$src/lib/amalgamation/amalgamate.py" --builddir "$build" --out "$tmp/amalgamation"
if grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$tmp/amalgamation/dcrw.c"; then
    echo "dcrw.c still includes a file of the source tree"
    exit 1
fi
# a program includes <dcrw/dcrw.h>: dcrw.h in a folder dcrw/ of its include path
mkdir -p "$tmp/include/dcrw"
cp "$tmp/amalgamation/dcrw.h" "$tmp/include/dcrw/"

# loss LOG: the loss golden-loss printed
loss() { sed -n 's/.*: loss \([-0-9.e+]*\), golden.*agrees$/\1/p' "$1"; }

cc -std=c11 -O2 -I"$src/include" "$src/tests/consumer/golden-loss.c" "$build/lib/libdcrw.so" \
    -Wl,-rpath,"$build/lib" -o "$tmp/golden-built"
"$tmp/golden-built" "$golden" > "$tmp/built.log" || { cat "$tmp/built.log"; exit 1; }
built=$(loss "$tmp/built.log")
[ -n "$built" ] || { cat "$tmp/built.log"; echo "no loss printed by golden-loss on the built library"; exit 1; }

checked=0
for compiler in gcc clang; do
    command -v "$compiler" > /dev/null || { echo "no $compiler: not checked"; continue; }
    case $compiler in
    gcc) defines=-DDCRW_HAVE_ZLIB=0 zlib= ;;
    *) defines= zlib=-lz ;;
    esac
    obj=$tmp/dcrw-$compiler.o
    # shellcheck disable=SC2086 # $defines and $zlib: zero or one word
    if ! "$compiler" -std=c11 -O2 -Wall -Wextra -Werror $defines -c "$tmp/amalgamation/dcrw.c" -o "$obj"; then
        echo "$compiler: dcrw.c does not compile"
        exit 1
    fi
    leaks=$(nm -g --defined-only "$obj" | awk 'NF == 3 && $3 !~ /^dcrw_/ { print "    " $3 }')
    if [ -n "$leaks" ]; then
        echo "$compiler: global symbols of dcrw.o without the dcrw_ prefix:"
        echo "$leaks"
        exit 1
    fi
    # shellcheck disable=SC2086
    "$compiler" -std=c11 -O2 -I"$tmp/include" "$src/tests/consumer/golden-loss.c" "$obj" \
        -lopenblas -lcjson $zlib -lm -pthread -o "$tmp/golden-$compiler"
    if [ -z "$zlib" ] && objdump -p "$tmp/golden-$compiler" | grep -q 'NEEDED *libz\.'; then
        echo "$compiler: built with -DDCRW_HAVE_ZLIB=0 and linked without -lz, the program still needs libz"
        exit 1
    fi
    "$tmp/golden-$compiler" "$golden" > "$tmp/$compiler.log" || { cat "$tmp/$compiler.log"; exit 1; }
    got=$(loss "$tmp/$compiler.log")
    if ! awk -v a="$got" -v b="$built" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d <= 1e-6 * (b < 0 ? -b : b)) }'; then
        echo "$compiler: the amalgamation computes loss $got, the built library $built"
        exit 1
    fi
    echo "$compiler $defines: $(cat "$tmp/$compiler.log")"
    # the weak openblas_set_num_threads, resolved by -lopenblas
    "$compiler" -O2 "$src/tests/amalgamation/blas-threads.c" "$obj" -lopenblas -lcjson $zlib -lm \
        -pthread -o "$tmp/blas-threads-$compiler"
    rc=0
    OPENBLAS_NUM_THREADS=2 "$tmp/blas-threads-$compiler" || rc=$?
    [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ] || { echo "$compiler: the library left OpenBLAS its threads"; exit 1; }
    checked=$((checked + 1))
done
[ "$checked" -gt 0 ] || { echo "neither gcc nor clang found"; exit 77; }
echo "the amalgamation builds with $checked compiler(s) and computes the built library's loss $built"
