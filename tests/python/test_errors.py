"""Every failure surfaces as an exception: misuse the binding can see (shape,
dtype, closed handle) before the call as ValueError/TypeError, everything
the library decides as DcrwError carrying the code, its name and the
dcrw_last_error() message."""

import os

import numpy as np
import pytest

import dcrw
from conftest import GOLDEN_DIR, TINY

GOLDEN = os.path.join(GOLDEN_DIR, "golden-draw-small.safetensors")


@pytest.fixture
def model():
    with dcrw.Model.create("draw", seed=1, **TINY["draw"]) as m:
        yield m


def expect_dcrw_error(code, fn, *args, match=None, **kw):
    with pytest.raises(dcrw.DcrwError) as info:
        fn(*args, **kw)
    e = info.value
    assert e.code == code, (e.code, str(e))
    assert e.name == dcrw.strerror(code) and e.name
    assert e.message, "no dcrw_last_error() message"
    assert e.message in str(e) and e.name in str(e)
    assert e.function.startswith("dcrw_")
    if match is not None:
        assert match in e.message, e.message
    return e


def test_missing_file():
    e = expect_dcrw_error(dcrw.EIO, dcrw.Model.load, "/nonexistent/model.safetensors")
    assert "/nonexistent/model.safetensors" in e.message
    assert e.function == "dcrw_model_load"


def test_corrupt_files(tmp_path):
    with open(GOLDEN, "rb") as f:
        blob = f.read()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    expect_dcrw_error(dcrw.EFORMAT, dcrw.Model.load, bad)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(blob[: len(blob) - 100])
    expect_dcrw_error(dcrw.ETRUNCATED, dcrw.Model.load, cut)


def test_config_errors():
    e = expect_dcrw_error(dcrw.ECONFIG, dcrw.Model.create, "draw", glimpses=0)
    assert "glimpses" in e.message
    # beyond the C int: refused before ctypes could wrap it around
    with pytest.raises(ValueError, match="z_size must be <= 2147483647"):
        dcrw.Model.create("draw", z_size=2**40)
    expect_dcrw_error(dcrw.ENOTFOUND, dcrw.Model.create, "no-such-preset")
    with pytest.raises(ValueError, match="unknown preset 9"):
        dcrw.Model.create(9)
    with pytest.raises(TypeError, match="unknown configuration field 'depth'"):
        dcrw.Model.create("draw", depth=3)
    with pytest.raises(TypeError, match="glimpses: expected an integer"):
        dcrw.Model.create("draw", glimpses=2.5)
    with pytest.raises(ValueError, match="encoder"):
        dcrw.Model.create("draw", encoder="rnn")


def test_shapes_refused_before_the_call(model):
    x = np.zeros((2, 144), np.float32)
    with pytest.raises(
        ValueError, match=r"x: expected shape \(B, 144\) or \(B, 1, 12, 12\) or \(B, 12, 12\), got \(2, 143\)"
    ):
        model.evaluate(np.zeros((2, 143)))
    with pytest.raises(ValueError, match=r"expected shape"):
        model.encode(np.zeros(144))
    with pytest.raises(ValueError, match=r"eps: expected shape \(T, B, Z\) = \(3, 2, 4\), got \(3, 3, 4\)"):
        model.evaluate(x, np.zeros((3, 3, 4)))
    with pytest.raises(ValueError, match="batch size must be >= 1"):
        model.evaluate(np.zeros((0, 144)))
    with pytest.raises(ValueError, match=r"h_dec: expected shape \(B, D\) = \(2, 16\)"):
        model.read(x, x, np.zeros((2, 15)))
    with pytest.raises(ValueError, match="xhat: expected 2 images"):
        model.read(x, np.zeros((3, 144)), np.zeros((2, 16)))
    with pytest.raises(ValueError, match=r"decode: give z"):
        model.decode()
    with pytest.raises(ValueError, match="batch size must be >= 1"):
        model.sample(0)
    with dcrw.Trainer(model) as t:
        with pytest.raises(ValueError, match=r"expected shape"):
            t.step(np.zeros((2, 12, 13)))


def test_library_refuses_values(model):
    x = np.zeros((2, 144), np.float32)
    x[1, 7] = np.nan
    for fn in (model.evaluate, model.encode, model.reconstruct):
        expect_dcrw_error(dcrw.ENUMERIC, fn, x)
    eps = np.zeros((3, 2, 4), np.float32)
    eps[2, 1, 3] = np.inf
    expect_dcrw_error(dcrw.ENUMERIC, model.evaluate, np.zeros((2, 144)), eps)
    z = np.zeros((3, 2, 4), np.float32)
    z[0, 0, 0] = np.nan
    expect_dcrw_error(dcrw.ENUMERIC, model.decode, z)
    expect_dcrw_error(dcrw.EINVAL, model.evaluate, np.full((2, 144), 1.5))
    with dcrw.Trainer(model) as t:
        before = model.flat_params.copy()
        expect_dcrw_error(dcrw.ENUMERIC, t.step, x)
        # nothing computed since the last apply: refused, nothing changes
        expect_dcrw_error(dcrw.ENUMERIC, t.apply)
        assert t.step_count == 0
        np.testing.assert_array_equal(model.flat_params, before)


def test_names_unknown_to_the_library(model):
    e = expect_dcrw_error(dcrw.ENOTFOUND, model.param, "enc.conv1.weight")
    assert e.function == "dcrw_model_find_param"
    with dcrw.Trainer(model) as t:
        expect_dcrw_error(dcrw.ENOTFOUND, t.grad, "no.such.tensor")


def test_trainer_config_and_resume_errors(model, tmp_path):
    e = expect_dcrw_error(dcrw.EINVAL, dcrw.Trainer, model, learning_rate=-1)
    assert "learning_rate" in e.message
    expect_dcrw_error(dcrw.EINVAL, dcrw.Trainer, model, beta1=1.0)
    with pytest.raises(TypeError, match="unknown training field 'momentum'"):
        dcrw.Trainer(model, momentum=0.9)
    with pytest.raises(TypeError, match="expected a dcrw.Model"):
        dcrw.Trainer("model")
    with dcrw.Model.create("draw", seed=1, **dict(TINY["draw"], glimpses=4)) as other:
        other.save(tmp_path / "other.safetensors")
    with dcrw.Trainer(model) as t:
        before = model.flat_params.copy()
        expect_dcrw_error(dcrw.ESHAPE, t.resume, tmp_path / "other.safetensors")
        np.testing.assert_array_equal(model.flat_params, before)
        expect_dcrw_error(dcrw.EIO, t.resume, tmp_path / "missing.safetensors")
        expect_dcrw_error(dcrw.EIO, t.save, tmp_path / "no-dir" / "t.safetensors")
    expect_dcrw_error(dcrw.EIO, model.save, tmp_path / "no-dir" / "m.safetensors")
    with dcrw.Trainer(model, learning_rate=0.01) as t:
        assert t.learning_rate == pytest.approx(0.01)
        t.learning_rate = 0.003
        assert t.learning_rate == pytest.approx(0.003)
        for bad in (0.0, -1.0, float("nan"), float("inf")):
            with pytest.raises(dcrw.DcrwError):
                t.learning_rate = bad
        assert t.learning_rate == pytest.approx(0.003)
        # the KL weight: 1 by default, any finite w >= 0, the rest refused
        assert t.kl_weight == 1.0
        t.kl_weight = 0.25
        assert t.kl_weight == 0.25
        for bad in (-0.5, float("nan"), float("inf")):
            with pytest.raises(dcrw.DcrwError):
                t.kl_weight = bad
        assert t.kl_weight == 0.25
        # it changes the gradient, never the reported losses
        x = np.random.default_rng(5).random((4, model.input_size), dtype=np.float32)
        eps = np.random.default_rng(6).standard_normal(
            (model.config["glimpses"], 4, model.config["z_size"])).astype(np.float32)
        got = []
        for w in (1.0, 0.0):
            t.kl_weight = w
            loss = t.backward(x, eps)
            got.append((loss, t.grads.copy()))
        assert got[0][0] == got[1][0]
        assert not np.array_equal(got[0][1], got[1][1])


def test_closed_handles_refuse_use():
    m = dcrw.Model.create("draw", **TINY["draw"])
    m.close()
    m.close()  # idempotent
    assert m.closed
    with pytest.raises(ValueError, match="closed Model"):
        m.sample(1)
    with pytest.raises(ValueError, match="closed Model"):
        dcrw.Trainer(m)
    with pytest.raises(TypeError):
        dcrw.Model(None)


def test_error_fields():
    assert dcrw.strerror(dcrw.OK)
    assert dcrw.strerror(dcrw.EINVAL) != dcrw.strerror(dcrw.EIO)
    e = dcrw.DcrwError(dcrw.ESHAPE, "dcrw_x", "a message")
    assert (e.code, e.name, e.message, e.function) == (dcrw.ESHAPE, dcrw.strerror(dcrw.ESHAPE), "a message", "dcrw_x")
    assert str(e) == "dcrw_x: a message [%s]" % dcrw.strerror(dcrw.ESHAPE)


# Every integer the binding hands to C is checked against the C type first:
# ctypes would silently keep only its low bits (seed=-1 becoming 2**64 - 1,
# glimpses=2**32 + 3 becoming 3), and a C string ends at the first NUL.
BAD_INTEGERS = [
    ("Model.create seed -1", lambda m, ds, t: dcrw.Model.create("draw", seed=-1, **TINY["draw"]), ValueError),
    ("Model.create seed 2**64", lambda m, ds, t: dcrw.Model.create("draw", seed=2**64, **TINY["draw"]), ValueError),
    ("Model.create seed 1.0", lambda m, ds, t: dcrw.Model.create("draw", seed=1.0, **TINY["draw"]), TypeError),
    ("Model.create seed '3'", lambda m, ds, t: dcrw.Model.create("draw", seed="3", **TINY["draw"]), TypeError),
    ("glimpses 2**40", lambda m, ds, t: dcrw.Model.create("draw", glimpses=2**40), ValueError),
    ("glimpses 2**32 + 3", lambda m, ds, t: dcrw.Model.create("draw", glimpses=2**32 + 3), ValueError),
    ("glimpses -2**31 - 1", lambda m, ds, t: dcrw.Model.create("draw", glimpses=-(2**31) - 1), ValueError),
    ("canvas_init 'x'", lambda m, ds, t: dcrw.Model.create("draw", canvas_init="0.5"), TypeError),
    ("canvas_init 1e39", lambda m, ds, t: dcrw.Model.create("draw", canvas_init=1e39), ValueError),
    ("preset 2**32 + 2", lambda m, ds, t: dcrw.Model.create(2**32 + 2, **TINY["draw"]), ValueError),
    ("preset 2.0", lambda m, ds, t: dcrw.Model.create(2.0), TypeError),
    ("preset with NUL", lambda m, ds, t: dcrw.Model.create("draw\0junk", **TINY["draw"]), ValueError),
    ("sample seed -1", lambda m, ds, t: m.sample(2, seed=-1), ValueError),
    ("sample seed 2**64", lambda m, ds, t: m.sample(2, seed=2**64), ValueError),
    ("sample n 2.5", lambda m, ds, t: m.sample(2.5), TypeError),
    ("sample n 2**32 + 1", lambda m, ds, t: m.sample(2**32 + 1), ValueError),
    ("decode batch 2.5", lambda m, ds, t: m.decode(batch=2.5), TypeError),
    ("decode batch -1", lambda m, ds, t: m.decode(batch=-1), ValueError),
    ("decode seed 2**70", lambda m, ds, t: m.decode(batch=1, seed=2**70), ValueError),
    ("decode z and batch 2.0", lambda m, ds, t: m.decode(np.zeros((3, 2, 4)), batch=2.0), TypeError),
    ("param name with NUL", lambda m, ds, t: m.param("write.bias\0x"), ValueError),
    ("save path with NUL", lambda m, ds, t: m.save("model\0.safetensors"), ValueError),
    ("load path with NUL", lambda m, ds, t: dcrw.Model.load(GOLDEN + "\0junk"), ValueError),
    ("load path not a path", lambda m, ds, t: dcrw.Model.load(3), TypeError),
    ("Trainer seed -1", lambda m, ds, t: dcrw.Trainer(m, seed=-1), ValueError),
    ("Trainer seed 2**64", lambda m, ds, t: dcrw.Trainer(m, seed=2**64), ValueError),
    ("Trainer threads 2**32 + 1", lambda m, ds, t: dcrw.Trainer(m, threads=2**32 + 1), ValueError),
    ("Trainer threads 1.5", lambda m, ds, t: dcrw.Trainer(m, threads=1.5), TypeError),
    ("Trainer learning_rate '0.1'", lambda m, ds, t: dcrw.Trainer(m, learning_rate="0.1"), TypeError),
    ("backward_part first 2**63", lambda m, ds, t: t.backward_part(np.zeros((2, 144)), 2**63, 4), ValueError),
    ("backward_part total 2**64 + 4", lambda m, ds, t: t.backward_part(np.zeros((2, 144)), 0, 2**64 + 4), ValueError),
    ("backward_part first 0.0", lambda m, ds, t: t.backward_part(np.zeros((2, 144)), 0.0, 4), TypeError),
    ("grad name with NUL", lambda m, ds, t: t.grad("write.bias\0x"), ValueError),
    ("trainer save path with NUL", lambda m, ds, t: t.save(b"t\0.safetensors"), ValueError),
    ("learning_rate 1e39", lambda m, ds, t: setattr(t, "learning_rate", 1e39), ValueError),
    ("set_threads 2**32 + 1", lambda m, ds, t: dcrw.set_threads(2**32 + 1), ValueError),
    ("set_threads 1.0", lambda m, ds, t: dcrw.set_threads(1.0), TypeError),
    ("dataset seed -1", lambda m, ds, t: ds.batch([0], binarize="dynamic", seed=-1), ValueError),
    ("dataset binarize 2**32 + 1", lambda m, ds, t: ds.batch([0], binarize=2**32 + 1), ValueError),
    ("dataset label 1.0", lambda m, ds, t: ds.label(1.0), TypeError),
    ("dataset path with NUL", lambda m, ds, t: dcrw.Dataset.load_idx("images\0x"), ValueError),
]


@pytest.fixture
def objects(tmp_path):
    images = tmp_path / "images-idx3-ubyte"
    images.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2]) + bytes(range(0, 160, 20)))
    with dcrw.Model.create("draw", seed=1, **TINY["draw"]) as m, dcrw.Dataset.load_idx(images) as ds:
        with dcrw.Trainer(m) as t:
            yield m, ds, t


@pytest.mark.parametrize("what,call,error", BAD_INTEGERS, ids=[b[0] for b in BAD_INTEGERS])
def test_out_of_range_and_wrong_types_are_refused(objects, what, call, error, tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    m, ds, t = objects
    threads = dcrw.get_threads()
    before = m.flat_params.copy()
    with pytest.raises(error) as info:
        call(m, ds, t)
    # refused by the binding, not by the library after a wrapped value
    assert not isinstance(info.value, dcrw.DcrwError)
    assert type(info.value) is error, what
    np.testing.assert_array_equal(m.flat_params, before)
    assert t.step_count == 0 and dcrw.get_threads() == threads
    assert not os.listdir(cwd), "a file was written: %s" % os.listdir(cwd)


def test_integers_at_the_limits_are_taken(objects):
    m, ds, t = objects
    big = 2**64 - 1
    a = m.sample(2, seed=big)
    assert a.shape == (2, 144)
    assert not np.array_equal(a, m.sample(2, seed=0))
    np.testing.assert_array_equal(m.sample(np.int64(2), seed=np.uint64(big)), a)
    with dcrw.Model.create("draw", seed=big, **TINY["draw"]) as other:
        assert not np.array_equal(other.flat_params, m.flat_params)
    assert ds.label(2**64) == -1 and ds.label(-1) == -1
    np.testing.assert_array_equal(ds.batch([1], binarize="dynamic", seed=big), ds.batch([1], binarize=1, seed=big))


def test_precision(model):
    """float32 by default; bf16 where the CPU has it, moving the loss by its
    roundings only; anything else refused."""
    assert model.precision == "float32"
    with pytest.raises(ValueError, match="precision must be one of"):
        model.precision = "fp16"
    x = np.random.default_rng(3).random((6, model.input_size), dtype=np.float32)
    before = model.evaluate(x)
    if not dcrw.precision_supported("bf16"):
        expect_dcrw_error(dcrw.EUNSUPPORTED, setattr, model, "precision", "bf16")
        assert model.precision == "float32"
        return
    model.precision = "bf16"
    assert model.precision == "bf16"
    low = model.evaluate(x)
    assert low != before and abs(low.loss - before.loss) < 1e-2 * abs(before.loss)
    model.precision = "float32"
    assert model.evaluate(x) == before
