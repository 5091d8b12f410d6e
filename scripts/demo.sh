#!/usr/bin/env bash
# The README's demo: simulate -> train (CPU) -> denoise -> evaluate. Called by `make demo`.
set -euo pipefail
D=${DEMO_DIR:-demo_out}
PY=${PY:-python3}
cryoden() { "$PY" -m napari_cryoden.cli "$@"; }

# A high-contrast, high-dose specimen (docs/simulator.md: physical single-frame contrast is too
# weak for the seed net's 7-px receptive field); the test set is held out (other seed, larger).
SIM=(--contrast-scale 20 --dose 100 --pixel-size 1.0)
rm -rf "$D"
mkdir -p "$D"
echo "== 1/4 simulate: 24 training micrographs (512 px) and 4 held-out test micrographs (1024 px)"
cryoden simulate "$D/train_data" --n 24 --size 512 --seed 1 "${SIM[@]}"
cryoden simulate "$D/test_data" --n 4 --size 1024 --seed 2 "${SIM[@]}"

echo "== 2/4 train the seed's 3-layer CNN on CPU"
cryoden train --noisy "$D/train_data/noisy" --clean "$D/train_data/clean" --out "$D/run" \
    --patch-size 128 --epochs 30 --batch-size 8 --lr 2e-3 --seed 0 --device cpu

echo "== 3/4 denoise the held-out micrographs"
cryoden denoise "$D/run/best.safetensors" "$D/test_data/noisy" --out "$D/denoised" --device cpu

echo "== 4/4 evaluate against the simulator's noise-free ground truth"
cryoden evaluate "$D/run/best.safetensors" --noisy "$D/test_data/noisy" \
    --clean "$D/test_data/clean" --target-kind clean --patch-size 256 \
    --json "$D/report/report.json" --figures "$D/report" --device cpu

echo
echo "Demo done. Report: $D/report/report.json; figures: $D/report/*.png;"
echo "denoised micrographs: $D/denoised/; model: $D/run/best.safetensors"
