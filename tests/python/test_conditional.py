"""Class-conditional models (MODEL.md §10) through Python: the golden files
of tests/golden/reference.py (loss 1e-5, gradients 1e-4 of each tensor's
largest magnitude), generation that follows the label and not the batch,
and the refusals."""

import os

import numpy as np
import pytest

import dcrw
from conftest import GOLDEN_DIR, read_safetensors, rel_err

COND = ["golden-draw-cond-small", "golden-dcrw-cond-small", "golden-dcrw-noread-cond-small"]


@pytest.mark.parametrize("name", COND)
def test_golden(name):
    path = os.path.join(GOLDEN_DIR, name + ".safetensors")
    ref, _ = read_safetensors(path)
    x, eps = ref["golden.x"], ref["golden.eps"]
    labels = ref["golden.labels"].astype(np.int32)
    with dcrw.Model.load(path) as m, dcrw.Trainer(m) as t:
        assert m.is_conditional and not m.is_classifier and m.num_classes >= 2
        loss = t.backward_labels(x, labels, eps)
        ref_loss = float(ref["golden.loss"][0])
        assert abs(loss.loss - ref_loss) <= 1e-5 * abs(ref_loss), (loss, ref_loss)
        assert abs(loss.lz - float(ref["golden.lz"][0])) <= 1e-5 * abs(ref_loss)
        for pname, g in t.named_grads().items():
            err = rel_err(g, ref["grad." + pname])
            assert err < 1e-4, "%s %s: relative error %.3g" % (name, pname, err)


def test_generation_follows_the_label():
    cfg = dict(height=8, width=8, glimpses=3, dec_size=8, z_size=3, read_n=5, write_n=3,
               conv1=3, conv2=4, classes=3)
    with dcrw.Model.create("dcrw", seed=2, **cfg) as m:
        w = m.param("dec.lstm.weight_ih")
        w[...] = np.random.default_rng(0).uniform(-1, 1, w.shape)
        labels = np.array([0, 1, 2, 1])
        a = m.decode_labels(labels, seed=4)
        b = m.decode_labels(labels, seed=4)
        np.testing.assert_array_equal(a, b)
        # an image's draw is keyed by its index in the set, not by the batch
        one = m.decode_labels(labels[3:], seed=4, first=3)
        np.testing.assert_allclose(one[0], a[3], rtol=1e-5, atol=1e-6)
        # the same noise under another label is another image
        c = m.decode_labels(np.array([2, 1, 2, 1]), seed=4)
        np.testing.assert_allclose(c[1:], a[1:], rtol=1e-6, atol=1e-7)
        assert np.max(np.abs(c[0] - a[0])) > 1e-3
        losses = m.evaluate_labels(a, labels, seed=1)
        assert losses.lx.shape == (4,) and np.all(np.isfinite(losses.lx))
        rec = m.reconstruct_labels(a, labels, seed=1, canvases=True)
        assert rec.canvases.shape == (3, 4, 64)
        with dcrw.Trainer(m) as t:
            first = t.step_labels(a, labels).loss
            for _ in range(20):
                last = t.step_labels(a, labels).loss
            assert last < first


def test_refusals():
    cfg = dict(height=8, width=8, glimpses=2, dec_size=8, z_size=3, write_n=3, conv1=3,
               conv2=4)
    with dcrw.Model.create("dcrw-noread", seed=1, classes=4, **cfg) as m:
        x = np.zeros((2, 64), np.float32)
        with pytest.raises(dcrw.DcrwError, match="dcrw_decode_labels"):
            m.sample(2)
        with pytest.raises(dcrw.DcrwError, match="image 1"):
            m.decode_labels([0, 4])
        with pytest.raises(TypeError):
            m.evaluate_labels(x, [0.0, 1.0])
        with dcrw.Trainer(m) as t:
            with pytest.raises(dcrw.DcrwError, match="conditional"):
                t.step(x)
    with dcrw.Model.create("dcrw-noread", seed=1, **cfg) as m:
        assert not m.is_conditional and m.num_classes == 0
        with pytest.raises(dcrw.DcrwError, match="takes no labels"):
            m.decode_labels([0, 1])
