#!/bin/sh
# Evaluate the training runs of doc/RESULTS.md and draw its figures, all
# with the dcrw command. The runs themselves are made by the train commands
# listed in doc/RESULTS.md (hours of CPU time); this script only reads them.
#
#   sh examples/results.sh RUNS [FIGURES]
#
# RUNS     folder holding the run folders draw, draw-noattn, dcrw, dcrw-noread,
#          dcrw-grey, dcrw-noread-grey, dcrw-12min (a missing one is skipped)
#          and, optionally, peer-12min.csv and peer-12min.txt (the
#          log and output of a PyTorch run of the same preset, a CSV with
#          columns step, seconds, train_L, ...)
# FIGURES  where the pictures go (default doc/figures)
#
# DCRW          the dcrw command (default build/examples/dcrw/dcrw)
# DCRW_DATA     the MNIST folder (default data/mnist)
# DCRW_IW_N     test images for the importance-weighted bound (default 500)
# DCRW_IW_K     samples per image for it (default 100)
#
# Each run folder receives eval.txt (10,000 test images; binarized once with
# the fixed seed 12345, as every `dcrw eval`), eval-iw.txt and, for the
# shipped model, eval-1000.txt. Evaluations already present are kept: delete
# them to redo them.
set -eu
[ $# -ge 1 ] || { echo "usage: sh examples/results.sh RUNS [FIGURES]" >&2; exit 2; }
runs=$1
fig=${2:-doc/figures}
dcrw=${DCRW:-build/examples/dcrw/dcrw}
data=${DCRW_DATA:-data/mnist}
iw_n=${DCRW_IW_N:-500}
iw_k=${DCRW_IW_K:-100}
mkdir -p "$fig"

have() { [ -f "$runs/$1/checkpoint.safetensors" ]; }

# once: an evaluation is minutes of CPU for the DRAW presets
eval_once() { # run file args...
    r=$1 f=$2
    shift 2
    if [ ! -s "$runs/$r/$f" ]; then
        echo "$dcrw eval --model $runs/$r/checkpoint.safetensors --data $data $*"
        "$dcrw" eval --model "$runs/$r/checkpoint.safetensors" --data "$data" "$@" \
            >"$runs/$r/$f.tmp"
        mv "$runs/$r/$f.tmp" "$runs/$r/$f"
    fi
    cat "$runs/$r/$f"
}

for r in draw draw-noattn dcrw dcrw-noread dcrw-12min; do
    have "$r" || continue
    echo "== $r"
    eval_once "$r" eval.txt
    [ "$r" = dcrw-12min ] || eval_once "$r" eval-iw.txt --n "$iw_n" --importance "$iw_k"
done
for r in dcrw-grey dcrw-noread-grey; do
    have "$r" || continue
    echo "== $r (grey-level targets, as the seed's Table I)"
    eval_once "$r" eval.txt --binarize none
done
if have dcrw; then
    echo "== the shipped model (examples/models/dcrw-mnist.safetensors) on 1,000 test images"
    eval_once dcrw eval-1000.txt --n 1000
fi

echo "== figures into $fig"
for r in draw draw-noattn dcrw dcrw-noread; do
    have "$r" || continue
    ck="$runs/$r/checkpoint.safetensors"
    "$dcrw" sample --model "$ck" --n 64 --seed 1 --out "$fig/samples-$r.png"
    case $r in
    dcrw*)
        # the seed's Figures 4 and 5: canvases after glimpses 1, 4, 6, 10
        "$dcrw" sample --model "$ck" --n 8 --seed 1 --glimpses 1,4,6,10 --scale 2 \
            --out "$fig/canvases-$r.png"
        "$dcrw" reconstruct --model "$ck" --data "$data" --n 8 --scale 3 \
            --out "$fig/reconstruct-$r.png"
        ;;
    *)
        # every glimpse of DRAW's 64
        "$dcrw" sample --model "$ck" --n 4 --seed 1 --glimpses all --scale 1 \
            --out "$fig/canvases-$r.png"
        "$dcrw" reconstruct --model "$ck" --data "$data" --n 8 --scale 2 \
            --out "$fig/reconstruct-$r.png"
        ;;
    esac
done
if have dcrw; then
    # 16 samples being drawn, glimpse by glimpse, for the README (a GIF of
    # 64 would be 1 MB)
    "$dcrw" sample --model "$runs/dcrw/checkpoint.safetensors" --n 16 --seed 1 \
        --gif "$fig/samples-dcrw.gif"
fi
# the seed's Figure 6: Lx and Lz of the training batches, both DCRW variants
if have dcrw && have dcrw-noread; then
    "$dcrw" plot "$runs/dcrw" "$runs/dcrw-noread" --panels lx,lz --ymax 150 \
        --out "$fig/curves-dcrw.svg"
fi
if have dcrw-grey && have dcrw-noread-grey; then
    "$dcrw" plot "$runs/dcrw-grey" "$runs/dcrw-noread-grey" --panels lx,lz --ymax 300 \
        --out "$fig/curves-dcrw-grey.svg"
fi
# all four presets against wall-clock time (each run had its share of 2 cores)
set --
for r in draw draw-noattn dcrw dcrw-noread; do
    have "$r" && set -- "$@" "$runs/$r"
done
[ $# -gt 0 ] && "$dcrw" plot "$@" --panels loss --x minutes --ymax 200 --out "$fig/curves-all.svg"
# time to quality: 12 minutes of dcrw against the PyTorch peer's 12 minutes
if have dcrw-12min && [ -f "$runs/peer-12min.csv" ]; then
    ours=$(sed -n 's/^L  *\([0-9.]*\) nats.*/\1/p' "$runs/dcrw-12min/eval.txt")
    peer=$(sed -n 's/.*test_bound=\([0-9.]*\).*/\1/p' "$runs/peer-12min.txt" 2>/dev/null || true)
    set -- --mark "12,$ours,libdcrw test $ours"
    [ -n "$peer" ] && set -- "$@" --mark "12,$peer,PyTorch test $peer"
    "$dcrw" plot "$runs/dcrw-12min" "$runs/peer-12min.csv" --label "libdcrw (dcrw command)" \
        --label "PyTorch peer" --panels loss --x minutes --ymax 200 "$@" \
        --out "$fig/time-to-quality.svg"
fi
echo "done: $fig"
