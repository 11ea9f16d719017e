#!/bin/sh
# A bounded libFuzzer run for the test command: the committed corpus is
# read, new inputs go to a scratch folder (the source tree is not written).
#   run-fuzzer.sh FUZZER CORPUS_DIR [libFuzzer options...]
set -eu
fuzzer=$1
corpus=$2
shift 2
scratch=$(mktemp -d "${TMPDIR:-/tmp}/dcrw-fuzz-XXXXXX")
trap 'rm -rf "$scratch"' EXIT
# libFuzzer's own exit status for a failure is 77, which meson reads as a
# skipped test: a failure must fail
"$fuzzer" -artifact_prefix="$scratch/" -error_exitcode=1 "$@" "$scratch" "$corpus" 2>"$scratch/log" || {
    status=$?
    tail -n 60 "$scratch/log" >&2
    for f in "$scratch"/crash-* "$scratch"/leak-* "$scratch"/oom-* "$scratch"/timeout-*; do
        [ -f "$f" ] && { echo "input ($f):"; od -c "$f" | head -n 40; } >&2
    done
    exit "$status"
}
tail -n 8 "$scratch/log"
