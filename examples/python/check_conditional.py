#!/usr/bin/python3
"""How often a class-conditional model draws the class it is asked for,
judged by a classifier.

    /usr/bin/python3 examples/python/check_conditional.py --generator COND.safetensors \\
        --classifier CLS.safetensors [--n 1000] [--seed 1] [--out grid.png]

COND is a model trained with `dcrw train --conditional`, CLS one trained with
`dcrw train --preset draw-classify` on images of the same shape (the same
data set). Sample i is drawn of class i mod K; the script prints the share
of samples the classifier assigns to the class asked for, per class and in
all, and with --out writes the first ten samples of every class, a class a
row. Needs the dcrw package (PYTHONPATH=examples/python) and NumPy.
"""
import argparse
import sys

import numpy as np

import dcrw
from sample import tile, write_png


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", required=True, help="a class-conditional model")
    ap.add_argument("--classifier", required=True, help="a draw-classify model")
    ap.add_argument("--n", type=int, default=1000, help="samples (default 1000)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the prior's draws (default 1)")
    ap.add_argument("--out", help="a PNG of ten samples of each class, a class a row")
    a = ap.parse_args()
    with dcrw.Model.load(a.generator) as g, dcrw.Model.load(a.classifier) as c:
        if not g.is_conditional:
            sys.exit("%s is not class-conditional (dcrw train --conditional)" % a.generator)
        if not c.is_classifier:
            sys.exit("%s is not a classifier (dcrw train --preset draw-classify)" % a.classifier)
        if g.image_shape != c.image_shape or c.num_classes < g.num_classes:
            sys.exit("the classifier does not take the generator's images and classes")
        K = g.num_classes
        asked = np.arange(a.n, dtype=np.int32) % K
        images = np.concatenate([g.decode_labels(asked[i:i + 500], seed=a.seed, first=i)
                                 for i in range(0, a.n, 500)])
        got = np.concatenate([c.classify(images[i:i + 500]).argmax(axis=1)
                              for i in range(0, a.n, 500)])
    right = got == asked
    print("samples   %d, %d classes, seed %d" % (a.n, K, a.seed))
    for k in range(K):
        print("class %-3d %.1f%% as asked" % (k, 100.0 * right[asked == k].mean()))
    se = np.sqrt(right.mean() * (1 - right.mean()) / a.n)
    print("all       %.2f%% as asked (standard error %.2f%%)" % (100.0 * right.mean(), 100 * se))
    if a.out:
        C, H, W = g.image_shape
        rows = [images[asked == k][:10].reshape(-1, H, W) for k in range(K)]
        write_png(a.out, tile(np.concatenate(rows), cols=10))
        print("picture   %s" % a.out)


if __name__ == "__main__":
    main()
