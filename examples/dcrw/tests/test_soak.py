#!/usr/bin/python3
"""Kill-and-resume soak of dcrw train: many short runs, each stopped by a
random SIGKILL, SIGTERM, SIGINT or SIGHUP at a random moment (start-up
included: before the run folder exists, between its files, during a save),
sometimes stopped again while it resumes, then resumed to the end.

After every stop: the command ended within a minute (no hang); if the
folder holds run.json, its checkpoint loads (or is absent, and --resume
starts anew); after a catchable signal the checkpoint holds every step
log.csv logged; after SIGKILL the rows beyond the checkpoint are counted
as steps to redo. At the end of every trial the run equals a straight run
bit for bit: the same checkpoint bytes, one log row per step with the same
losses. A folder neither --resume nor a new --out could continue is stuck.

    test_soak.py soak

DCRW_SOAK_TRIALS (default 200) and DCRW_SOAK_SEED (default 14) change the
trials. Exit 0 pass, 1 fail, 77 skip (no MNIST).
"""
import os
import random
import signal
import struct
import subprocess
import sys
import time

from clitest import DCRW, MNIST, check, info_fields, main as run_case, read_log, run

STEPS = 120
SIGNALS = [signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP]
# a tiny model on a 300-image slice: a whole run takes a fraction of a second
TINY = ["--set", "glimpses=2", "--set", "dec_size=16", "--set", "z_size=4", "--set", "conv1=4",
        "--set", "conv2=4", "--train-n", "200", "--valid", "100", "--batch", "20",
        "--lr", "0.01", "--eval-every", "7", "--threads", "1", "--checkpoint-minutes", "0.0005",
        "--progress-seconds", "0.05"]


def slice_of_mnist(d, n=300):
    os.mkdir(d)
    raw = open(os.path.join(MNIST, "train-images-idx3-ubyte"), "rb").read()
    with open(os.path.join(d, "train-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + raw[16:16 + n * 784])
    return d


def new_run(data, d):
    return ["train", "--data", data, "--out", d, "--steps", str(STEPS)] + TINY


def resume(d):
    return ["train", "--resume", d, "--steps", str(STEPS)]


def ckpt_step(d):
    """The checkpoint's step; None without one; -1 when it does not load."""
    ck = os.path.join(d, "checkpoint.safetensors")
    if not os.path.exists(ck):
        return None
    rc, out, _ = run(["info", ck])
    return int(info_fields(out).get("step", "-1")) if rc == 0 else -1


def training_rows(d):
    if not os.path.exists(os.path.join(d, "log.csv")):
        return []
    _, rows = read_log(d)
    return [r for r in rows if len(r) == 7 and r[2] != ""]


class Soak:
    def __init__(self, tmp, rng):
        self.tmp, self.rng = tmp, rng
        self.data = slice_of_mnist(os.path.join(tmp, "data"))
        self.n = {k: 0 for k in ("trials", "stops", "hangs", "lost", "redone", "redone_max",
                                 "stuck", "bad_ckpt", "mismatch", "no_folder", "no_run_json",
                                 "no_ckpt", "finished", "second_signal", "stray_tmp",
                                 "before_handlers")}
        self.by_signal = {s.name: 0 for s in SIGNALS}
        ref = os.path.join(tmp, "reference")
        t0 = time.time()
        rc, _, err = run(new_run(self.data, ref))
        self.duration = time.time() - t0
        # the quickest of three: the time a run takes on a quiet machine
        for k in range(2):
            t0 = time.time()
            run(new_run(self.data, os.path.join(tmp, "timing%d" % k)))
            self.duration = min(self.duration, time.time() - t0)
        if not check(rc == 0, "the reference run: %s" % err):
            raise SystemExit(1)
        self.ref_ckpt = open(os.path.join(ref, "checkpoint.safetensors"), "rb").read()
        self.ref_rows = [r[:1] + r[2:5] for r in training_rows(ref)]

    def interrupt(self, args, d):
        """Start args, stop it with a random signal at a random moment, then
        check what the folder holds."""
        sig = self.rng.choice(SIGNALS)
        p = subprocess.Popen([DCRW] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.wait_for_moment(p, d)
        p.send_signal(sig)
        if sig != signal.SIGKILL and self.rng.random() < 0.25:
            time.sleep(self.rng.uniform(0.0, 0.05))
            if p.poll() is None:
                p.send_signal(sig)
                self.n["second_signal"] += 1
        try:
            out, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            self.n["hangs"] += 1
            check(False, "%s: no exit within 60 s of signal %s" % (args[:2], sig.name))
            return
        self.n["stops"] += 1
        self.by_signal[sig.name] += 1
        # the banner comes after the handlers are in place
        started = b"training:" in out or b"resuming:" in out
        self.check_state(d, sig, p.returncode, started, err.decode(errors="replace"))

    def wait_for_moment(self, p, d):
        """A third of the stops come in the first 50 ms (start-up, the
        folder's first files), a third at a random time of a whole run, a
        third once log.csv shows a random step (mid-training whatever the
        machine's load), each with a few ms of jitter."""
        kind = self.rng.randrange(3)
        if kind == 0:
            time.sleep(self.rng.uniform(0.0, 0.05))
            return
        if kind == 1:
            time.sleep(self.rng.uniform(0.0, self.duration))
            return
        target = self.rng.randrange(1, STEPS)
        deadline = time.time() + 60
        while p.poll() is None and time.time() < deadline:
            rows = training_rows(d) if os.path.isdir(d) else []
            if rows and int(rows[-1][0]) >= target:
                break
            time.sleep(0.002)
        time.sleep(self.rng.uniform(0.0, 0.01))

    def check_state(self, d, sig, rc, started, err):
        if sig != signal.SIGKILL and rc < 0 and not started:
            # killed before its handlers were in place: it had done nothing
            self.n["before_handlers"] += 1
        elif sig != signal.SIGKILL:
            # from then on these signals ask for a stop and never kill
            check(rc == 0, "%s: a clean stop (exit %d): %s" % (sig.name, rc, err))
        if not os.path.isdir(d):
            self.n["no_folder"] += 1
            return
        if not os.path.exists(os.path.join(d, "run.json")):
            self.n["no_run_json"] += 1
            return
        step = ckpt_step(d)
        if step is None:
            self.n["no_ckpt"] += 1
            return
        if step < 0:
            self.n["bad_ckpt"] += 1
            check(False, "the checkpoint does not load after %s" % sig.name)
            return
        if step == STEPS:
            self.n["finished"] += 1
        logged = [int(r[0]) for r in training_rows(d)]
        ahead = max(logged) - step if logged and max(logged) > step else 0
        if sig == signal.SIGKILL:
            # uncaught: the rows after the last periodic save are redone
            self.n["redone"] += ahead
            self.n["redone_max"] = max(self.n["redone_max"], ahead)
        elif rc >= 0 or started:
            self.n["lost"] += ahead
            check(ahead == 0, "%s (exit %d): log.csv is %d steps ahead of the checkpoint "
                  "(step %d): %s" % (sig.name, rc, ahead, step, err))

    def go_on(self, data, d):
        """The command that continues d: --resume for a run, else --out."""
        if os.path.exists(os.path.join(d, "run.json")):
            return resume(d)
        return new_run(data, d)

    def trial(self, i):
        d = os.path.join(self.tmp, "t%03d" % i)
        self.interrupt(new_run(self.data, d), d)
        if self.rng.random() < 0.5:
            self.interrupt(self.go_on(self.data, d), d)
        rc, _, err = run(self.go_on(self.data, d), timeout=120)
        if not check(rc == 0, "trial %d: the run cannot be continued: %s" % (i, err)):
            self.n["stuck"] += 1
            return
        rows = [r[:1] + r[2:5] for r in training_rows(d)]
        same = open(os.path.join(d, "checkpoint.safetensors"), "rb").read() == self.ref_ckpt
        if not check(same and rows == self.ref_rows,
                     "trial %d: the run differs from the straight one (checkpoint %s, %d log "
                     "rows of %d)" % (i, "same" if same else "differs", len(rows), STEPS)):
            self.n["mismatch"] += 1
        stray = [f for f in os.listdir(d) if ".tmp." in f or f.startswith(".dcrw-")]
        if stray:
            print("trial %d: temporary files left: %s" % (i, " ".join(stray)))
        self.n["stray_tmp"] += len(stray)
        self.n["trials"] += 1


def case_soak(tmp):
    trials = int(os.environ.get("DCRW_SOAK_TRIALS", "200"))
    rng = random.Random(int(os.environ.get("DCRW_SOAK_SEED", "14")))
    t0 = time.time()
    soak = Soak(tmp, rng)
    for i in range(trials):
        soak.trial(i)
    n = soak.n
    print("soak: %d trials in %.0f s (a straight run takes %.2f s), %d stops: %s"
          % (n["trials"], time.time() - t0, soak.duration, n["stops"],
             ", ".join("%s %d" % kv for kv in soak.by_signal.items())))
    print("soak: stopped before the folder existed %d, before run.json %d, before the first "
          "checkpoint %d, after the last step %d; caught signals that came before the "
          "handlers %d; second signals %d"
          % (n["no_folder"], n["no_run_json"], n["no_ckpt"], n["finished"],
             n["before_handlers"], n["second_signal"]))
    print("soak: lost steps %d, steps redone after SIGKILL %d (at most %d at once), stuck "
          "folders %d, hangs %d, unloadable checkpoints %d, runs unlike the straight one %d, "
          "stray temporary files %d"
          % (n["lost"], n["redone"], n["redone_max"], n["stuck"], n["hangs"], n["bad_ckpt"],
             n["mismatch"], n["stray_tmp"]))
    check(n["trials"] == trials, "every trial ends in a finished run")


def main():
    return run_case("test_soak.py", {"soak": case_soak})


if __name__ == "__main__":
    sys.exit(main())
