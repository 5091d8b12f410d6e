#!/usr/bin/env bash
# The recipe of the shipped models `general` and `general-fast` (issue 16), with the project's CLI.
# Usage: bash scripts/train_physics_models.sh [WORK_DIR] [DEVICE] [WORKERS]
# Simulates motion-corrected sums and their truths with the physics-grade simulator
# (docs/simulator.md), trains noisy sum -> truth from the v1 models (--init) with the noise
# recoloured per patch (--noise-colour), and scores both on held-out physics-grade micrographs.
# Measured on the 2-core development machine (2026-12-06, CPU): simulation about 12 min
# (2 workers, warm potential cache; the first run adds the potentials, 2-5 min), general-fast
# 6 epochs in 2.4 min, general 4 + 6 epochs in 6.5 + 12 min (the second stage shared the cores). On a GPU give DEVICE=cuda (same commands).
set -euo pipefail
WORK=${1:-physics_model}; DEVICE=${2:-auto}; WORKERS=${3:-2}
RUNS=${RUNS:-$WORK}   # where the trained models and their scores go
PY=${PY:-python3}
cryoden() { "$PY" -m napari_cryoden.cli "$@"; }
SPAN=(--pixel-size 1:2.5 --frames 20:40)      # dose 15-60 e/A^2, all three detectors (defaults)
cryoden simulate "$WORK/test" --physics --n 12 --size 1024 --seed 401 --even-odd "${SPAN[@]}" \
    --workers "$WORKERS"                                                    # held out
cryoden simulate "$WORK/fit" --physics --n 4 --size 1024 --seed 402 --even-odd "${SPAN[@]}" \
    --workers "$WORKERS"                       # for the benchmark's fitted Gaussian
cryoden simulate "$WORK/train_dw" --physics --n 192 --size 512 --seed 301 "${SPAN[@]}" \
    --workers "$WORKERS"                                                    # dose-weighted sums
cryoden simulate "$WORK/train_plain" --physics --n 64 --size 512 --seed 302 "${SPAN[@]}" \
    --no-dose-weighting --workers "$WORKERS"                                # plain sums
mkdir -p "$WORK/train/noisy" "$WORK/train/clean"
for set in train_dw train_plain; do
    for f in "$WORK/$set"/noisy/*.mrc; do
        name=$(basename "$f")
        ln -sf "../../$set/noisy/$name" "$WORK/train/noisy/${set}_$name"
        ln -sf "../../$set/clean/$name" "$WORK/train/clean/${set}_$name"
    done
done
TRAIN=(--noisy "$WORK/train/noisy" --clean "$WORK/train/clean" --patch-size 128 --batch-size 16
       --lr 1e-3 --seed 0 --schedule cosine --val-fraction 0.1 --device "$DEVICE"
       --noise-colour 0:1)
cryoden train "${TRAIN[@]}" --out "$RUNS/physics-fast" --epochs 6 --init general-fast-v1
cryoden train "${TRAIN[@]}" --out "$RUNS/physics" --epochs 4 --init general-v1
# general: 6 more epochs from there at half the learning rate, the noise recoloured up to 1.5 px
# (later flags override the ones in TRAIN)
# (+0.14 dB on the 12 held-out micrographs, better on every one)
cryoden train "${TRAIN[@]}" --out "$RUNS/physics2" --epochs 6 \
    --init "$RUNS/physics/best.safetensors" --lr 5e-4 --seed 1 --noise-colour 0:1.5
for name in physics2 physics-fast; do
    "$PY" scripts/record_pixel_range.py "$RUNS/$name/best.safetensors" 1.0 2.5  # the recipe's span
done
echo "to ship them: cp $RUNS/physics2/best.safetensors src/napari_cryoden/models/pretrained/general.safetensors"
echo "              cp $RUNS/physics-fast/best.safetensors src/napari_cryoden/models/pretrained/general-fast.safetensors"
echo "then score:   python benchmarks/topaz_compare.py --data $WORK/test --train-data $WORK/fit"
