#!/bin/sh
# The test command: installs what is missing, fetches MNIST (the training
# tests need it), builds, and runs the whole suite twice: in a release build
# and in an AddressSanitizer + UndefinedBehaviorSanitizer build.
#
#   tests/run.sh            from anywhere; build dirs go to build/ and build-asan/
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

# one closing line over both builds
/usr/bin/python3 - <<'PY'
import json
passed = failed = 0
for d in ("build", "build-asan"):
    with open(d + "/meson-logs/testlog.json") as f:
        for line in f:
            r = json.loads(line)
            if r["result"] in ("OK", "EXPECTEDFAIL", "SKIP"):
                passed += 1
            else:
                failed += 1
print("tests: %d passed, %d failed" % (passed, failed))
PY
