#!/bin/sh
# Vendoring: a fresh outside meson project (tests/consumer/subproject) with
# this source tree as subprojects/dcrw, configured with the fallback forced
# (so a system libdcrw cannot stand in) and -Ddefault_library=static, and
# no option for libdcrw. Checks that libdcrw then stays quiet:
#  - it builds one target, the static library;
#  - the parent's `meson test` runs the parent's tests and none of ours;
#  - the parent's `meson install` installs of ours only libdcrw.a, the two
#    headers and dcrw.pc (no program, man page, model or CMake package);
#  - the parent's C and C++ programs link the archive and run.
# Then, configuring only: dcrw:tests=true and dcrw:examples=true turn the
# tests, the dcrw command, its man page and the model back on, and the
# default default_library gives the shared library alone.
#   subproject-test.sh SOURCE_DIR
set -eu
src=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$src/tests/consumer/subproject/meson.build" "$src/tests/consumer/subproject/main.c" \
    "$src/tests/consumer/subproject/main.cpp" "$work/"
mkdir "$work/subprojects"
ln -s "$src" "$work/subprojects/dcrw"
cd "$work"

setup() { # build dir, options...
    b=$1
    shift
    if ! meson setup "$b" --force-fallback-for=dcrw "$@" >"$b.log" 2>&1; then
        cat "$b.log"
        exit 1
    fi
    grep -q "Subproject dcrw finished" "$b.log" || { cat "$b.log"; echo "libdcrw was not built as a subproject"; exit 1; }
}
# what libdcrw defines in build dir $1: "TYPE NAME" of its targets, or the
# names of its tests
ours() {
    meson introspect "$1" "--$2" | /usr/bin/python3 -c '
import json, sys
for t in json.load(sys.stdin):
    if "type" in t and t.get("subproject") == "dcrw":
        print(t["type"], t["name"])
    elif "suite" in t and any(s.startswith("dcrw:") for s in t["suite"]):
        print(t["name"])' | sort
}

setup build -Ddefault_library=static
[ "$(ours build targets)" = "static library dcrw" ] ||
    { ours build targets; echo "libdcrw built more than its static library"; exit 1; }
[ -z "$(ours build tests)" ] || { ours build tests; echo "libdcrw's tests are in the parent's meson test"; exit 1; }
if ! ninja -C build >build.log 2>&1; then
    cat build.log
    exit 1
fi
if ! meson test -C build --no-rebuild >test.log 2>&1; then
    cat test.log build/meson-logs/testlog.txt
    exit 1
fi
ran=$(/usr/bin/python3 -c '
import json
print(" ".join(sorted(json.loads(l)["name"] for l in open("build/meson-logs/testlog.json"))))')
[ "$ran" = "consumer consumer-cpp" ] || [ "$ran" = "consumer" ] ||
    { echo "the parent's meson test ran: $ran"; exit 1; }
[ -s "$work/build/consumer.safetensors" ] || { echo "no checkpoint written"; exit 1; }
for exe in build/consumer build/consumer-cpp; do
    if [ -e "$exe" ] && objdump -p "$exe" | grep -q 'NEEDED *libdcrw'; then
        echo "$exe needs libdcrw.so: default_library=static was ignored"
        exit 1
    fi
done
echo "subproject: one static library, the parent's tests only ($ran), programs linked with libdcrw.a"

meson install -C build --destdir "$work/stage" --no-rebuild --quiet >/dev/null
installed=$(cd "$work/stage" && find . -type f | sed 's#.*/##' | sort | tr '\n' ' ')
[ "$installed" = "dcrw.h dcrw.hpp dcrw.pc libdcrw.a " ] ||
    { echo "the parent's meson install installed: $installed"; exit 1; }
echo "subproject: meson install installs $installed"

setup on -Ddcrw:tests=true -Ddcrw:examples=true
ours on tests | grep -qx test_golden || { echo "dcrw:tests=true did not add libdcrw's tests"; exit 1; }
ours on targets | grep -qx 'executable dcrw' || { echo "dcrw:examples=true did not build the dcrw command"; exit 1; }
plan=$(meson introspect on --installed)
for f in dcrw.1 dcrw-mnist.safetensors; do
    echo "$plan" | grep -q "/$f\"" || { echo "dcrw:examples=true does not install $f"; exit 1; }
done
echo "subproject: dcrw:tests=true and dcrw:examples=true turn the tests, the command, man page and model on"

setup shared
[ "$(ours shared targets)" = "shared library dcrw" ] ||
    { ours shared targets; echo "default_library=shared did not give the shared library alone"; exit 1; }
echo "subproject: default_library=shared gives the shared library alone"
echo "libdcrw built as a quiet meson subproject and used through dependency('dcrw')"
