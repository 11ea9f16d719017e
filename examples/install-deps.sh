#!/bin/sh
# Install what libdcrw needs to build, test and fetch MNIST, from Debian's
# packages, with Fashion-MNIST (30 MB; dcrw reads it where Debian puts it,
# /usr/share/datasets/fashion-mnist). Does nothing when everything is
# already there; uses sudo when not run as root.
set -eu

pkgs="gcc g++ meson ninja-build pkg-config libopenblas-dev check libcjson-dev zlib1g-dev libpng-dev
      libgif-dev ca-certificates python3-numpy python3-pytest python3-cffi doxygen
      clang libclang-rt-14-dev valgrind libopenmpi-dev openmpi-bin cmake
      python3-pip python3-venv python3-setuptools python3-wheel
      dataset-fashion-mnist"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
# commands that may come from elsewhere than Debian (npm ships inside some
# nodejs builds): only their absence matters
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -x /usr/bin/python3 ] || missing="$missing python3"
[ -z "$missing" ] && exit 0

echo "install-deps.sh: installing$missing"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
