"""Shared helpers of the Python binding's tests.

The package is imported from examples/python (PYTHONPATH) and loads the
library named by DCRW_LIBRARY; meson sets both. Run by hand:
  DCRW_LIBRARY=build/lib/libdcrw.so PYTHONPATH=examples/python \
      /usr/bin/python3 -m pytest tests/python
"""

import json
import os
import struct

import numpy as np
import pytest

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN_DIR = os.path.join(SOURCE_ROOT, "tests", "golden")
# the golden files of the generative models (the classifier's has its own test)
GOLDEN = [
    "golden-draw-small",
    "golden-draw-noattn-small",
    "golden-dcrw-small",
    "golden-dcrw-noread-small",
    "golden-draw-canvas-small",
]

# Tiny configurations of the four generative presets: a few steps of
# training take milliseconds, and every code path of the preset is still
# exercised. (The classifier's is in test_classify.py: the tests that
# parametrize over these run the generative passes.)
TINY = {
    "draw": dict(height=12, width=12, glimpses=3, enc_size=16, dec_size=16, z_size=4, read_n=2, write_n=3),
    "draw-noattn": dict(height=12, width=12, glimpses=3, enc_size=16, dec_size=16, z_size=4),
    "dcrw": dict(height=12, width=12, glimpses=3, dec_size=16, z_size=4, read_n=5, write_n=3, conv1=3, conv2=4),
    "dcrw-noread": dict(height=12, width=12, glimpses=3, dec_size=16, z_size=4, write_n=3, conv1=3, conv2=4),
}


def read_safetensors(path):
    """{name: float32 ndarray} and the metadata of a safetensors file.

    Written from the format's definition (u64 LE header length, JSON, raw
    little-endian data), independently of the library's reader."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    data = blob[8 + n :]
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", name
        begin, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(info["shape"]).astype(np.float32)
    return tensors, meta


def rel_err(ours, ref, floor=1e-6):
    """max |ours - ref| / max(max |ref|, floor), as the C golden test measures it."""
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    scale = max(float(np.max(np.abs(ref))) if ref.size else 0.0, floor)
    return float(np.max(np.abs(ours - ref))) / scale if ref.size else 0.0


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
