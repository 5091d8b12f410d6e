#!/usr/bin/env bash
# The recipe of the shipped models (src/napari_cryoden/models/pretrained/), with the project's own CLI.
# Usage: bash scripts/train_general_model.sh [WORK_DIR] [DEVICE]
# Measured on one H100 (2026-11-24): simulation 49 s (16 cores), general-fast 174 s, general
# 122 s. The same commands run on a CPU (DEVICE=cpu), much slower; on the CPU the same seeds
# give the same weights, on a GPU the same up to floating-point order.
set -euo pipefail
WORK=${1:-general_model}; DEVICE=${2:-auto}
PY=${PY:-python3}
cryoden() { "$PY" -m napari_cryoden.cli "$@"; }
# What the training set spans: dose 10-60 e/A^2, pixel 0.6-2.5 A, defocus 0.5-3 um, particle
# contrast x1 (physical) to x20, and the simulator's three particle kinds (its default mix).
SPAN=(--dose 10:60 --pixel-size 0.6:2.5 --defocus 0.5:3 --contrast-scale 1:20)
cryoden simulate "$WORK/train" --n 384 --size 512 --seed 101 "${SPAN[@]}"
cryoden simulate "$WORK/test" --n 12 --size 1024 --seed 202 "${SPAN[@]}"   # held out
TRAIN=(--noisy "$WORK/train/noisy" --clean "$WORK/train/clean" --patch-size 128 --batch-size 16
       --lr 2e-3 --seed 0 --schedule cosine --val-fraction 0.1 --device "$DEVICE")
cryoden train "${TRAIN[@]}" --out "$WORK/general-fast" --epochs 40                      # seed net
cryoden train "${TRAIN[@]}" --out "$WORK/general" --epochs 20 --preset unet-small
for name in general general-fast; do
    cryoden evaluate "$WORK/$name/best.safetensors" --noisy "$WORK/test/noisy" \
        --clean "$WORK/test/clean" --json "$WORK/$name-test.json" --device "$DEVICE"
done
echo "(these were shipped as general-v1 and general-fast-v1; the defaults now come from scripts/train_physics_models.sh)"

