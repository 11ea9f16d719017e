#!/bin/sh
# The test command: installs what is missing, fetches MNIST (the training
# tests need it), builds, and runs the whole suite twice: in a release build
# and in an AddressSanitizer + UndefinedBehaviorSanitizer build; then short
# fuzzer runs (clang) and the thread test under ThreadSanitizer. A failing
# suite does not stop the others; the last line counts them all,
# "tests: N passed, N failed, N skipped", and the exit status is 1 if any
# failed (a build that does not compile stops at once).
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
status=0
meson test -C build --print-errorlogs --num-processes 2 || status=1

# -fno-sanitize-recover turns every UBSan report into a failure
setup build-asan --buildtype=debugoptimized -Db_sanitize=address,undefined \
    -Db_lundef=false -Dc_args=-fno-sanitize-recover=all
ninja -C build-asan
# the kill-and-resume soak runs 200 trials in the release build, 50 here
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    DCRW_SOAK_TRIALS=50 meson test -C build-asan --print-errorlogs --num-processes 2 --timeout-multiplier 4 ||
    status=1

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
meson test -C build-fuzz --no-rebuild --print-errorlogs --num-processes 2 --suite fuzz ||
    status=1

# The const functions from several threads on one model, under
# ThreadSanitizer (target_clones resolvers run before TSan is up: no clones).
setup build-tsan --buildtype=debugoptimized -Db_sanitize=thread -Db_lundef=false \
    -Dexamples=false -Dc_args=-DDCRW_NO_CLONES
ninja -C build-tsan tests/test_threads
CK_FORK=no TSAN_OPTIONS=halt_on_error=1 \
    meson test -C build-tsan --no-rebuild --print-errorlogs test_threads || status=1

# one closing line over all the builds: meson's OK and EXPECTEDFAIL pass,
# SKIP (exit 77: a missing tool, MPI, a compiler) is counted apart, anything
# else fails. The skipped tests are named above it, and so are the pytest
# tests skipped inside the python suite (which meson sees as one test).
/usr/bin/python3 - <<'PY' || status=1
import json, re
passed = failed = skipped = 0
notes = []
for d in ("build", "build-asan", "build-fuzz", "build-tsan"):
    with open(d + "/meson-logs/testlog.json") as f:
        for line in f:
            r = json.loads(line)
            name = r["name"].split(" / ")[-1]
            if r["result"] in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif r["result"] == "SKIP":
                skipped += 1
                notes.append("skipped: %s (%s)" % (name, d))
            else:
                failed += 1
            if name == "python":
                out = r.get("stdout") or ""
                # pytest -ra: "SKIPPED [1] ../../../tests/python/x.py:53: why"
                notes += ["python (%s): %s" % (d, re.sub(r"(\.\./)+", "", s.strip()))
                          for s in re.findall(r"^SKIPPED .*$", out, re.M)]
for n in notes:
    print(n)
print("tests: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
PY
exit $status
