#!/usr/bin/python3
"""End-to-end tests of `mpirun -n K dcrw train` against one process, on a
small model and a slice of the real MNIST.

    test_mpi.py CASE    CASE: equal tolerance uneven resume kill signal badinput

Environment: DCRW_CLI (the executable, built with MPI), DCRW_MPIRUN
(mpirun), DCRW_SOURCE_ROOT (MNIST is read from its data/mnist, or from
DCRW_MNIST). Exit 0 pass, 1 fail, 77 skip (no MNIST or no mpirun).

Why some comparisons are exact: process r of K takes the same contiguous
share of each batch as thread r of K in one process, each share's gradient
is computed by the same code on the same images with the same noise, and
with two shares the only difference left is g0 + g1 (threads) against the
MPI sum, which for two terms is the same float whatever the order. So
(2 processes x 1 thread) must equal (1 process x 2 threads) bit for bit.
"""
import json
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import time

from clitest import DCRW, MNIST, check, main as run_case

MPIRUN = os.environ.get("DCRW_MPIRUN", shutil.which("mpirun") or "mpirun")

# A model small enough to train in a second or two, on a slice of MNIST.
SMALL = ["--set", "glimpses=3", "--set", "dec_size=32", "--set", "z_size=8",
         "--set", "conv1=8", "--set", "conv2=8",
         "--train-n", "500", "--valid", "200", "--lr", "0.01", "--eval-every", "10"]

# Open MPI as root in a container: root must be allowed explicitly, more
# processes than cores must be allowed, and the single-copy mechanism
# (CMA, which needs ptrace rights containers often withhold) is not used.
MPI_ENV = dict(os.environ,
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_btl_vader_single_copy_mechanism="none",
               OMPI_MCA_rmaps_base_oversubscribe="1")
# under ASan, Open MPI's own end-of-process allocations are not ours
MPI_ENV["LSAN_OPTIONS"] = ":".join(
    o for o in (os.environ.get("LSAN_OPTIONS"), "fast_unwind_on_malloc=0",
                "suppressions=" + os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                               "lsan-mpi.supp")) if o)

def mpirun_args(k):
    return [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", str(k)]


def run(args, k=None, timeout=600, env=None):
    """dcrw ARGS alone (k None) or under mpirun -n k: (rc, stdout, stderr)."""
    cmd = ([DCRW] if k is None else mpirun_args(k) + [DCRW]) + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       env=env or MPI_ENV)
    return p.returncode, p.stdout, p.stderr


def ok(args, k=None, **kw):
    rc, out, err = run(args, k, **kw)
    if rc != 0:
        raise SystemExit("%s dcrw %s: exit %d\n%s%s" % ("" if k is None else "mpirun -n %d" % k,
                                                        " ".join(args), rc, out, err))
    return out


def train(tmp, name, steps, threads, k=None, batch=50, extra=(), small=SMALL):
    d = os.path.join(tmp, name)
    out = ok(["train", "--data", MNIST, "--out", d, "--steps", str(steps),
              "--threads", str(threads), "--batch", str(batch)] + small + list(extra), k)
    return d, out


def tensors(run_dir):
    """{name: raw bytes} of a safetensors checkpoint, and its metadata."""
    data = open(os.path.join(run_dir, "checkpoint.safetensors"), "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    out = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        check(t["dtype"] == "F32", "%s is F32" % name)
        out[name] = body[a:b]
    return out, meta


def floats(raw):
    return struct.unpack("<%df" % (len(raw) // 4), raw)


def log_rows(run_dir):
    """[(step, lx, lz, loss)] of the training rows and [(step, bound)] of
    the held-out rows of log.csv."""
    lines = open(os.path.join(run_dir, "log.csv")).read().splitlines()[1:]
    rows = [l.split(",") for l in lines]
    train_rows = [(int(r[0]), float(r[2]), float(r[3]), float(r[4])) for r in rows if r[2]]
    valid_rows = [(int(r[0]), float(r[6])) for r in rows if r[6]]
    return train_rows, valid_rows


def info_step(run_dir):
    rc, out, err = run(["info", os.path.join(run_dir, "checkpoint.safetensors")])
    if not check(rc == 0, "dcrw info loads the checkpoint of %s: %s" % (run_dir, err)):
        return -1
    for line in out.splitlines():
        if line.startswith("step "):
            return int(line.split()[1])
    check(False, "dcrw info reports a step")
    return -1


def same_params(a, b, what):
    ta, ma = tensors(a)
    tb, mb = tensors(b)
    check(sorted(ta) == sorted(tb) and len(ta) > 10, "%s: the same tensor names" % what)
    differ = [n for n in ta if ta[n] != tb.get(n)]
    check(not differ, "%s: bit-identical tensors (model and Adam moments); differ: %s"
          % (what, differ[:5]))
    check(ma.get("dcrw.step") == mb.get("dcrw.step"), "%s: the same step" % what)


# Two-line losses are sums of 25 + 25 per-image doubles against 50 in one
# sum: they agree to ~1e-13 relative, so the six printed decimals of values
# near 100..600 agree but for a rounding carry in the last digit.
LOSS_ABS = 2e-6


def same_losses(a, b, what, steps):
    ra, va = log_rows(a)
    rb, vb = log_rows(b)
    check([r[0] for r in ra] == list(range(1, steps + 1)) and [r[0] for r in rb] == [r[0] for r in ra],
          "%s: one log row per step in both" % what)
    worst = max((abs(x - y) for p, q in zip(ra, rb) for x, y in zip(p[1:], q[1:])), default=0)
    check(worst <= LOSS_ABS, "%s: logged losses agree to %g (worst %g)" % (what, LOSS_ABS, worst))
    # the held-out bound is process 0's evaluation of the same parameters,
    # on its own thread count: the per-image terms agree, their chunked
    # float arithmetic differs in the last bits
    check([s for s, _ in va] == [s for s, _ in vb] and len(va) >= 2
          and all(abs(x - y) <= 1e-6 * abs(x) for (_, x), (_, y) in zip(va, vb)),
          "%s: the same held-out bounds: %r vs %r" % (what, va, vb))


# ------------------------------------------------------------------- cases
def case_equal(tmp):
    one, _ = train(tmp, "one", 20, threads=2)
    two, out = train(tmp, "two", 20, threads=1, k=2)
    check(out.count("training: preset") == 1, "one report for the job (process 0's)")
    check("2 processes share each batch: 25 images each" in out, "the split is reported")
    same_params(one, two, "1 process x 2 threads vs 2 processes x 1 thread, 20 steps")
    same_losses(one, two, "1x2 vs 2x1", 20)
    check(sorted(os.listdir(two)) == sorted(os.listdir(one)), "the same run folder contents")
    # the comparison can fail: a run of another seed differs
    other, _ = train(tmp, "other", 20, threads=1, k=2, extra=["--seed", "2"])
    ta, _ = tensors(one)
    tb, _ = tensors(other)
    check(any(ta[n] != tb[n] for n in ta), "another seed gives other parameters")


def case_labels(tmp):
    """The models that take labels split a batch as the others: the
    classifier (on fresh cluttered canvases, keyed by the image, so a
    process draws its share's canvases) and a conditional dcrw, each the
    same on 2 processes as on 2 threads."""
    classifier = ["--preset", "draw-classify", "--set", "glimpses=2", "--set", "enc_size=16",
                  "--set", "read_n=4", "--clutter", "40", "--train-n", "500", "--valid", "200",
                  "--lr", "0.01", "--eval-every", "10"]
    for what, small in (("classifier", classifier), ("conditional", SMALL + ["--conditional"])):
        one, _ = train(tmp, what + "-one", 20, threads=2, batch=51, small=small)
        two, out = train(tmp, what + "-two", 20, threads=1, k=2, batch=51, small=small)
        check("2 processes share each batch: 26 images and 25" in out or "processes share" in out,
              "%s: the split is reported" % what)
        same_params(one, two, "%s: 1 process x 2 threads vs 2 processes x 1 thread" % what)
        same_losses(one, two, what, 20)


def case_uneven(tmp):
    # 51 = 26 + 25: the first process takes one more, as the first thread does
    one, _ = train(tmp, "one", 20, threads=2, batch=51)
    two, out = train(tmp, "two", 20, threads=1, k=2, batch=51)
    check("26 images in the first 1, 25 in the others" in out, "the uneven split is reported: "
          + out.splitlines()[1] if len(out.splitlines()) > 1 else out)
    same_params(one, two, "batch 51: 1x2 vs 2x1")
    same_losses(one, two, "batch 51: 1x2 vs 2x1", 20)
    # 3 processes: 17 + 17 + 16; three partial sums may be added in another
    # order than the threads add them, so this one is compared as in
    # case_tolerance
    three, out = train(tmp, "three", 20, threads=1, k=3, batch=50)
    check("17 images in the first 2, 16 in the others" in out, "the 3-way split is reported")
    ref, _ = train(tmp, "ref3", 20, threads=3, batch=50)
    close_runs(ref, three, "1x3 vs 3x1")


def param_vector(run_dir):
    t, _ = tensors(run_dir)
    return [v for n in sorted(t) if not n.startswith("adam.") for v in floats(t[n])]


def close_runs(a, b, what):
    """a and b: 20-step runs of the same flags (lr 0.01) whose gradient
    sums were added in different orders. Rounding (float32, ~6e-8 relative
    per addition) separates their gradients by ~1e-6 relative at the first
    step; Adam's update m/sqrt(v) is scale-free, so the separation stays
    relative to the update, and 20 steps of a smooth trajectory grow it far
    less than 1000x. The scale is one Adam step, lr * sqrt(parameters) (each
    parameter moves by about lr per step): the runs may end at most 1e-3 of
    it apart, and their losses within 1e-4 relative. A run of another seed
    is the control: it is many steps away, which the bound must reject."""
    pa, pb = param_vector(a), param_vector(b)
    step = 0.01 * math.sqrt(len(pa))
    apart = math.sqrt(sum((x - y) ** 2 for x, y in zip(pa, pb)))
    print("%s: runs %.4g apart, %.3g of one Adam step" % (what, apart, apart / step))
    check(apart <= 1e-3 * step, "%s: the runs are within 1e-3 of an Adam step (%g vs %g)"
          % (what, apart, step))
    ra, _ = log_rows(a)
    rb, _ = log_rows(b)
    worst = max(abs(x - y) / abs(x) for p, q in zip(ra, rb) for x, y in zip(p[1:], q[1:]) if x)
    print("%s: worst relative loss difference %.3g" % (what, worst))
    check(len(ra) == len(rb) == 20 and worst <= 1e-4,
          "%s: losses within 1e-4 relative (worst %g)" % (what, worst))
    return step


def case_tolerance(tmp):
    # one thread sums the whole batch in one pass, two processes in two
    # halves: not the same floats, only the same mathematics
    one, _ = train(tmp, "one", 20, threads=1)
    two, _ = train(tmp, "two", 20, threads=1, k=2)
    step = close_runs(one, two, "1x1 vs 2x1")
    other, _ = train(tmp, "other", 20, threads=1, extra=["--seed", "2"])
    po, pt = param_vector(one), param_vector(other)
    apart = math.sqrt(sum((x - y) ** 2 for x, y in zip(po, pt)))
    check(apart > 1e-3 * step, "the bound rejects a run of another seed (%g apart)" % apart)


def case_resume(tmp):
    straight, _ = train(tmp, "straight", 20, threads=2)
    # 2 processes for 10 steps, then 1 process for 10 more
    part, _ = train(tmp, "part", 10, threads=1, k=2)
    out = ok(["train", "--resume", part, "--steps", "20", "--threads", "2"])
    check("continuing from step 10" in out, "the 2-process checkpoint resumes in one process")
    same_params(straight, part, "20 steps vs 10 on 2 processes + 10 on 1")
    same_losses(straight, part, "straight vs 2-then-1", 20)
    # and the other way: 1 process for 10 steps, then 2 for 10 more
    back, _ = train(tmp, "back", 10, threads=2)
    out = ok(["train", "--resume", back, "--steps", "20", "--threads", "1"], k=2)
    check("continuing from step 10" in out, "a 1-process checkpoint resumes on 2 processes")
    same_params(straight, back, "20 steps vs 10 on 1 process + 10 on 2")


def rank_pids(run_dir, rank):
    """pids of the dcrw processes of rank @rank training into run_dir."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            env = open("/proc/%s/environ" % p, "rb").read().split(b"\0")
            cmd = open("/proc/%s/cmdline" % p, "rb").read().split(b"\0")
        except OSError:
            continue
        if (b"OMPI_COMM_WORLD_RANK=%d" % rank in env and run_dir.encode() in cmd
                and os.path.basename(cmd[0]) == b"dcrw"):
            found.append(int(p))
    return found


def start_long(tmp, name, extra=(), env=None):
    d = os.path.join(tmp, name)
    p = subprocess.Popen(mpirun_args(2) + [DCRW, "train", "--data", MNIST, "--out", d,
                                           "--steps", "1000000", "--threads", "1", "--batch", "50",
                                           "--progress-seconds", "0.2"] + SMALL + list(extra),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env or MPI_ENV)
    return d, p


def wait_steps(p, n):
    """Read progress lines until step n or more; the last step seen."""
    deadline, step = time.time() + 300, 0
    while time.time() < deadline and step < n:
        line = p.stdout.readline()
        if not line:
            break
        if line.startswith("step "):
            step = int(line.split()[1])
    return step


def finish(p, timeout=120):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        check(False, "the job ends within %d s" % timeout)
    return out, err


def case_kill(tmp):
    d, p = start_long(tmp, "killed", ["--checkpoint-minutes", "0.002"])
    check(wait_steps(p, 30) >= 30, "the job trains before the kill")
    # on a fast machine 30 steps can take less than one checkpoint period:
    # wait (bounded) until a periodic checkpoint beyond step 0 is on disk
    ckpt = os.path.join(d, "checkpoint.safetensors")
    t0 = os.path.getmtime(ckpt) if os.path.exists(ckpt) else 0
    deadline = time.time() + 60
    while time.time() < deadline and (not os.path.exists(ckpt) or os.path.getmtime(ckpt) <= t0):
        wait_steps(p, 1)
    victims = rank_pids(d, 1)
    check(len(victims) == 1, "found the process of rank 1: %r" % victims)
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    out, err = finish(p)
    print(err)
    check(p.returncode != 0, "the job fails when a process dies (exit %d)" % p.returncode)
    check("rank 1" in err and "signal 9" in err, "mpirun names the dead process and why")
    check(not rank_pids(d, 0), "process 0 does not outlive the job")
    step = info_step(d)
    check(step >= 1, "the last periodic checkpoint loads (step %d)" % step)
    # and training goes on from it, in one process
    ok(["train", "--resume", d, "--steps", str(step + 3), "--threads", "2"])
    check(info_step(d) == step + 3, "the checkpoint of a killed job resumes")
    rows, _ = log_rows(d)
    check([r[0] for r in rows] == list(range(1, step + 4)),
          "after the resume the log has one row per step")


def case_signal(tmp):
    # SIGTERM to process 0: it decides for all, each finishes its step, and
    # process 0 saves; the job ends as one that finished
    d, p = start_long(tmp, "term0")
    check(wait_steps(p, 20) >= 20, "the job trains before the signal")
    leads = rank_pids(d, 0)
    check(len(leads) == 1, "found process 0")
    for pid in leads:
        os.kill(pid, signal.SIGTERM)
    out, err = finish(p)
    check(p.returncode == 0, "exit 0 after SIGTERM to process 0 (got %d: %s)" % (p.returncode, err))
    check("stopped by signal 15" in out, "says it stopped")
    step = info_step(d)
    rows, _ = log_rows(d)
    check(step >= 20 and rows[-1][0] == step, "the checkpoint is at the last logged step %d" % step)
    # SIGTERM to mpirun (Open MPI 4.1), which passes it on to every process
    # and SIGKILLs those still there after odls_base_sigkill_timeout seconds
    # (1 by default): more here, for a loaded machine
    env = dict(MPI_ENV, OMPI_MCA_odls_base_sigkill_timeout="10")
    d, p = start_long(tmp, "termrun", env=env)
    check(wait_steps(p, 20) >= 20, "the job trains before the signal")
    p.send_signal(signal.SIGTERM)
    out, err = finish(p)
    # mpirun may tear down its output forwarding before process 0's last
    # line arrives (seen on a loaded machine), so the message is not
    # required; what matters is the state on disk, checked below
    print("mpirun after SIGTERM: exit %d; stdout %s the stop message"
          % (p.returncode, "has" if "stopped by signal 15" in out else "lacks"))
    step = info_step(d)
    rows, _ = log_rows(d)
    check(step >= 20 and rows[-1][0] == step, "the checkpoint is at the last logged step %d" % step)
    check(not [f for f in os.listdir(d) if ".tmp" in f], "no temporary files left")
    ok(["train", "--resume", d, "--steps", str(step + 2), "--threads", "1"], k=2)
    check(info_step(d) == step + 2, "the stopped job resumes on 2 processes")


def case_badinput(tmp):
    # a batch smaller than the job: refused once, by process 0, and no hang
    d = os.path.join(tmp, "tiny")
    rc, out, err = run(["train", "--data", MNIST, "--out", d, "--steps", "5", "--threads", "1",
                        "--batch", "1"] + SMALL, k=2, timeout=120)
    check(rc != 0 and err.count("fewer images than the 2 processes") == 1,
          "--batch 1 on 2 processes is refused once: %s" % err)
    check(not os.path.exists(d), "nothing written for a refused job")
    # processes that would not train the same model (here: another seed,
    # as a node with other data or another checkpoint would): refused
    d = os.path.join(tmp, "mixed")
    base = ["train", "--data", MNIST, "--out", d, "--steps", "5", "--threads", "1",
            "--batch", "50"] + SMALL
    cmd = (mpirun_args(1) + [DCRW] + base + [":", "-n", "1", DCRW] + base + ["--seed", "2"])
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=MPI_ENV)
    check(p.returncode != 0 and "starts from another model, step or data set" in p.stderr,
          "processes of different models are refused: %s" % p.stderr)
    check(not os.path.exists(os.path.join(d, "checkpoint.safetensors")),
          "nothing written for a refused job")
    # a plain run needs no mpirun (no MPI environment at all)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMPI_", "PMIX_", "PMI_"))}
    d = os.path.join(tmp, "plain")
    rc, out, err = run(["train", "--data", MNIST, "--out", d, "--steps", "3", "--threads", "1",
                        "--batch", "50"] + SMALL, env=env)
    check(rc == 0 and "processes share" not in out, "a plain run trains alone: %s" % err)
    rc, out, _ = run(["train", "--help"], env=env)
    check(rc == 0 and "This build has MPI." in out, "--help says the build has MPI")


CASES = {"equal": case_equal, "tolerance": case_tolerance, "uneven": case_uneven,
         "resume": case_resume, "kill": case_kill, "signal": case_signal,
         "badinput": case_badinput, "labels": case_labels}


def no_mpirun():
    if not (os.path.isabs(MPIRUN) and os.access(MPIRUN, os.X_OK)) and not shutil.which(MPIRUN):
        return "no mpirun"
    return None


def main():
    return run_case("test_mpi.py", CASES, skip_reason=no_mpirun)


if __name__ == "__main__":
    sys.exit(main())
