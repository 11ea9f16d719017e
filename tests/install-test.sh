#!/bin/sh
# Install into a DESTDIR, then build examples/quickstart.c against it the
# way an outside project would: pkg-config --cflags --libs dcrw. Checks the
# versioned shared object, its soname, the header and dcrw.pc, and that the
# program runs against the installed library.
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
so=$(find "$dest" -name 'libdcrw.so.*.*.*' | head -n 1)
[ -n "$so" ] || { echo "versioned libdcrw.so not installed"; exit 1; }
major=$(sed -n 's/^#define DCRW_VERSION_MAJOR \([0-9]*\)$/\1/p' "$src/include/dcrw/dcrw.h")
objdump -p "$so" | grep -q "SONAME *libdcrw.so.$major\$" || { echo "soname is not libdcrw.so.$major"; exit 1; }
# point pkg-config at the staged tree
export PKG_CONFIG_PATH="$(dirname "$pc")"
export PKG_CONFIG_SYSROOT_DIR="$dest"
flags=$(pkg-config --cflags --libs dcrw)
cc -std=c99 -Wall -Wextra -Werror -pedantic "$src/examples/quickstart.c" $flags -o "$dest/quickstart"
LD_LIBRARY_PATH="$(dirname "$so")" "$dest/quickstart" "$dest"
echo "installed library, header and dcrw.pc work from an outside build"
