"""Data sets from NumPy arrays and from files of every format the library
reads, and images in every layout the model takes: each dtype and layout
compared value by value with what NumPy computes, each refusal named."""

import gzip
import os
import struct
import zlib

import numpy as np
import pytest

import dcrw
from conftest import TINY

FASHION = os.environ.get("DCRW_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")


def nchw_floats(x, layout):
    """What the library must hold for x: [N, C*H*W] float32 in [0, 1]."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[:, None]
    elif layout == "nhwc":
        x = x.transpose(0, 3, 1, 2)
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    return (x.astype(np.float64) / scale).astype(np.float32).reshape(len(x), -1)


def images(rng, shape, dtype):
    if dtype == np.uint8:
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    return rng.random(shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64, np.bool_])
@pytest.mark.parametrize(
    "shape,layout,chw",
    [
        ((5, 6, 7), "nhw", (1, 6, 7)),
        ((5, 3, 6, 7), "nchw", (3, 6, 7)),
        ((5, 6, 7, 3), "nhwc", (3, 6, 7)),
        ((5, 1, 6, 7), "nchw", (1, 6, 7)),
        ((5, 6, 7, 1), "nhwc", (1, 6, 7)),
        ((5, 6, 7, 4), "nhwc", (4, 6, 7)),
    ],
)
def test_from_array_dtypes_and_layouts(dtype, shape, layout, chw):
    rng = np.random.default_rng(1)
    x = images(rng, shape, dtype)
    labels = rng.integers(0, 10, size=shape[0])
    with dcrw.Dataset.from_array(x, labels) as d:
        assert len(d) == shape[0]
        assert d.shape == chw
        np.testing.assert_array_equal(d.images, nchw_floats(x, layout))
        np.testing.assert_array_equal(d.labels, labels)
        assert d.batch([4, 0]).shape == (2, int(np.prod(chw)))
    # the array is copied: changing it afterwards changes nothing
    with dcrw.Dataset.from_array(x) as d:
        before = d.images.copy()
        x[...] = 0
        np.testing.assert_array_equal(d.images, before)
        assert d.labels is None


def test_from_array_layout_argument_and_rule():
    rng = np.random.default_rng(2)
    # [N, 3, 8, 3]: the rule says channels first (the second dimension is 3)
    x = rng.random((2, 3, 8, 3)).astype(np.float32)
    assert not dcrw.channels_last(x.shape)
    with dcrw.Dataset.from_array(x) as d:
        assert d.shape == (3, 8, 3)
    with dcrw.Dataset.from_array(x, layout="nhwc") as d:
        assert d.shape == (3, 3, 8)
        np.testing.assert_array_equal(d.images, nchw_floats(x, "nhwc"))
    # a non-contiguous view is read as its values, not its memory
    y = rng.random((4, 10, 12)).astype(np.float32)[:, ::2, ::3]
    with dcrw.Dataset.from_array(y) as d:
        np.testing.assert_array_equal(d.images, nchw_floats(np.ascontiguousarray(y), "nhw"))


def test_from_array_refusals():
    with pytest.raises(TypeError, match="int64.*astype"):
        dcrw.Dataset.from_array(np.zeros((2, 3, 3), np.int64))
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        dcrw.Dataset.from_array(np.zeros((2, 9), np.float32))
    with pytest.raises(ValueError, match="no images"):
        dcrw.Dataset.from_array(np.zeros((0, 3, 3), np.float32))
    with pytest.raises(ValueError, match="layout"):
        dcrw.Dataset.from_array(np.zeros((2, 3, 3, 3), np.float32), layout="hwc")
    with pytest.raises(ValueError, match=r"labels: expected shape \(2,\)"):
        dcrw.Dataset.from_array(np.zeros((2, 3, 3), np.float32), labels=[1, 2, 3])
    with pytest.raises(ValueError, match="labels: expected integers in"):
        dcrw.Dataset.from_array(np.zeros((2, 3, 3), np.float32), labels=[1, -1])
    with pytest.raises(TypeError, match="labels: expected integers"):
        dcrw.Dataset.from_array(np.zeros((2, 3, 3), np.float32), labels=[1.5, 2])
    x = np.zeros((2, 3, 3), np.float32)
    x[1, 2, 2] = 1.5
    with pytest.raises(dcrw.DcrwError) as e:
        dcrw.Dataset.from_array(x)
    assert e.value.code == dcrw.EINVAL and "1.5" in str(e.value)
    x[1, 2, 2] = np.nan
    with pytest.raises(dcrw.DcrwError) as e:
        dcrw.Dataset.from_array(x.astype(np.float64))
    assert e.value.code == dcrw.ENUMERIC
    with pytest.raises(dcrw.DcrwError) as e:
        dcrw.Dataset.from_array(np.zeros((2, 65, 3, 3), np.uint8), layout="nchw")
    assert e.value.code == dcrw.EINVAL and "channels" in str(e.value)


# ---- files of every format


def idx_bytes(x):
    kind = 3 if x.ndim == 3 else (1 if x.ndim == 1 else 4)
    return struct.pack(">HBB", 0, 8, kind) + struct.pack(">%dI" % x.ndim, *x.shape) + x.tobytes()


def png_bytes(rows, colour, depth=8):
    """rows: [H, W*samples] uint8 (depth 8) or big-endian uint16 bytes."""
    h = rows.shape[0]
    w = rows.shape[1] // {0: 1, 2: 3, 4: 2, 6: 4}[colour] // (depth // 8)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\0" + rows[y].tobytes() for y in range(h))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_load_npy_each_dtype_and_layout(tmp_path):
    rng = np.random.default_rng(3)
    cases = [
        (rng.integers(0, 256, (4, 5, 6), dtype=np.uint8), "nhw"),
        (rng.random((4, 3, 5, 6)).astype(np.float32), "nchw"),
        (rng.random((4, 5, 6, 3)), "nhwc"),
        (rng.random((4, 5, 6, 1)).astype(">f4"), "nhwc"),
    ]
    for i, (x, layout) in enumerate(cases):
        path = tmp_path / ("x%d.npy" % i)
        np.save(path, x)
        with dcrw.load_dataset(str(path)) as d:
            np.testing.assert_array_equal(d.images, nchw_floats(x.astype(x.dtype.newbyteorder("=")), layout))
            assert d.labels is None
    np.save(tmp_path / "f.npy", np.asfortranarray(rng.random((2, 3, 4)).astype(np.float32)))
    with pytest.raises(dcrw.DcrwError) as e:
        dcrw.load_dataset(str(tmp_path / "f.npy"))
    assert e.value.code == dcrw.EUNSUPPORTED and "Fortran" in str(e.value)
    np.save(tmp_path / "i.npy", np.zeros((2, 3, 4), np.int16))
    with pytest.raises(dcrw.DcrwError) as e:
        dcrw.load_dataset(str(tmp_path / "i.npy"))
    assert e.value.code == dcrw.EUNSUPPORTED and "'<i2'" in str(e.value)


def test_load_idx_folders_and_splits(tmp_path):
    rng = np.random.default_rng(4)
    train, test = (rng.integers(0, 256, (n, 4, 5), dtype=np.uint8) for n in (6, 3))
    tl, el = (rng.integers(0, 10, n, dtype=np.uint8) for n in (6, 3))
    d = tmp_path / "fashion-like"
    d.mkdir()
    for name, arr in (("train-images-idx3-ubyte", train), ("train-labels-idx1-ubyte", tl),
                      ("t10k-images-idx3-ubyte", test), ("t10k-labels-idx1-ubyte", el)):
        (d / (name + ".gz")).write_bytes(gzip.compress(idx_bytes(arr)))
    for split, x, lab in (("train", train, tl), ("test", test, el)):
        with dcrw.load_dataset(str(d), split) as ds:
            np.testing.assert_array_equal(ds.images, nchw_floats(x, "nhw"))
            np.testing.assert_array_equal(ds.labels, lab)
    with pytest.raises(ValueError, match="split"):
        dcrw.load_dataset(str(d), "valid")
    # train.npy and test.npy of one folder
    n = tmp_path / "npys"
    n.mkdir()
    np.save(n / "train.npy", train)
    np.save(n / "test.npy", test.astype(np.float32) / 255)
    with dcrw.load_dataset(str(n), "test") as ds:
        np.testing.assert_allclose(ds.images, nchw_floats(test, "nhw"), rtol=1e-6)
    with pytest.raises(dcrw.DcrwError) as e:
        dcrw.load_dataset(str(tmp_path / "missing"))
    assert e.value.code == dcrw.EIO


def test_load_png_folders(tmp_path):
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (4, 3, 5, 3), dtype=np.uint8)  # [N, H, W, C]
    grey16 = rng.integers(0, 65536, (2, 3, 5), dtype=np.uint16)
    for i, img in enumerate(rgb):
        cls = tmp_path / "rgb" / ("b" if i % 2 else "a")
        cls.mkdir(parents=True, exist_ok=True)
        (cls / ("%d.png" % i)).write_bytes(png_bytes(img.reshape(3, 15), 2))
    with dcrw.load_dataset(str(tmp_path / "rgb")) as d:
        assert d.shape == (3, 3, 5)
        order = [0, 2, 1, 3]  # class a, then class b
        np.testing.assert_array_equal(d.images, nchw_floats(rgb[order], "nhwc"))
        np.testing.assert_array_equal(d.labels, [0, 0, 1, 1])
    g = tmp_path / "grey16"
    g.mkdir()
    for i, img in enumerate(grey16):
        (g / ("%d.png" % i)).write_bytes(png_bytes(img.astype(">u2").view(np.uint8).reshape(3, 10), 0, 16))
    with dcrw.load_dataset(str(g)) as d:
        np.testing.assert_array_equal(d.images, (grey16 / 65535.0).astype(np.float32).reshape(2, -1))
    (g / "2.png").write_bytes(png_bytes(np.zeros((3, 6), np.uint8), 0))
    with pytest.raises(dcrw.DcrwError) as e:
        dcrw.load_dataset(str(g))
    assert e.value.code == dcrw.ESHAPE and "2.png" in str(e.value) and "0.png, the first" in str(e.value)


@pytest.mark.skipif(
    not os.path.isfile(os.path.join(FASHION, "train-images-idx3-ubyte.gz")),
    reason="no Fashion-MNIST in %s (apt-get install dataset-fashion-mnist)" % FASHION,
)
def test_fashion_mnist_as_debian_installs_it():
    with dcrw.load_dataset(FASHION) as train, dcrw.load_dataset(FASHION, "test") as test:
        assert (len(train), len(test)) == (60000, 10000)
        assert train.shape == test.shape == (1, 28, 28)
        assert sorted(set(test.labels.tolist())) == list(range(10))
        # each class holds a tenth of the test set, as the data set says
        assert np.bincount(test.labels).tolist() == [1000] * 10
        assert 0.0 <= train.images.min() and train.images.max() == 1.0


# ---- images in every layout the model takes


def test_model_takes_each_layout():
    rng = np.random.default_rng(6)
    cfg = dict(TINY["draw"])
    with dcrw.Model.create("draw", seed=1, **cfg) as m:
        x = rng.random((3, 12, 12)).astype(np.float32)
        eps = rng.standard_normal((3, 3, 4)).astype(np.float32)
        want = m.evaluate(x.reshape(3, 144), eps)
        assert m.evaluate(x, eps) == want
        assert m.evaluate(x[:, None], eps) == want
        with pytest.raises(ValueError, match=r"\(B, 12, 12\), got \(3, 12, 12, 1\)"):
            m.evaluate(x[:, :, :, None], eps)
        with dcrw.Trainer(m) as t:
            assert np.isfinite(t.step(x, eps).loss)
    cfg.update(channels=3)
    with dcrw.Model.create("draw", seed=1, **cfg) as m:
        x = rng.random((2, 3, 12, 12)).astype(np.float32)
        eps = rng.standard_normal((3, 2, 4)).astype(np.float32)
        want = m.evaluate(x, eps)
        assert m.evaluate(x.reshape(2, -1), eps) == want
        assert m.evaluate(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), eps) == want
        np.testing.assert_array_equal(m.reconstruct(x.transpose(0, 2, 3, 1), eps), m.reconstruct(x, eps))
        with pytest.raises(ValueError, match="expected shape"):
            m.evaluate(x[:, 0], eps)  # [B, H, W] is for one channel
        # a data set from the array feeds the model as it is
        with dcrw.Dataset.from_array(x.transpose(0, 2, 3, 1)) as d:
            assert m.evaluate(d.batch([0, 1]), eps) == want


# ---- the data set scripts of examples/datasets

MNIST = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "data", "mnist")
SCRIPTS = os.path.join(os.path.dirname(MNIST), "..", "examples", "datasets")


def run_script(name, *args):
    import subprocess
    import sys

    subprocess.run([sys.executable, os.path.join(SCRIPTS, name), *args], check=True, capture_output=True)


@pytest.mark.skipif(not os.path.isfile(os.path.join(MNIST, "train-images-idx3-ubyte")), reason="no MNIST")
def test_dataset_scripts(tmp_path):
    """Both scripts write what the library reads, the same files from the
    same seed, and other files from another."""
    for seed, out in (("1", "a"), ("1", "b"), ("2", "c")):
        run_script("coloured_mnist.py", "--out", str(tmp_path / ("cm-" + out)), "--seed", seed,
                   "--train", "60", "--test", "20")
        run_script("two_digit_mnist.py", "--out", str(tmp_path / ("td-" + out)), "--seed", seed,
                   "--train", "30", "--test", "10")
    with dcrw.load_dataset(str(tmp_path / "cm-a")) as a, dcrw.load_dataset(str(tmp_path / "cm-b")) as b, \
            dcrw.load_dataset(str(tmp_path / "cm-c")) as c, dcrw.load_dataset(str(tmp_path / "cm-a"), "test") as t:
        assert (len(a), a.shape, len(t)) == (60, (3, 28, 28), 20)
        np.testing.assert_array_equal(a.images, b.images)
        assert not np.array_equal(a.images, c.images)
        # the labels are the digits: MNIST's first 60 training labels, sorted by class
        with open(os.path.join(MNIST, "train-labels-idx1-ubyte"), "rb") as f:
            digits = np.frombuffer(f.read()[8:68], np.uint8)
        np.testing.assert_array_equal(a.labels, np.sort(digits))
        # every image has a background and a digit of other colours
        x = a.images.reshape(60, 3, 784)
        assert (x.std(axis=2).max(axis=1) > 0.1).all()
    for split, n in (("train", 30), ("test", 10)):
        x = np.load(tmp_path / "td-a" / (split + ".npy"))
        assert x.shape == (n, 60, 60) and x.dtype == np.uint8
        np.testing.assert_array_equal(x, np.load(tmp_path / "td-b" / (split + ".npy")))
        assert np.load(tmp_path / "td-a" / (split + "-digits.npy")).shape == (n, 2)
        with dcrw.load_dataset(str(tmp_path / "td-a"), split) as d:
            assert d.shape == (1, 60, 60)
            np.testing.assert_array_equal(d.images, (x / 255.0).astype(np.float32).reshape(n, -1))
    assert not np.array_equal(np.load(tmp_path / "td-a" / "train.npy"), np.load(tmp_path / "td-c" / "train.npy"))


@pytest.mark.skipif(not os.path.isfile(os.path.join(MNIST, "train-images-idx3-ubyte")), reason="no MNIST")
def test_cluttered_mnist_script(tmp_path):
    """The cluttered set is an MNIST-named IDX folder the library reads with
    its labels, byte for byte the same from the same seed, and every canvas
    holds a whole digit's worth of ink plus clutter."""
    for seed, out in (("1", "a"), ("1", "b"), ("2", "c")):
        run_script("cluttered_mnist.py", "--out", str(tmp_path / out), "--seed", seed,
                   "--train", "40", "--test", "12")
    names = sorted(os.listdir(tmp_path / "a"))
    assert names == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                     "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    for n in names:
        assert (tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes()
    assert (tmp_path / "a" / names[2]).read_bytes() != (tmp_path / "c" / names[2]).read_bytes()
    import gzip
    with open(os.path.join(MNIST, "train-images-idx3-ubyte"), "rb") as f:
        least_ink = np.frombuffer(f.read()[16:], np.uint8).reshape(-1, 784).astype(bool).sum(1).min()
    for split, n in (("train", 40), ("test", 12)):
        with dcrw.load_dataset(str(tmp_path / "a"), split) as d:
            assert (len(d), d.shape) == (n, (1, 100, 100))
            prefix = "train" if split == "train" else "t10k"
            raw = gzip.decompress((tmp_path / "a" / (prefix + "-labels-idx1-ubyte.gz")).read_bytes())
            assert raw[:8] == b"\0\0\x08\x01" + n.to_bytes(4, "big")
            labels = np.frombuffer(raw[8:], np.uint8)
            np.testing.assert_array_equal(d.labels, labels)
            assert labels.max() <= 9 and len(set(labels.tolist())) > 3
            ink = (d.images > 0).sum(axis=1)
            # the digit alone has at least MNIST's least ink; fragments add more
            assert (ink >= least_ink).all() and ink.mean() > least_ink + 40
    # --test-from-train: the same training canvases, test canvases of the
    # last two training digits (their labels, not the other classes)
    run_script("cluttered_mnist.py", "--out", str(tmp_path / "t"), "--seed", "1", "--train", "40",
               "--test", "12", "--test-from-train", "2")
    for n in names[2:]:
        assert (tmp_path / "t" / n).read_bytes() == (tmp_path / "a" / n).read_bytes()
    assert (tmp_path / "t" / names[0]).read_bytes() != (tmp_path / "a" / names[0]).read_bytes()
    with open(os.path.join(MNIST, "train-labels-idx1-ubyte"), "rb") as f:
        tail_labels = set(np.frombuffer(f.read()[8:], np.uint8)[-2:].tolist())
    with dcrw.load_dataset(str(tmp_path / "t"), "test") as d:
        assert len(d) == 12 and set(d.labels.tolist()) <= tail_labels
    import subprocess
    import sys

    bad = subprocess.run([sys.executable, os.path.join(SCRIPTS, "cluttered_mnist.py"), "--out",
                          str(tmp_path / "u"), "--test-from-train", "1"], capture_output=True, text=True)
    assert bad.returncode != 0 and "at least 2" in bad.stderr
