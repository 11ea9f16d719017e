#!/bin/sh
# Our benchmark and a PyTorch implementation of the same presets,
# interleaved, so that the machine's drift (up to 2x over minutes on shared
# hosts) hits both alike; quote the ratios of runs that are next to each
# other.
#
#   tests/bench/compare.sh [REFERENCE] [ROUNDS]
#
# REFERENCE  torch (the default): tests/bench/torch_draw.py, the project's
#            own PyTorch implementation of the four presets (checked against
#            the golden files by `meson test --suite bench-ref`), each of its
#            thread settings in turn, the best one per preset quoted last;
#            or a directory holding bench_peer.py, an external PyTorch peer
#            (run with --configs th1-tuned,th2-tuned).
# ROUNDS     how many times to run both (default 2).
#
# Environment: DCRW_BUILD, the meson build directory (default: build; a
# release build is what to measure); TORCH_CONFIGS, the thread settings of
# torch_draw.py (tNbM: N torch threads, M OpenBLAS threads; default: 1 and
# all CPUs for each). Both need Debian's python3-torch. Output: one block
# per run, ours then the reference's. dcrw-bench runs without its
# per-product table here (run it alone for that).
set -eu
root=$(CDPATH='' cd -- "$(dirname -- "$0")/../.." && pwd)
ref=${1:-torch}
rounds=${2:-2}
build=${DCRW_BUILD:-build}
case $build in /*) ;; *) build="$root/$build" ;; esac
bench="$build/tests/bench/dcrw-bench"
[ -x "$bench" ] || { echo "build first: meson setup build && ninja -C build" >&2; exit 2; }
/usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "needs python3-torch" >&2; exit 2; }
if [ "$ref" = torch ]; then
    set -- /usr/bin/python3 "$root/tests/bench/torch_draw.py" bench --steps 10
    [ -n "${TORCH_CONFIGS:-}" ] && set -- "$@" --configs "$TORCH_CONFIGS"
    label="PyTorch (tests/bench/torch_draw.py)"
elif [ -f "$ref/bench_peer.py" ]; then
    set -- /usr/bin/python3 "$ref/bench_peer.py" --steps 10 --configs th1-tuned,th2-tuned
    label="PyTorch peer ($ref)"
else
    echo "usage: $0 [torch | PEER_DIR] [ROUNDS]  (no bench_peer.py in $ref)" >&2
    exit 2
fi
i=1
while [ "$i" -le "$rounds" ]; do
    echo "## round $i: libdcrw ($(date -u +%H:%M:%S))"
    "$bench" --steps 10 --no-products
    echo
    echo "## round $i: $label ($(date -u +%H:%M:%S))"
    "$@"
    echo
    i=$((i + 1))
done
