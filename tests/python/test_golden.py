"""The golden files of the independent float64 implementation, through Python:
the same loss (1e-5 relative) and gradients (1e-4 of each tensor's largest
magnitude) the C golden test checks, and encode/reconstruct against the
golden Lz/Lx computed here from MODEL.md §5."""

import os

import numpy as np
import pytest

import dcrw
from conftest import GOLDEN, GOLDEN_DIR, read_safetensors, rel_err



@pytest.mark.parametrize("name", GOLDEN)
def test_golden_loss_and_gradients(name):
    path = os.path.join(GOLDEN_DIR, name + ".safetensors")
    ref, _ = read_safetensors(path)
    x, eps = ref["golden.x"], ref["golden.eps"]
    B = x.shape[0]
    with dcrw.Model.load(path) as m, dcrw.Trainer(m) as t:
        assert x.shape == (B, m.input_size) and eps.shape == (m.glimpses, B, m.z_size)
        # the golden model's parameters are the file's tensors, bit for bit
        for pname in m.param_names:
            np.testing.assert_array_equal(m.param(pname), ref[pname])
        loss = t.backward(x, eps)
        ref_loss = float(ref["golden.loss"][0])
        assert abs(loss.loss - ref_loss) <= 1e-5 * abs(ref_loss), (loss, ref_loss)
        assert abs(loss.lx - float(ref["golden.lx"][0])) <= 1e-5 * abs(ref_loss)
        assert abs(loss.lz - float(ref["golden.lz"][0])) <= 1e-5 * abs(ref_loss)
        grads = t.named_grads()
        assert len(grads) == len(m.param_names) > 0
        for pname, g in grads.items():
            gref = ref["grad." + pname]
            assert g.shape == gref.shape, pname
            err = rel_err(g, gref)
            assert err < 1e-4, "%s %s: relative error %.3g" % (name, pname, err)
        # the flat buffer holds the same numbers
        flat = np.concatenate([ref["grad." + p].ravel() for p in m.param_names])
        assert rel_err(t.grads, flat) < 1e-4
        ev = m.evaluate(x, eps)
        assert abs(ev.loss - loss.loss) <= 1e-6 * abs(loss.loss)


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_encode_and_reconstruct(name):
    path = os.path.join(GOLDEN_DIR, name + ".safetensors")
    ref, _ = read_safetensors(path)
    x, eps = ref["golden.x"], ref["golden.eps"]
    with dcrw.Model.load(path) as m:
        enc = m.encode(x, eps)
        mu, ls = enc.mu.astype(np.float64), enc.logsigma.astype(np.float64)
        lz = np.sum(0.5 * (mu**2 + np.exp(2 * ls) - 2 * ls - 1), axis=(0, 2)).mean()
        assert abs(lz - float(ref["golden.lz"][0])) <= 1e-4 * float(ref["golden.loss"][0])
        p = m.reconstruct(x, eps).astype(np.float64)
        lx = -np.sum(x * np.log(p) + (1 - x) * np.log1p(-p), axis=1).mean()
        assert abs(lx - float(ref["golden.lx"][0])) <= 1e-4 * float(ref["golden.loss"][0])
