#!/usr/bin/env bash
# The issue-5 measurements on a CUDA box (torch, numpy, mrcfile, safetensors; triton optional).
# Usage: bash scripts/gpu_bench.sh OUT_DIR [step|train|all]
set -uo pipefail
OUT=${1:-gpu_bench_out}; WHAT=${2:-all}
mkdir -p "$OUT"
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
if [[ $WHAT == step || $WHAT == all ]]; then
    python3 -m pytest -q -p no:cacheprovider tests/data/test_packed.py tests/training/test_steps.py \
        tests/kernels 2>&1 | tail -5
    python3 benchmarks/bench_kernels.py --json "$OUT/kernels.json" 2>&1 | grep -v Warn
    python3 benchmarks/bench_step.py --only "fp16 AMP channels_last" "bf16 AMP channels_last" \
        --infer-batches 16 64 --json "$OUT/step.json" 2>&1 | grep -v -i warn
    python3 benchmarks/bench_infer.py --json "$OUT/infer.json" --plot "$OUT/infer.png" 2>&1 \
        | grep -v -i warn
fi
if [[ $WHAT == train || $WHAT == all ]]; then
    python3 benchmarks/bench_train.py --data /tmp/cryoden_bench --json "$OUT/train.json" 2>&1 \
        | grep -v -i warn
fi
