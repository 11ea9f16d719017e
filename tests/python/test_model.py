"""Training, checkpoints, generation and the operations of dcrw.Model."""

import ctypes
import threading

import numpy as np
import pytest

import dcrw
from dcrw import _ffi
from conftest import TINY


def binary_batch(rng, B, P):
    return (rng.random((B, P)) > 0.5).astype(np.float32)


def square_batch(rng, B):
    """12x12 images of 5x5 squares at random places: unlike random bits,
    something a model can learn in a few steps."""
    x = np.zeros((B, 12, 12), np.float32)
    for b in range(B):
        r, c = rng.integers(0, 8, size=2)
        x[b, r : r + 5, c : c + 5] = 1
    return x.reshape(B, 144)


@pytest.mark.parametrize("preset", sorted(TINY))
def test_train_save_reload_sample(preset, rng, tmp_path):
    with dcrw.Model.create(preset, seed=3, **TINY[preset]) as m:
        assert m.input_size == 144 and m.image_shape == (1, 12, 12)
        assert m.glimpses == 3 and m.z_size == 4 and m.dec_size == 16
        x = square_batch(rng, 8)
        eps = rng.standard_normal((m.glimpses, 8, m.z_size)).astype(np.float32)
        with dcrw.Trainer(m, learning_rate=1e-2) as t:
            first = t.step(x, eps)
            for _ in range(29):
                last = t.step(x, eps)
            assert t.step_count == 30
            # fixed batch and noise: 30 Adam steps must fit it better
            assert np.isfinite(first.loss) and last.loss < 0.8 * first.loss, (first, last)
            assert abs(first.loss - (first.lx + first.lz)) <= 1e-9 * abs(first.loss)
            # the trainer's forward and the model's evaluate agree on the new parameters
            after = m.evaluate(x, eps)
            assert after.loss < first.loss
            ckpt = tmp_path / ("%s-train.safetensors" % preset)
            t.save(ckpt)
        model_file = tmp_path / ("%s.safetensors" % preset)
        m.save(str(model_file))
        for path in (model_file, ckpt):
            with dcrw.Model.load(path) as back:
                assert back.config == m.config
                assert back.param_names == m.param_names
                np.testing.assert_array_equal(back.flat_params, m.flat_params)
                assert back.evaluate(x, eps) == m.evaluate(x, eps)
                s1 = back.sample(5, seed=9)
                np.testing.assert_array_equal(s1, m.sample(5, seed=9))
        s = m.sample(5, seed=9)
        assert s.shape == (5, m.input_size) and s.dtype == np.float32
        assert np.all((s > 0) & (s < 1))
        assert not np.array_equal(s, m.sample(5, seed=10))


@pytest.mark.parametrize("preset", sorted(TINY))
def test_resume_continues_exactly(preset, rng, tmp_path):
    x = binary_batch(rng, 4, 144)
    with dcrw.Model.create(preset, seed=1, **TINY[preset]) as a, dcrw.Trainer(a) as ta:
        for _ in range(3):
            ta.step(x)
        ta.save(tmp_path / "t.safetensors")
        with dcrw.Model.create(preset, seed=2, **TINY[preset]) as b, dcrw.Trainer(b) as tb:
            assert not np.array_equal(a.flat_params, b.flat_params)
            tb.resume(tmp_path / "t.safetensors")
            assert tb.step_count == 3
            np.testing.assert_array_equal(a.flat_params, b.flat_params)
            la, lb = ta.step(x), tb.step(x)
            assert la == lb
            np.testing.assert_array_equal(a.flat_params, b.flat_params)


def test_backward_apply_is_step(rng):
    x = binary_batch(rng, 4, 144)
    with dcrw.Model.create("draw", seed=5, **TINY["draw"]) as a, dcrw.Model.create("draw", seed=5, **TINY["draw"]) as b:
        ta, tb = dcrw.Trainer(a), dcrw.Trainer(b)
        la = ta.step(x)
        lb = tb.backward(x)
        tb.apply()
        assert la == lb and ta.step_count == tb.step_count == 1
        np.testing.assert_array_equal(a.flat_params, b.flat_params)


def test_grad_views(rng):
    x = binary_batch(rng, 4, 144)
    with dcrw.Model.create("dcrw", seed=5, **TINY["dcrw"]) as m, dcrw.Trainer(m) as t:
        t.backward(x)
        flat = t.grads
        assert flat.shape == (m.param_floats,)
        assert np.any(flat != 0)
        off = 0
        named = t.named_grads()
        assert list(named) == list(m.param_names)
        for name, g in named.items():
            assert g.shape == m.param_shapes[name]
            np.testing.assert_array_equal(g.ravel(), flat[off : off + g.size])
            assert np.shares_memory(g, flat)
            off += g.size
        assert off == m.param_floats
        # Adam from zero moments with a zero gradient moves nothing: zeroing
        # the gradients through the view must reach the library
        before = m.flat_params.copy()
        flat[:] = 0
        t.apply()
        assert t.step_count == 1
        np.testing.assert_array_equal(m.flat_params, before)


def test_param_views_alias_library_memory(rng):
    x = binary_batch(rng, 3, 144)
    with dcrw.Model.create("draw-noattn", seed=7, **TINY["draw-noattn"]) as m:
        params = m.params
        assert list(params) == list(m.param_names)
        flat = m.flat_params
        off = 0
        for name, p in params.items():
            assert p.shape == m.param_shapes[name] and p.dtype == np.float32
            assert np.shares_memory(p, flat)
            np.testing.assert_array_equal(p.ravel(), flat[off : off + p.size])
            off += p.size
        assert off == m.param_floats
        before = m.evaluate(x, np.zeros((3, 3, 4), np.float32))
        # a bias of -20 on every write makes the canvas black: Lx is then
        # about 20 nats per white pixel, from the data alone
        params["write.bias"][:] = -20.0 / m.glimpses
        params["write.weight"][:] = 0.0
        after = m.evaluate(x, np.zeros((3, 3, 4), np.float32))
        assert after != before
        c_T = -20.0
        expect_lx = np.mean(np.sum(np.logaddexp(0.0, c_T) - x * c_T, axis=1))
        assert abs(after.lx - expect_lx) <= 1e-4 * expect_lx
        np.testing.assert_array_equal(m.param("write.bias"), np.full(144, -20.0 / 3, np.float32))


def test_write_and_read_without_attention(rng):
    """draw-noattn: read is [x, xhat], write is the dense layer; both
    computed here from the parameter views."""
    with dcrw.Model.create("draw-noattn", seed=7, **TINY["draw-noattn"]) as m:
        x = rng.random((2, 144)).astype(np.float32)
        xhat = rng.standard_normal((2, 144)).astype(np.float32)
        r = m.read(x, xhat)
        assert r.shape == (2, m.read_size) == (2, 288)
        np.testing.assert_array_equal(r, np.concatenate([x, xhat], axis=1))
        h = rng.standard_normal((2, 16)).astype(np.float32)
        delta = m.write(h)
        W, b = m.param("write.weight"), m.param("write.bias")
        expect = h.astype(np.float64) @ W.T.astype(np.float64) + b
        np.testing.assert_allclose(delta, expect, rtol=1e-5, atol=1e-5)


def test_read_with_attention_shape_and_window(rng):
    with dcrw.Model.create("dcrw", seed=7, **TINY["dcrw"]) as m:
        x = rng.random((2, 144)).astype(np.float32)
        h = rng.standard_normal((2, 16)).astype(np.float32)
        r = m.read(x, x, h)
        assert r.shape == (2, 2 * 5 * 5)
        # x and xhat equal: both halves of the read are the same glimpse
        np.testing.assert_array_equal(r[:, :25], r[:, 25:])
        with pytest.raises(ValueError, match=r"h_dec \(B, 16\)"):
            m.read(x, x)


@pytest.mark.parametrize("preset", sorted(TINY))
def test_encode_decode_reconstruct_agree(preset, rng):
    with dcrw.Model.create(preset, seed=11, **TINY[preset]) as m:
        x = binary_batch(rng, 3, 144)
        eps = rng.standard_normal((3, 3, 4)).astype(np.float32)
        enc = m.encode(x, eps)
        for a in enc:
            assert a.shape == (3, 3, 4) and a.dtype == np.float32
        # the reparameterisation, computed here
        np.testing.assert_allclose(enc.z, enc.mu + np.exp(enc.logsigma) * eps, rtol=1e-5, atol=1e-6)
        zero = m.encode(x, np.zeros_like(eps))
        np.testing.assert_array_equal(zero.z, zero.mu)
        rec = m.reconstruct(x, eps, canvases=True, windows=True)
        dec = m.decode(enc.z, canvases=True, windows=True)
        np.testing.assert_allclose(rec.canvases, dec.canvases, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(rec.images, rec.canvases[-1])
        assert rec.images.shape == (3, 144) and rec.canvases.shape == (3, 3, 144)
        cfg = m.config
        assert (rec.read_windows is None) == (not cfg["read_attention"])
        assert (rec.write_windows is None) == (not cfg["write_attention"])
        if rec.write_windows is not None:
            assert rec.write_windows.shape == (3, 3, 5)
            np.testing.assert_allclose(rec.write_windows, dec.write_windows, rtol=1e-6, atol=1e-6)
            assert np.all(rec.write_windows[..., 2:] > 0)  # delta, sigma2, gamma
        # the loss from the pieces, by the formulas of MODEL.md §5
        lz = np.sum(0.5 * (enc.mu.astype(np.float64) ** 2 + np.exp(2.0 * enc.logsigma) - 2 * enc.logsigma - 1), axis=(0, 2))
        per = m.evaluate(x, eps, per_image=True)
        np.testing.assert_allclose(per.lz, lz, rtol=1e-5)
        p = rec.images.astype(np.float64)
        lx = -np.sum(x * np.log(p) + (1 - x) * np.log1p(-p), axis=1)
        np.testing.assert_allclose(per.lx, lx, rtol=1e-4)
        mean = m.evaluate(x, eps)
        assert abs(mean.lx - per.lx.mean()) <= 1e-9 * mean.loss
        assert abs(mean.lz - per.lz.mean()) <= 1e-9 * mean.loss + 1e-12
        # NULL noise is the library's seed-0 noise, the same for all three
        assert m.evaluate(x) == m.evaluate(x)
        np.testing.assert_array_equal(m.reconstruct(x), m.decode(m.encode(x).z))


def test_input_conversion_once(rng):
    with dcrw.Model.create("draw", seed=2, **TINY["draw"]) as m:
        x32 = binary_batch(rng, 4, 144)
        ref = m.evaluate(x32)
        # float64, Fortran order, a strided view, integers, booleans, 4-D
        big = np.zeros((8, 144))
        big[::2] = x32
        for x in (
            x32.astype(np.float64),
            np.asfortranarray(x32),
            big[::2],
            x32.astype(np.uint8),
            x32.astype(bool),
            x32.reshape(4, 1, 12, 12),
            x32.tolist(),
        ):
            assert m.evaluate(x) == ref
        with pytest.raises(TypeError, match="real numbers"):
            m.evaluate(x32.astype(np.complex64))
        with pytest.raises(TypeError):
            m.evaluate(np.array([["a"] * 144]))


def test_decode_shapes_and_seed():
    with dcrw.Model.create("dcrw-noread", seed=2, **TINY["dcrw-noread"]) as m:
        a = m.decode(batch=3, seed=4)
        b = m.sample(3, seed=4)
        np.testing.assert_array_equal(a, b)
        d = m.sample(3, seed=4, canvases=True)
        assert d.canvases.shape == (3, 3, 144)
        np.testing.assert_array_equal(d.images, a)
        z = np.zeros((3, 2, 4), np.float32)
        assert m.decode(z).shape == (2, 144)
        with pytest.raises(ValueError, match="batch=3 but z has 2"):
            m.decode(z, batch=3)


def test_const_operations_in_threads(rng):
    """The const functions may run in several threads at once (ctypes
    releases the GIL); results equal the serial ones."""
    with dcrw.Model.create("dcrw", seed=2, **TINY["dcrw"]) as m:
        xs = [binary_batch(rng, 4, 144) for _ in range(4)]
        serial = [m.evaluate(x) for x in xs]
        out = [None] * 4

        def work(i):
            for _ in range(5):
                out[i] = m.evaluate(xs[i])

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert out == serial


def test_create_overrides_and_config():
    cfg = dcrw.preset_config("draw", glimpses=5, read_attention=False, canvas_init=-2)
    assert cfg["glimpses"] == 5 and cfg["read_attention"] == 0 and cfg["canvas_init"] == -2.0
    assert cfg["height"] == 28  # MNIST default kept
    with dcrw.Model.create(2, encoder="cnn", **TINY["dcrw"]) as m:
        assert m.config["encoder"] == 1 and m.config["read_n"] == 5
    assert set(dcrw.CONFIG_FIELDS) == set(cfg)
    assert dcrw.default_train_config()["learning_rate"] == pytest.approx(1e-3)


def test_config_fields_come_from_the_library():
    # the package lists no field itself: names, order and C types are the
    # library's (dcrw_config_field), and the struct is built from them
    names, kinds = [], {}
    for i in range(_ffi.dcrw_config_field_count()):
        name, kind = ctypes.c_char_p(), ctypes.c_int()
        _ffi.dcrw_config_field(i, ctypes.byref(name), ctypes.byref(kind), None, None, None)
        names.append(name.value.decode())
        kinds[names[-1]] = kind.value
    assert tuple(names) == dcrw.CONFIG_FIELDS
    assert [f for f, _ in _ffi.Config._fields_] == ["size"] + names
    for f, t in _ffi.Config._fields_[1:]:
        assert (t is ctypes.c_float) == (kinds[f] == _ffi.FIELD_FLOAT)
    # words go through the library's parser, numbers are stored as given
    cfg = dcrw.preset_config("dcrw", read_attention="no", encoder="lstm", enc_size=8, write_attention=True)
    assert (cfg["read_attention"], cfg["encoder"], cfg["write_attention"]) == (0, 0, 1)
    with pytest.raises(ValueError, match="read_attention"):
        dcrw.preset_config("draw", read_attention="maybe")
    c = _ffi.Config()
    _ffi.dcrw_config_preset(ctypes.byref(c), _ffi.PRESET_DCRW)
    buf = ctypes.create_string_buffer(32)
    _ffi.dcrw_config_get(ctypes.byref(c), b"encoder", buf, 32)
    assert buf.value == b"cnn"
    _ffi.dcrw_config_set(ctypes.byref(c), b"canvas_init", b"-0.5")
    assert c.canvas_init == -0.5
    d = _ffi.Config()
    _ffi.dcrw_config_preset(ctypes.byref(d), _ffi.PRESET_DCRW)
    assert _ffi.dcrw_config_equal(ctypes.byref(c), ctypes.byref(d)) == 0
    d.canvas_init = -0.5
    d.enc_size = 99  # not used by a CNN encoder
    assert _ffi.dcrw_config_equal(ctypes.byref(c), ctypes.byref(d)) == 1
