#!/usr/bin/python3
"""What the dcrw command guarantees when things go wrong around a run: how
it stops, what it refuses, and that it never hangs, overwrites its inputs,
reports NaN or leaves a run folder it cannot continue.

    test_robust.py CASE   CASE: stop startup overwrite lock diverge savefail
                                fifo nan limits parents

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
def case_stop(tmp):
    # SIGTERM: the checkpoint is saved and said to be before the held-out
    # bound of the end (59,000 images: seconds of work); a second signal
    # during that evaluation ends it at once, the checkpoint already whole
    d = os.path.join(tmp, "term")
    p = start_long(d, ["--valid", "59000", "--eval-every", "1000000"])
    check(wait_progress(p), "a progress line before the signal")
    p.send_signal(signal.SIGTERM)
    saved_line, step_at_save, log_at_save = "", -2, -3
    while True:
        line = p.stdout.readline()
        if not line or "checkpoint is saved" in line:
            saved_line = line
            break
    if check("checkpoint is saved" in saved_line, "the stop says the checkpoint is saved"):
        step_at_save = info_step(d)
        log_at_save = logged_steps(d)[-1]
    check(step_at_save >= 1 and step_at_save == log_at_save,
          "when it says so, the checkpoint holds the last logged step (%d, log %d)"
          % (step_at_save, log_at_save))
    check("held-out bound on 59000 images" in p.stdout.readline(), "then it evaluates")
    p.send_signal(signal.SIGINT)
    out, err = finish(p)
    check(p.returncode == 0, "exit 0 after a second signal (got %d: %s)" % (p.returncode, err))
    check("evaluation interrupted" in out and "held-out bound (59000" not in out,
          "the second signal cuts the evaluation short: %r" % out)
    check(info_step(d) == step_at_save, "the checkpoint is the one saved first")
    check(not [f for f in os.listdir(d) if ".tmp." in f], "no temporary files left")

    # SIGHUP (a closed terminal) stops and saves like SIGTERM
    d = os.path.join(tmp, "hup")
    p = start_long(d)
    check(wait_progress(p), "a progress line before SIGHUP")
    p.send_signal(signal.SIGHUP)
    out, err = finish(p)
    check(p.returncode == 0 and "stopped by signal 1 " in out,
          "SIGHUP: stopped and saved, exit 0 (got %d: %s)" % (p.returncode, err))
    step = info_step(d)
    check(step >= 1 and step == logged_steps(d)[-1],
          "SIGHUP: the checkpoint holds the last logged step %d" % step)

    # a closed output (`dcrw train | head`): no SIGPIPE death, a stop and a save
    d = os.path.join(tmp, "pipe")
    p = start_long(d)
    check(wait_progress(p), "a progress line before the pipe closes")
    p.stdout.close()
    err = p.stderr.read()
    try:
        p.wait(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    check(p.returncode == 0 and "standard output" in err,
          "a closed stdout stops the run, exit 0 (got %d: %s)" % (p.returncode, err))
    step = info_step(d)
    check(step >= 1 and step == logged_steps(d)[-1],
          "closed stdout: the checkpoint holds the last logged step %d" % step)
    ok(["train", "--resume", d, "--steps", str(step + 2)])
    check(info_step(d) == step + 2, "and the run resumes")


def case_startup(tmp):
    straight = train_small(tmp, "straight", 7)
    want = open(ckpt(straight), "rb").read()
    # killed after run.json, before the first checkpoint (dcrw 0.2.0 also
    # wrote the log first): --resume starts it from step 0
    d = train_small(tmp, "half", 3)
    os.remove(ckpt(d))
    rc, out, err = run(["train", "--resume", d, "--steps", "7"])
    check(rc == 0 and "starting the run from step 0" in out,
          "--resume starts a folder without checkpoint anew: %d %s" % (rc, err))
    check(os.path.exists(ckpt(d)) and open(ckpt(d), "rb").read() == want,
          "and makes the run a straight one makes")
    check(logged_steps(d) == list(range(1, 8)), "one log row per step: %r" % logged_steps(d))
    rc, _, err = run(["train", "--data", MNIST, "--out", d, "--steps", "1"] + SMALL)
    check(rc == 2 and "--resume" in err, "a run folder is not taken by a new --out")
    # killed before run.json: the folder holds no run, and a new --out takes it
    e = os.path.join(tmp, "early")
    os.mkdir(e)
    open(os.path.join(e, ".lock"), "w").close()
    open(os.path.join(e, "log.csv"), "w").write("step,wall_s,lx,lz,loss,images_per_s,"
                                                "valid_bound\n")
    rc, _, err = run(["train", "--resume", e, "--steps", "7"])
    check(rc == 2 and "--out" in err, "--resume of a folder without run.json says: use --out")
    ok(["train", "--data", MNIST, "--out", e, "--steps", "7", "--eval-every", "5"] + SMALL)
    check(open(ckpt(e), "rb").read() == want, "a new --out starts such a folder")
    # a checkpoint without run.json: its flags are lost, so neither command
    # may guess them; both say so
    c = os.path.join(tmp, "orphan")
    os.mkdir(c)
    shutil.copy(ckpt(straight), ckpt(c))
    rc, _, err = run(["train", "--resume", c, "--steps", "9"])
    check(rc == 2 and "without run.json" in err, "--resume refuses a lone checkpoint: %s" % err)
    rc, _, err = run(["train", "--data", MNIST, "--out", c, "--steps", "1"] + SMALL)
    check(rc == 2 and open(ckpt(c), "rb").read() == want,
          "--out does not overwrite a lone checkpoint: %s" % err)


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


def case_lock(tmp):
    d = train_small(tmp, "run", 2)
    p = subprocess.Popen([DCRW, "train", "--resume", d, "--steps", "1000000",
                          "--progress-seconds", "0.2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    check(wait_progress(p), "the first process trains")
    rc, out, err = run(["train", "--resume", d, "--steps", "5"])
    check(rc == 2 and "in use" in err and d in err and len(err.strip().splitlines()) == 1,
          "a second writer is refused, naming the folder: %d %r" % (rc, err))
    check(("process %d" % p.pid) in err, "and the process that holds it")
    p.send_signal(signal.SIGINT)
    out, err = finish(p)
    check(p.returncode == 0, "the first process ends as usual: %s" % err)
    step = info_step(d)
    check(logged_steps(d) == list(range(1, step + 1)),
          "the log is the first process's alone: one row per step up to %d" % step)
    ok(["train", "--resume", d, "--steps", str(step + 1)])
    check(info_step(d) == step + 1, "the folder is free again once it ended")


def case_diverge(tmp):
    # --lr 10 without clipping overflows within a few steps: the run stops
    # with a message and exit 1, and saves nothing after the failure
    d = os.path.join(tmp, "div")
    rc, out, err = run(["train", "--data", MNIST, "--out", d, "--steps", "200", "--eval-every",
                        "0"] + SMALL + ["--lr", "10", "--clip", "0"])
    check(rc == 1 and "diverged" in err, "a diverged run exits 1 with a message: %d %s" % (rc, err))
    check("done:" not in out, "and is not reported done: %r" % out)
    check(info_step(d) == 0, "the checkpoint keeps the last save (step 0): %d" % info_step(d))
    check("holds step 0" in err, "the message says which step the checkpoint holds: %s" % err)
    check(len(logged_steps(d)) >= 1, "the steps made before are logged")


def case_savefail(tmp):
    # the final save fails (the checkpoint's name is taken by a folder):
    # exit 1, no "done", and the message says what the checkpoint holds
    d = os.path.join(tmp, "run")
    p = start_long(d)
    check(wait_progress(p), "training before the save fails")
    os.remove(ckpt(d))
    os.mkdir(ckpt(d))
    open(os.path.join(ckpt(d), "x"), "w").close()
    p.send_signal(signal.SIGTERM)
    out, err = finish(p)
    check(p.returncode == 1, "exit 1 when the last save fails (got %d)" % p.returncode)
    check("done:" not in out and "checkpoint is saved" not in out,
          "nothing says it was saved: %r" % out)
    check("cannot save" in err and "holds step 0" in err,
          "the failure and the step the checkpoint holds: %r" % err)


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
    ] + [["train", "--resume", r, "--steps", "5"] for r in runs.values()]
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
    # the same weights only on the channel of the image itself, and training
    # images that are blank: the steps are finite, the held-out bound is not
    data = os.path.join(tmp, "blank")
    os.mkdir(data)
    raw = open(os.path.join(MNIST, "train-images-idx3-ubyte"), "rb").read()
    with open(os.path.join(data, "train-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, 700, 28, 28) + bytes(500 * 784)
                + raw[16:16 + 200 * 784])
    rj = os.path.join(d, "run.json")
    flags = json.load(open(rj))
    flags["data"] = data
    json.dump(flags, open(rj, "w"))
    patch_tensor(ckpt(d), "enc.conv1.weight", 0, 1, 3e37)
    rc, out, err = run(["train", "--resume", d, "--steps", "33", "--eval-every", "1"])
    check(rc == 1 and "not a finite number" in err,
          "a non-finite held-out bound stops the run, exit 1 (got %d: %r)" % (rc, err))
    _, rows = read_log(d)
    check(not any("nan" in ",".join(r).lower() or "inf" in ",".join(r).lower() for r in rows),
          "the log holds no NaN or infinity")
    check("held-out nan" not in out.lower(), "the progress line shows no NaN")
    check(info_step(d) == 30, "the checkpoint keeps step 30: %d" % info_step(d))


def case_limits(tmp):
    for args in (["train", "--data", MNIST, "--out", os.path.join(tmp, "t"), "--steps", "1",
                  "--threads", "1025"] + SMALL,):
        rc, _, err = run(args)
        check(rc == 2 and "--threads" in err and "1024" in err,
              "--threads 1025 is refused by the command: %r" % err)
    check(not os.path.exists(os.path.join(tmp, "t")), "before anything is written")
    d = train_small(tmp, "run", 2)
    rc, _, err = run(["train", "--resume", d, "--steps", "3", "--threads", "4096"])
    check(rc == 2 and "--threads" in err, "--resume --threads 4096 is refused: %r" % err)
    rj = os.path.join(d, "run.json")
    good = json.load(open(rj))
    for key, value in (("checkpoint_minutes", -1), ("progress_seconds", -5), ("minutes", -1),
                       ("threads", 5000), ("eval_every", -1), ("batch", 0), ("lr", 0),
                       ("clip", -1), ("binarize", 3), ("epochs", 2.5), ("seed", -1),
                       ("steps", "x"), ("data", 7)):
        bad = dict(good)
        bad[key] = value
        json.dump(bad, open(rj, "w"))
        rc, _, err = run(["train", "--resume", d, "--steps", "3"])
        check(rc == 2 and key in err, "run.json %s = %r is refused by name: %r" % (key, value, err))
    text = json.dumps(good)
    for broken in (text[:-1], text + "x", text.replace('"batch"', '"batch": 1, "batch"', 1)):
        open(rj, "w").write(broken)
        rc, _, err = run(["train", "--resume", d, "--steps", "3"])
        check(rc == 2 and "run.json" in err, "a broken run.json is refused: %r" % err)
    json.dump(good, open(rj, "w"))
    ok(["train", "--resume", d, "--steps", "3"])
    check(info_step(d) == 3, "the good run.json, as JSON of another layout, still resumes")


def case_parents(tmp):
    d = os.path.join(tmp, "runs", "a", "b")
    ok(["train", "--data", MNIST, "--out", d, "--steps", "2"] + SMALL)
    check(info_step(d) == 2, "train --out creates the missing parent folders")
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
    for args in (["train", "--data", MNIST, "--out", os.path.join(f, "run"), "--steps", "1"]
                 + SMALL, ["plot", d, "--out", os.path.join(f, "x", "l.svg")]):
        rc, _, err = run(args)
        check(rc == 2 and "not a folder" in err and f in err,
              "%s: refused naming the file in the way: %r" % (args[0], err))
    check(listing(tmp) == before, "nothing made: %r" % (listing(tmp) ^ before))


CASES = {n[5:]: f for n, f in globals().items() if n.startswith("case_")}


def main():
    return run_case("test_robust.py", CASES)


if __name__ == "__main__":
    sys.exit(main())
