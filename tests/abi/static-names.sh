#!/bin/sh
# libdcrw.a defines no global name but dcrw_*, so a program that links it
# statically (or vendors the sources) keeps all other names for itself:
#  - nm of the archive: every defined global symbol starts with dcrw_;
#  - generic-names.c, a program defining the names the internal modules
#    used to export (adam_update, pool_create, st_parse, ...), links with
#    every member of the archive (--whole-archive) and runs.
#   static-names.sh LIBDCRW_A SOURCE_DIR BUILD_DIR SANITIZE CC [CC_ARGS...]
set -eu
archive=$1
src=$2
build=$3
sanitize=$4
shift 4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail=0
# "member.o:" lines, then "ADDR TYPE name"; AddressSanitizer adds an
# __odr_asan.NAME beside each global NAME
nm -g --defined-only "$archive" > "$tmp/nm"
grep -q ' [TDBRVWui] dcrw_' "$tmp/nm" || { echo "nm found no dcrw_ symbol in $archive"; exit 1; }
leaks=$(awk '/:$/ { member = $1; next }
             NF == 3 { name = $3; sub(/^__odr_asan[._]/, "", name); if (name !~ /^dcrw_/) print "    " member " " $3 }' "$tmp/nm")
if [ -n "$leaks" ]; then
    echo "global symbols of $(basename "$archive") without the dcrw_ prefix (make them static or rename them dcrw_...):"
    echo "$leaks"
    fail=1
else
    echo "every global symbol of $(basename "$archive") starts with dcrw_"
fi

# the libraries libdcrw.a needs, from the build's uninstalled pkg-config file
deps=$(PKG_CONFIG_PATH="$build/meson-uninstalled" pkg-config --static --libs dcrw | sed 's/-ldcrw\b//')
flags=
[ "$sanitize" = none ] || flags="-fsanitize=$sanitize"
# shellcheck disable=SC2086 # word splitting of the flag lists is wanted
if ! "$@" $flags -std=c11 -Wall -Wextra -Werror -I"$src/include" "$src/tests/abi/generic-names.c" \
        -Wl,--whole-archive "$archive" -Wl,--no-whole-archive $deps -o "$tmp/generic-names" \
        > "$tmp/link.log" 2>&1; then
    grep 'multiple definition' "$tmp/link.log" || cat "$tmp/link.log"
    echo "a program defining the library's old generic names does not link with $(basename "$archive")"
    exit 1
fi
"$tmp/generic-names" || fail=1
exit "$fail"
