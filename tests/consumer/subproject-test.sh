#!/bin/sh
# Vendoring: a fresh outside meson project (tests/consumer/subproject) with
# this source tree as subprojects/dcrw, configured with the fallback forced
# (so a system libdcrw cannot stand in), built, and its program run.
#   subproject-test.sh SOURCE_DIR
set -eu
src=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$src/tests/consumer/subproject/meson.build" "$src/tests/consumer/subproject/main.c" "$work/"
mkdir "$work/subprojects"
ln -s "$src" "$work/subprojects/dcrw"
cd "$work"
if ! meson setup build --force-fallback-for=dcrw >setup.log 2>&1; then
    cat setup.log
    exit 1
fi
grep -q "Subproject dcrw finished" setup.log || { cat setup.log; echo "libdcrw was not built as a subproject"; exit 1; }
if ! ninja -C build >build.log 2>&1; then
    cat build.log
    exit 1
fi
OPENBLAS_NUM_THREADS=1 ./build/consumer "$work"
[ -s "$work/consumer.safetensors" ] || { echo "no checkpoint written"; exit 1; }
echo "libdcrw built as a meson subproject and used through dependency('dcrw')"
