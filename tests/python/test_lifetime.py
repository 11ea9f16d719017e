"""Handles are freed exactly once: at the end of a `with` block or close(),
or at garbage collection; never while a view or a trainer still needs the
memory. Plus the import-time version check."""

import gc
import os
import shutil
import subprocess
import sys
import weakref

import numpy as np
import pytest

import dcrw
from conftest import TINY


def freed(ref):
    """Whether the C object behind a weakly referenced Handle is gone."""
    h = ref()
    return h is None or h.ptr is None


def test_context_manager_frees():
    with dcrw.Model.create("dcrw", **TINY["dcrw"]) as m:
        ref = weakref.ref(m._h)
        assert not freed(ref)
    assert m.closed and freed(ref)


def test_garbage_collection_frees():
    m = dcrw.Model.create("dcrw", **TINY["dcrw"])
    t = dcrw.Trainer(m)
    mref, tref = weakref.ref(m._h), weakref.ref(t._h)
    del m, t
    gc.collect()
    assert mref() is None and tref() is None


def test_views_keep_model_memory_alive():
    m = dcrw.Model.create("draw", seed=4, **TINY["draw"])
    ref = weakref.ref(m._h)
    w = m.param("write.bias")
    expect = w.copy()
    m.close()
    # closed for use, but the view still owns valid memory
    assert not freed(ref)
    with pytest.raises(ValueError):
        m.params
    np.testing.assert_array_equal(w, expect)
    w[:] = 1.0  # writable, and not a use after free (ASan would say so)
    base = w.base
    del w, base
    gc.collect()
    assert freed(ref)


def test_trainer_keeps_model_alive(tmp_path):
    x = (np.arange(3 * 144).reshape(3, 144) % 3 == 0).astype(np.float32)
    m = dcrw.Model.create("draw", seed=4, **TINY["draw"])
    mref = weakref.ref(m._h)
    t = dcrw.Trainer(m)
    tref = weakref.ref(t._h)
    del m
    gc.collect()
    assert not freed(mref) and t.model.input_size == 144
    t.step(x)
    # closing the model first must not free it under the trainer
    t.model.close()
    assert not freed(mref)
    t.step(x)
    assert t.step_count == 2
    g = t.grad("write.bias")
    t.close()
    assert not freed(tref) and not freed(mref)  # the gradient view holds both
    del g
    gc.collect()
    assert freed(tref) and freed(mref)


def test_release_twice_is_harmless():
    m = dcrw.Model.create("draw", **TINY["draw"])
    h = m._h
    m.close()
    h.release()
    h.release()
    assert h.ptr is None


def test_dataset_images_view_is_read_only(tmp_path):
    d = make_idx(tmp_path, 3, 2, 2)
    with dcrw.Dataset.load_idx(d) as ds:
        imgs = ds.images
        assert not imgs.flags.writeable
        with pytest.raises(ValueError):
            imgs[0, 0] = 1
    assert imgs.shape == (3, 4)
    np.testing.assert_allclose(imgs, np.arange(12).reshape(3, 4) * 20 / 255.0, rtol=1e-6)


def make_idx(tmp_path, n, h, w, labels=None):
    """An IDX3 image file of n images, pixel k = 20*k (bytes)."""
    path = tmp_path / "images-idx3-ubyte"
    header = bytes([0, 0, 8, 3]) + b"".join(v.to_bytes(4, "big") for v in (n, h, w))
    path.write_bytes(header + bytes((20 * k) % 256 for k in range(n * h * w)))
    if labels is not None:
        lpath = tmp_path / "labels-idx1-ubyte"
        lpath.write_bytes(bytes([0, 0, 8, 1]) + len(labels).to_bytes(4, "big") + bytes(labels))
        return path, lpath
    return path


def test_dataset(tmp_path):
    images, labels = make_idx(tmp_path, 3, 2, 2, labels=[7, 0, 9])
    with dcrw.Dataset.load_idx(images, labels) as ds:
        assert len(ds) == ds.count == 3 and ds.shape == (1, 2, 2) and ds.input_size == 4
        np.testing.assert_array_equal(ds.labels, [7, 0, 9])
        assert ds.label(2) == 9 and ds.label(3) == -1 and ds.label(-1) == -1
        grey = ds.batch([2, 0])
        assert grey.shape == (2, 4) and grey.dtype == np.float32
        np.testing.assert_allclose(grey, np.array([[160, 180, 200, 220], [0, 20, 40, 60]]) / 255.0, rtol=1e-6)
        thr = ds.batch(np.array([2, 0], dtype=np.int64), binarize="threshold")
        np.testing.assert_array_equal(thr, [[1, 1, 1, 1], [0, 0, 0, 0]])
        dyn = ds.batch([1, 2], binarize="dynamic", seed=5)
        assert set(np.unique(dyn)) <= {0.0, 1.0}
        # keyed by (seed, index, pixel): the same in any batch composition
        np.testing.assert_array_equal(ds.batch([2], binarize=1, seed=5)[0], dyn[1])
        with pytest.raises(dcrw.DcrwError) as e:
            ds.batch([0, 3])
        assert e.value.code == dcrw.EINVAL and e.value.message
        with pytest.raises(dcrw.DcrwError) as e:
            ds.batch([0], binarize=7)
        assert e.value.code == dcrw.EINVAL
        with pytest.raises(ValueError, match="negative index"):
            ds.batch([0, -1])
        with pytest.raises(ValueError, match="binarize"):
            ds.batch([0], binarize="random")
        with pytest.raises(TypeError, match="integers"):
            ds.batch([0.5])
        with pytest.raises(ValueError, match="batch size"):
            ds.batch([])
    with dcrw.Dataset.load_idx(images) as ds:
        assert ds.labels is None and ds.label(0) == -1
    bad = tmp_path / "bad-idx"
    bad.write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x05\x00\x00\x00\x02\x00\x00\x00\x02" + bytes(3))
    with pytest.raises(dcrw.DcrwError) as e:
        dcrw.Dataset.load_idx(bad)
    assert e.value.code == dcrw.ETRUNCATED and e.value.message
    with pytest.raises(dcrw.DcrwError) as e:
        dcrw.Dataset.load_idx(images, tmp_path / "missing-labels")
    assert e.value.code == dcrw.EIO


def test_version():
    major, minor, patch = dcrw.version()
    assert major == dcrw.EXPECTED_MAJOR == 0
    assert dcrw.__version__ == dcrw.version_string() == "%d.%d.%d" % (major, minor, patch)


def _import_with(env_library, tmp_path):
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(dcrw.__file__)))
    env = dict(os.environ, DCRW_LIBRARY=str(env_library), PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=package_dir)
    return subprocess.run(
        [sys.executable, "-c", "import dcrw"], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60
    )


def test_import_refuses_other_major_version(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build a fake library")
    src = tmp_path / "fake.c"
    src.write_text(
        "unsigned dcrw_version(void) { return 1u << 16 | 2u << 8 | 3u; }\n"
        'const char *dcrw_version_string(void) { return "1.2.3"; }\n'
    )
    lib = tmp_path / "libfake.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    r = _import_with(lib, tmp_path)
    assert r.returncode != 0
    assert "ImportError: libdcrw 1.2.3 is loaded, but this package needs major version 0" in r.stderr, r.stderr
    # and the real library imports fine the same way
    r = _import_with(os.environ["DCRW_LIBRARY"], tmp_path)
    assert r.returncode == 0, r.stderr


def test_import_without_library(tmp_path):
    r = _import_with(tmp_path / "libnothere.so", tmp_path)
    assert r.returncode != 0 and "ImportError: cannot load libdcrw" in r.stderr, r.stderr
