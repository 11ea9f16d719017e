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
    expect_dcrw_error(dcrw.ECONFIG, dcrw.Model.create, "draw", z_size=2**40)
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
    with pytest.raises(ValueError, match=r"x: expected shape \(B, 144\) or \(B, 1, 12, 12\), got \(2, 143\)"):
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
            t.step(np.zeros((2, 12, 12)))


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
