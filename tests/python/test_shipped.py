"""The Python example samples the shipped model without any training."""
import os
import runpy
import struct
import zlib

import numpy as np

import dcrw
from conftest import SOURCE_ROOT

EXAMPLE = os.path.join(SOURCE_ROOT, "examples", "python", "sample.py")


def read_png_grey(path):
    """An 8-bit greyscale PNG without filters (what sample.py writes), as an array."""
    with open(path, "rb") as f:
        blob = f.read()
    assert blob[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w, h = 8, b"", None, None
    while pos < len(blob):
        (n,) = struct.unpack(">I", blob[pos:pos + 4])
        kind, body = blob[pos + 4:pos + 8], blob[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", blob[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(kind + body)
        if kind == b"IHDR":
            w, h, depth, colour = struct.unpack(">IIBB", body[:10])
            assert (depth, colour) == (8, 0)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, w + 1)
    assert not raw[:, 0].any()
    return raw[:, 1:]


def test_shipped_model_is_found_in_the_source_tree(monkeypatch):
    monkeypatch.delenv("DCRW_MODEL", raising=False)
    path = dcrw.shipped_model()
    assert os.path.samefile(path, os.path.join(SOURCE_ROOT, "examples", "models", "dcrw-mnist.safetensors"))
    monkeypatch.setenv("DCRW_MODEL", "/elsewhere/m.safetensors")
    assert dcrw.shipped_model() == "/elsewhere/m.safetensors"


def test_example_samples_the_shipped_model(tmp_path, monkeypatch):
    monkeypatch.delenv("DCRW_MODEL", raising=False)
    out = tmp_path / "samples.png"
    ns = runpy.run_path(EXAMPLE)
    ns["main"](["--out", str(out), "--n", "9", "--seed", "3"])
    img = read_png_grey(out)
    assert img.shape == (3 * 30 + 2, 3 * 30 + 2)
    # the same images the library draws for that seed, tiled with black borders
    with dcrw.Model.load(dcrw.shipped_model()) as m:
        want = m.sample(9, seed=3).reshape(9, 28, 28)
    for i in range(9):
        r, c = divmod(i, 3)
        cell = img[2 + 30 * r:30 + 30 * r, 2 + 30 * c:30 + 30 * c]
        np.testing.assert_allclose(cell, np.rint(want[i] * 255), atol=1)
    assert img[0].max() == 0 and img[:, 0].max() == 0
    assert img.max() > 200


def test_example_glimpses(tmp_path):
    out = tmp_path / "glimpses.png"
    runpy.run_path(EXAMPLE)["main"](["--out", str(out), "--n", "2", "--glimpses"])
    with dcrw.Model.load(dcrw.shipped_model()) as m:
        T = m.glimpses
    assert read_png_grey(out).shape == (2 * 30 + 2, T * 30 + 2)
