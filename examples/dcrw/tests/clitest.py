"""What the dcrw command's test scripts (test_cli.py, test_mpi.py) share:
where things are, failure bookkeeping, and the runner of one case."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

DCRW = os.environ.get("DCRW_CLI", "dcrw")
ROOT = os.environ.get("DCRW_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "../../.."))
MNIST = os.environ.get("DCRW_MNIST", os.path.join(ROOT, "data", "mnist"))

failures = []

# A model small enough to train in a second or two, on a slice of MNIST.
SMALL = ["--set", "glimpses=3", "--set", "dec_size=32", "--set", "z_size=8",
         "--set", "conv1=8", "--set", "conv2=8",
         "--train-n", "500", "--valid", "200", "--batch", "50", "--lr", "0.01"]


def run(args, timeout=600, **kw):
    p = subprocess.run([DCRW] + args, capture_output=True, text=True, timeout=timeout, **kw)
    return p.returncode, p.stdout, p.stderr


def ok(args, **kw):
    rc, out, err = run(args, **kw)
    if rc != 0:
        raise SystemExit("dcrw %s: exit %d\n%s%s" % (" ".join(args), rc, out, err))
    return out


def train_small(tmp, name, steps, extra=()):
    d = os.path.join(tmp, name)
    ok(["train", "--data", MNIST, "--out", d, "--steps", str(steps), "--eval-every", "5"]
       + SMALL + list(extra))
    return d


def read_log(run_dir):
    lines = open(os.path.join(run_dir, "log.csv")).read().splitlines()
    return lines[0], [l.split(",") for l in lines[1:]]


def info_fields(text):
    return {m.group(1): m.group(2).strip()
            for m in re.finditer(r"^(\S+)\s{2,}(.*)$", text, re.M)}


def listing(d):
    """The relative paths of every file below d."""
    out = set()
    for dirpath, _, files in os.walk(d):
        for f in files:
            out.add(os.path.relpath(os.path.join(dirpath, f), d))
    return out


def check(cond, what):
    """Record a failed property and go on; the case fails at the end."""
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    return cond


def main(script, cases, needs_mnist=lambda case: True, skip_reason=lambda: None):
    """Run the case named by argv[1] in a fresh temporary folder.

    Missing MNIST skips (exit 77), unless DCRW_REQUIRE_MNIST=1 (the test
    command sets it after fetching), where it fails: a test that needs the
    data must not pass silently without it."""
    if len(sys.argv) != 2 or sys.argv[1] not in cases:
        print("usage: %s {%s}" % (script, "|".join(cases)), file=sys.stderr)
        return 2
    case = sys.argv[1]
    if needs_mnist(case) and not os.path.isfile(os.path.join(MNIST, "train-images-idx3-ubyte")):
        if os.environ.get("DCRW_REQUIRE_MNIST") == "1":
            print("FAIL: no MNIST in %s (run examples/fetch-mnist.sh)" % MNIST)
            return 1
        print("SKIP: no MNIST in %s (run examples/fetch-mnist.sh)" % MNIST)
        return 77
    reason = skip_reason()
    if reason:
        print("SKIP:", reason)
        return 77
    tmp = tempfile.mkdtemp(prefix="dcrw-%s-" % script.split(".")[0])
    try:
        t0 = time.time()
        cases[case](tmp)
        print("%s: %d failures, %.1f s" % (case, len(failures), time.time() - t0))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0
