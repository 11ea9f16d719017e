#!/bin/sh
# Our benchmark and the PyTorch peer's, interleaved, so that the machine's
# drift (up to 2x over minutes on shared hosts) hits both alike; quote the
# ratios of runs that are next to each other.
#
#   tests/bench/compare.sh [PEER_DIR] [ROUNDS]
#
# PEER_DIR holds bench_peer.py (the PyTorch implementation kept beside the
# project to measure against; default ../shared/peer); it needs Debian's
# python3-torch. Output: one block per run, ours then the peer's.
set -eu
root=$(CDPATH='' cd -- "$(dirname -- "$0")/../.." && pwd)
peer=${1:-"$root/../shared/peer"}
rounds=${2:-2}
bench="$root/build/tests/bench/dcrw-bench"
[ -x "$bench" ] || { echo "build first: meson setup build && ninja -C build" >&2; exit 2; }
/usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "needs python3-torch" >&2; exit 2; }
i=1
while [ "$i" -le "$rounds" ]; do
    echo "## round $i: libdcrw ($(date -u +%H:%M:%S))"
    "$bench" --steps 10
    echo
    echo "## round $i: PyTorch peer ($(date -u +%H:%M:%S))"
    /usr/bin/python3 "$peer/bench_peer.py" --steps 10 --configs th1-tuned,th2-tuned
    echo
    i=$((i + 1))
done
