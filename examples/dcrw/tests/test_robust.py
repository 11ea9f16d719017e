#!/usr/bin/python3
"""What the dcrw command guarantees when things go wrong around a run: how
it stops, what it refuses, and that it never hangs, overwrites its inputs,
reports NaN or leaves a run folder it cannot continue.

    test_robust.py CASE   CASE: overwrite fifo nan parents

Environment as test_cli.py. Exit 0 pass, 1 fail, 77 skip (no MNIST).
"""
import array
import json
import os
import shutil
import signal
import struct
import subprocess
import sys

from clitest import (DCRW, MNIST, SMALL, check, info_fields, listing, main as run_case, ok,
                     read_log, run, train_small)

HAVE_PNG = os.environ.get("DCRW_CLI_HAVE_PNG", "1") == "1"
HAVE_GIF = os.environ.get("DCRW_CLI_HAVE_GIF", "1") == "1"


def ckpt(d):
    return os.path.join(d, "checkpoint.safetensors")


def info_step(d):
    """The step of a run folder's checkpoint; -1 when it does not load."""
    rc, out, _ = run(["info", ckpt(d)])
    return int(info_fields(out).get("step", "-1")) if rc == 0 else -1


def logged_steps(d):
    """The steps of the training rows of log.csv, in order."""
    _, rows = read_log(d)
    return [int(r[0]) for r in rows if len(r) > 2 and r[2] != ""]


def start_long(d, extra=(), **kw):
    """A run with no end in sight, and its process."""
    return subprocess.Popen([DCRW, "train", "--data", MNIST, "--out", d, "--steps", "1000000",
                             "--progress-seconds", "0.2"] + SMALL + list(extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def wait_progress(p):
    """Read stdout up to the first progress line; whether there was one."""
    while True:
        line = p.stdout.readline()
        if not line:
            return False
        if line.startswith("step "):
            return True


def finish(p, timeout=120):
    try:
        return p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        check(False, "the process ends within %d s" % timeout)
        return out, err


def bounded(args, timeout=30):
    """run(), but a hang is a failure (the process is killed): (rc, out, err),
    rc None after a timeout."""
    try:
        return run(args, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "", "(no answer within %d s)" % timeout


def patch_tensor(path, name, lo, hi, value):
    """Set slices lo..hi-1 along dimension 1 of a float32 tensor in a
    safetensors file to value (a finite float32 the loader accepts)."""
    data = bytearray(open(path, "rb").read())
    (n,) = struct.unpack("<Q", data[:8])
    entry = json.loads(data[8:8 + n])[name]
    a, b = entry["data_offsets"]
    vals = array.array("f", bytes(data[8 + n + a:8 + n + b]))
    inner = 1
    for s in entry["shape"][2:]:
        inner *= s
    per = entry["shape"][1] * inner
    for i in range(len(vals)):
        if lo <= (i % per) // inner < hi:
            vals[i] = value
    data[8 + n + a:8 + n + b] = vals.tobytes()
    open(path, "wb").write(bytes(data))


# ------------------------------------------------------------------- cases
def case_overwrite(tmp):
    d = train_small(tmp, "run", 2)
    ck = ckpt(d)
    data = os.path.join(tmp, "data")
    os.mkdir(data)
    for n in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        shutil.copy(os.path.join(MNIST, n), data)
    images = os.path.join(data, "t10k-images-idx3-ubyte")
    hard = os.path.join(tmp, "hard.safetensors")
    os.link(ck, hard)
    soft = os.path.join(tmp, "soft.safetensors")
    os.symlink(ck, soft)
    linkdir = os.path.join(tmp, "linkdir")
    os.symlink(d, linkdir)
    png = os.path.join(tmp, "new.png")
    protected = [ck, images] + [os.path.join(d, n) for n in ("run.json", "log.csv")]
    before = {f: open(f, "rb").read() for f in protected}
    files_before = listing(tmp)
    cases = [
        (["sample", "--model", ck, "--out", ck], "same file"),
        (["sample", "--model", ck, "--gif", ck], "same file"),
        (["sample", "--model", ck, "--out", hard], "same file"),
        (["sample", "--model", soft, "--out", ck], "same file"),
        (["sample", "--model", ck, "--out", os.path.join(linkdir, "checkpoint.safetensors")],
         "same file"),
        (["sample", "--model", ck, "--out", png, "--gif", png], "same file"),
        (["sample", "--model", ck, "--out", d], "folder"),
        (["reconstruct", "--model", ck, "--data", data, "--n", "1", "--out", ck], "same file"),
        (["reconstruct", "--model", ck, "--data", data, "--n", "1", "--out", hard], "same file"),
        (["reconstruct", "--model", ck, "--data", data, "--n", "1", "--out", images],
         "same file"),
        (["plot", d, "--out", ck], "same file"),
        (["plot", d, "--out", os.path.join(d, "run.json")], "same file"),
        (["plot", d, "--out", os.path.join(d, "log.csv")], "same file"),
        (["plot", linkdir, "--out", soft], "same file"),
        (["plot", os.path.join(d, "log.csv"), "--out", os.path.join(linkdir, "log.csv")],
         "same file"),
    ]
    for args, word in cases:
        rc, out, err = run(args)
        name = "dcrw " + " ".join(a.replace(tmp, "$T") for a in args)
        check(rc == 2 and word in err and len(err.strip().splitlines()) == 1,
              "%s: exit 2 with one line naming %r (got %d: %r)" % (name, word, rc, err))
    for f, b in before.items():
        check(open(f, "rb").read() == b, "%s is unchanged" % f.replace(tmp, "$T"))
    check(listing(tmp) == files_before, "no file written: %r" % (listing(tmp) ^ files_before))
    # the default of plot, the run's own losses.svg, is still fine
    ok(["plot", d])
    check(info_step(d) == 2, "the model still loads")


def case_fifo(tmp):
    d = train_small(tmp, "run", 2)
    fifo = os.path.join(tmp, "fifo")
    os.mkfifo(fifo)
    # data folders with a FIFO for the images, or for the labels
    noimg = os.path.join(tmp, "noimg")
    os.mkdir(noimg)
    for n in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        os.mkfifo(os.path.join(noimg, n))
    nolab = os.path.join(tmp, "nolab")
    os.mkdir(nolab)
    os.symlink(os.path.join(MNIST, "t10k-images-idx3-ubyte"),
               os.path.join(nolab, "t10k-images-idx3-ubyte"))
    os.mkfifo(os.path.join(nolab, "t10k-labels-idx1-ubyte"))
    # run folders with a FIFO for run.json, for log.csv, for the checkpoint
    runs = {}
    for name in ("run.json", "log.csv", "checkpoint.safetensors"):
        r = os.path.join(tmp, "fifo-" + name)
        shutil.copytree(d, r)
        os.remove(os.path.join(r, name))
        os.mkfifo(os.path.join(r, name))
        runs[name] = r
    cases = [
        ["info", fifo],
        ["eval", "--model", fifo, "--data", MNIST],
        ["sample", "--model", fifo, "--out", os.path.join(tmp, "s.png")],
        ["reconstruct", "--model", fifo, "--data", MNIST, "--out", os.path.join(tmp, "r.png")],
        ["eval", "--model", ckpt(d), "--data", noimg],
        ["eval", "--model", ckpt(d), "--data", nolab],
        ["train", "--data", noimg, "--out", os.path.join(tmp, "new"), "--steps", "1"],
        ["plot", fifo, "--out", os.path.join(tmp, "p.svg")],
        ["plot", runs["log.csv"]],
    ]
    for args in cases:
        rc, out, err = bounded(args)
        name = "dcrw " + " ".join(a.replace(tmp, "$T") for a in args)
        check(rc == 2 and "FIFO" in err, "%s: refused at once, exit 2 (got %r: %r)"
              % (name, rc, err))


def case_nan(tmp):
    # finite weights so large that the model overflows on real images: the
    # loader accepts them, the losses are NaN
    d = train_small(tmp, "run", 30)
    big = os.path.join(tmp, "big.safetensors")
    shutil.copy(ckpt(d), big)
    patch_tensor(big, "enc.conv1.weight", 0, 1, 3e37)
    for extra in ([], ["--importance", "2"]):
        rc, out, err = run(["eval", "--model", big, "--data", MNIST, "--n", "200"] + extra)
        check(rc == 1 and "nan" not in out.lower() and "not a finite number" in err,
              "eval %s: no NaN printed, exit 1 with a message (got %d: %r %r)"
              % (" ".join(extra), rc, out, err))


def case_parents(tmp):
    d = train_small(tmp, "run", 2)
    if HAVE_PNG:
        s = os.path.join(tmp, "pictures", "x", "s.png")
        ok(["sample", "--model", ckpt(d), "--n", "4", "--out", s])
        check(os.path.isfile(s), "sample --out creates its folder")
    svg = os.path.join(tmp, "figures", "l.svg")
    ok(["plot", d, "--out", svg])
    check(os.path.isfile(svg), "plot --out creates its folder")
    # a parent that is a file: a clear refusal, nothing made
    f = os.path.join(tmp, "file")
    open(f, "w").close()
    before = listing(tmp)
    rc, _, err = run(["plot", d, "--out", os.path.join(f, "x", "l.svg")])
    check(rc == 2 and "not a folder" in err and f in err,
          "plot: refused naming the file in the way: %r" % err)
    check(listing(tmp) == before, "nothing made: %r" % (listing(tmp) ^ before))


CASES = {n[5:]: f for n, f in globals().items() if n.startswith("case_")}


def main():
    return run_case("test_robust.py", CASES)


if __name__ == "__main__":
    sys.exit(main())
