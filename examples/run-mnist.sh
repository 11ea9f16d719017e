#!/bin/sh
# The main job, end to end on a fresh Debian machine: install what is
# missing, build, fetch MNIST, and show what the library sees in it.
#   examples/run-mnist.sh
set -eu
root=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
cd "$root"
sh examples/install-deps.sh
sh examples/fetch-mnist.sh
[ -f build/build.ninja ] || meson setup build --buildtype=release >/dev/null
ninja -C build >/dev/null
./build/examples/mnist-info data/mnist
out=${DCRW_OUT:-out}
mkdir -p "$out"
./build/examples/quickstart "$out" data/mnist
