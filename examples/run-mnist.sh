#!/bin/sh
# The main job, end to end on a fresh Debian machine: install what is
# missing, build, fetch MNIST, train the dcrw preset for a few minutes,
# evaluate it on the test set, and draw samples, glimpse sequences,
# reconstructions and loss curves into one folder.
#
#   examples/run-mnist.sh
#
# DCRW_MINUTES  training budget in minutes (default 5)
# DCRW_OUT      output folder (default out); the run goes to $DCRW_OUT/dcrw-run
# DCRW_IW_N     test images for the importance-weighted bound (default 500)
#
# About 5 minutes of training plus 3-4 minutes of building and evaluating on
# a 2-core machine.
set -eu
root=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
cd "$root"
start=$(date +%s)
minutes=${DCRW_MINUTES:-5}
out=${DCRW_OUT:-out}
run="$out/dcrw-run"
iw_n=${DCRW_IW_N:-500}

sh examples/install-deps.sh
sh examples/fetch-mnist.sh
[ -f build/build.ninja ] || meson setup build --buildtype=release >/dev/null
ninja -C build >/dev/null
dcrw=./build/examples/dcrw/dcrw
ckpt="$run/checkpoint.safetensors"

# dcrw train makes $out and the run folder
if [ -e "$run" ]; then
    echo "replacing the previous run in $run"
    rm -rf "$run"
fi

echo
echo "== training the dcrw preset for $minutes minutes"
"$dcrw" train --preset dcrw --data data/mnist --out "$run" --minutes "$minutes"

echo
echo "== the test-set bound (10,000 images)"
# into a file first: a pipe into tee would hide a failure from set -e
"$dcrw" eval --model "$ckpt" --data data/mnist >"$run/eval.txt"
cat "$run/eval.txt"
echo
echo "== the importance-weighted bound, K = 100, on the first $iw_n test images"
"$dcrw" eval --model "$ckpt" --data data/mnist --n "$iw_n" --importance 100 >"$run/eval-iw.txt"
cat "$run/eval-iw.txt"

echo
echo "== pictures"
"$dcrw" sample --model "$ckpt" --n 64 --out "$run/samples.png" --gif "$run/samples.gif" >/dev/null
"$dcrw" sample --model "$ckpt" --n 8 --glimpses 1,4,6,10 --scale 3 --out "$run/glimpses.png" \
    >/dev/null
"$dcrw" sample --model "$ckpt" --n 8 --glimpses all --scale 3 --out "$run/glimpses-all.png" \
    >/dev/null
"$dcrw" reconstruct --model "$ckpt" --data data/mnist --n 16 --out "$run/reconstructions.png" \
    >/dev/null
"$dcrw" plot "$run" >/dev/null

end=$(date +%s)
cat <<EOF

Done in $((end - start)) s. Everything is in $run:
  samples.png          64 samples from the prior (Bernoulli means)
  samples.gif          the same samples being drawn, glimpse by glimpse
  glimpses.png         8 samples, canvas after glimpses 1, 4, 6 and 10 (one row each)
  glimpses-all.png     8 samples, canvas after every glimpse
  reconstructions.png  16 test images and their canvases, read window red, write window green
  losses.svg           Lx and Lz against the training step, and the held-out bound
  eval.txt             test-set Lx, Lz and L (nats); eval-iw.txt the importance-weighted bound
  checkpoint.safetensors, log.csv, run.json
                       the model, one log row per step, the flags
                       (continue training: $dcrw train --resume $run --minutes 10)
EOF
