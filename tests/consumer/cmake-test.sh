#!/bin/sh
# CMake projects on the installed library: installs into a DESTDIR, then
# configures tests/consumer/cmake with Debian's cmake and
# CMAKE_PREFIX_PATH=<staged prefix>, so that find_package(dcrw) reads the
# dcrwConfig.cmake that `meson install` wrote, and:
#  - checks that the package found is the staged one;
#  - runs golden-loss linked with dcrw::dcrw (the shared library, found at
#    run time through the rpath CMake gives a build-tree program, without
#    LD_LIBRARY_PATH) and with dcrw::dcrw_static (libdcrw.a and what it
#    needs, no libdcrw.so): each must compute a golden file's loss;
#  - runs the C++ wrapper's example, built through the same target;
#  - checks the version file: a newer minor or another major is refused;
#  - builds libdcrw again with -Ddefault_library=static (tests and examples
#    off), installs that, and checks that dcrw::dcrw is then the archive.
#   cmake-test.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$(cd "$2" && pwd)
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >/dev/null
prefix=$(meson introspect "$build" --buildoptions |
    /usr/bin/python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
config=$(find "$dest" -path '*/cmake/dcrw/dcrwConfig.cmake')
[ -n "$config" ] || { echo "no cmake/dcrw/dcrwConfig.cmake installed"; exit 1; }
[ -f "$(dirname "$config")/dcrwConfigVersion.cmake" ] || { echo "no dcrwConfigVersion.cmake"; exit 1; }

mkdir "$dest/src"
cp "$src/tests/consumer/cmake/CMakeLists.txt" "$src/tests/consumer/golden-loss.c" \
    "$src/examples/cpp/example.cpp" "$dest/src/"
configure() { # build dir, cmake arguments...
    b=$1
    shift
    cmake -S "$dest/src" -B "$dest/$b" -DCMAKE_PREFIX_PATH="$dest$prefix" "$@" >"$dest/$b.log" 2>&1
}
if ! configure build -DCMAKE_BUILD_TYPE=Release || ! cmake --build "$dest/build" >>"$dest/build.log" 2>&1; then
    cat "$dest/build.log"
    exit 1
fi
found=$(sed -n 's/^dcrw_DIR:PATH=//p' "$dest/build/CMakeCache.txt")
[ "$found" -ef "$(dirname "$config")" ] || { echo "find_package(dcrw) found $found, not the staged package"; exit 1; }

golden=$src/tests/golden/golden-dcrw-small.safetensors
(
    unset LD_LIBRARY_PATH
    OPENBLAS_NUM_THREADS=1 "$dest/build/golden-loss" "$golden"
    # the staged library, not one the system might have
    ldd "$dest/build/golden-loss" | grep -q "libdcrw.so.* => $dest/" ||
        { ldd "$dest/build/golden-loss"; echo "golden-loss does not load the staged libdcrw.so"; exit 1; }
)
echo "cmake: dcrw::dcrw linked the staged shared library and computed the golden loss"

if objdump -p "$dest/build/golden-loss-static" | grep -q 'NEEDED *libdcrw'; then
    echo "golden-loss-static still needs libdcrw.so"
    exit 1
fi
OPENBLAS_NUM_THREADS=1 "$dest/build/golden-loss-static" "$golden"
echo "cmake: dcrw::dcrw_static linked libdcrw.a and its dependencies, and computed the golden loss"

if [ -x "$dest/build/cpp-example" ]; then
    OPENBLAS_NUM_THREADS=1 "$dest/build/cpp-example" >/dev/null
    echo "cmake: the C++ wrapper's example built and ran"
else
    echo "no C++ compiler for CMake: C++ consumer not checked"
fi

# the version file: this minor or an older one of the same major only
version=$(meson introspect "$build" --projectinfo |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
major=${version%%.*}
minor=$(echo "$version" | cut -d. -f2)
for wanted in "$major.$((minor + 1))" "$((major + 1)).0"; do
    if configure "v$wanted" -DDCRW_VERSION_WANTED="$wanted"; then
        echo "find_package(dcrw $wanted) accepted version $version"
        exit 1
    fi
    grep -q "dcrwConfig.cmake, version: $version" "$dest/v$wanted.log" ||
        { cat "$dest/v$wanted.log"; echo "find_package(dcrw $wanted) failed for another reason"; exit 1; }
done
echo "cmake: find_package(dcrw $major.$((minor + 1))) and ($((major + 1)).0) refuse version $version"

# an installation of the archive alone: dcrw::dcrw is the static library
if ! meson setup "$dest/meson-static" "$src" -Ddefault_library=static -Dtests=false \
        -Dexamples=false -Ddocs=disabled >"$dest/meson-static.log" 2>&1 ||
    ! ninja -C "$dest/meson-static" >>"$dest/meson-static.log" 2>&1 ||
    ! meson install -C "$dest/meson-static" --destdir "$dest/static-root" --quiet >>"$dest/meson-static.log" 2>&1; then
    cat "$dest/meson-static.log"
    exit 1
fi
if find "$dest/static-root" -name 'libdcrw.so*' | grep -q .; then
    echo "-Ddefault_library=static -Dtests=false installed a shared library"
    exit 1
fi
if ! cmake -S "$dest/src" -B "$dest/build-static" -DCMAKE_PREFIX_PATH="$dest/static-root$prefix" \
        >"$dest/build-static.log" 2>&1 ||
    ! cmake --build "$dest/build-static" --target golden-loss >>"$dest/build-static.log" 2>&1; then
    cat "$dest/build-static.log"
    exit 1
fi
if objdump -p "$dest/build-static/golden-loss" | grep -q 'NEEDED *libdcrw'; then
    echo "dcrw::dcrw of a static-only installation needs libdcrw.so"
    exit 1
fi
OPENBLAS_NUM_THREADS=1 "$dest/build-static/golden-loss" "$golden"
echo "cmake: with only libdcrw.a installed, dcrw::dcrw is the archive and computed the golden loss"
echo "the CMake package works from outside builds"
