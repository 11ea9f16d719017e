#!/bin/sh
# The test command: installs what is missing, fetches MNIST (the training
# tests need it), builds, and runs the whole suite twice: in a release build
# and in an AddressSanitizer + UndefinedBehaviorSanitizer build; then short
# fuzzer runs (clang) and the thread test under ThreadSanitizer.
#
#   tests/run.sh            from anywhere; build dirs go to build/, build-asan/,
#                           build-fuzz/ and build-tsan/
set -eu
root=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
cd "$root"

sh examples/install-deps.sh
sh examples/fetch-mnist.sh
export DCRW_REQUIRE_MNIST=1

setup() { # dir, options...
    dir=$1
    shift
    if [ -f "$dir/build.ninja" ]; then
        meson configure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@" >/dev/null
    fi
}

setup build --buildtype=release
ninja -C build
meson test -C build --print-errorlogs --num-processes 2

# -fno-sanitize-recover turns every UBSan report into a failure
setup build-asan --buildtype=debugoptimized -Db_sanitize=address,undefined \
    -Db_lundef=false -Dc_args=-fno-sanitize-recover=all
ninja -C build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    meson test -C build-asan --print-errorlogs --num-processes 2 --timeout-multiplier 4

# The fuzzers, a short bounded run of each from a fixed seed (clang's
# libFuzzer, with ASan and UBSan over the library too); longer runs are by
# hand, see doc/RELIABILITY.md. Only the fuzz targets are built here.
(CC=clang && export CC && setup build-fuzz --buildtype=debugoptimized -Dfuzzing=true \
    -Dexamples=false -Db_sanitize=address,undefined -Db_lundef=false \
    -Dc_args='-fsanitize=fuzzer-no-link -fno-sanitize-recover=all')
# shellcheck disable=SC2046
ninja -C build-fuzz $(meson introspect build-fuzz --targets | /usr/bin/python3 -c '
import json, os, sys
print(" ".join(os.path.relpath(t["filename"][0], "build-fuzz")
               for t in json.load(sys.stdin) if t["name"].startswith("fuzz_")))')
meson test -C build-fuzz --no-rebuild --print-errorlogs --num-processes 2 --suite fuzz

# The const functions from several threads on one model, under
# ThreadSanitizer (target_clones resolvers run before TSan is up: no clones).
setup build-tsan --buildtype=debugoptimized -Db_sanitize=thread -Db_lundef=false \
    -Dexamples=false -Dc_args=-DDCRW_NO_CLONES
ninja -C build-tsan tests/test_threads
CK_FORK=no TSAN_OPTIONS=halt_on_error=1 \
    meson test -C build-tsan --no-rebuild --print-errorlogs test_threads

# one closing line over all the builds
/usr/bin/python3 - <<'PY'
import json
passed = failed = 0
for d in ("build", "build-asan", "build-fuzz", "build-tsan"):
    with open(d + "/meson-logs/testlog.json") as f:
        for line in f:
            r = json.loads(line)
            if r["result"] in ("OK", "EXPECTEDFAIL", "SKIP"):
                passed += 1
            else:
                failed += 1
print("tests: %d passed, %d failed" % (passed, failed))
PY
