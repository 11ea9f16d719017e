"""The attention classifier (MODEL.md §9) through Python: Model.classify,
Model.classify_windows and Trainer.backward_labels / step_labels against
the golden file of the independent float64 implementation
(tests/golden/make_classify_golden.py), the refusals on both sides of the
classifier / generative line with the library's messages, the package's
own checks of the labels, and that a few steps learn a tiny task."""

import os

import numpy as np
import pytest

import dcrw
from conftest import GOLDEN_DIR, read_safetensors, rel_err

GOLDEN = os.path.join(GOLDEN_DIR, "golden-draw-classify-small.safetensors")

# A classifier that runs in a moment; not in conftest's TINY, whose presets
# the generative tests run through encode, decode and sample.
TINY_CLASSIFY = dict(height=12, width=12, glimpses=2, enc_size=8, read_n=3, classes=3)


def golden():
    ref, _ = read_safetensors(GOLDEN)
    # the labels are stored as F32 (the file has no integer tensors)
    labels = ref["golden.labels"].astype(np.int64)
    assert np.array_equal(labels, ref["golden.labels"])
    return ref, ref["golden.x"], labels


def test_golden_probabilities_and_windows():
    ref, x, _ = golden()
    with dcrw.Model.load(GOLDEN) as m:
        assert m.is_classifier and m.num_classes == 4 and m.glimpses == 3
        for name in m.param_names:
            np.testing.assert_array_equal(m.param(name), ref[name])
        probs, windows = m.classify_windows(x)
        B, K, T = x.shape[0], m.num_classes, m.glimpses
        assert probs.shape == (B, K) and probs.dtype == np.float32
        assert windows.shape == (T, B, 5) and windows.dtype == np.float32
        assert rel_err(probs, ref["golden.probs"]) < 1e-5
        assert rel_err(windows, ref["golden.windows"]) < 1e-5
        # classify() is classify_windows() without the windows
        np.testing.assert_array_equal(m.classify(x), probs)
        # images given as [B, C, H, W] or channels last are the same images
        C, H, W = m.image_shape
        chw = x.reshape(B, C, H, W)
        np.testing.assert_array_equal(m.classify(chw), probs)
        np.testing.assert_array_equal(m.classify(chw.transpose(0, 2, 3, 1)), probs)


def test_golden_loss_and_gradients():
    ref, x, labels = golden()
    with dcrw.Model.load(GOLDEN) as m, dcrw.Trainer(m) as t:
        loss = t.backward_labels(x, labels)
        ref_loss = float(ref["golden.loss"][0])
        assert abs(loss.loss - ref_loss) <= 1e-5 * ref_loss, (loss, ref_loss)
        # the classifier's loss is all "lx": there is no KL term
        assert loss.lx == loss.loss and loss.lz == 0.0
        # and it is the mean -log of the probability classify() gives
        probs = m.classify(x).astype(np.float64)
        nll = -np.mean(np.log(probs[np.arange(len(labels)), labels]))
        assert abs(nll - loss.loss) <= 1e-5 * loss.loss
        grads = t.named_grads()
        assert list(grads) == list(m.param_names) and len(grads) == 7
        for name, g in grads.items():
            gref = ref["grad." + name]
            assert g.shape == gref.shape, name
            err = rel_err(g, gref)
            assert err < 1e-4, "%s: relative error %.3g" % (name, err)
        flat = np.concatenate([ref["grad." + n].ravel() for n in m.param_names])
        assert rel_err(t.grads, flat) < 1e-4
        # a step reports the loss before its update, then changes the model
        before = m.flat_params.copy()
        step = t.step_labels(x, labels)
        assert step.loss == loss.loss and t.step_count == 1
        assert not np.array_equal(m.flat_params, before)


def test_parts_sum_to_the_golden_batch():
    """backward_labels_part over two parts of the golden batch: the parts'
    gradients sum to the golden gradients, their losses to the mean."""
    ref, x, labels = golden()
    B, cut = len(labels), len(labels) // 2
    with dcrw.Model.load(GOLDEN) as m, dcrw.Trainer(m) as t:
        l0 = t.backward_labels_part(x[:cut], labels[:cut], 0, B)
        g = t.grads.astype(np.float64)
        l1 = t.backward_labels_part(x[cut:], labels[cut:], cut, B)
        g += t.grads
        flat = np.concatenate([ref["grad." + n].ravel() for n in m.param_names])
        assert rel_err(g, flat) < 1e-4
        mean = (cut * l0.loss + (B - cut) * l1.loss) / B
        ref_loss = float(ref["golden.loss"][0])
        assert abs(mean - ref_loss) <= 1e-5 * ref_loss
        with pytest.raises(dcrw.DcrwError, match="not within a batch"):
            t.backward_labels_part(x[cut:], labels[cut:], cut + 1, B)


def test_probabilities_sum_to_one(rng):
    with dcrw.Model.create("draw-classify", seed=4, **TINY_CLASSIFY) as m:
        # larger attention weights than the initialisation's, so that the
        # windows (and the probabilities) differ from image to image
        m.param("read.attn.weight")[...] = rng.uniform(-0.5, 0.5, (5, 8))
        x = rng.random((7, m.input_size))
        probs, windows = m.classify_windows(x)
        assert probs.shape == (7, 3)
        np.testing.assert_allclose(probs.sum(axis=1, dtype=np.float64), 1.0, atol=1e-6)
        assert np.all(probs >= 0) and np.all(probs <= 1)
        assert not np.allclose(probs[0], probs[1])
        # stride, variance and intensity of every window are positive
        assert windows.shape == (2, 7, 5) and np.all(windows[..., 2:] > 0)
        # an image's probabilities do not depend on its batch
        np.testing.assert_allclose(m.classify(x[3:4])[0], probs[3], rtol=1e-6)


def test_preset_and_config():
    cfg = dcrw.preset_config("draw-classify")
    # the paper's §4.1 classifier
    assert cfg["classify"] == 1 and cfg["classes"] == 10
    assert (cfg["height"], cfg["width"], cfg["glimpses"], cfg["read_n"]) == (100, 100, 8, 12)
    assert {"classify", "classes"} <= set(dcrw.CONFIG_FIELDS)
    assert dcrw.preset_config("draw")["classify"] == 0
    # by number too, and the generative sizes do not matter
    with dcrw.Model.create(4, **TINY_CLASSIFY) as m:
        assert m.is_classifier and m.num_classes == 3
        assert m.config["classify"] == 1 and m.config["classes"] == 3
        assert "classifier" in repr(m) and "K=3" in repr(m)
    with dcrw.Model.create("draw", height=12, width=12, glimpses=2, enc_size=8, dec_size=8) as g:
        assert not g.is_classifier and g.num_classes == 0
    # the classifier's own rules are the library's
    with pytest.raises(dcrw.DcrwError, match="classes") as e:
        dcrw.Model.create("draw-classify", **dict(TINY_CLASSIFY, classes=1))
    assert e.value.code == dcrw.ECONFIG
    with pytest.raises(ValueError, match="draw-classify"):
        dcrw.Model.create(9)


def test_save_and_load(tmp_path, rng):
    path = tmp_path / "classifier.safetensors"
    x = rng.random((3, 144))
    with dcrw.Model.create("draw-classify", seed=2, **TINY_CLASSIFY) as m:
        m.save(path)
        probs = m.classify(x)
    with dcrw.Model.load(path) as back:
        assert back.is_classifier and back.num_classes == 3
        np.testing.assert_array_equal(back.classify(x), probs)


def expect_einval(fn, *args, match):
    with pytest.raises(dcrw.DcrwError) as e:
        fn(*args)
    assert e.value.code == dcrw.EINVAL, e.value
    assert match in e.value.message, e.value.message
    return e.value


def test_refusals_across_the_classifier_line(rng):
    x = rng.random((2, 144))
    gen_cfg = dict(height=12, width=12, glimpses=2, enc_size=8, dec_size=8, z_size=2)
    with dcrw.Model.create("draw", **gen_cfg) as g, dcrw.Trainer(g) as tg:
        # a generative model has no classes: the library says so
        e = expect_einval(g.classify, x, match="not a classifier")
        assert e.function == "dcrw_classify"
        expect_einval(g.classify_windows, x, match="not a classifier")
        e = expect_einval(tg.step_labels, x, [0, 1], match="takes no labels")
        assert e.function == "dcrw_trainer_step_labels"
        expect_einval(tg.backward_labels, x, [0, 1], match="takes no labels")
        assert tg.step_count == 0
    with dcrw.Model.create("draw-classify", **TINY_CLASSIFY) as m, dcrw.Trainer(m) as t:
        # and a classifier has no generative pass, nor a step without labels
        expect_einval(m.encode, x, match="classifier")
        expect_einval(m.evaluate, x, match="classifier")
        expect_einval(m.reconstruct, x, match="classifier")
        expect_einval(t.step, x, match="labels")
        expect_einval(t.backward, x, match="labels")
        assert t.step_count == 0


def test_label_checks(rng):
    with dcrw.Model.create("draw-classify", **TINY_CLASSIFY) as m, dcrw.Trainer(m) as t:
        x = rng.random((3, m.input_size))
        # a label outside [0, K): the library's message names the image
        e = expect_einval(t.step_labels, x, [0, 3, 1], match="image 1")
        assert "label 3" in e.message
        expect_einval(t.backward_labels, x, np.array([-1, 0, 1]), match="image 0")
        # refused before the call: a label beyond int32 (which the
        # conversion would wrap around to the valid class 1), floats, and
        # a count that is not the batch's
        with pytest.raises(ValueError, match="32-bit"):
            t.step_labels(x, np.array([0, 2**32 + 1, 1], dtype=np.int64))
        with pytest.raises(TypeError, match="integers"):
            t.step_labels(x, [0.0, 1.0, 2.0])
        with pytest.raises(ValueError, match=r"\(B,\) = \(3,\)"):
            t.step_labels(x, [0, 1])
        with pytest.raises(ValueError, match=r"\(B,\) = \(3,\)"):
            t.step_labels(x, [[0, 1, 2]])
        assert t.step_count == 0
        # any integer dtype and layout is taken
        labels = np.array([[2, 9], [0, 9], [1, 9]], dtype=np.uint8)[:, 0]
        a = t.backward_labels(x, labels)
        b = t.backward_labels(x, [2, 0, 1])
        assert a == b
        with pytest.raises(ValueError, match="expected shape"):
            m.classify(x[:, :-1])


def quadrant_batch(rng, B):
    """12x12 images each holding one 2x2 blob; the class is the quadrant
    the blob is in (chance: 1/4)."""
    x = np.zeros((B, 12, 12), dtype=np.float32)
    labels = np.arange(B) % 4
    for b, q in enumerate(labels):
        r, c = (q // 2) * 6 + rng.integers(0, 5), (q % 2) * 6 + rng.integers(0, 5)
        x[b, r : r + 2, c : c + 2] = 1
    return x, labels


def test_training_reduces_the_loss(rng):
    x, labels = quadrant_batch(rng, 32)
    cfg = dict(height=12, width=12, glimpses=2, enc_size=16, read_n=3, classes=4)
    with dcrw.Model.create("draw-classify", seed=1, **cfg) as m:
        with dcrw.Trainer(m, learning_rate=1e-2) as t:
            losses = [t.step_labels(x, labels).loss for _ in range(40)]
            assert t.step_count == 40
        assert all(np.isfinite(losses))
        assert losses[0] == pytest.approx(np.log(4), rel=0.2)  # about chance at first
        assert losses[-1] < 0.5 * losses[0], losses
        # the probabilities the trained model gives agree with its loss
        probs = m.classify(x)
        nll = -np.mean(np.log(probs[np.arange(32), labels]))
        assert nll < 0.5 * losses[0]
