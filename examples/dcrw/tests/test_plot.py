#!/usr/bin/python3
"""Tests of `dcrw plot` on logs written here with known values.

    test_plot.py CASE     CASE: default runs minutes panels ymax mark badinput

Each case writes dcrw-format log.csv files and reference-script CSVs whose
curves are constants (or known shapes), runs `dcrw plot`, parses the SVG
and checks where things landed against the values written. Environment:
DCRW_CLI (the executable). No MNIST needed. Standard library only.
"""
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

from clitest import DCRW, check, listing, main as run_case

NS = "{http://www.w3.org/2000/svg}"
DCRW_HEADER = "step,wall_s,lx,lz,loss,images_per_s,valid_bound\n"
PEER_HEADER = "step,epoch,seconds,train_L,train_Lx,train_Lz,img_per_s,grad_norm\n"


def run(args):
    p = subprocess.run([DCRW, "plot"] + args, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def ok(args):
    rc, out, err = run(args)
    if rc != 0:
        raise SystemExit("dcrw plot %s: exit %d\n%s%s" % (" ".join(args), rc, out, err))
    return out


def write_run(d, lx, lz, steps=1000, sec_per_step=0.06, valid=None, fn=None):
    """A dcrw run folder with a log.csv; lx/lz constants, or fn(step) ->
    (lx, lz); valid: {step: bound}."""
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "log.csv"), "w") as f:
        f.write(DCRW_HEADER)
        for s in range(1, steps + 1):
            a, b = fn(s) if fn else (lx, lz)
            vb = "%.6f" % valid[s] if valid and s in valid else ""
            f.write("%d,%.3f,%.6f,%.6f,%.6f,1000.0,%s\n" % (s, s * sec_per_step, a, b, a + b, vb))
    return d


def write_peer(path, lx, lz, rows=4, every_s=30.0, steps_per_row=300):
    """The reference script's CSV: one row every 30 s."""
    with open(path, "w") as f:
        f.write(PEER_HEADER)
        for i in range(1, rows + 1):
            f.write("%d,1,%.1f,%.4f,%.4f,%.4f,900.0,1.5\n" % (
                i * steps_per_row, i * every_s, lx + lz, lx, lz))
    return path


def svg(path):
    root = ET.parse(path).getroot()
    check(root.tag == NS + "svg", "%s is an SVG document" % os.path.basename(path))
    return root


def els(root, tag, *classes):
    """Elements of a tag whose class attribute holds every given class."""
    return [e for e in root.iter(NS + tag)
            if set(classes) <= set(e.get("class", "").split())]


def pts(polyline):
    return [tuple(float(v) for v in p.split(",")) for p in polyline.get("points").split()]


def panels_of(root):
    """Panel names, top to bottom, from their frames."""
    frames = sorted(els(root, "rect", "frame"), key=lambda r: float(r.get("y")))
    return [[c for c in r.get("class").split() if c != "frame"][0] for r in frames]


def ytick_y(root, panel, value):
    """The pixel row of the y tick labelled value in a panel, or None."""
    for t in els(root, "text", "ytick", panel):
        if float(t.text) == value:
            return float(t.get("y"))
    return None


def xtick_x(root, panel, value):
    for t in els(root, "text", "xtick", panel):
        if float(t.text) == value:
            return float(t.get("x"))
    return None


def value_y(root, panel, value):
    """The pixel row of any value, interpolated on the log axis between the
    panel's lowest and highest ticks."""
    ticks = sorted((float(t.text), float(t.get("y"))) for t in els(root, "text", "ytick", panel))
    (v0, y0), (v1, y1) = ticks[0], ticks[-1]
    return y0 + (math.log(value) - math.log(v0)) / (math.log(v1) - math.log(v0)) * (y1 - y0)


def value_x(root, panel, value):
    """The pixel column of any x, interpolated linearly between ticks."""
    ticks = sorted((float(t.text), float(t.get("x"))) for t in els(root, "text", "xtick", panel))
    (v0, x0), (v1, x1) = ticks[0], ticks[-1]
    return x0 + (value - v0) / (v1 - v0) * (x1 - x0)


def run_class(e):
    return [c for c in e.get("class").split() if c.startswith("run")][0]


# ------------------------------------------------------------------ cases
def case_default(tmp):
    # one run folder and no options: today's figure, RUNDIR/losses.svg
    valid = {200: 140.0, 400: 135.0, 600: 131.0}
    d = write_run(os.path.join(tmp, "one"), 0, 0, valid=valid,
                  fn=lambda s: (100.0 + 400.0 / s, 20.0 + 40.0 / s))
    out = ok([d])
    target = os.path.join(d, "losses.svg")
    check(out.strip() == target, "prints the path it wrote: %r" % out)
    root = svg(target)
    check(panels_of(root) == ["lx", "lz", "loss"], "Lx, Lz, bound panels: %r" % panels_of(root))
    check(len(root.findall(NS + "polyline")) == 3, "one curve per panel")
    circles = els(root, "circle", "valid")
    check(len(circles) == len(valid), "one dot per held-out bound (%d)" % len(circles))
    loss_y = sorted(float(c.get("cy")) for c in circles)
    # pixel rows grow downwards: the largest bound is the highest dot
    check(loss_y == sorted(loss_y) and len(set(loss_y)) == 3, "dots at distinct heights")
    check(not els(root, "text", "legend"), "no run legend for one unnamed run")
    keys = [t.text for t in els(root, "text", "key")]
    check(keys == ["training batches", "held-out images"], "bound panel key: %r" % keys)
    titles = " ".join(t.text for t in els(root, "text", "title"))
    check("Lx" in titles and "Lz" in titles, "panel titles name Lx and Lz")
    lx_c = els(root, "polyline", "curve", "lx")[0].get("stroke")
    lz_c = els(root, "polyline", "curve", "lz")[0].get("stroke")
    check(lx_c != lz_c, "Lx and Lz in different colours")
    # a decreasing curve: its pixel rows go down the panel as the step grows
    ys = [y for _, y in pts(els(root, "polyline", "curve", "lx")[0])]
    check(ys[0] < ys[-1], "Lx falls: first point above the last")
    # without a held-out bound, two panels
    d2 = write_run(os.path.join(tmp, "two"), 100.0, 20.0, steps=50)
    ok([d2])
    root = svg(os.path.join(d2, "losses.svg"))
    check(panels_of(root) == ["lx", "lz"], "no bound panel without held-out bounds")
    check(len(root.findall(NS + "polyline")) == 2, "two curves")


def case_runs(tmp):
    a = write_run(os.path.join(tmp, "runA"), 100.0, 20.0)
    b = write_run(os.path.join(tmp, "runB"), 120.0, 30.0)
    peer = write_peer(os.path.join(tmp, "torch-ref.csv"), 110.0, 25.0)
    o = os.path.join(tmp, "cmp.svg")
    ok([a, b, peer, "--out", o])
    root = svg(o)
    check(panels_of(root) == ["lx", "lz"], "default panels lx, lz: %r" % panels_of(root))
    for p in ("lx", "lz"):
        lines = els(root, "polyline", "curve", p)
        check(len(lines) == 3, "%s panel: one curve per run (%d)" % (p, len(lines)))
        check(sorted(run_class(e) for e in lines) == ["run0", "run1", "run2"],
              "%s panel: runs 0..2" % p)
    legend = [t.text for t in els(root, "text", "legend")]
    check(legend == ["runA", "runB", "torch-ref"], "default labels: %r" % legend)
    # a run has one colour in every panel and in the legend; runs differ
    colours = {}
    for e in els(root, "polyline", "curve") + els(root, "line", "legend"):
        colours.setdefault(run_class(e), set()).add(e.get("stroke"))
    check(all(len(c) == 1 for c in colours.values()), "one colour per run: %r" % colours)
    check(len({min(c) for c in colours.values()}) == 3, "three distinct colours")
    # constant curves sit on the pixel row of their value's tick
    for p, values in (("lx", (100.0, 120.0, 110.0)), ("lz", (20.0, 30.0, 25.0))):
        for k, v in enumerate(values):
            line = els(root, "polyline", "curve", p, "run%d" % k)[0]
            ys = {y for _, y in pts(line)}
            ty = ytick_y(root, p, v)
            if ty is not None:
                check(ys == {ty}, "%s run%d (constant %g) lies on its tick row %r: %r" % (
                    p, k, v, ty, sorted(ys)[:3]))
            # between ticks, where the log axis puts it
            want = value_y(root, p, v)
            check(len(ys) == 1 and abs(ys.pop() - want) < 0.15,
                  "%s run%d (constant %g) at row %.2f" % (p, k, v, want))
        check(ytick_y(root, p, values[0]) is not None, "%s: a tick at %g" % (p, values[0]))
    # the step axis: the peer's rows at steps 300..1200 sit on their ticks
    line = els(root, "polyline", "curve", "lx", "run2")[0]
    xs = [x for x, _ in pts(line)]
    for step, x in zip((300, 600, 900, 1200), xs):
        tx = xtick_x(root, "lx", step)
        if tx is not None:
            check(abs(tx - x) < 0.11, "peer row at step %d at x %g, its tick at %g" % (step, x, tx))
    check(xtick_x(root, "lx", 1200) is not None or xtick_x(root, "lx", 1000) is not None,
          "the step axis reaches the last step")
    check(len(xs) == 4 and xs == sorted(xs), "the peer CSV's four rows in order")
    # --label overrides in order; the rest keep their default
    ok([a, b, peer, "--out", o, "--label", "DCRW (C)", "--label", "x<&>y"])
    legend = [t.text for t in els(svg(o), "text", "legend")]
    check(legend == ["DCRW (C)", "x<&>y", "torch-ref"], "labels override in order: %r" % legend)
    # a log.csv given as a file is named after its folder; one labelled run
    # gets the legend too
    ok([os.path.join(a, "log.csv"), "--out", o, "--label", "only"])
    legend = [t.text for t in els(svg(o), "text", "legend")]
    check(legend == ["only"], "one labelled run: %r" % legend)
    ok([os.path.join(a, "log.csv"), os.path.join(b, "log.csv"), "--out", o])
    legend = [t.text for t in els(svg(o), "text", "legend")]
    check(legend == ["runA", "runB"], "log.csv named after its folder: %r" % legend)
    # eight runs are allowed
    many = [write_run(os.path.join(tmp, "r%d" % i), 100.0 + i, 20.0, steps=20) for i in range(8)]
    ok(many + ["--out", o])
    root = svg(o)
    check(len(els(root, "polyline", "curve", "lx")) == 8, "eight runs, eight curves")
    check(len({e.get("stroke") for e in els(root, "polyline", "curve", "lx")}) == 8,
          "eight colours")


def case_minutes(tmp):
    # 1000 steps at 0.06 s: the run spans 60 s, one minute
    a = write_run(os.path.join(tmp, "a"), 100.0, 20.0)
    o = os.path.join(tmp, "m.svg")
    ok([a, "--x", "minutes", "--out", o])
    root = svg(o)
    for p in ("lx", "lz"):
        ticks = [float(t.text) for t in els(root, "text", "xtick", p)]
        check(ticks and max(ticks) == 1.0, "%s: largest minute tick is 1: %r" % (p, ticks))
        check(ticks and min(ticks) == 0.0, "%s: minutes start at 0: %r" % (p, ticks))
        xs = [x for x, _ in pts(els(root, "polyline", "curve", p)[0])]
        x0, x1 = xtick_x(root, p, 0.0), xtick_x(root, p, 1.0)
        # the curve starts 0.06 s in and ends at 60 s; buckets average a few
        # steps, so the last point sits within a pixel or two of the end
        check(x0 is not None and x1 is not None and 0 < xs[0] - x0 < 3 and 0 <= x1 - xs[-1] < 3,
              "%s: the curve spans 0..1 minute: %g..%g against ticks %r..%r" % (
                  p, xs[0], xs[-1], x0, x1))
    labels = " ".join(t.text for t in els(root, "text", "xlabel"))
    check("minutes" in labels, "x axis says minutes")
    # the peer's seconds column: 4 rows every 30 s reach 2 minutes, linearly
    peer = write_peer(os.path.join(tmp, "peer.csv"), 110.0, 25.0)
    ok([a, peer, "--x", "minutes", "--out", o])
    root = svg(o)
    ticks = [float(t.text) for t in els(root, "text", "xtick", "lx")]
    check(max(ticks) == 2.0, "two runs: largest tick is the longest run's 2 minutes: %r" % ticks)
    xs = [x for x, _ in pts(els(root, "polyline", "curve", "lx", "run1")[0])]
    want = [xtick_x(root, "lx", m) for m in (0.5, 1.0, 1.5, 2.0)]
    check(None not in want and all(abs(x - w) < 0.11 for x, w in zip(xs, want)),
          "peer rows at 0.5, 1, 1.5, 2 minutes: %r vs ticks %r" % (xs, want))
    # the axis is linear: equal minutes, equal pixels
    check(abs((xs[1] - xs[0]) - (xs[3] - xs[2])) < 0.11, "linear minute axis")


def case_panels(tmp):
    valid = {250: 145.0, 500: 140.0, 750: 136.0, 1000: 133.0}
    a = write_run(os.path.join(tmp, "a"), 100.0, 20.0, valid=valid)
    b = write_run(os.path.join(tmp, "b"), 110.0, 25.0)
    peer = write_peer(os.path.join(tmp, "peer.csv"), 90.0, 35.0)
    o = os.path.join(tmp, "p.svg")
    ok([a, b, peer, "--panels", "loss", "--out", o])
    root = svg(o)
    check(panels_of(root) == ["loss"], "only the loss panel: %r" % panels_of(root))
    lines = els(root, "polyline", "curve")
    check(len(lines) == 3 and all("loss" in e.get("class").split() for e in lines),
          "three bound curves")
    # L = Lx + Lz: 120, 135 and the peer's train_L 125
    for k, v in enumerate((120.0, 135.0, 125.0)):
        ys = {y for _, y in pts(els(root, "polyline", "curve", "loss", "run%d" % k)[0])}
        ty = ytick_y(root, "loss", v)
        check(ty is not None and ys == {ty}, "bound of run%d (%g) on its tick %r: %r" % (
            k, v, ty, sorted(ys)[:3]))
    dots = els(root, "circle", "valid")
    check(len(dots) == len(valid) and all(run_class(c) == "run0" for c in dots),
          "held-out dots: %d, all of run0" % len(dots))
    # the dot of a bound between two ticks sits between their rows
    d140 = [float(c.get("cy")) for c in dots]
    check(abs(d140[1] - ytick_y(root, "loss", 140.0)) < 0.11, "held-out 140 on the 140 tick")
    colour0 = els(root, "polyline", "curve", "loss", "run0")[0].get("stroke")
    check(all(c.get("fill") == colour0 for c in dots), "dots in their run's colour")
    # the order given is the order drawn
    ok([a, b, "--panels", "lz,lx", "--out", o])
    check(panels_of(svg(o)) == ["lz", "lx"], "--panels lz,lx order")
    ok([a, b, "--panels", "lx,lz,loss", "--out", o])
    root = svg(o)
    check(panels_of(root) == ["lx", "lz", "loss"], "all three")
    check(len(els(root, "polyline", "curve")) == 6, "two runs in three panels")
    # the default bound panel appears when some run has held-out bounds
    ok([a, b, "--out", o])
    check(panels_of(svg(o)) == ["lx", "lz", "loss"], "default adds loss for held-out bounds")
    # a CSV without a loss column gets L = Lx + Lz
    p2 = os.path.join(tmp, "nolosscol.csv")
    with open(p2, "w") as f:
        f.write("step,lx,lz\n1,50,10\n2,50,10\n3,50,10\n")
    ok([p2, "--panels", "loss", "--out", o])
    root = svg(o)
    ys = {y for _, y in pts(els(root, "polyline", "curve", "loss")[0])}
    check(ys == {ytick_y(root, "loss", 60.0)}, "L = Lx + Lz = 60 from lx, lz: %r" % ys)


def case_ymax(tmp):
    # curves from 550 nats down to 100: --ymax 150 cuts the early part
    fn = lambda s: (100.0 + 450.0 * 0.99 ** s, 20.0 + 30.0 * 0.99 ** s)
    a = write_run(os.path.join(tmp, "a"), 0, 0, fn=fn, valid={500: 130.0})
    b = write_run(os.path.join(tmp, "b"), 0, 0, fn=lambda s: (fn(s)[0] + 10, fn(s)[1] + 5))
    o = os.path.join(tmp, "y.svg")
    for v in (150.0, 137.0):
        ok([a, b, "--ymax", "%g" % v, "--panels", "lx,lz,loss", "--out", o])
        root = svg(o)
        for p in ("lx", "lz", "loss"):
            ticks = [(float(t.get("y")), float(t.text)) for t in els(root, "text", "ytick", p)]
            top = min(ticks)
            frame = els(root, "rect", "frame", p)[0]
            check(top[1] == v, "%s: top tick is %g: %r" % (p, v, top))
            check(abs(top[0] - float(frame.get("y"))) < 0.11, "%s: the %g tick at the top edge"
                  % (p, v))
            check(max(t[1] for t in ticks) == v, "%s: no tick above %g" % (p, v))
            bottom = float(frame.get("y")) + float(frame.get("height"))
            for line in els(root, "polyline", "curve", p):
                ys = [y for _, y in pts(line)]
                check(all(top[0] - 0.11 <= y <= bottom + 0.11 for y in ys),
                      "%s %s: inside the panel" % (p, run_class(line)))
        # Lx starts above V and is held at the top edge; it ends below
        lx = [y for _, y in pts(els(root, "polyline", "curve", "lx", "run0")[0])]
        ftop = float(els(root, "rect", "frame", "lx")[0].get("y"))
        check(abs(lx[0] - ftop) < 0.11 and lx[-1] > ftop + 10,
              "lx: clipped start on the edge, end below it")
    # without --ymax the early 550 nats set the top
    ok([a, b, "--out", o, "--panels", "lx"])
    top = max(float(t.text) for t in els(svg(o), "text", "ytick", "lx"))
    check(top >= 500, "without --ymax the axis reaches the data's 550: top tick %g" % top)


def case_mark(tmp):
    a = write_run(os.path.join(tmp, "a"), 100.0, 20.0)
    b = write_run(os.path.join(tmp, "b"), 90.0, 15.0)
    o = os.path.join(tmp, "k.svg")
    ok([a, b, "--panels", "lx,loss", "--mark", "500,120,test, 120 nats", "--mark", "900,105,b end",
        "--out", o])
    root = svg(o)
    marks = els(root, "circle", "mark")
    texts = [t.text for t in els(root, "text", "mark")]
    check(len(marks) == 2, "two mark dots (%d)" % len(marks))
    check(texts == ["test, 120 nats", "b end"], "mark texts, commas kept: %r" % texts)
    check(not els(root, "circle", "valid"), "no held-out dots in these logs")
    # each mark sits on the bound curve of the same value, at its step's tick
    for m, (step, value, k) in zip(marks, ((500, 120.0, 0), (900, 105.0, 1))):
        ys = {y for _, y in pts(els(root, "polyline", "curve", "loss", "run%d" % k)[0])}
        check({float(m.get("cy"))} == ys, "mark at %g on run%d's bound row" % (value, k))
        tx = value_x(root, "loss", step)
        check(abs(float(m.get("cx")) - tx) < 0.15, "mark at step %d: %s vs %.2f" % (
            step, m.get("cx"), tx))
        frame = els(root, "rect", "frame", "loss")[0]
        fy = float(frame.get("y"))
        check(fy < float(m.get("cy")) < fy + float(frame.get("height")), "mark in the loss panel")
    # in minutes, x is in minutes: 0.5 min is half way along a 1-minute run
    ok([a, "--x", "minutes", "--panels", "loss", "--mark", "0.5,120,half", "--out", o])
    root = svg(o)
    m = els(root, "circle", "mark")[0]
    tx = value_x(root, "loss", 0.5)
    check(abs(float(m.get("cx")) - tx) < 0.15, "mark at 0.5 minutes: %s vs %.2f" % (
        m.get("cx"), tx))
    # and the axis is in minutes: the 60-s run ends at 1
    xs = [x for x, _ in pts(els(root, "polyline", "curve", "loss")[0])]
    check(abs(xs[-1] - value_x(root, "loss", 1.0)) < 3, "the run ends at 1 minute")
    # a mark beyond the data widens the axis to show it
    ok([a, "--panels", "loss", "--mark", "2000,80,later", "--out", o])
    root = svg(o)
    ticks = [float(t.text) for t in els(root, "text", "xtick", "loss")]
    check(max(ticks) >= 2000, "x axis reaches the mark at step 2000: %r" % ticks)
    ys = [float(t.text) for t in els(root, "text", "ytick", "loss")]
    check(min(ys) <= 80, "y axis reaches the mark at 80 nats: %r" % ys)


def case_badinput(tmp):
    a = write_run(os.path.join(tmp, "a"), 100.0, 20.0, steps=20)
    b = write_run(os.path.join(tmp, "b"), 110.0, 25.0, steps=20)
    peer = write_peer(os.path.join(tmp, "peer.csv"), 90.0, 35.0)

    def csv(name, text):
        p = os.path.join(tmp, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    unknown = csv("unknown.csv", "a,b,c\n1,2,3\n")
    short = csv("short.csv", DCRW_HEADER + "1,0.1,100,20,120,10,\n2,0.2,100,20\n")
    word = csv("word.csv", DCRW_HEADER + "1,0.1,abc,20,120,10,\n")
    nowall = csv("nowall.csv", "step,lx,lz\n1,50,10\n")
    lxonly = csv("lxonly.csv", "step,lx\n1,50\n")
    empty = csv("empty.csv", DCRW_HEADER)
    nostep = csv("nostep.csv", DCRW_HEADER + ",0.1,100,20,120,10,\n")
    emptydir = os.path.join(tmp, "emptydir")
    os.makedirs(emptydir)
    o = os.path.join(tmp, "out.svg")
    nine = [write_run(os.path.join(tmp, "n%d" % i), 100.0, 20.0, steps=5) for i in range(9)]
    cases = [
        ([os.path.join(tmp, "nosuch"), "--out", o], "nosuch"),
        ([emptydir], "log.csv"),
        ([unknown, "--out", o], "not a log"),
        ([a, unknown, "--out", o], "not a log"),
        ([short, "--out", o], "fields"),
        ([word, "--out", o], "abc"),
        ([nostep, "--out", o], "step"),
        ([empty, "--out", o], "no training steps"),
        ([nowall, "--x", "minutes", "--out", o], "wall_s"),
        ([lxonly, "--panels", "loss", "--out", o], "loss"),
        ([lxonly, "--out", o], "lz"),
        ([a, "--x", "hours", "--out", o], "hours"),
        ([a, "--panels", "lx,foo", "--out", o], "foo"),
        ([a, "--panels", "lx,lx", "--out", o], "twice"),
        ([a, "--panels", "", "--out", o], "panel"),
        ([a, b, "--label", "1", "--label", "2", "--label", "3", "--out", o], "labels"),
        (nine + ["--out", o], "at most 8"),
        ([a, "--panels", "lx", "--mark", "1,100,x", "--out", o], "loss panel"),
        ([a, "--mark", "1,100,x", "--out", o], "loss panel"),  # default: no bound panel
        ([a, "--panels", "loss", "--mark", "1,nan,x", "--out", o], "finite"),
        ([a, "--panels", "loss", "--mark", "inf,100,x", "--out", o], "finite"),
        ([a, "--panels", "loss", "--mark", "1,100", "--out", o], "X,Y,TEXT"),
        ([a, "--panels", "loss", "--mark", "1,-5,x", "--out", o], "positive"),
        ([a, "--ymax", "abc", "--out", o], "ymax"),
        ([a, "--ymax", "-1", "--out", o], "ymax"),
        ([a, "--ymax", "inf", "--out", o], "ymax"),
        ([a, b], "--out"),
        ([peer], "--out"),
        ([], "RUNDIR"),
        ([a, "--colour", "red", "--out", o], "colour"),
        ([os.path.join(a, "log.csv"), "--out", os.path.join(a, "log.csv")], "log"),
    ]
    log_before = open(os.path.join(a, "log.csv")).read()
    before = listing(tmp)
    for args, word_ in cases:
        rc, out, err = run(args)
        name = "dcrw plot " + " ".join(x.replace(tmp, "$T") for x in args[:4])
        check(rc == 2, "%s: exit 2 (got %d)" % (name, rc))
        lines = err.strip().splitlines()
        check(len(lines) == 1 and word_ in err, "%s: one line naming %r: %r" % (name, word_, err))
        check(listing(tmp) == before, "%s: writes nothing: %r" % (name, listing(tmp) ^ before))
    check(open(os.path.join(a, "log.csv")).read() == log_before, "--out onto a log refused")
    # and the good inputs beside them still plot
    ok([a, b, peer, "--out", o])
    check(os.path.isfile(o), "the same runs plot without the bad option")


CASES = {n[5:]: f for n, f in globals().items() if n.startswith("case_")}


def main():
    return run_case("test_plot.py", CASES, needs_mnist=lambda case: False)


if __name__ == "__main__":
    sys.exit(main())
