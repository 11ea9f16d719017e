"""Two independent implementations agree on every generative golden file.

tests/golden/reference.py is a float64 NumPy implementation of MODEL.md
sections 1-7 written from the text alone; the golden files were made by a
different one (PyTorch float64). Here the reference recomputes each file's
loss, Lx and Lz (within 1e-6 of |loss|) and every coordinate of every
gradient tensor by central differences with step 1e-6 (within 1e-4 of the
tensor's largest magnitude; all coordinates, not a subset: the
differences go through the forward many at a time and the five files take
about 2 s). The three class-conditional files of §10 (made by
tests/golden/make_conditional_golden.py through the reference itself) are
held to the same tolerances, and a conditional model whose label columns are
0 must give the unconditional loss. It also checks the batched differences
against one-at-a-time perturbations, the §7 / §10 parameter shapes, and the
hand-written safetensors reader and writer. Needs neither libdcrw nor the
Python package."""

import importlib.util
import os
import struct
import sys

import numpy as np
import pytest

from conftest import GOLDEN, GOLDEN_DIR, read_safetensors



def load_reference():
    """tests/golden/reference.py as a module, imported by path (no bytecode written)."""
    path = os.path.join(GOLDEN_DIR, "reference.py")
    spec = importlib.util.spec_from_file_location("dcrw_golden_reference", path)
    module = importlib.util.module_from_spec(spec)
    saved = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module


ref = load_reference()
# the class-conditional golden files (MODEL.md §10); not in conftest's GOLDEN,
# which the library's own golden tests run
GOLDEN_COND = [f[: -len(".safetensors")] for f in ref.GOLDEN_COND_FILES]
ALL = GOLDEN + GOLDEN_COND


def golden_path(name):
    return os.path.join(GOLDEN_DIR, name + ".safetensors")


def test_reference_covers_every_generative_golden_file():
    assert [f[: -len(".safetensors")] for f in ref.GOLDEN_FILES] == GOLDEN
    on_disk = sorted(f[: -len(".safetensors")] for f in os.listdir(GOLDEN_DIR)
                     if f.startswith("golden-") and f.endswith(".safetensors"))
    # every golden file but the classifier's (MODEL.md §9, outside the reference)
    assert sorted(ALL) == [f for f in on_disk if f != "golden-draw-classify-small"]
    assert all("-cond-" in f for f in GOLDEN_COND) and not any("-cond-" in f for f in GOLDEN)


@pytest.mark.parametrize("name", ALL)
def test_golden_file_agrees_with_reference(name):
    r = ref.check_file(golden_path(name))
    assert r["loss_err"] <= 1e-6, (r["loss"], r["file_loss"])
    assert r["lx_err"] <= 1e-6 and r["lz_err"] <= 1e-6, (r["lx_err"], r["lz_err"])
    for pname, err in r["grad_err"].items():
        n, size = r["coords"][pname]
        assert n == size, pname
        assert err <= 1e-4, "%s %s: relative error %.3g" % (name, pname, err)
    assert r["ok"]


@pytest.mark.parametrize("name", ALL)
def test_batched_differences_equal_single_perturbations(name):
    cfg, params, x, eps, gold = ref.load_golden(golden_path(name))
    labels = gold["labels"]
    rng = np.random.default_rng(7)
    for pname, value in params.items():
        ks = rng.choice(value.size, size=min(2, value.size), replace=False)
        _, batched = ref.fd_gradient(cfg, params, x, eps, pname, ks, labels=labels)
        single = [ref.fd_gradient_one(cfg, params, x, eps, pname, k, labels=labels)
                  for k in ks]
        # the same perturbed forwards (bit-identical here; a BLAS may sum in
        # another order, worth ~1e-14 of the loss, 5e-9 after dividing by 2e-6)
        np.testing.assert_allclose(batched, single, rtol=0, atol=2e-8, err_msg=pname)


@pytest.mark.parametrize("name", ALL)
def test_parameter_shapes_are_those_of_model_md(name):
    tensors, meta = read_safetensors(golden_path(name))
    cfg = ref.parse_config(meta)
    shapes = {k: tuple(v.shape) for k, v in tensors.items()
              if not k.startswith(("golden.", "grad."))}
    assert shapes == dict(ref.param_shapes(cfg))


@pytest.mark.parametrize("name", ALL + ["golden-draw-classify-small"])
def test_reader_agrees_with_conftest(name):
    ours, ours_meta = ref.read_safetensors(golden_path(name))
    theirs, theirs_meta = read_safetensors(golden_path(name))
    assert ours_meta == theirs_meta
    assert list(ours) == list(theirs)
    for k in ours:
        assert ours[k].dtype == np.float32
        np.testing.assert_array_equal(ours[k], theirs[k])


def test_writer_round_trip(tmp_path):
    path = str(tmp_path / "t.safetensors")
    tensors = [("b", np.arange(6, dtype=np.float64).reshape(2, 3) / 7),
               ("a", np.array([1.5], dtype=np.float32)), ("e", np.zeros((0, 4)))]
    meta = {"dcrw.format": "1", "note": "x y"}
    ref.write_safetensors(path, tensors, meta)
    with open(path, "rb") as fh:
        blob = fh.read()
    (n,) = struct.unpack("<Q", blob[:8])
    assert n % 8 == 0 and blob[8 + n - 1:8 + n] in (b" ", b"}")
    assert len(blob) == 8 + n + 4 * (6 + 1)
    back, back_meta = ref.read_safetensors(path)
    assert back_meta == meta and list(back) == ["b", "a", "e"]
    for k, v in tensors:
        np.testing.assert_array_equal(back[k], np.asarray(v, dtype=np.float32))
    # and the conftest reader, written separately, reads it too
    theirs, theirs_meta = read_safetensors(path)
    assert theirs_meta == meta
    np.testing.assert_array_equal(theirs["b"], back["b"])


def test_classifier_is_refused():
    _, meta = read_safetensors(golden_path("golden-draw-classify-small"))
    with pytest.raises(ValueError, match="classifier"):
        ref.parse_config(meta)


def test_a_wrong_gradient_is_reported(tmp_path):
    tensors, meta = ref.read_safetensors(golden_path("golden-dcrw-noread-small"))
    g = tensors["grad.write.attn.bias"].copy()
    g[2] += 1e-3 * np.max(np.abs(g))
    tensors["grad.write.attn.bias"] = g
    path = str(tmp_path / "bad.safetensors")
    ref.write_safetensors(path, tensors, meta)
    r = ref.check_file(path)
    assert not r["ok"] and r["grad_worst"][0] == "write.attn.bias"
    assert r["loss_err"] <= 1e-6


# ------------------------------------------------ class-conditional models (§10)


def strip_labels(cfg, params):
    """The unconditional configuration and parameters: each label weight
    without its last K columns (§10: ŷ is the last input of each layer)."""
    K = cfg["classes"]
    out = dict(params)
    for n in ref.label_weights(cfg):
        out[n] = params[n][:, :-K]
    return dict(cfg, classes=0), out


@pytest.mark.parametrize("name", GOLDEN_COND)
def test_conditional_file_metadata_and_labels(name):
    tensors, meta = ref.read_safetensors(golden_path(name))
    base = name.replace("-cond-", "-")
    _, base_meta = ref.read_safetensors(golden_path(base))
    assert meta["dcrw.classes"] == "3"
    # the sizes of the unconditional file of the same architecture
    for key in ("preset", "channels", "height", "width", "enc_size", "dec_size", "z_size",
                "read_n", "write_n", "conv1", "conv2", "encoder", "read_attention",
                "write_attention"):
        assert meta["dcrw." + key] == base_meta["dcrw." + key], key
    labels, x = tensors["golden.labels"], tensors["golden.x"]
    assert labels.shape == (x.shape[0],)
    assert np.all(labels == np.rint(labels)) and np.all((labels >= 0) & (labels < 3))
    assert set(np.unique(x)) <= {0.0, 1.0}


@pytest.mark.parametrize("name", GOLDEN_COND)
def test_conditional_label_columns(name):
    """K extra columns at the end of each §10 weight; their gradients are 0
    exactly in the columns of classes absent from the batch."""
    cfg, params, _, _, gold = ref.load_golden(golden_path(name))
    K, present = cfg["classes"], set(gold["labels"].tolist())
    _, plain = strip_labels(cfg, params)
    uncond = dict(ref.param_shapes(dict(cfg, classes=0)))
    names = ref.label_weights(cfg)
    assert "dec.lstm.weight_ih" in names
    assert ("enc.lstm.weight_ih" in names) == (cfg["encoder"] == "lstm")
    for n, shape in ref.param_shapes(cfg):
        assert plain[n].shape == uncond[n]
        assert shape == (uncond[n][:-1] + (uncond[n][-1] + K,) if n in names else uncond[n])
        if n in names:
            g = gold["grads"][n][:, -K:]
            for k in range(K):
                assert np.any(g[:, k] != 0) == (k in present), (n, k)


@pytest.mark.parametrize("name", GOLDEN_COND)
def test_zeroed_label_columns_give_the_unconditional_loss(name):
    cfg, params, x, eps, gold = ref.load_golden(golden_path(name))
    zeroed = dict(params)
    for n in ref.label_weights(cfg):
        zeroed[n] = params[n].copy()
        zeroed[n][:, -cfg["classes"]:] = 0.0
    ucfg, plain = strip_labels(cfg, params)
    ref.check_params(ucfg, plain)
    cond = ref.forward(cfg, zeroed, x, eps, gold["labels"])
    uncond = ref.forward(ucfg, plain, x, eps)
    np.testing.assert_allclose(cond, uncond, rtol=1e-13, atol=0)
    # and the labels matter once the columns are not 0
    assert abs(ref.forward(cfg, params, x, eps, gold["labels"])[0] - uncond[0]) > 1e-3


def test_labels_are_required_exactly_when_conditional():
    cfg, params, x, eps, gold = ref.load_golden(golden_path("golden-draw-cond-small"))
    labels = gold["labels"]
    with pytest.raises(ValueError, match="needs labels"):
        ref.forward(cfg, params, x, eps)
    for bad in (labels[:-1], labels + 3, labels - 3, labels + 0.5):
        with pytest.raises(ValueError, match="labels must be"):
            ref.forward(cfg, params, x, eps, bad)
    ucfg, plain = strip_labels(cfg, params)
    with pytest.raises(ValueError, match="unconditional"):
        ref.forward(ucfg, plain, x, eps, labels)
    with pytest.raises(ValueError, match="classes"):
        ref.parse_config(dict(cfg, classes=1))
