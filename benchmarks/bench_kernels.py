"""The fused Triton seed-net forward against cuDNN (fp16, channels_last), on one CUDA GPU.

Usage::

    python benchmarks/bench_kernels.py [--batches 16 64] [--patch 1024] [--json OUT.json]

For each batch: the plain fp32 loop (NCHW, no autotuning) twice, with the two baselines of
``benchmarks/_baseline.py``: ``strict fp32`` (TF32 off) and ``PyTorch defaults`` (TF32
convolutions), every row's ratio given against both; cuDNN ``model.half()`` channels_last
with autotuning (the ``cuDNN fp16`` ratio), then ``fused_forward`` under a few launch
configurations (conv1 on tensor cores "dot" or on CUDA cores "fma", tile shapes, warps), each
kernel of the fastest one alone, then the first working
configuration with float32 input and output.
Throughput is Gpx/s (10⁹ output pixels per second), the median of ``--repeat`` windows of
``--steps`` calls timed with CUDA events after a warm-up, inputs alternating between two sets.
Errors are against cuDNN in fp32 with TF32 off, on the same input: max |err| and ‖err‖/‖ref‖.
A configuration that fails to compile or run is reported and skipped. A watchdog ends the run
(with a traceback) after ``--deadline`` seconds, so it never hangs.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _baseline import BASELINES, plain  # noqa: E402
from _timing import cuda_time  # noqa: E402

from napari_cryoden.kernels import (  # noqa: E402
    KernelConfig,
    available,
    fused_forward,
    pack_weights,
)
from napari_cryoden.models.nets import build_model  # noqa: E402

CONFIGS = {
    "dot 8x32 w4": KernelConfig(),
    "dot 4x32 w4": KernelConfig(tile_h=4, tile_w=32),
    "dot 8x32 w8": KernelConfig(num_warps=8),
    "dot 16x32 w8": KernelConfig(tile_h=16, num_warps=8),
    "fma 8x32 w4": KernelConfig(conv1="fma"),
}


def _time(fn: Callable[[int], object], steps: int, repeat: int) -> float:
    return cuda_time(fn, steps, repeat, warmup=2)


def _errors(y: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    diff = y.float() - ref
    return float(diff.abs().max()), float(diff.norm() / ref.norm())


def bench_batch(batch: int, patch: int, steps: int, repeat: int) -> list[dict]:
    rows: list[dict] = []
    cl = torch.channels_last
    gen = torch.Generator(device="cuda").manual_seed(batch)
    xs = [torch.rand(batch, 1, patch, patch, device="cuda", generator=gen) for _ in range(2)]
    model = build_model(seed=0).cuda().eval()
    with torch.inference_mode():
        torch.backends.cudnn.allow_tf32 = False
        ref = model(xs[0].contiguous(memory_format=cl)).float()
    half = build_model(seed=0).cuda().eval().half().to(memory_format=cl)
    xh = [x.half().contiguous(memory_format=cl) for x in xs]

    def report(name: str, seconds: float, y: torch.Tensor) -> None:
        gpx = batch * patch * patch / seconds / 1e9
        strict = rows[0]["gpx_per_s"] if rows else gpx
        defaults = rows[1]["gpx_per_s"] if len(rows) > 1 else gpx
        base = rows[2]["gpx_per_s"] if len(rows) > 2 else gpx
        max_err, rel_err = _errors(y, ref)
        rows.append({"batch": batch, "variant": name, "gpx_per_s": gpx, "vs_cudnn": gpx / base,
                     "vs_plain": gpx / strict, "vs_strict_fp32": gpx / strict,
                     "vs_pytorch_defaults": gpx / defaults, "max_abs_err": max_err,
                     "rel_err": rel_err})
        print(f"batch {batch:3d}  {name:34s} {gpx:6.2f} Gpx/s  x{gpx / strict:5.2f} strict fp32  "
              f"x{gpx / defaults:5.2f} defaults  x{gpx / base:5.2f} cuDNN fp16  "
              f"max|err| {max_err:.1e}  rel {rel_err:.1e}", flush=True)

    with torch.inference_mode():
        for kind in BASELINES:  # the plain fp32 loop, both ways (benchmarks/_baseline.py)
            with plain(kind):
                seconds = _time(lambda i: model(xs[i % 2]), steps, repeat)
                report(f"plain fp32 NCHW ({kind})", seconds, model(xs[0]))
        torch.backends.cudnn.benchmark = True
        seconds = _time(lambda i: half(xh[i % 2]), steps, repeat)
        report("cuDNN fp16 channels_last", seconds, half(xh[0]))
        packed = pack_weights(model, "cuda")
        work = torch.empty(batch, patch, patch, packed.channels, dtype=torch.float16,
                           device="cuda")
        outs = [torch.empty_like(x) for x in xh]
        working, best = None, None
        for name, config in CONFIGS.items():
            try:
                fused_forward(packed, xh[0], config=config, out=outs[0], workspace=work)
                seconds = _time(lambda i, c=config: fused_forward(
                    packed, xh[i % 2], config=c, out=outs[i % 2], workspace=work), steps, repeat)
                report(f"fused {name}", seconds, fused_forward(packed, xh[0], config=config))
                working = working or config
                if best is None or rows[-1]["gpx_per_s"] > best[2]:
                    best = (name, config, rows[-1]["gpx_per_s"])
            except Exception as exc:  # a config that does not compile is skipped
                print(f"batch {batch:3d}  fused {name:20s} FAILED: {type(exc).__name__}: "
                      f"{str(exc).splitlines()[0] if str(exc) else ''}", flush=True)
        if best is not None:
            for stage in ("conv12", "conv3"):
                seconds = _time(lambda i, st=(stage,): fused_forward(
                    packed, xh[i % 2], config=best[1], out=outs[i % 2], workspace=work,
                    stages=st), steps, repeat)
                gpx = batch * patch * patch / seconds / 1e9
                print(f"batch {batch:3d}    {best[0]}: {stage} alone {seconds * 1e3:7.2f} ms "
                      f"({gpx:6.2f} Gpx/s)", flush=True)
        if working is not None:
            seconds = _time(lambda i: fused_forward(packed, xs[i % 2], config=working,
                                                    workspace=work), steps, repeat)
            report("fused fp32 in/out (first ok)", seconds,
                   fused_forward(packed, xs[0], config=working))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--patch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--deadline", type=float, default=115.0, help="watchdog, seconds")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)
    if not available():
        print("bench_kernels: needs CUDA and an importable triton", flush=True)
        return 1
    faulthandler.dump_traceback_later(args.deadline, exit=True)
    import triton

    print(f"{torch.cuda.get_device_name()}  torch {torch.__version__}  triton "
          f"{triton.__version__}  cuDNN {torch.backends.cudnn.version()}", flush=True)
    rows = []
    for batch in args.batches:
        try:
            rows += bench_batch(batch, args.patch, args.steps, args.repeat)
        except torch.cuda.OutOfMemoryError:
            print(f"batch {batch:3d}: out of memory", flush=True)
        torch.cuda.empty_cache()
    faulthandler.cancel_dump_traceback_later()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
