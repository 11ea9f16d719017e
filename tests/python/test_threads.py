"""Threads, signals and fork: close() never frees an object another thread is
using, a trainer's step and its model's operations do not overlap, Ctrl-C
interrupts a long call at once, and a forked worker does not hang."""

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import weakref

import numpy as np
import pytest

import dcrw
from dcrw import _ffi, _util
from conftest import TINY

WAIT = 60  # seconds before a test gives up on an event that should come at once


def freed(ref):
    h = ref()
    return h is None or h.ptr is None


def binary_batch(B, P=144, seed=0):
    return (np.random.default_rng(seed).random((B, P)) > 0.5).astype(np.float32)


class Gate:
    """Replaces one _ffi function: a call announces itself, then waits for
    open() before running the real function, and records whether the
    object's memory was freed meanwhile (in which case it does not call
    into freed memory, so that the old behaviour fails an assertion instead
    of crashing the test run)."""

    def __init__(self, monkeypatch, name, ref=None):
        self.real = getattr(_ffi, name)
        self.inside = threading.Event()
        self.proceed = threading.Event()
        self.freed_inside = []
        self.ref = ref
        monkeypatch.setattr(_ffi, name, self)

    def __call__(self, *args):
        self.inside.set()
        assert self.proceed.wait(WAIT)
        if self.ref is not None:
            self.freed_inside.append(freed(self.ref))
            if self.freed_inside[-1]:
                return 0
        return self.real(*args)

    def open(self):
        self.proceed.set()


def in_thread(fn, *args):
    out = {}

    def run():
        try:
            out["result"] = fn(*args)
        except BaseException as e:  # reported by the test
            out["error"] = e

    t = threading.Thread(target=run)
    t.start()
    return t, out


def test_close_while_another_thread_evaluates(monkeypatch):
    m = dcrw.Model.create("draw", seed=2, **TINY["draw"])
    x = binary_batch(3)
    want = m.evaluate(x)
    ref = weakref.ref(m._h)
    gate = Gate(monkeypatch, "dcrw_evaluate", ref)
    t, out = in_thread(m.evaluate, x)
    assert gate.inside.wait(WAIT)
    m.close()
    # closed for new calls at once, but the memory stays until the call returns
    assert m.closed and not freed(ref)
    with pytest.raises(ValueError, match="closed Model"):
        m.sample(1)
    gate.open()
    t.join(WAIT)
    assert gate.freed_inside == [False]
    assert "error" not in out and out["result"] == want
    assert freed(ref)


def test_close_trainer_while_another_thread_steps(monkeypatch):
    m = dcrw.Model.create("draw", seed=2, **TINY["draw"])
    tr = dcrw.Trainer(m)
    tref, mref = weakref.ref(tr._h), weakref.ref(m._h)
    gate = Gate(monkeypatch, "dcrw_trainer_step", tref)
    t, out = in_thread(tr.step, binary_batch(2))
    assert gate.inside.wait(WAIT)
    tr.close()
    m.close()
    assert not freed(tref) and not freed(mref)
    gate.open()
    t.join(WAIT)
    assert gate.freed_inside == [False] and "error" not in out, out
    assert np.isfinite(out["result"].loss)
    del tr
    assert freed(tref) and freed(mref)


def test_close_dataset_while_another_thread_reads_a_batch(monkeypatch, tmp_path):
    images = tmp_path / "images-idx3-ubyte"
    images.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2]) + bytes(range(0, 160, 20)))
    ds = dcrw.Dataset.load_idx(images)
    ref = weakref.ref(ds._h)
    gate = Gate(monkeypatch, "dcrw_dataset_batch", ref)
    t, out = in_thread(ds.batch, [1, 0])
    assert gate.inside.wait(WAIT)
    ds.close()
    gate.open()
    t.join(WAIT)
    assert gate.freed_inside == [False] and "error" not in out, out
    np.testing.assert_allclose(out["result"], [[80, 100, 120, 140], [0, 20, 40, 60]] / np.float32(255), rtol=1e-6)
    assert freed(ref)


def test_many_threads_and_a_close():
    """Whatever the interleaving, each call gives the right answer or
    ValueError for a closed model; the memory is freed once all are done."""
    m = dcrw.Model.create("dcrw", seed=5, **TINY["dcrw"])
    x = binary_batch(4)
    want = m.evaluate(x)
    ref = weakref.ref(m._h)
    started = threading.Barrier(5)
    results = []

    def worker():
        started.wait(WAIT)
        for _ in range(200):
            try:
                results.append(m.evaluate(x))
            except ValueError as e:
                results.append(str(e))
                return

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    started.wait(WAIT)
    while len(results) < 8:
        threading.Event().wait(0.001)
    m.close()
    for t in threads:
        t.join(WAIT)
    assert all(r == want or r == "operation on a closed Model" for r in results), set(map(str, results))
    assert results.count(want) >= 8
    assert freed(ref)


def test_a_step_waits_for_the_models_operations_and_back(monkeypatch):
    """A trainer's step changes its model: it never runs while one of the
    model's operations does (nor an operation while a step runs)."""
    m = dcrw.Model.create("draw", seed=2, **TINY["draw"])
    tr = dcrw.Trainer(m)
    x = binary_batch(2)
    step = Gate(monkeypatch, "dcrw_trainer_step")
    evaluate = Gate(monkeypatch, "dcrw_evaluate")
    evaluate.open()
    t1, out1 = in_thread(tr.step, x)
    assert step.inside.wait(WAIT)
    t2, out2 = in_thread(m.evaluate, x)
    # while the step is inside the library, the evaluation must not start
    assert not evaluate.inside.wait(0.5)
    step.open()
    t1.join(WAIT)
    t2.join(WAIT)
    assert evaluate.inside.is_set() and "error" not in out1 and "error" not in out2
    assert out2["result"] == m.evaluate(x)  # on the parameters after the step
    tr.close()
    m.close()


def _operations(m, x, eps):
    return {
        "evaluate": lambda: m.evaluate(x),
        "evaluate_eps": lambda: m.evaluate(x, eps),
        "per_image": lambda: m.evaluate(x, per_image=True),
        "encode": lambda: m.encode(x),
        "reconstruct": lambda: m.reconstruct(x, canvases=True, windows=True),
        "sample": lambda: m.sample(6, seed=11, canvases=True),
        "decode_windows": lambda: m.decode(eps, windows=True),
        "read": lambda: m.read(x, x, np.zeros((5, 16))),
        "write": lambda: m.write(np.ones((5, 16))),
    }


def _train(m, x):
    with dcrw.Trainer(m, seed=3) as tr:
        return tr.step(x), tr.backward_part(x[:2], 1, 5), m.flat_params.copy()


def _same(got, want, what):
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want), what
    for a, b in zip(got, want):
        if isinstance(a, np.ndarray) or a is None:
            np.testing.assert_array_equal(a, b, err_msg=what)
        else:
            assert a == b, what


def test_long_calls_run_in_the_helper_thread_with_the_same_results(monkeypatch):
    """From the main thread a long call runs in the helper thread (so that
    Ctrl-C reaches Python at once); results and errors are the same."""
    assert threading.current_thread() is threading.main_thread()
    x = binary_batch(5, seed=3)
    eps = np.random.default_rng(4).standard_normal((3, 5, 4)).astype(np.float32)
    with dcrw.Model.create("draw", seed=7, **TINY["draw"]) as m:
        direct = {k: f() for k, f in _operations(m, x, eps).items()}
        direct["train"] = _train(m, x)
    names = []
    real = _ffi.dcrw_evaluate

    def spy(*args):
        names.append(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(_ffi, "dcrw_evaluate", spy)
    monkeypatch.setattr(_util, "LONG_WORK", -1)  # every call counts as long
    with dcrw.Model.create("draw", seed=7, **TINY["draw"]) as m:
        for k, f in _operations(m, x, eps).items():
            _same(f(), direct[k], k)
        _same(_train(m, x), direct["train"], "train")
        bad = x.copy()
        bad[1, 3] = np.nan
        with pytest.raises(dcrw.DcrwError) as e:
            m.evaluate(bad)
    assert names == ["dcrw-long-calls"] * 3
    # the message is the one the library set in the helper thread
    assert e.value.code == dcrw.ENUMERIC and "x[" in e.value.message, e.value.message


# ---- Ctrl-C -----------------------------------------------------------------

# Large LSTMs on 4x4 images: much arithmetic and little memory per image.
LONG_MODEL = dict(height=4, width=4, glimpses=16, enc_size=1024, dec_size=1024, z_size=16)

# Evaluates a batch sized to take about TARGET seconds in one call (at most
# 8000 images), after printing "ready" and that estimate.
SCRIPT = """
import math, sys, time
import numpy as np
import dcrw
target, after = float(sys.argv[1]), sys.argv[2]
m = dcrw.Model.create("draw-noattn", seed=1, **%r)
x = (np.random.default_rng(0).random((50, m.input_size)) > 0.5).astype(np.float32)
small = m.evaluate(x[:2])
t0 = time.monotonic()
m.evaluate(x)
per_image = (time.monotonic() - t0) / 50
B = min(8000, max(100, math.ceil(target / per_image)))
x = (np.random.default_rng(0).random((B, m.input_size)) > 0.5).astype(np.float32)
print("ready %%.2f" %% (B * per_image), flush=True)
t0 = time.monotonic()
try:
    m.evaluate(x)
    print("finished", flush=True)
except KeyboardInterrupt:
    print("interrupted after %%.2f s" %% (time.monotonic() - t0), flush=True)
    if after == "raise":
        raise
    if after == "exit":
        sys.exit(3)
    # the model is still usable: the next call waits for the interrupted one
    assert m.evaluate(x[:2]) == small
    m.close()
    print("continued", flush=True)
""" % (LONG_MODEL,)


def run_and_interrupt(tmp_path, target, after, timeout):
    """Runs SCRIPT, sends SIGINT 0.3 s into its long call; returns the exit
    status, the estimated length of the call, stdout and stderr."""
    script = tmp_path / "long.py"
    script.write_text(SCRIPT)
    p = subprocess.Popen(
        [sys.executable, str(script), str(target), after],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, OPENBLAS_NUM_THREADS="1"),
    )
    try:
        ready = p.stdout.readline().split()
        assert ready and ready[0] == "ready", (ready, p.stderr.read() if p.poll() is not None else "")
        threading.Event().wait(0.3)  # let the call begin
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    return p.returncode, float(ready[1]), out, err


def interrupted_after(out):
    assert out.startswith("interrupted after "), out
    return float(out.split()[2])


def test_ctrl_c_interrupts_a_long_evaluate(tmp_path):
    # A call of many seconds; Ctrl-C 0.3 s into it must end the program
    # within about a second, long before the call would have returned.
    code, whole, out, err = run_and_interrupt(tmp_path, 12, "raise", timeout=60)
    if whole < 8:
        pytest.skip("8000 images take only %.1f s here: too short to tell" % whole)
    assert "finished" not in out
    assert interrupted_after(out) < 3.0, (out, whole)
    assert "KeyboardInterrupt" in err
    assert code == -signal.SIGINT, (code, err)


def test_an_interrupted_program_may_go_on(tmp_path):
    # the next call waits for the interrupted one, then the program ends
    code, whole, out, err = run_and_interrupt(tmp_path, 3, "continue", timeout=120)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2, (code, out, err)
    assert interrupted_after(out) < whole / 2 and lines[1] == "continued", (out, whole)


def test_exit_after_an_interrupt_waits_for_the_call(tmp_path):
    # exiting normally while the interrupted call still runs would free
    # OpenBLAS's buffers under it; the exit waits for the call instead
    code, whole, out, err = run_and_interrupt(tmp_path, 3, "exit", timeout=120)
    assert code == 3 and interrupted_after(out) < whole / 2, (code, out, err)
    assert "BLAS" not in err and "Traceback" not in err, err


# ---- fork -------------------------------------------------------------------

_forked = {}


def _child_work(_):
    m = _forked["model"]
    loss = m.evaluate(_forked["x"]).loss
    with dcrw.Trainer(m, threads=2) as t:
        step = t.step(_forked["x"]).loss
    return loss, step


def test_forked_worker_after_two_threads_does_not_hang():
    dcrw.set_threads(2)
    try:
        m = dcrw.Model.create("draw", seed=3, **TINY["draw"])
        x = binary_batch(8)
        # the parent uses the library's threads from the main thread, as a
        # script does before it starts a multiprocessing pool
        m.evaluate(x)
        with dcrw.Trainer(m, threads=2) as t:
            t.step(x)
            t.backward(x)
        want = m.evaluate(x).loss
        _forked.update(model=m, x=x)
        pool = multiprocessing.get_context("fork").Pool(2)
        try:
            results = pool.map_async(_child_work, range(2)).get(timeout=WAIT)
        except multiprocessing.TimeoutError:
            pytest.fail("a forked worker hung in the library for %d s" % WAIT)
        finally:
            pool.terminate()
            pool.join()
        assert [r[0] for r in results] == [want, want]
        assert all(np.isfinite(r[1]) for r in results)
    finally:
        dcrw.set_threads(0)
        _forked.clear()


def _child_step(_):
    with dcrw.Trainer(_forked["model"]) as t:
        return t.step(_forked["x"]).loss


def test_forked_child_is_not_held_by_a_call_of_another_parent_thread(monkeypatch):
    """A fork while another thread is inside one of the model's operations:
    that call does not exist in the child, so it must not make the child's
    trainer step wait for it."""
    m = dcrw.Model.create("draw", seed=3, **TINY["draw"])
    x = binary_batch(4)
    gate = Gate(monkeypatch, "dcrw_evaluate")
    t, out = in_thread(m.evaluate, x)
    assert gate.inside.wait(WAIT)
    _forked.update(model=m, x=x)
    pool = multiprocessing.get_context("fork").Pool(1)
    try:
        loss = pool.apply_async(_child_step, (0,)).get(timeout=WAIT)
    except multiprocessing.TimeoutError:
        pytest.fail("the child's step waited for a call of the parent's other thread")
    finally:
        pool.terminate()
        pool.join()
        gate.open()
        t.join(WAIT)
        _forked.clear()
    assert np.isfinite(loss) and "error" not in out
    m.close()
