#!/usr/bin/python3
"""The dcrw command on every data format --data takes, each made here from
a slice of the real MNIST: two training steps on each, the model's shape
taken from the data, eval and reconstruct on the same path, a shape that
differs named with its fix, and malformed data refused with the file named.

    test_data.py CASE      CASE: formats shape fashion baddata classify conditional
                                 clutter

fashion trains on Fashion-MNIST as Debian's dataset-fashion-mnist installs
it (/usr/share/datasets/fashion-mnist, or DCRW_FASHION_MNIST), and skips
(exit 77) without it. Standard library only: the .npy and PNG files are
written here with struct and zlib.
"""
import gzip
import os
import re
import struct
import sys
import zlib

from clitest import MNIST, ROOT, check, info_fields, main as run_case, ok, run

HAVE_PNG = os.environ.get("DCRW_CLI_HAVE_PNG", "1") == "1"
FASHION = os.environ.get("DCRW_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")

# a model that trains two steps in a second, whatever the image size
TINY = ["--set", "glimpses=2", "--set", "dec_size=16", "--set", "z_size=4",
        "--set", "conv1=4", "--set", "conv2=4",
        "--train-n", "100", "--valid", "20", "--batch", "20", "--steps", "2"]
N = 150
SHIPPED = os.path.join(ROOT, "examples", "models", "dcrw-mnist.safetensors")


def mnist(split, n=N):
    """(n images of 784 bytes, n labels) from MNIST's IDX files."""
    name = "train" if split == "train" else "t10k"
    with open(os.path.join(MNIST, name + "-images-idx3-ubyte"), "rb") as f:
        f.seek(16)
        pix = f.read(784 * n)
    with open(os.path.join(MNIST, name + "-labels-idx1-ubyte"), "rb") as f:
        f.seek(8)
        lab = f.read(n)
    return [pix[784 * i:784 * (i + 1)] for i in range(n)], lab


def idx_bytes(images, h=28, w=28):
    return struct.pack(">IIII", 0x803, len(images), h, w) + b"".join(images)


def npy_bytes(descr, shape, body):
    d = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join("%d, " % s for s in shape))
    pad = 64 - (10 + len(d) + 1) % 64
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d) + pad + 1) + \
        d.encode() + b" " * pad + b"\n" + body


def png_bytes(w, h, colour, rows):
    """colour: 0 grey, 2 RGB; rows: h byte strings."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\0" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def crop_rgb(img, size=20):
    """The centre size x size of a digit as [H, W, 3] bytes, the channels
    told apart (the ink, its inverse, a constant)."""
    off = (28 - size) // 2
    out = bytearray()
    for y in range(size):
        for x in range(size):
            v = img[(y + off) * 28 + x + off]
            out += bytes((v, 255 - v, 64))
    return bytes(out)


def make_sets(tmp):
    """{name: (path, (C, H, W), labelled)} of every format."""
    train, tlab = mnist("train")
    test, elab = mnist("test", 40)
    sets = {}
    # IDX, gzip-compressed, under another prefix, with labels
    d = os.path.join(tmp, "kmnist")
    for split, imgs, lab in (("train", train, tlab), ("t10k", test, elab)):
        write(os.path.join(d, "k49-%s-images-idx3-ubyte.gz" % split), gzip.compress(idx_bytes(imgs)))
        write(os.path.join(d, "k49-%s-labels-idx1-ubyte.gz" % split),
              gzip.compress(struct.pack(">II", 0x801, len(lab)) + lab))
    sets["idx-gz"] = (d, (1, 28, 28), True)
    # one IDX file, its labels beside it
    f = os.path.join(tmp, "single", "my-images-idx3-ubyte")
    write(f, idx_bytes(train))
    write(os.path.join(tmp, "single", "my-labels-idx1-ubyte"),
          struct.pack(">II", 0x801, len(tlab)) + tlab)
    sets["idx-file"] = (f, (1, 28, 28), True)
    # .npy uint8 [N, H, W]
    f = os.path.join(tmp, "u8.npy")
    write(f, npy_bytes("|u1", (N, 28, 28), b"".join(train)))
    sets["npy-u8"] = (f, (1, 28, 28), False)
    # .npy float32 [N, H, W, C] of 20x20 RGB crops: the model becomes 3x20x20
    vals = [b / 255.0 for img in train for b in crop_rgb(img)]
    f = os.path.join(tmp, "f32.npy")
    write(f, npy_bytes("<f4", (N, 20, 20, 3), struct.pack("<%df" % len(vals), *vals)))
    sets["npy-f32-nhwc"] = (f, (3, 20, 20), False)
    # float64 [N, C, H, W] as train.npy and test.npy of one folder
    d = os.path.join(tmp, "npysplit")
    for split, imgs in (("train", train), ("test", test)):
        vals = [b / 255.0 for img in imgs for b in img]
        write(os.path.join(d, split + ".npy"),
              npy_bytes("<f8", (len(imgs), 1, 28, 28), struct.pack("<%dd" % len(vals), *vals)))
    sets["npy-split"] = (d, (1, 28, 28), False)
    if HAVE_PNG:
        # grey PNGs in one folder per digit, under train/ and test/
        d = os.path.join(tmp, "pngs")
        for split, imgs, lab in (("train", train, tlab), ("test", test, elab)):
            for i, (img, digit) in enumerate(zip(imgs, lab)):
                rows = [img[28 * y:28 * (y + 1)] for y in range(28)]
                write(os.path.join(d, split, str(digit), "%04d.png" % i),
                      png_bytes(28, 28, 0, rows))
        sets["png-classes"] = (d, (1, 28, 28), True)
        # RGB PNGs, no labels
        d = os.path.join(tmp, "rgb")
        for i, img in enumerate(train):
            rgb = crop_rgb(img)
            write(os.path.join(d, "%04d.png" % i),
                  png_bytes(20, 20, 2, [rgb[60 * y:60 * (y + 1)] for y in range(20)]))
        sets["png-rgb"] = (d, (3, 20, 20), False)
    return sets


def model_shape(ckpt):
    f = info_fields(ok(["info", ckpt]))
    return int(f["channels"]), int(f["height"]), int(f["width"])


def case_formats(tmp):
    """Two steps on each format with no --set of the shape; eval and
    reconstruct read the same path."""
    for name, (path, shape, _) in make_sets(tmp).items():
        run_dir = os.path.join(tmp, "run-" + name)
        rc, out, err = run(["train", "--data", path, "--out", run_dir] + TINY)
        if not check(rc == 0, "%s: train exit %d: %s" % (name, rc, err.strip())):
            continue
        ckpt = os.path.join(run_dir, "checkpoint.safetensors")
        check(model_shape(ckpt) == shape,
              "%s: the model is %s, the data %s" % (name, model_shape(ckpt), shape))
        rc, out, err = run(["eval", "--model", ckpt, "--data", path, "--n", "20"])
        check(rc == 0 and "L " in out, "%s: eval exit %d: %s" % (name, rc, err.strip()))
        if HAVE_PNG:
            pic = os.path.join(tmp, name + ".png")
            rc, out, err = run(["reconstruct", "--model", ckpt, "--data", path, "--n", "2",
                                "--out", pic])
            check(rc == 0 and os.path.getsize(pic) > 0,
                  "%s: reconstruct exit %d: %s" % (name, rc, err.strip()))
        # resuming on the same data goes on
        rc, out, err = run(["train", "--resume", run_dir, "--steps", "3"])
        check(rc == 0, "%s: resume exit %d: %s" % (name, rc, err.strip()))


def case_shape(tmp):
    """A model whose shape differs from the data's says which field and how
    to fix it."""
    sets = make_sets(tmp)
    grey, rgb = sets["npy-u8"][0], sets["npy-f32-nhwc"][0]
    run_dir = os.path.join(tmp, "grey")
    ok(["train", "--data", grey, "--out", run_dir] + TINY)
    ckpt = os.path.join(run_dir, "checkpoint.safetensors")
    expect = [
        (["eval", "--model", ckpt, "--data", rgb],
         ["1x28x28", "3x20x20", "its channels is 1, the data's 3", "trained on such images"]),
        (["reconstruct", "--model", ckpt, "--data", rgb, "--out", os.path.join(tmp, "r.png")],
         ["its channels is 1", "trained on such images"]),
        (["train", "--data", grey, "--out", os.path.join(tmp, "h"), "--set", "height=32"] + TINY,
         ["its height is 32, the data's 28", "drop --set height"]),
        (["train", "--data", rgb, "--out", os.path.join(tmp, "w"), "--set", "width=28"] + TINY,
         ["its width is 28, the data's 20", "drop --set width"]),
        (["train", "--resume", run_dir, "--data", rgb, "--steps", "4"],
         ["its channels is 1", "the --data the run was trained on"]),
    ]
    for args, says in expect:
        if not HAVE_PNG and args[0] == "reconstruct":
            continue
        rc, out, err = run(args)
        check(rc == 2, "%s: exit %d, want 2" % (" ".join(args[:1]), rc))
        for s in says:
            check(s in err, "%s: message lacks %r: %s" % (args[0], s, err.strip()))
    # --set of the data's own size is no mismatch
    rc, out, err = run(["train", "--data", grey, "--out", os.path.join(tmp, "same"),
                        "--set", "height=28"] + TINY)
    check(rc == 0, "--set height=28 on 28x28 data: exit %d: %s" % (rc, err.strip()))


def case_fashion(tmp):
    """Fashion-MNIST straight from the folder Debian installs it in."""
    run_dir = os.path.join(tmp, "fashion")
    ok(["train", "--data", FASHION, "--out", run_dir] + TINY)
    ckpt = os.path.join(run_dir, "checkpoint.safetensors")
    check(model_shape(ckpt) == (1, 28, 28), "fashion: the model is %s" % (model_shape(ckpt),))
    out = ok(["eval", "--model", ckpt, "--data", FASHION, "--n", "10000"])
    check("L " in out, "fashion: eval prints no bound: %s" % out)
    rc, out, err = run(["eval", "--model", ckpt, "--data", FASHION, "--n", "10001"])
    check(rc != 0 and "10000" in err, "fashion: the test split is not its 10000 images: %s" % err)


def case_baddata(tmp):
    """Malformed data: the file and what is wrong with it are named."""
    train, _ = mnist("train", 30)
    good = npy_bytes("|u1", (30, 28, 28), b"".join(train))
    paths = {}
    for name, data in (("short.npy", good[:-5]), ("long.npy", good + b"x"),
                       ("float.npy", npy_bytes("<f4", (1, 2, 2), struct.pack("<4f", 0, 0.5, 2, 1))),
                       ("int.npy", npy_bytes("<i8", (1, 2, 2), bytes(32))),
                       ("junk.bin", b"no data set here")):
        paths[name] = os.path.join(tmp, name)
        write(paths[name], data)
    empty = os.path.join(tmp, "empty")
    os.mkdir(empty)
    onlytrain = os.path.join(tmp, "onlytrain")
    write(os.path.join(onlytrain, "train-images-idx3-ubyte"), idx_bytes(train))
    cases = [
        (["train", "--data", paths["short.npy"]], ["short.npy", "declares"]),
        (["train", "--data", paths["long.npy"]], ["long.npy", "trailing"]),
        (["train", "--data", paths["float.npy"]], ["float.npy", "outside [0, 1]"]),
        (["train", "--data", paths["int.npy"]], ["int.npy", "'<i8'", "uint8"]),
        (["train", "--data", paths["junk.bin"]], ["junk.bin", "not an IDX file"]),
        (["train", "--data", empty], ["holds no data set", ".npy", "PNG"]),
        (["train", "--data", os.path.join(tmp, "nope")], ["nope", "cannot open"]),
        (["eval", "--model", SHIPPED, "--data", onlytrain, "--split", "test"],
         ["no test images", "t10k"]),
    ]
    if HAVE_PNG:
        mixed = os.path.join(tmp, "mixed")
        write(os.path.join(mixed, "a.png"), png_bytes(2, 2, 0, [b"\0\0", b"\0\0"]))
        write(os.path.join(mixed, "b.png"), png_bytes(3, 2, 0, [b"\0\0\0", b"\0\0\0"]))
        cases.append((["train", "--data", mixed], ["b.png", "a.png, the first image", "one shape"]))
        cut = os.path.join(tmp, "cut")
        write(os.path.join(cut, "a.png"), png_bytes(28, 28, 0, [train[0][28 * y:28 * y + 28]
                                                                for y in range(28)])[:60])
        cases.append((["train", "--data", cut], ["a.png", "ends early"]))
    # no output may replace a file of the data set, by its name or a link
    data = os.path.join(tmp, "data.npy")
    write(data, good)
    link = os.path.join(tmp, "link.png")
    os.symlink(data, link)
    for out in (data, link):
        cases.append((["reconstruct", "--model", SHIPPED, "--data", data, "--out", out],
                      ["same file", "data.npy"]))
    if HAVE_PNG:
        cases.append((["reconstruct", "--model", SHIPPED, "--data", mixed, "--out",
                       os.path.join(mixed, "b.png")], ["same file", "b.png"]))
        ok(["reconstruct", "--model", SHIPPED, "--data", data, "--n", "1",
            "--out", os.path.join(mixed, "c.png")])
    for args, says in cases:
        if args[0] == "train":
            args = args + ["--out", os.path.join(tmp, "run")] + TINY
        rc, out, err = run(args)
        check(rc == 2, "%s: exit %d, want 2" % (" ".join(args[:3]), rc))
        for s in says:
            check(s in err, "%s: message lacks %r: %s" % (" ".join(args[:3]), s, err.strip()))
        check(not os.path.exists(os.path.join(tmp, "run")), "a refused run left its folder")


def case_classify(tmp):
    """The attention classifier on labelled IDX files: it trains on the
    labels, its held-out and test error are printed and agree with the
    counts beside them, the glimpse picture has a frame per glimpse, and
    data without labels (or with more classes than the model) is refused."""
    sets = make_sets(tmp)
    labelled, unlabelled = sets["idx-gz"][0], sets["npy-u8"][0]
    small = ["--preset", "draw-classify", "--set", "glimpses=3", "--set", "enc_size=32",
             "--set", "read_n=6", "--train-n", "120", "--valid", "30", "--batch", "20",
             "--lr", "0.005", "--eval-every", "10"]
    run_dir = os.path.join(tmp, "cls")
    out = ok(["train", "--data", labelled, "--out", run_dir, "--steps", "60"] + small)
    m = re.search(r"held-out \(30 images\): loss ([0-9.]+) nats, ([0-9.]+)% wrong", out)
    check(m is not None, "classify: no held-out loss and error in: %s" % out[-400:])
    steps = [l for l in out.splitlines() if l.startswith("step ")]
    check(steps and all("loss " in l and "Lx" not in l for l in steps),
          "classify: the progress lines do not show the loss alone: %s" % steps[-1:])
    if m:
        # 30 images: the error is a multiple of 1/30
        wrong = float(m.group(2)) * 30 / 100
        check(abs(wrong - round(wrong)) < 1e-6, "classify: %s%% of 30 images" % m.group(2))
        # ten classes: chance is 2.30 nats; 60 steps of 20 images do better
        check(float(m.group(1)) < 2.2, "classify: held-out loss %s after 60 steps" % m.group(1))
    ckpt = os.path.join(run_dir, "checkpoint.safetensors")
    f = info_fields(ok(["info", ckpt]))
    check(f.get("preset") == "draw-classify", "classify: info says preset %s" % f.get("preset"))
    out = ok(["eval", "--model", ckpt, "--data", labelled])
    m = re.search(r"error\s+([0-9.]+)% \((\d+) of 40 wrong, standard error ([0-9.]+)%\)", out)
    check(m is not None, "classify: eval prints no error: %s" % out)
    if m:
        check(abs(float(m.group(1)) - 100 * int(m.group(2)) / 40) < 0.006,
              "classify: %s%% is not %s of 40" % (m.group(1), m.group(2)))
    check("grey levels" in out, "classify: eval does not read grey levels: %s" % out)
    if HAVE_PNG:
        pic = os.path.join(tmp, "glimpses.png")
        ok(["reconstruct", "--model", ckpt, "--data", labelled, "--n", "2", "--scale", "1",
            "--out", pic])
        with open(pic, "rb") as fh:
            w, h = struct.unpack(">II", fh.read(24)[16:24])
        # the image and one frame per glimpse, 28 pixels and a padding of 2 each
        check((w, h) == (2 + 4 * 30, 2 + 2 * 30), "classify: picture is %dx%d" % (w, h))
    for args, says in (
            (["train", "--data", unlabelled, "--out", os.path.join(tmp, "nolab"), "--steps", "1"]
             + small, ["image 0 has no label"]),
            (["train", "--data", labelled, "--out", os.path.join(tmp, "few"), "--steps", "1",
              "--set", "classes=3"] + small[:-2], ["has label", "3 classes"]),
            (["eval", "--model", ckpt, "--data", labelled, "--importance", "2"],
             ["not a classifier"])):
        rc, out, err = run(args)
        check(rc != 0, "%s: exit 0 on %s" % (args[0], " ".join(args[1:4])))
        for s in says:
            check(s in err, "%s: message lacks %r: %s" % (args[0], s, err.strip()))


def case_conditional(tmp):
    """A class-conditional model: its classes are the data's labels, run.json
    and the checkpoint record them, sample draws a class a column or the one
    asked for, eval and reconstruct take each image's label, and data
    without labels is refused."""
    sets = make_sets(tmp)
    labelled, unlabelled = sets["idx-gz"][0], sets["npy-u8"][0]
    run_dir = os.path.join(tmp, "cond")
    ok(["train", "--data", labelled, "--out", run_dir, "--conditional"] + TINY)
    ckpt = os.path.join(run_dir, "checkpoint.safetensors")
    f = info_fields(ok(["info", ckpt]))
    check(f.get("classes") == "10", "conditional: info says classes %s" % f.get("classes"))
    with open(os.path.join(run_dir, "run.json")) as fh:
        check(re.search(r'"classes":\s*"10"', fh.read()), "conditional: run.json lacks classes")
    # a resumed run continues on its labels
    ok(["train", "--resume", run_dir, "--steps", "3"])
    out = ok(["eval", "--model", ckpt, "--data", labelled, "--n", "20"])
    check("L " in out, "conditional: eval prints no bound: %s" % out)
    if HAVE_PNG:
        pic = os.path.join(tmp, "s.png")
        ok(["sample", "--model", ckpt, "--n", "20", "--scale", "1", "--out", pic])
        with open(pic, "rb") as fh:
            w, h = struct.unpack(">II", fh.read(24)[16:24])
        # ten columns, a class each, and two rows, of 28 pixels and a padding of 2
        check((w, h) == (2 + 10 * 30, 2 + 2 * 30), "conditional: sample grid is %dx%d" % (w, h))
        ok(["sample", "--model", ckpt, "--n", "4", "--label", "7", "--out", pic])
        ok(["reconstruct", "--model", ckpt, "--data", labelled, "--n", "2", "--out", pic])
    for args, says in (
            (["sample", "--model", ckpt, "--label", "10", "--out", os.path.join(tmp, "x.png")],
             ["--label 10", "10 classes"]),
            (["sample", "--model", SHIPPED, "--label", "1", "--out", os.path.join(tmp, "y.png")],
             ["not class-conditional"]),
            (["train", "--data", unlabelled, "--out", os.path.join(tmp, "nolab"), "--conditional"]
             + TINY, ["image 0 has no label", "--conditional"]),
            (["train", "--data", labelled, "--out", os.path.join(tmp, "both"), "--conditional",
              "--preset", "draw-classify", "--steps", "1"], ["--conditional", "classifier"])):
        rc, out, err = run(args)
        check(rc != 0, "%s: exit 0 on %s" % (args[0], " ".join(args[1:4])))
        for s in says:
            check(s in err, "%s: message lacks %r: %s" % (args[0], s, err.strip()))


def case_clutter(tmp):
    """--clutter SIDE: the classifier trains on canvases made afresh, its
    model takes SIDE x SIDE images, run.json records it, a resumed run sees
    the canvases the straight one did (identical checkpoints), the held-out
    error is printed, and what cannot work is refused before any folder."""
    sets = make_sets(tmp)
    labelled = sets["idx-gz"][0]
    small = ["--preset", "draw-classify", "--set", "glimpses=2", "--set", "enc_size=16",
             "--set", "read_n=4", "--train-n", "100", "--valid", "20", "--batch", "20",
             "--clutter", "40", "--eval-every", "4", "--data", labelled]
    straight, part = os.path.join(tmp, "straight"), os.path.join(tmp, "part")
    out = ok(["train", "--out", straight, "--steps", "12"] + small)
    check(re.search(r"held-out \(20 images\): loss [0-9.]+ nats, [0-9.]+% wrong", out),
          "clutter: no held-out error in: %s" % out[-300:])
    ckpt = os.path.join(straight, "checkpoint.safetensors")
    f = info_fields(ok(["info", ckpt]))
    check((f.get("height"), f.get("width")) == ("40", "40"),
          "clutter: the model takes %sx%s images" % (f.get("height"), f.get("width")))
    with open(os.path.join(straight, "run.json")) as fh:
        check(re.search(r'"clutter":\s*40', fh.read()), "clutter: run.json lacks clutter")
    # steps 1-5 are epoch 0, 6-10 epoch 1: the resumed run crosses a change
    # of canvases
    ok(["train", "--out", part, "--steps", "7"] + small)
    rc, _, err = run(["train", "--resume", part, "--steps", "12", "--clutter", "50"])
    check(rc == 2 and "--clutter cannot change" in err, "clutter: resume changes it: %s" % err)
    ok(["train", "--resume", part, "--steps", "12"])
    with open(ckpt, "rb") as a, open(os.path.join(part, "checkpoint.safetensors"), "rb") as b:
        check(a.read() == b.read(), "clutter: 12 straight steps and 7 + 5 resumed differ")
    # a model of the canvases' shape does not read the plain images
    rc, _, err = run(["eval", "--model", ckpt, "--data", labelled])
    check(rc != 0 and "40" in err, "clutter: eval on 28x28 images: exit %d %s" % (rc, err))
    for args, says in (
            (["--binarize", "dynamic"], ["--binarize none"]),
            (["--clutter", "20"], ["--clutter 20", "larger than the canvas"]),
            (["--clutter", "4"], ["--clutter"])):
        rc, _, err = run(["train", "--out", os.path.join(tmp, "bad"), "--steps", "1"]
                         + small + args)
        check(rc != 0, "clutter: exit 0 with %s" % " ".join(args))
        for s in says:
            check(s in err, "clutter: message lacks %r: %s" % (s, err.strip()))
        check(not os.path.exists(os.path.join(tmp, "bad", "run.json")),
              "clutter: a refused run left its run file")


CASES = {"formats": case_formats, "shape": case_shape, "fashion": case_fashion,
         "baddata": case_baddata, "classify": case_classify, "conditional": case_conditional,
         "clutter": case_clutter}


def skip_reason():
    if sys.argv[1:] == ["fashion"] and not os.path.isfile(
            os.path.join(FASHION, "train-images-idx3-ubyte.gz")):
        return "no Fashion-MNIST in %s (apt-get install dataset-fashion-mnist)" % FASHION
    return None


def main():
    return run_case("test_data.py", CASES, needs_mnist=lambda case: case != "fashion",
                    skip_reason=skip_reason)


if __name__ == "__main__":
    raise SystemExit(main())
