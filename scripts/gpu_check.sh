#!/usr/bin/env bash
# Runs the core unchanged on a CUDA machine with only torch, numpy, mrcfile, safetensors (+ scipy,
# matplotlib, tqdm, tifffile): simulate -> train (AMP) -> denoise -> evaluate, CPU-vs-CUDA check.
# Usage on the GPU box: bash scripts/gpu_check.sh OUT_DIR
set -euo pipefail
OUT=${1:-gpu_check_out}
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
cryoden() { python3 -m napari_cryoden.cli "$@"; }
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
SIM=(--contrast-scale 20 --dose 100)
cryoden simulate "$OUT/train" --n 24 --size 1024 --seed 1 "${SIM[@]}"
cryoden simulate "$OUT/test" --n 4 --size 1024 --seed 2 "${SIM[@]}"
cryoden train --noisy "$OUT/train/noisy" --clean "$OUT/train/clean" --out "$OUT/run" \
    --patch-size 256 --epochs 8 --batch-size 16 --lr 2e-3 --device auto --amp
cryoden denoise "$OUT/run/best.safetensors" "$OUT/test/noisy" --out "$OUT/denoised" --device cuda
cryoden evaluate "$OUT/run/best.safetensors" --noisy "$OUT/test/noisy" --clean "$OUT/test/clean" \
    --json "$OUT/report.json" --figures "$OUT/figures" --device cuda --patch-size 256
python3 - "$OUT" <<'PY'
import sys, time, torch, numpy as np
from napari_cryoden.models.checkpoint import load_checkpoint
from napari_cryoden.io.images import read_image
from napari_cryoden.inference.denoiser import denoise
out = sys.argv[1]
model, ckpt = load_checkpoint(f"{out}/run/best.safetensors")
image, _ = read_image(f"{out}/test/noisy/mic_0000.mrc")
cpu = denoise(model, image, normalization=ckpt.normalization, device="cpu")
torch.backends.cudnn.allow_tf32 = False
gpu = denoise(model, image, normalization=ckpt.normalization, device="cuda")
print("max |cpu - cuda fp32| =", float(np.abs(cpu - gpu).max()))
big = np.random.default_rng(0).random((8192, 8192), dtype=np.float32)
denoise(model, big[:1024, :1024], normalization="meanstd", device="cuda")
torch.cuda.synchronize(); t = time.perf_counter()
denoise(model, big, normalization="meanstd", device="cuda"); torch.cuda.synchronize()
print(f"8192x8192 on cuda: {time.perf_counter() - t:.2f} s")
PY
