#!/usr/bin/python3
"""End-to-end tests of the dcrw command on a small model and a slice of the
real MNIST.

    test_cli.py CASE      CASE: usage setopt train resume init signal eval
                                pictures info shipped badinput

Environment: DCRW_CLI (the executable), DCRW_SOURCE_ROOT (MNIST is read
from its data/mnist, or from DCRW_MNIST), DCRW_CLI_HAVE_PNG/GIF ("0" when
the build has no libpng/giflib). Exit 0 pass, 1 fail, 77 skip (no MNIST).
Standard library only: the pictures are decoded here with zlib and struct.
"""
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zlib

from clitest import (DCRW, MNIST, ROOT, SMALL, check, info_fields, listing, main as run_case, ok,
                     read_log, run, train_small)
HAVE_PNG = os.environ.get("DCRW_CLI_HAVE_PNG", "1") == "1"
HAVE_GIF = os.environ.get("DCRW_CLI_HAVE_GIF", "1") == "1"

# ---------------------------------------------------------------- decoders
def png_decode(path):
    """(width, height, channels, rows) of an 8-bit grey/RGB PNG, each chunk's
    CRC verified and the scanlines unfiltered."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "PNG signature"
    pos, idat, ihdr, seen_end = 8, b"", None, False
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        typ = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert zlib.crc32(typ + body) & 0xffffffff == crc, "CRC of " + repr(typ)
        if typ == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT":
            idat += body
        elif typ == b"IEND":
            seen_end = True
        pos += 12 + n
    assert ihdr and seen_end, "IHDR and IEND"
    w, h, depth, ctype, _, _, interlace = ihdr
    assert depth == 8 and interlace == 0 and ctype in (0, 2), "8-bit grey or RGB"
    ch = 1 if ctype == 0 else 3
    raw = zlib.decompress(idat)
    stride = w * ch
    assert len(raw) == h * (stride + 1), "IDAT inflates to %d bytes, expected %d" % (
        len(raw), h * (stride + 1))
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        assert f <= 4, "filter type"
        for i in range(stride):
            a = line[i - ch] if i >= ch else 0
            b = prev[i]
            c = prev[i - ch] if i >= ch else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 255
        rows.append(line)
        prev = line
    return w, h, ch, rows


def gif_info(path):
    """(width, height, frames) of a GIF, walking every block to the trailer."""
    d = open(path, "rb").read()
    assert d[:6] in (b"GIF89a", b"GIF87a"), "GIF signature"
    w, h, flags = struct.unpack("<HHB", d[6:11])
    pos = 13
    if flags & 0x80:
        pos += 3 * (2 << (flags & 7))
    frames = 0

    def skip_sub(p):
        while d[p] != 0:
            p += d[p] + 1
        return p + 1

    while True:
        b = d[pos]
        if b == 0x3B:
            assert pos == len(d) - 1, "data after the GIF trailer"
            return w, h, frames
        if b == 0x21:
            pos = skip_sub(pos + 2)
        elif b == 0x2C:
            iw, ih, lf = struct.unpack("<4xHHB", d[pos + 1:pos + 10])
            assert (iw, ih) == (w, h), "frame size"
            pos += 10
            if lf & 0x80:
                pos += 3 * (2 << (lf & 7))
            pos = skip_sub(pos + 1)
            frames += 1
        else:
            raise AssertionError("bad GIF block 0x%02x at %d" % (b, pos))


def grid(cols, rows, cell, pad=2):
    return cols * (cell + pad) + pad, rows * (cell + pad) + pad


# ------------------------------------------------------------------- cases
def case_usage(tmp):
    rc, out, err = run(["--help"])
    check(rc == 0 and all(c in out for c in
                          ["train", "eval", "sample", "reconstruct", "plot", "info"]),
          "dcrw --help lists the commands")
    for c in ["train", "eval", "sample", "reconstruct", "plot", "info"]:
        rc, out, err = run([c, "--help"])
        check(rc == 0 and out.startswith("usage: dcrw " + c), "dcrw %s --help" % c)
    rc, out, err = run(["eval", "--help"])
    check("K >= 100" in out, "eval --help says papers use K >= 100")
    rc, out, err = run(["--version"])
    check(rc == 0 and "dcrw" in out, "--version")


def case_setopt(tmp):
    # each bad assignment: exit 2, one line naming the problem, no run folder
    bad = {"nosuch=1": "unknown field", "glimpses=abc": "not an integer",
           "glimpses=12x": "not an integer", "glimpses=": "not an integer",
           "glimpses=99999999999": "not an integer", "channels=3": "channels",
           "glimpses=0": "glimpses", "dec_size=-4": "dec_size", "encoder=rnn": "lstm or cnn",
           "read_attention=2": "read_attention", "canvas_init=nan": "finite",
           "canvas_init=1e99": "finite", "height=20": "20", "noequals": "field=value",
           "encoder=lstm": "enc_size"}
    for a, word in bad.items():
        d = os.path.join(tmp, "bad")
        rc, out, err = run(["train", "--data", MNIST, "--out", d, "--steps", "1",
                            "--set", a])
        check(rc == 2, "--set %s exits 2 (got %d)" % (a, rc))
        check(word in err and err.count("\n") == 1, "--set %s message: %r" % (a, err))
        check(not os.path.exists(d), "--set %s leaves no run folder" % a)
    # good assignments change the model that is built
    d = os.path.join(tmp, "lstm")
    ok(["train", "--data", MNIST, "--out", d, "--steps", "2", "--valid", "0", "--train-n", "100",
        "--set", "encoder=lstm", "--set", "enc_size=16", "--set", "read_n=2",
        "--set", "glimpses=4", "--set", "dec_size=24", "--set", "z_size=5",
        "--set", "canvas_init=-2.5", "--set", "write_attention=false"])
    f = info_fields(ok(["info", os.path.join(d, "checkpoint.safetensors")]))
    check(f.get("encoder") == "lstm" and f.get("enc_size") == "16" and f.get("glimpses") == "4"
          and f.get("dec_size") == "24" and f.get("z_size") == "5" and f.get("read_n") == "2"
          and f.get("write_attention") == "false" and f.get("read_attention") == "true"
          and f.get("canvas_init") == "-2.5",
          "--set fields reach the checkpoint: %r" % f)


def case_train(tmp):
    d = os.path.join(tmp, "run")
    t0 = time.time()
    rc, out, err = run(["train", "--data", MNIST, "--out", d, "--steps", "30", "--eval-every",
                        "10", "--progress-seconds", "0"] + SMALL)
    check(rc == 0, "train exits 0: %s" % err)
    lines = out.splitlines()
    prog = [l for l in lines if l.startswith("step ") and "img/s" in l]
    check(len(prog) >= 3, "plain progress lines when stdout is not a terminal")
    check(all(re.search(r"epoch \d+ .*Lx [\d.]+\s+Lz [\d.]+\s+\d+ img/s\s+ETA", l) for l in prog),
          "progress shows step, epoch, Lx, Lz, images/s, ETA")
    check("\r" not in out, "no carriage returns when stdout is not a terminal")
    header, rows = read_log(d)
    check(header == "step,wall_s,lx,lz,loss,images_per_s,valid_bound", "log header")
    steps = [r for r in rows if r[2] != ""]
    check([int(r[0]) for r in steps] == list(range(1, 31)), "one log row per step")
    for r in steps:
        check(len(r) == 7 and abs(float(r[2]) + float(r[3]) - float(r[4])) < 1e-3,
              "loss = lx + lz in row %s" % r[0])
    valid = [(int(r[0]), float(r[6])) for r in rows if r[6] != ""]
    check([s for s, _ in valid] == [10, 20, 30], "held-out bound at steps 10, 20, 30: %r" % valid)
    check(valid[-1][1] < valid[0][1] - 5, "the held-out bound improves: %r" % valid)
    walls = [float(r[1]) for r in rows]
    check(walls == sorted(walls) and walls[-1] < time.time() - t0 + 1, "wall time increases")
    rj = json.load(open(os.path.join(d, "run.json")))
    check(rj["batch"] == 50 and rj["train_n"] == 500 and rj["valid"] == 200
          and rj["steps"] == 30 and rj["preset"] == "dcrw", "run.json holds the flags: %r" % rj)
    # the model's configuration is the checkpoint's; run.json keeps the
    # preset and what --set changed, so a start killed before its first
    # checkpoint can be made again
    check(rj.get("format") == 2 and "glimpses" not in rj and "channels" not in rj["set"]
          and rj["set"] == {"glimpses": "3", "dec_size": "32", "z_size": "8", "conv1": "8",
                            "conv2": "8"},
          "run.json records the fields that differ from the preset: %r" % rj.get("set"))
    f = info_fields(ok(["info", os.path.join(d, "checkpoint.safetensors")]))
    check(f.get("step") == "30", "checkpoint at step 30")
    svg = ET.parse(os.path.join(d, "losses.svg")).getroot()
    check(svg.tag == "{http://www.w3.org/2000/svg}svg", "losses.svg written at the end")
    check(listing(d) == {"checkpoint.safetensors", "log.csv", "run.json", "losses.svg", ".lock"},
          "the run folder holds exactly its five files: %r" % listing(d))
    # budgets: --epochs counts passes over --train-n images (500/50 = 10 steps)
    e = os.path.join(tmp, "epochs")
    ok(["train", "--data", MNIST, "--out", e, "--epochs", "2"] + SMALL)
    check(info_fields(ok(["info", os.path.join(e, "checkpoint.safetensors")])).get("step")
          == "20", "--epochs 2 makes 20 steps")
    m = os.path.join(tmp, "minutes")
    t0 = time.time()
    ok(["train", "--data", MNIST, "--out", m, "--minutes", "0.05"] + SMALL)
    check(time.time() - t0 < 30, "--minutes 0.05 stops in time")
    # the presets' recipes, chosen on held-out images: a new dcrw run takes
    # batch 50 and a new draw run a KL warm-up of 1,000 steps unless told
    # otherwise; --init keeps the general defaults (100, none)
    tiny = [a for i, a in enumerate(SMALL) if "--batch" not in (a, SMALL[i - 1])]
    draw = ["--preset", "draw", "--set", "glimpses=2", "--set", "enc_size=16", "--set",
            "dec_size=16", "--set", "z_size=4", "--train-n", "200", "--valid", "100"]
    for i, (extra, want) in enumerate((([], (50, 0)), (["--preset", "dcrw"], (50, 0)),
                                       (["--batch", "20"], (20, 0)), (draw, (100, 1000)),
                                       (draw + ["--kl-warmup", "0"], (100, 0)),
                                       (draw + ["--batch", "30"], (30, 1000)))):
        r = os.path.join(tmp, "recipe%d" % i)
        ok(["train", "--data", MNIST, "--out", r, "--steps", "1"] + (extra if "draw" in extra
                                                                      else tiny + extra))
        rj = json.load(open(os.path.join(r, "run.json")))
        got = (rj["batch"], rj.get("kl_warmup", 0))
        check(got == want, "batch and KL warm-up of %r: %r, want %r" % (extra, got, want))
    for src in ("recipe0", "recipe3"):
        r = os.path.join(tmp, src + "-init")
        ok(["train", "--init", os.path.join(tmp, src, "checkpoint.safetensors"), "--data", MNIST,
            "--out", r, "--steps", "1", "--train-n", "500", "--valid", "200"])
        rj = json.load(open(os.path.join(r, "run.json")))
        check((rj["batch"], rj.get("kl_warmup", 0)) == (100, 0),
              "--init keeps the general defaults: %r" % rj)
    # a terminal gets one live line, updated with carriage returns
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(DCRW, [DCRW, "train", "--data", MNIST, "--out", os.path.join(tmp, "tty"),
                        "--steps", "40"] + SMALL)
    buf = b""
    while True:
        try:
            r, _, _ = select.select([fd], [], [], 120)
            chunk = os.read(fd, 4096) if r else b""
        except OSError:
            chunk = b""
        if not chunk:
            break
        buf += chunk
    _, status = os.waitpid(pid, 0)
    check(os.WEXITSTATUS(status) == 0, "train on a terminal exits 0")
    check(b"\rstep " in buf, "a terminal gets \\r progress updates")


def write_format1(run_dir, with_halflife):
    """Rewrite run_dir/run.json as dcrw 0.2.0 (with_halflife) or 0.1.0
    wrote it: format 1, every configuration field a number at the top."""
    rj = os.path.join(run_dir, "run.json")
    flags = json.load(open(rj))
    info = info_fields(ok(["info", os.path.join(run_dir, "checkpoint.safetensors")]))
    words = {"true": 1, "false": 0, "cnn": 1, "lstm": 0}
    old = {"format": 1, "preset": flags["preset"]}
    for k in ("channels", "height", "width", "glimpses", "enc_size", "dec_size", "z_size",
              "read_n", "write_n", "conv1", "conv2", "encoder", "read_attention",
              "write_attention", "canvas_init"):
        v = info[k]
        old[k] = words[v] if v in words else float(v) if k == "canvas_init" else int(v)
    for k, v in flags.items():
        if k not in ("format", "preset", "set", "kl_warmup", "lr_warmup", "precision") and \
                (with_halflife or k != "lr_halflife"):
            old[k] = v
    with open(rj, "w") as f:
        f.write("{\n" + ",\n".join("  %s: %s" % (json.dumps(k), json.dumps(v))
                                    for k, v in old.items()) + "\n}\n")


def scheduled_run(tmp, name, flags, key, value):
    """Train 8 steps with a schedule's flags, straight and resumed after 3;
    check run.json, the refusal of a new value on resume and that the two
    agree bit for bit; the checkpoint's bytes."""
    whole = train_small(tmp, name, 8, flags)
    part = train_small(tmp, name + "-part", 3, flags)
    check(json.load(open(os.path.join(whole, "run.json"))).get(key) == value,
          "run.json records %s" % flags[0])
    rc, _, err = run(["train", "--resume", part, "--steps", "8", flags[0], "3"])
    check(rc == 2 and flags[0].lstrip("-") in err, "resume refuses a new %s" % flags[0])
    ok(["train", "--resume", part, "--steps", "8"])
    data = open(os.path.join(whole, "checkpoint.safetensors"), "rb").read()
    check(data == open(os.path.join(part, "checkpoint.safetensors"), "rb").read(),
          "%s: a run resumed after 3 steps equals the straight one" % " ".join(flags))
    return data


def saved_rate(checkpoint):
    """The learning rate a checkpoint's bytes record."""
    meta = json.loads(checkpoint[8:8 + struct.unpack("<Q", checkpoint[:8])[0]])["__metadata__"]
    return float(meta["dcrw.train.learning_rate"])


def case_resume(tmp):
    straight = train_small(tmp, "straight", 23)
    part = train_small(tmp, "part", 9)
    # flags that define the run cannot change on resume
    for extra in (["--lr", "0.1"], ["--seed", "3"], ["--set", "glimpses=4"], ["--batch", "10"],
                  ["--out", os.path.join(tmp, "x")]):
        rc, out, err = run(["train", "--resume", part, "--steps", "23"] + extra)
        check(rc == 2 and err.count("\n") == 1, "resume refuses %s" % extra)
    out = ok(["train", "--resume", part, "--steps", "15"])
    check("continuing from step 9" in out, "resume reports where it continues")
    # and a second interruption, by the step budget again
    ok(["train", "--resume", part, "--steps", "23"])
    a = open(os.path.join(straight, "checkpoint.safetensors"), "rb").read()
    b = open(os.path.join(part, "checkpoint.safetensors"), "rb").read()
    check(len(a) > 1000 and a == b,
          "23 straight steps and 9 + 6 + 8 resumed steps give identical checkpoints")
    _, ra = read_log(straight)
    _, rb = read_log(part)
    la = [(r[0], r[2], r[3], r[4]) for r in ra if r[2] != ""]
    lb = [(r[0], r[2], r[3], r[4]) for r in rb if r[2] != ""]
    check(la == lb and len(la) == 23, "identical logged losses, one row per step")
    va = [(r[0], r[6]) for r in ra if r[6] != ""]
    vb = [(r[0], r[6]) for r in rb if r[6] != ""]
    check(va[-1] == vb[-1], "identical final held-out bound")
    # run folders of dcrw 0.2.0 (run.json of format 1: the configuration's
    # fields, no "set") and 0.1.0 (also no lr_halflife) resume, with and
    # without a checkpoint; without one, the configuration comes from
    # run.json alone, so a reader that ignored it would build the preset's
    # model and another run
    for version in ("0.2.0", "0.1.0"):
        for keep_ckpt in (True, False):
            old = train_small(tmp, "old-%s-%d" % (version, keep_ckpt), 9)
            write_format1(old, with_halflife=version == "0.2.0")
            if not keep_ckpt:
                os.remove(os.path.join(old, "checkpoint.safetensors"))
            ok(["train", "--resume", old, "--steps", "23"])
            check(open(os.path.join(old, "checkpoint.safetensors"), "rb").read() == a,
                  "a run folder of dcrw %s (%s checkpoint) resumes into the straight run"
                  % (version, "with" if keep_ckpt else "without"))
            check(json.load(open(os.path.join(old, "run.json"))).get("format") == 2,
                  "and its run.json is rewritten in the new format")
    # run.json and the checkpoint must describe the same model
    old = train_small(tmp, "mismatch", 9)
    rj = os.path.join(old, "run.json")
    flags = json.load(open(rj))
    flags["set"]["glimpses"] = "4"
    json.dump(flags, open(rj, "w"))
    rc, _, err = run(["train", "--resume", old, "--steps", "23"])
    check(rc == 2 and "another model" in err, "a run.json of another model is refused: %s" % err)
    # a negative or non-numeric lr_halflife, a bad "set", is refused
    text = json.dumps(dict(flags, set=dict(flags["set"], glimpses="3")))
    for key, bad in (("lr_halflife", -1), ("lr_halflife", "x"), ("set", {"glimpses": 3}),
                     ("set", {"glimpses": "0"}), ("set", {"channels": "1"}),
                     ("set", {"nosuch": "1"}), ("set", ["glimpses=3"])):
        with open(rj, "w") as f:
            f.write(json.dumps(dict(json.loads(text), **{key: bad})))
        rc, _, err = run(["train", "--resume", old, "--steps", "30"])
        check(rc == 2 and "malformed" in err and key in err,
              "run.json %s %r is refused: %s" % (key, bad, err))
    # log rows past the checkpoint (a crash after it) are dropped on resume
    crash = train_small(tmp, "crash", 6)
    with open(os.path.join(crash, "log.csv"), "a") as f:
        f.write("7,1.0,1,1,2,10,\n8,1.1,1,1,2,10,\n9,1.2,1")
    ok(["train", "--resume", crash, "--steps", "7"])
    _, rc_rows = read_log(crash)
    check([r[0] for r in rc_rows if r[2] != ""] == [str(i) for i in range(1, 8)],
          "resume rewrites the log up to the checkpoint: %r" % [r[0] for r in rc_rows])
    # the schedules (rate decay, rate warm-up, KL warm-up) are functions of
    # the step: run.json records them, a run resumed after 3 steps equals
    # the straight one, resume cannot change them, bad values are refused
    decay = scheduled_run(tmp, "decay", ["--lr-halflife", "2"], "lr_halflife", 2)
    flat = train_small(tmp, "flat", 8)
    fa = open(os.path.join(flat, "checkpoint.safetensors"), "rb").read()
    check(decay != fa, "the decay changes the run")
    # KL warm-up weighs the KL gradient by step/N; the logged losses stay the bound
    warm = scheduled_run(tmp, "warm", ["--kl-warmup", "4"], "kl_warmup", 4)
    check(warm != fa, "the warm-up changes the run")
    _, wrows = read_log(os.path.join(tmp, "warm"))
    _, frows = read_log(flat)
    check(wrows[0][2:5] == frows[0][2:5] and wrows[1][2:5] != frows[1][2:5],
          "the first step logs the same bound as without warm-up, the second another")
    # the rate saved with step 8 is the one its last update used:
    # 0.01 * 2^(-7/2) with the decay, and with 8 of 16 steps of warm-up too
    # half that
    check(abs(saved_rate(decay) - 0.01 * 2 ** -3.5) < 1e-8,
          "learning rate after 8 steps: %g" % saved_rate(decay))
    ramp = scheduled_run(tmp, "ramp", ["--lr-warmup", "16", "--lr-halflife", "2"], "lr_warmup",
                         16)
    check(ramp != decay, "the warm-up of the rate changes the run")
    check(abs(saved_rate(ramp) - 0.01 * 0.5 * 2 ** -3.5) < 1e-8,
          "warmed-up rate after 8 steps: %g" % saved_rate(ramp))
    for flag, bads in (("--kl-warmup", ("-1", "x", "1.5")), ("--lr-halflife", ("-1", "nan", "x")),
                       ("--lr-warmup", ("-1", "x", "2.5"))):
        for bad in bads:
            rc, _, err = run(["train", "--data", MNIST, "--out", os.path.join(tmp, "bad"),
                              "--steps", "1", flag, bad])
            check(rc == 2 and not os.path.exists(os.path.join(tmp, "bad")),
                  "%s %s is refused" % (flag, bad))
    # a different seed gives a different run
    other = train_small(tmp, "other", 23, ["--seed", "2"])
    check(open(os.path.join(other, "checkpoint.safetensors"), "rb").read() != a,
          "a different seed changes the run")


def case_signal(tmp):
    for sig in (signal.SIGINT, signal.SIGTERM):
        d = os.path.join(tmp, "sig%d" % sig)
        p = subprocess.Popen([DCRW, "train", "--data", MNIST, "--out", d, "--steps", "1000000",
                              "--progress-seconds", "0.2"] + SMALL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = ""
        deadline = time.time() + 120
        while time.time() < deadline:
            first = p.stdout.readline()
            if first.startswith("step ") or not first:
                break
        check(first.startswith("step "), "a progress line before the signal")
        p.send_signal(sig)
        try:
            out, err = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        check(p.returncode == 0, "exit 0 after signal %d (got %d, %s)" % (sig, p.returncode, err))
        check("stopped by signal" in out, "says it stopped")
        rc, info, err = run(["info", os.path.join(d, "checkpoint.safetensors")])
        check(rc == 0, "the checkpoint loads after signal %d: %s" % (sig, err))
        step = int(info_fields(info).get("step", "0"))
        _, rows = read_log(d)
        check(step >= 1 and max(int(r[0]) for r in rows) == step,
              "the log reaches the saved step %d" % step)
        check(not [f for f in os.listdir(d) if ".tmp." in f], "no temporary files left")
        ok(["train", "--resume", d, "--steps", str(step + 2)])
        check(info_fields(ok(["info", os.path.join(d, "checkpoint.safetensors")])).get("step")
              == str(step + 2), "the interrupted run resumes")


    # SIGKILL cannot be caught: the periodic checkpoint is what survives, and
    # the log rows written after it are dropped when the run resumes
    d = os.path.join(tmp, "killed")
    p = subprocess.Popen([DCRW, "train", "--data", MNIST, "--out", d, "--steps", "1000000",
                          "--progress-seconds", "0", "--checkpoint-minutes", "0.002"] + SMALL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # 40 steps and a second of training, so that periodic checkpoints
    # (every 0.12 s) have been written however fast the steps are
    seen, t0 = 0, time.time()
    while seen < 40 or time.time() - t0 < 1.0:
        line = p.stdout.readline()
        if not line:
            break
        seen += line.startswith("step ")
    p.kill()
    p.communicate()
    check(seen >= 40, "training ran before the kill")
    rc, info, err = run(["info", os.path.join(d, "checkpoint.safetensors")])
    check(rc == 0, "the periodic checkpoint loads after SIGKILL: %s" % err)
    step = int(info_fields(info).get("step", "0"))
    check(step >= 1, "a periodic checkpoint was saved (step %d)" % step)
    ok(["train", "--resume", d, "--steps", str(step + 3)])
    _, rows = read_log(d)
    check([int(r[0]) for r in rows if r[2] != ""] == list(range(1, step + 4)),
          "after the resume the log has one row per step")


def parse_eval(out):
    v = {}
    for key in ("Lx", "Lz", "L"):
        m = re.search(r"^%s\s+(-?[\d.]+) nats" % key, out, re.M)
        v[key] = float(m.group(1)) if m else None
    m = re.search(r"^L\s+[\d.]+ nats \(standard error ([\d.]+)\)", out, re.M)
    v["se"] = float(m.group(1)) if m else None
    m = re.search(r"^IW bound\s+([\d.]+) nats \(K = (\d+), standard error ([\d.]+)\)", out, re.M)
    if m:
        v["iw"], v["K"], v["iw_se"] = float(m.group(1)), int(m.group(2)), float(m.group(3))
    return v


def case_eval(tmp):
    d = train_small(tmp, "run", 40)
    ck = os.path.join(d, "checkpoint.safetensors")
    out = ok(["eval", "--model", ck, "--data", MNIST, "--n", "300"])
    e = parse_eval(out)
    check(None not in e.values() and abs(e["Lx"] + e["Lz"] - e["L"]) < 2e-3 and e["Lz"] > 0,
          "eval prints Lx, Lz, L = Lx + Lz: %r" % e)
    check("300 images" in out and "seed 12345" in out, "eval names its images and seed")
    check(ok(["eval", "--model", ck, "--data", MNIST, "--n", "300"]) == out,
          "eval is deterministic")
    # the KL of each glimpse, from the same posterior: T values that sum to Lz
    gk = ok(["eval", "--model", ck, "--data", MNIST, "--n", "300", "--glimpse-kl"])
    check(parse_eval(gk) == e, "--glimpse-kl leaves the bound as it was")
    kls = [(int(m.group(1)), float(m.group(2)), float(m.group(3))) for m in
           re.finditer(r"^(\d+)\s+([\d.]+) \(standard error ([\d.]+)\)$", gk, re.M)]
    check([k[0] for k in kls] == [1, 2, 3], "one KL line per glimpse (T = 3): %r" % kls)
    check(all(k[1] >= 0 and k[2] >= 0 for k in kls), "KL and its standard error are >= 0")
    check(abs(sum(k[1] for k in kls) - e["Lz"]) < 2e-3,
          "the glimpses' KL sum to Lz: %r against %.4f" % (kls, e["Lz"]))
    # and as a bar chart: one bar per glimpse, its height the KL printed
    svg = os.path.join(tmp, "kl.svg")
    out_svg = ok(["eval", "--model", ck, "--data", MNIST, "--n", "300", "--glimpse-kl-svg", svg])
    check(out_svg.replace("plot      %s\n" % svg, "") == gk, "--glimpse-kl-svg prints as --glimpse-kl")
    root = ET.parse(svg).getroot()
    bars = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.get("class") == "bar"]
    check(len(bars) == 3, "one bar per glimpse: %d" % len(bars))
    hs = [float(r.get("height")) for r in bars]
    check(all(abs(float(r.get("data-kl")) - k[1]) < 1e-4 for r, k in zip(bars, kls)),
          "each bar carries its glimpse's KL")
    check(all(abs(h / hs[0] - k[1] / kls[0][1]) < 1e-3 for h, k in zip(hs, kls)),
          "bar heights are proportional to the KL: %r against %r" % (hs, kls))
    rc, _, err = run(["eval", "--model", ck, "--data", MNIST, "--glimpse-kl-svg", ck])
    check(rc == 2 and "--glimpse-kl-svg" in err, "the chart may not replace the model: %r" % err)
    # bfloat16 products: the bound moves by their roundings only (where the
    # CPU has AVX-512 BF16; elsewhere --precision bf16 is refused)
    rc, out16, err16 = run(["eval", "--model", ck, "--data", MNIST, "--n", "300",
                            "--precision", "bf16"])
    if rc == 0:
        e16 = parse_eval(out16)
        check(e16["L"] != e["L"] and abs(e16["L"] - e["L"]) < 1e-2 * e["L"],
              "--precision bf16: %.4f against float32 %.4f" % (e16["L"], e["L"]))
        check(ok(["eval", "--model", ck, "--data", MNIST, "--n", "300", "--precision",
                  "float32"]) == out, "--precision float32 is the default")
        p16 = os.path.join(tmp, "p16")
        ok(["train", "--data", MNIST, "--out", p16, "--steps", "2", "--precision", "bf16"] + SMALL)
        check(json.load(open(os.path.join(p16, "run.json"))).get("precision") == 1,
              "run.json records --precision bf16")
        rc, _, err = run(["train", "--resume", p16, "--steps", "3", "--precision", "float32"])
        check(rc == 2 and "precision" in err, "resume refuses a new --precision")
        ok(["train", "--resume", p16, "--steps", "3"])
    else:
        check(rc == 2 and "AVX-512 BF16" in err16, "--precision bf16 refused on this CPU: %r"
              % err16)
    rc, _, err = run(["eval", "--model", ck, "--data", MNIST, "--precision", "half"])
    check(rc == 2 and "float32, bf16" in err, "--precision half is refused: %r" % err)
    e100 = parse_eval(ok(["eval", "--model", ck, "--data", MNIST, "--n", "100"]))
    check(e100["L"] != e["L"], "a different subset gives a different bound")
    tr = parse_eval(ok(["eval", "--model", ck, "--data", MNIST, "--n", "300", "--split",
                        "train"]))
    check(tr["L"] != e["L"], "--split train evaluates other images")
    # importance sampling: K=1 is the bound in expectation, K=20 is tighter
    k1 = parse_eval(ok(["eval", "--model", ck, "--data", MNIST, "--n", "300",
                        "--importance", "1"]))
    k20 = parse_eval(ok(["eval", "--model", ck, "--data", MNIST, "--n", "300",
                         "--importance", "20"]))
    check(k1.get("K") == 1 and k20.get("K") == 20, "IW bound printed with K")
    check(abs(k1["iw"] - e["L"]) < 4 * e["se"] + 0.5,
          "K=1 importance bound %.3f agrees with the ELBO %.3f" % (k1["iw"], e["L"]))
    check(k20["iw"] < k1["iw"] and k20["iw"] < e["L"],
          "K=20 bound %.3f is below K=1 %.3f and the ELBO %.3f" % (k20["iw"], k1["iw"], e["L"]))
    check(0 < k20["iw_se"] < 20, "standard error is reported")
    # a trained model beats an untrained one on the test set
    d0 = train_small(tmp, "run0", 1)
    e0 = parse_eval(ok(["eval", "--model", os.path.join(d0, "checkpoint.safetensors"),
                        "--data", MNIST, "--n", "300"]))
    check(e["L"] < e0["L"] - 20, "training lowers the test bound (%.1f vs %.1f)" % (e["L"],
                                                                                    e0["L"]))


def case_pictures(tmp):
    if not HAVE_PNG:
        d = train_small(tmp, "run", 2)
        rc, out, err = run(["sample", "--model", os.path.join(d, "checkpoint.safetensors"),
                            "--out", os.path.join(tmp, "s.png")])
        check(rc == 2 and "libpng" in err, "without libpng: exit 2 naming it")
        return
    d = train_small(tmp, "run", 30)
    ck = os.path.join(d, "checkpoint.safetensors")
    # the grid: 16 samples, 4 columns, 28*2 pixel cells
    s = os.path.join(tmp, "s.png")
    ok(["sample", "--model", ck, "--n", "16", "--out", s])
    w, h, ch, rows = png_decode(s)
    check((w, h, ch) == grid(4, 4, 56) + (1,), "sample grid size %r" % ((w, h, ch),))
    cell = [rows[2 + y][2 + x] for y in range(56) for x in range(56)]
    check(max(cell) - min(cell) > 50, "a sample has contrast")
    # ceil(sqrt(10)) = 4 columns, 3 rows, scale 3
    ok(["sample", "--model", ck, "--n", "10", "--scale", "3", "--out", s])
    check(png_decode(s)[:2] == grid(4, 3, 84), "10 samples: 4 x 3 grid")
    # reproducible by seed
    a, b, c = (os.path.join(tmp, n) for n in ("a.png", "b.png", "c.png"))
    ok(["sample", "--model", ck, "--n", "4", "--seed", "5", "--out", a])
    ok(["sample", "--model", ck, "--n", "4", "--seed", "5", "--out", b])
    ok(["sample", "--model", ck, "--n", "4", "--seed", "6", "--out", c])
    check(open(a, "rb").read() == open(b, "rb").read(), "the same seed, the same picture")
    check(open(a, "rb").read() != open(c, "rb").read(), "another seed, another picture")
    # glimpse rows: one row per sample, one column per glimpse
    g = os.path.join(tmp, "g.png")
    ok(["sample", "--model", ck, "--n", "5", "--glimpses", "1,3", "--out", g])
    check(png_decode(g)[:2] == grid(2, 5, 56), "--glimpses 1,3: 2 columns x 5 rows")
    ok(["sample", "--model", ck, "--n", "2", "--glimpses", "all", "--out", g])
    gw, gh, _, grows = png_decode(g)
    check((gw, gh) == grid(3, 2, 56), "--glimpses all: T=3 columns")
    # the last glimpse column is the grid's image: sample 0 of the same seed
    ok(["sample", "--model", ck, "--n", "2", "--out", s])
    _, _, _, srows = png_decode(s)
    last = [grows[2 + y][2 + 2 * 58 + x] for y in range(56) for x in range(56)]
    first = [srows[2 + y][2 + x] for y in range(56) for x in range(56)]
    check(last == first, "the last glimpse is the final sample")
    if HAVE_GIF:
        gif = os.path.join(tmp, "s.gif")
        ok(["sample", "--model", ck, "--n", "9", "--gif", gif])
        check(gif_info(gif) == grid(3, 3, 56) + (4,), "GIF: 3x3 grid, blank + 3 glimpses")
    else:
        rc, out, err = run(["sample", "--model", ck, "--gif", os.path.join(tmp, "s.gif")])
        check(rc == 2 and "giflib" in err, "without giflib: exit 2 naming it")
    # reconstructions: original + 3 glimpses, scale 4, RGB, windows drawn
    r = os.path.join(tmp, "r.png")
    ok(["reconstruct", "--model", ck, "--data", MNIST, "--n", "3", "--out", r])
    w, h, ch, rows = png_decode(r)
    check((w, h, ch) == grid(4, 3, 112) + (3,), "reconstruct size %r" % ((w, h, ch),))
    px = lambda x, y: tuple(rows[y][3 * x:3 * x + 3])
    orig = {px(2 + x, 2 + y) for y in range(112) for x in range(112)}
    check(orig <= {(0, 0, 0), (255, 255, 255)} and len(orig) == 2,
          "the original is a binarized image: %r" % list(orig)[:5])
    frames = {px(2 + k * 114 + x, 2 + y) for k in (1, 2, 3) for y in range(112)
              for x in range(112)}
    check((255, 40, 40) in frames, "the read window is drawn in red")
    check((255, 40, 40) not in orig and (40, 230, 40) not in orig, "no window on the original")
    # Untrained, the first read window (placed by h_0 = 0, so only by the
    # zero biases) is centred and covers the image (MODEL.md §3.4):
    # gX = gY = (28+1)/2 = 14.5, delta = 27/(N-1), so the grid spans
    # 14.5 -+ 13.5 = pixels 1..28, drawn from pixel centre to pixel centre:
    # 4*(1-0.5) = 2 .. 4*(28-0.5) = 110 in the 112-pixel cell.
    fresh = train_small(tmp, "fresh", 1, ["--lr", "1e-9"])
    fck = os.path.join(fresh, "checkpoint.safetensors")
    ok(["reconstruct", "--model", fck, "--data", MNIST, "--n", "1", "--glimpses", "1",
        "--windows", "read", "--out", r])
    w, h, ch, rows = png_decode(r)
    red, green = (255, 40, 40), (40, 230, 40)
    x0, y0 = 2 + 114, 2
    edge = [px(x0 + x, y0 + 2) for x in range(2, 111)] + \
           [px(x0 + x, y0 + 110) for x in range(2, 111)] + \
           [px(x0 + 2, y0 + y) for y in range(2, 111)] + \
           [px(x0 + 110, y0 + y) for y in range(2, 111)]
    check(all(c == red for c in edge), "the first read window's outline")
    inside = {px(x0 + x, y0 + y) for y in range(3, 110) for x in range(3, 110)}
    outside = {px(x0 + x, y0 + y) for y in (0, 1, 111) for x in range(112)}
    check(red not in inside and red not in outside and green not in inside | outside,
          "nothing red off the outline, no green with --windows read")
    # the write windows of an untrained model are near the same place
    ok(["reconstruct", "--model", fck, "--data", MNIST, "--n", "1", "--windows", "write",
        "--out", r])
    w, h, ch, rows = png_decode(r)
    for k in (1, 2, 3):
        cell = [px(2 + k * 114 + x, 2 + y) for y in range(112) for x in range(112)]
        check(cell.count(green) > 200 and red not in cell,
              "frame %d: a green write window, no red" % k)
    # samples: the write window of each chosen glimpse, in green, on the rows
    ok(["sample", "--model", fck, "--n", "2", "--glimpses", "1,3", "--windows", "write",
        "--scale", "4", "--out", g])
    w, h, ch, rows = png_decode(g)
    check((w, h, ch) == grid(2, 2, 112) + (3,), "sample --windows write: RGB glimpse rows")
    for i in (0, 1):
        for k in (0, 1):
            cell = [px(2 + k * 114 + x, 2 + i * 114 + y) for y in range(112) for x in range(112)]
            check(cell.count(green) > 200 and red not in cell,
                  "sample %d, glimpse column %d: a green write window, no red" % (i, k))
    ok(["sample", "--model", fck, "--n", "2", "--glimpses", "1,3", "--windows", "none",
        "--scale", "4", "--out", g])
    check(png_decode(g)[2] == 1, "sample --windows none: grey as before")
    rc, out, err = run(["sample", "--model", fck, "--glimpses", "1", "--windows", "read",
                        "--out", g])
    check(rc == 2 and "no read window" in err, "sample --windows read is refused: %r" % err)
    rc, out, err = run(["sample", "--model", fck, "--windows", "write", "--out", g])
    check(rc == 2 and "--glimpses" in err, "sample --windows without --glimpses is refused")
    ok(["reconstruct", "--model", ck, "--data", MNIST, "--n", "2", "--glimpses", "3",
        "--scale", "1", "--windows", "none", "--out", r])
    w, h, ch, rows = png_decode(r)
    check((w, h) == grid(2, 2, 28), "--glimpses 3 --scale 1")
    check(not any(rows[y][3 * x:3 * x + 3] in (bytearray(b"\xff\x28\x28"),
                                                 bytearray(b"\x28\xe6\x28"))
                  for y in range(h) for x in range(w)), "--windows none draws none")
    # a model without attention gets no rectangles
    na = os.path.join(tmp, "noattn")
    ok(["train", "--data", MNIST, "--out", na, "--steps", "2", "--preset", "draw-noattn",
        "--set", "glimpses=2", "--set", "enc_size=8", "--set", "dec_size=8", "--set", "z_size=2",
        "--train-n", "100", "--valid", "0"])
    ok(["reconstruct", "--model", os.path.join(na, "checkpoint.safetensors"), "--data", MNIST,
        "--n", "2", "--out", r])
    w, h, ch, rows = png_decode(r)
    colours = {tuple(rows[y][3 * x:3 * x + 3]) for y in range(h) for x in range(w)}
    check(all(c[0] == c[1] == c[2] for c in colours), "no attention: only grey pixels")
    # the plot
    svgp = os.path.join(tmp, "p.svg")
    out = ok(["plot", d, "--out", svgp])
    root = ET.parse(svgp).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    check(root.tag == ns + "svg", "plot writes SVG")
    check(len(root.findall(ns + "polyline")) == 3, "Lx, Lz and L curves")
    _, lrows = read_log(d)
    check(len(root.findall(ns + "circle")) == sum(1 for r in lrows if r[6] != ""),
          "one point per held-out evaluation")
    texts = " ".join(t.text or "" for t in root.iter(ns + "text"))
    check("Lx" in texts and "Lz" in texts and "step" in texts, "titles and axis labels")
    ok(["plot", d])
    ET.parse(os.path.join(d, "losses.svg"))


def case_info(tmp):
    d = train_small(tmp, "run", 3)
    out = ok(["info", os.path.join(d, "checkpoint.safetensors")])
    f = info_fields(out)
    check(f.get("preset") == "dcrw" and f.get("step") == "3", "preset and step")
    for k in ("channels", "height", "width", "glimpses", "enc_size", "dec_size", "z_size",
              "read_n", "write_n", "conv1", "conv2", "encoder", "read_attention",
              "write_attention", "canvas_init"):
        check(k in f, "info prints %s" % k)
    # MODEL.md §7 for C=1, K1=K2=8, N_r=7 (CNN output 8*1*1), D=32, Z=8, N_w=5
    want = {"enc.conv1.weight": [8, 2, 3, 3], "enc.conv1.bias": [8],
            "enc.conv2.weight": [8, 8, 3, 3], "enc.conv2.bias": [8],
            "q.mu.weight": [8, 8 + 32], "q.mu.bias": [8],
            "q.logsigma.weight": [8, 40], "q.logsigma.bias": [8],
            "dec.lstm.weight_ih": [128, 8], "dec.lstm.weight_hh": [128, 32],
            "dec.lstm.bias": [128], "read.attn.weight": [5, 32], "read.attn.bias": [5],
            "write.attn.weight": [5, 32], "write.attn.bias": [5],
            "write.weight": [25, 32], "write.bias": [25]}
    got = {}
    for m in re.finditer(r"^  (\S+)\s+\[([\d, ]*)\]\s+(\d+)$", out, re.M):
        got[m.group(1)] = [int(v) for v in m.group(2).split(",")]
    check(got == want, "tensor names and shapes: %r" % got)
    total = 0
    for shape in want.values():
        n = 1
        for v in shape:
            n *= v
        total += n
    check(f.get("parameters", "").startswith(str(total) + " "), "parameter count %d" % total)
    check("optimizer state  yes" in out, "a trainer checkpoint has optimizer state")
    # metadata whose values quote the names of other keys: info reads the
    # header as JSON, so neither the quoted names nor the order mislead it
    shipped = open(SHIPPED, "rb").read()
    (n,) = struct.unpack("<Q", shipped[:8])
    header = json.loads(shipped[8:8 + n])
    header["__metadata__"] = dict(
        [("see", "dcrw.preset"),
         ("note", 'copied from a run with "adam.m.*" tensors; "dcrw.step": "77"')]
        + list(header["__metadata__"].items()))
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    quoted = os.path.join(tmp, "quoted.safetensors")
    open(quoted, "wb").write(struct.pack("<Q", len(text)) + text + shipped[8 + n:])
    out = ok(["info", quoted])
    f = info_fields(out)
    check(f.get("preset") == "dcrw" and f.get("step", "").startswith("none")
          and "optimizer state  no" in out,
          "metadata quoting other keys: preset dcrw, no step, no optimizer state:\n%s" % out)


def st_read(path):
    """A safetensors file: ({name: floats}, metadata), float32 tensors only."""
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        out[name] = struct.unpack("<%df" % ((b - a) // 4), data[8 + n + a:8 + n + b])
    return out, meta


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def model_hash(path):
    """FNV-1a of a model's parameters in the library's order (dcrw info's)."""
    names = re.findall(r"^  (\S+)\s+\[", ok(["info", path]), re.M)
    tensors, _ = st_read(path)
    flat = b"".join(struct.pack("<%df" % len(tensors[k]), *tensors[k]) for k in names)
    return len(flat) // 4, "%016x" % fnv1a64(flat)


def fresh_adam(tensors):
    """After one Adam step from zero moments, m = (1-b1) g and v = (1-b2) g^2,
    so v = 0.1 m^2 for every element (b1 0.9, b2 0.999)."""
    bad = 0
    for k, m in tensors.items():
        if not k.startswith("adam.m."):
            continue
        v = tensors["adam.v." + k[7:]]
        bad += sum(abs(vi - 0.1 * mi * mi) > 1e-3 * 0.1 * mi * mi + 1e-30 for mi, vi in zip(m, v))
    return bad == 0


# SMALL without its --set: a run from --init takes the model's configuration
INIT_FLAGS = ["--data", MNIST, "--train-n", "500", "--valid", "200", "--batch", "50",
              "--eval-every", "5"]


def case_init(tmp):
    base = train_small(tmp, "base", 3)
    init = os.path.join(base, "checkpoint.safetensors")
    # one step at the smallest rate: the parameters stay the init model's,
    # the moments are those of one step from zero, the step count is 1
    a = os.path.join(tmp, "a")
    out = ok(["train", "--init", init, "--out", a, "--steps", "1", "--lr", "1e-12"] + INIT_FLAGS)
    check("starting from the model in %s" % init in out, "the start names the init model: " + out)
    ck = os.path.join(a, "checkpoint.safetensors")
    f = info_fields(ok(["info", ck]))
    check(f.get("step") == "1" and f.get("preset") == "dcrw" and f.get("glimpses") == "3"
          and f.get("dec_size") == "32", "a new run of the init model's configuration, at step 1: %r"
          % f)
    tb, _ = st_read(init)
    ta, meta = st_read(ck)
    params = [k for k in tb if not k.startswith("adam.")]
    far = max(abs(x - y) for k in params for x, y in zip(ta[k], tb[k]))
    check(far < 1e-9, "the parameters are the init model's (largest difference %g)" % far)
    fresh = train_small(tmp, "fresh", 1, ["--lr", "1e-12"])
    tf, _ = st_read(os.path.join(fresh, "checkpoint.safetensors"))
    check(max(abs(x - y) for k in params for x, y in zip(tf[k], tb[k])) > 1e-3,
          "a random model of the same configuration differs from it")
    check(fresh_adam(ta) and not fresh_adam(tb),
          "the Adam moments start from zero (the init model's step-3 moments are not used)")
    check(meta.get("dcrw.step") == "1", "the checkpoint's step count is 1: %r" % meta)
    rj = json.load(open(os.path.join(a, "run.json")))
    n, h = model_hash(init)
    check(rj.get("init") == init and rj.get("init_params") == n and rj.get("init_fnv1a64") == h,
          "run.json identifies the init model (%d, %s): %r" % (n, h, rj))
    check(rj.get("preset") == "dcrw" and rj.get("set") == json.load(
        open(os.path.join(base, "run.json")))["set"], "run.json describes its configuration")
    # bit for bit: the same init model and seed give the same run, and a
    # start killed before its first checkpoint begins again from the model
    b1 = os.path.join(tmp, "b1")
    b2 = os.path.join(tmp, "b2")
    for d in (b1, b2):
        ok(["train", "--init", init, "--out", d, "--steps", "4", "--seed", "5"] + INIT_FLAGS)
    first = open(os.path.join(b1, "checkpoint.safetensors"), "rb").read()
    check(first == open(os.path.join(b2, "checkpoint.safetensors"), "rb").read(),
          "two runs from the same init model and seed give identical checkpoints")
    check(info_fields(ok(["info", os.path.join(b1, "checkpoint.safetensors")])).get("step")
          == "4", "a run of 4 steps from a step-3 model ends at step 4")
    os.remove(os.path.join(b2, "checkpoint.safetensors"))
    out = ok(["train", "--resume", b2])
    check("holds no checkpoint" in out and "starting from the model in" in out,
          "a run killed before its first checkpoint restarts from the init model: " + out)
    check(open(os.path.join(b2, "checkpoint.safetensors"), "rb").read() == first,
          "and repeats the run bit for bit")
    check(json.load(open(os.path.join(b2, "run.json"))).get("init") == init,
          "the restarted run keeps its init model in run.json")
    # ... but not from another model put at the same path, nor from none
    copy = os.path.join(tmp, "copy.safetensors")
    open(copy, "wb").write(open(init, "rb").read())
    k = os.path.join(tmp, "k")
    ok(["train", "--init", copy, "--out", k, "--steps", "2"] + INIT_FLAGS)
    os.remove(os.path.join(k, "checkpoint.safetensors"))
    open(copy, "wb").write(open(os.path.join(fresh, "checkpoint.safetensors"), "rb").read())
    rc, _, err = run(["train", "--resume", k])
    check(rc == 2 and "now holds another" in err and copy in err and err.count("\n") == 1,
          "a restart whose init file holds another model is refused: " + err)
    os.remove(copy)
    rc, _, err = run(["train", "--resume", k])
    check(rc == 2 and copy in err and "not a usable" in err,
          "a restart whose init file is gone is refused: " + err)
    check(not os.path.exists(os.path.join(k, "checkpoint.safetensors")),
          "the refused restarts write no checkpoint")
    rj = os.path.join(k, "run.json")
    flags = json.load(open(rj))
    del flags["init_params"]
    json.dump(flags, open(rj, "w"))
    rc, _, err = run(["train", "--resume", k])
    check(rc == 2 and "malformed" in err and "init_params" in err,
          "a run.json with \"init\" but not its hash and count is refused: " + err)
    # a matching --preset is accepted; what would change the model is not
    ok(["train", "--init", init, "--preset", "dcrw", "--out", os.path.join(tmp, "p"),
        "--steps", "1"] + INIT_FLAGS)
    junk = os.path.join(tmp, "junk.safetensors")
    open(junk, "wb").write(b"\x10" + b"\0" * 40)
    fifo = os.path.join(tmp, "fifo")
    os.mkfifo(fifo)
    npy = os.path.join(tmp, "small.npy")
    d = "{'descr': '|u1', 'fortran_order': False, 'shape': (60, 20, 20), }"
    d += " " * (63 - (10 + len(d)) % 64) + "\n"
    open(npy, "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d)) + d.encode()
                          + bytes(range(200)) * 120)
    refused = [
        (["--resume", b1, "--init", init], "--init cannot be given with --resume"),
        (["--out", "new", "--init", init, "--set", "glimpses=3"] + INIT_FLAGS,
         "--set cannot be given with --init"),
        (["--out", "new", "--init", init, "--preset", "draw"] + INIT_FLAGS, "drop --preset"),
        (["--out", "new", "--init", init, "--data", npy, "--valid", "0", "--train-n", "50",
          "--batch", "50"], "the model of --init has its height"),
        (["--out", "new", "--init", os.path.join(tmp, "nosuch")] + INIT_FLAGS, "not a usable"),
        (["--out", "new", "--init", fifo] + INIT_FLAGS, "not a regular file"),
        (["--out", "new", "--init", junk] + INIT_FLAGS, "not a usable"),
    ]
    for args, word in refused:
        args = [os.path.join(tmp, a) if a == "new" else a for a in args]
        rc, _, err = run(["train", "--steps", "5"] + args, timeout=60)
        check(rc == 2 and word in err and err.count("\n") == 1,
              "%s is refused (%s): %d %s" % (" ".join(args[:4]), word, rc, err))
        check(not os.path.exists(os.path.join(tmp, "new")), "and makes no run folder")
    check(info_fields(ok(["info", os.path.join(b1, "checkpoint.safetensors")])).get("step") == "4",
          "the run --resume --init refused is intact")


SHIPPED = os.path.join(ROOT, "examples", "models", "dcrw-mnist.safetensors")


def case_shipped(tmp):
    """The model shipped in examples/models is the one doc/RESULTS.md
    describes: it loads, samples without --model, and scores on the first
    1,000 test images within 1 nat of what the table reports."""
    check(os.path.getsize(SHIPPED) < 5 * 1000 * 1000, "the shipped model is under 5 MB")
    out = ok(["info", SHIPPED])
    check(info_fields(out).get("preset") == "dcrw" and "optimizer state  no" in out,
          "a dcrw model without optimizer state:\n%s" % out)
    png = os.path.join(tmp, "samples.png")
    ok(["sample", "--out", png, "--n", "16", "--scale", "1"], env=dict(os.environ, DCRW_MODEL=SHIPPED))
    w, h, ch, rows = png_decode(png)
    check((w, h, ch) == grid(4, 4, 28) + (1,), "16 samples in a 4 x 4 grid: %r" % ((w, h, ch),))
    ink = [v for r in rows[2:30] for v in r[2:30]]
    check(max(ink) > 200 and sum(v < 30 for v in ink) > 300,
          "the first sample is a bright stroke on a dark ground, not noise or grey")
    results = os.path.join(ROOT, "doc", "RESULTS.md")
    text = open(results).read() if os.path.exists(results) else ""
    m = re.search(r"^Shipped model on the first 1,000 test images:.*?L = ([\d.]+)", text, re.M)
    if not check(m is not None, "doc/RESULTS.md states the shipped model's bound on 1,000 images"):
        return
    e = parse_eval(ok(["eval", "--model", SHIPPED, "--data", MNIST, "--n", "1000"]))
    check(e["L"] is not None and abs(e["L"] - float(m.group(1))) <= 1.0,
          "bound on 1,000 test images %r, RESULTS.md says %s" % (e["L"], m.group(1)))
    # the shipped draw model likewise
    draw = os.path.join(os.path.dirname(SHIPPED), "draw-mnist.safetensors")
    out = ok(["info", draw])
    check(info_fields(out).get("preset") == "draw" and "optimizer state  no" in out,
          "a draw model without optimizer state:\n%s" % out)
    m = re.search(r"^Shipped draw model on the first 1,000 test images:.*?L = ([\d.]+)", text,
                  re.M)
    if check(m is not None, "doc/RESULTS.md states the draw model's bound on 1,000 images"):
        e = parse_eval(ok(["eval", "--model", draw, "--data", MNIST, "--n", "1000"]))
        check(e["L"] is not None and abs(e["L"] - float(m.group(1))) <= 1.0,
              "draw: bound on 1,000 test images %r, RESULTS.md says %s" % (e["L"], m.group(1)))


def case_badinput(tmp):
    d = train_small(tmp, "run", 2)
    ck = os.path.join(d, "checkpoint.safetensors")
    out_dir = os.path.join(tmp, "out")
    os.mkdir(out_dir)
    junk = os.path.join(tmp, "junk.safetensors")
    open(junk, "wb").write(b"this is not a checkpoint at all, just some words.\n")
    trunc = os.path.join(tmp, "trunc.safetensors")
    open(trunc, "wb").write(open(ck, "rb").read()[:3000])
    # data of the wrong shape: 10x10 images (a new model takes the data's
    # size unless --set), and a truncated image file
    small = os.path.join(tmp, "small")
    os.mkdir(small)
    for split in ("train", "t10k"):
        with open(os.path.join(small, split + "-images-idx3-ubyte"), "wb") as f:
            f.write(struct.pack(">IIII", 0x803, 200, 10, 10) + bytes(200 * 100))
    broken = os.path.join(tmp, "broken")
    os.mkdir(broken)
    with open(os.path.join(broken, "train-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, 60000, 28, 28) + bytes(5000))
    o = lambda name: os.path.join(out_dir, name)
    cases = [
        ([], "usage"),
        (["frobnicate"], "unknown command"),
        (["train", "--bogus"], "unknown option"),
        (["train", "--steps"], "needs a value"),
        (["train", "--data", MNIST, "--out", o("r")], "budget"),
        (["train", "--data", os.path.join(tmp, "nope"), "--out", o("r"), "--steps", "1"],
         "cannot open"),
        (["train", "--data", small, "--out", o("r"), "--steps", "1", "--set", "height=28"],
         "10x10"),
        (["train", "--data", broken, "--out", o("r"), "--steps", "1"], "train-images"),
        (["train", "--data", MNIST, "--out", o("r"), "--steps", "0"], "steps"),
        (["train", "--data", MNIST, "--out", o("r"), "--steps", "-3"], "steps"),
        (["train", "--data", MNIST, "--out", o("r"), "--steps", "1", "--batch", "0"], "batch"),
        (["train", "--data", MNIST, "--out", o("r"), "--steps", "1", "--lr", "-1"], "lr"),
        (["train", "--data", MNIST, "--out", o("r"), "--steps", "1", "--lr", "fast"], "lr"),
        (["train", "--data", MNIST, "--out", o("r"), "--steps", "1", "--binarize", "maybe"],
         "binarize"),
        (["train", "--data", MNIST, "--out", o("r"), "--steps", "1", "--preset", "vae"],
         "preset"),
        (["train", "--data", MNIST, "--out", o("r"), "--steps", "1", "--valid", "60000"],
         "valid"),
        (["train", "--data", MNIST, "--out", o("r"), "--steps", "1", "--train-n", "59000"],
         "train-n"),
        (["train", "--data", MNIST, "--out", o("r"), "--steps", "1", "--threads", "-1"],
         "threads"),
        (["train", "--data", MNIST, "--out", os.path.join(junk, "run"), "--steps", "1"]
         + SMALL, "not a folder"),
        (["train", "--data", MNIST, "--out", d, "--steps", "1"], "already holds a run"),
        (["train", "--resume", out_dir, "--steps", "1"], "run.json"),
        (["train", "--resume", os.path.join(tmp, "nope")], "not a run folder"),
        (["eval", "--model", junk, "--data", MNIST], "checkpoint"),
        (["eval", "--model", trunc, "--data", MNIST], "checkpoint"),
        (["eval", "--model", o("none"), "--data", MNIST], "checkpoint"),
        (["eval", "--model", ck, "--data", small], "10x10"),
        (["eval", "--model", ck, "--data", MNIST, "--importance", "0"], "importance"),
        (["eval", "--model", ck, "--data", MNIST, "--split", "valid"], "split"),
        (["eval", "--model", ck, "--data", MNIST, "--n", "10001"], "10000"),
        (["eval", "--model", ck], "--data"),
        (["sample", "--model", ck], "--out"),
        (["sample", "--model", junk, "--out", o("s.png")], "checkpoint"),
        (["sample", "--model", ck, "--n", "0", "--out", o("s.png")], "n"),
        (["sample", "--model", ck, "--scale", "99", "--out", o("s.png")], "scale"),
        (["sample", "--model", ck, "--glimpses", "4", "--out", o("s.png")], "glimpse 4"),
        (["sample", "--model", ck, "--glimpses", "1,,2", "--out", o("s.png")], "glimpses"),
        (["sample", "--model", ck, "--glimpses", "0", "--out", o("s.png")], "glimpse 0"),
        (["sample", "--model", ck, "--out", os.path.join(junk, "s.png")], "s.png"),
        (["sample", "--model", ck, "--gif", os.path.join(junk, "s.gif")], "s.gif"),
        (["reconstruct", "--model", ck, "--data", MNIST, "--n", "1001", "--out", o("r.png")],
         "n"),
        (["reconstruct", "--model", ck, "--data", MNIST, "--first", "9999", "--n", "2",
          "--out", o("r.png")], "first"),
        (["reconstruct", "--model", ck, "--data", small, "--out", o("r.png")], "10x10"),
        (["reconstruct", "--model", junk, "--data", MNIST, "--out", o("r.png")], "checkpoint"),
        (["plot", out_dir], "log.csv"),
        (["plot", junk, "--out", o("p.svg")], "not a log"),
        (["plot"], "RUNDIR"),
        (["info", junk], "checkpoint"),
        (["info", trunc], "checkpoint"),
        (["info", o("none")], "checkpoint"),
        (["info"], "checkpoint"),
        (["info", ck, ck], "unexpected"),
    ]
    before_tmp = listing(tmp)
    for args, word in cases:
        # a build without libpng/giflib may refuse those outputs first
        words = [word]
        if not HAVE_PNG and args[:1] in (["sample"], ["reconstruct"]) and any(
                a.endswith(".png") for a in args):
            words.append("libpng")
        if not HAVE_GIF and any(a.endswith(".gif") for a in args):
            words.append("giflib")
        rc, out, err = run(args)
        name = "dcrw " + " ".join(a.replace(tmp, "$T") for a in args)
        check(rc == 2, "%s: exit 2 (got %d)" % (name, rc))
        lines = err.strip().splitlines()
        check(len(lines) >= 1 and any(w in err for w in words) and
              (args == [] or len(lines) == 1),
              "%s: one-line message naming %r, got %r" % (name, words, err))
        check(listing(tmp) == before_tmp, "%s: leaves no file behind: %r" % (
            name, listing(tmp) ^ before_tmp))
    check(info_fields(ok(["info", ck])).get("step") == "2", "the run refused above is intact")


CASES = {n[5:]: f for n, f in globals().items() if n.startswith("case_")}


def main():
    return run_case("test_cli.py", CASES, needs_mnist=lambda case: case != "usage")


if __name__ == "__main__":
    sys.exit(main())
