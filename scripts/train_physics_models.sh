#!/usr/bin/env bash
# The recipe of the physics-trained shipped models (issue 16), with the project's own CLI.
# Usage: bash scripts/train_physics_models.sh [WORK_DIR] [DEVICE] [WORKERS]
# Simulates noisy sums and their truths with the physics-grade simulator (docs/simulator.md),
# trains noisy -> truth with the noise recoloured per patch (--noise-colour), and scores the
# models on held-out physics-grade micrographs against their truths.
set -euo pipefail
WORK=${1:-physics_model}; DEVICE=${2:-auto}; WORKERS=${3:-2}
RUNS=${RUNS:-$WORK}   # where the trained models and their scores go
PY=${PY:-python3}
cryoden() { "$PY" -m napari_cryoden.cli "$@"; }
SPAN=(--pixel-size 1:2.5 --frames 20:40)      # dose 15-60 e/A^2, all detectors (defaults)
# the scattering potentials, once, before the workers start (they read the disk cache)
"$PY" - "$DEVICE" <<'PYEOF'
import sys, time
from napari_cryoden.simulation.physics.potentials import potential
from napari_cryoden.simulation.physics.specimen_params import SpecimenParams
device = "cuda" if sys.argv[1] in ("auto", "cuda") else "cpu"
for name in SpecimenParams().structures:
    for spacing in (1.0, 2.0):
        start = time.perf_counter()
        try:
            potential(name, spacing, device=device)
        except Exception as exc:  # no CUDA here: the CPU does it
            print(f"{name} {spacing} A on {device}: {exc}; on the cpu", flush=True)
            potential(name, spacing, device="cpu")
        print(f"potential {name} {spacing} A: {time.perf_counter() - start:.1f} s", flush=True)
PYEOF
cryoden simulate "$WORK/test" --physics --n 12 --size 1024 --seed 401 --even-odd "${SPAN[@]}" \
    --workers "$WORKERS"                                                    # held out
cryoden simulate "$WORK/train" --physics --n 192 --size 512 --seed 301 "${SPAN[@]}" \
    --workers "$WORKERS"
TRAIN=(--noisy "$WORK/train/noisy" --clean "$WORK/train/clean" --patch-size 128 --batch-size 16
       --lr 2e-3 --seed 0 --schedule cosine --val-fraction 0.1 --device "$DEVICE"
       --noise-colour 0:1)
cryoden train "${TRAIN[@]}" --out "$RUNS/physics" --epochs 25 --preset unet-small &
cryoden train "${TRAIN[@]}" --out "$RUNS/physics-fast" --epochs 40 &
cryoden train "${TRAIN[@]}" --out "$RUNS/physics-init" --epochs 25 --init general &
wait
for name in physics physics-fast physics-init; do
    cryoden evaluate "$RUNS/$name/best.safetensors" --noisy "$WORK/test/noisy" \
        --clean "$WORK/test/clean" --json "$RUNS/$name-test.json" --device "$DEVICE" || true
done
