#!/usr/bin/python3
"""Validate a safetensors file with the standard library only, independently
of libdcrw's reader, following the format's published rules: u64 LE header
length, a UTF-8 JSON object (space padding allowed), string->string
__metadata__, tensors whose byte spans equal dtype size x elements and tile
the data section in order, which ends exactly at the end of the file.
Prints the tensor count; exits 1 with a message on the first violation."""
import json
import struct
import sys

DTYPE_SIZES = {
    "F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4,
    "F16": 2, "BF16": 2, "I16": 2, "U16": 2,
    "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1,
}


def fail(msg):
    print("check_safetensors: " + msg, file=sys.stderr)
    sys.exit(1)


def no_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            fail("duplicate key %r" % k)
        seen[k] = v
    return seen


def main():
    if len(sys.argv) != 2:
        fail("usage: check_safetensors.py FILE")
    with open(sys.argv[1], "rb") as fh:
        data = fh.read()
    if len(data) < 8:
        fail("shorter than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n < 2 or 8 + n > len(data):
        fail("header length %d does not fit a %d-byte file" % (n, len(data)))
    raw = data[8:8 + n]
    if raw[:1] != b"{":
        fail("header does not start with '{'")
    if (8 + n) % 8 != 0:
        fail("data section is not 8-byte aligned (header length %d)" % n)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        fail("header is not UTF-8: %s" % e)
    try:
        header = json.loads(text.rstrip(" "), object_pairs_hook=no_duplicates)
    except ValueError as e:
        fail("header is not JSON: %s" % e)
    if not isinstance(header, dict):
        fail("header is not an object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        fail("__metadata__ is not a string->string map")
    spans = []
    for name, info in header.items():
        if not isinstance(info, dict):
            fail("%s: entry is not an object" % name)
        dtype, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in DTYPE_SIZES:
            fail("%s: bad dtype %r" % (name, dtype))
        if not isinstance(shape, list) or not all(
                type(d) is int and d >= 0 for d in shape):
            fail("%s: bad shape %r" % (name, shape))
        if (not isinstance(offs, list) or len(offs) != 2
                or not all(type(o) is int and o >= 0 for o in offs) or offs[0] > offs[1]):
            fail("%s: bad data_offsets %r" % (name, offs))
        elems = 1
        for d in shape:
            elems *= d
        if offs[1] - offs[0] != elems * DTYPE_SIZES[dtype]:
            fail("%s: %d bytes for %s %r" % (name, offs[1] - offs[0], dtype, shape))
        spans.append((offs[0], offs[1], name))
    pos = 0
    for begin, end, name in sorted(spans):
        if begin != pos:
            fail("%s starts at %d, expected %d (hole or overlap)" % (name, begin, pos))
        pos = end
    if 8 + n + pos != len(data):
        fail("8 + %d + %d != file size %d" % (n, pos, len(data)))
    print(len(spans))


if __name__ == "__main__":
    main()
