"""Inference speed and accuracy per precision: the bare forward pass, then ``denoise()`` end to end.

Usage::

    python benchmarks/bench_infer.py [--batches 1 4 16 64] [--tile 1024] [--cpu-tile 512]
                                     [--size 4096]
                                     [--repeat 3] [--cpu-only | --no-cpu] [--cpu-threads 2]
                                     [--json OUT.json] [--plot OUT.png]

Needs only torch, numpy (+ matplotlib for ``--plot``) and this package. Prints

1. the device and torch version;
2. the bare forward pass of the seed net (random weights: speed does not depend on them) on
   batches of ``tile``² tiles: Gpx/s per variant and batch size, its ratio to the plain loop
   (fp32, NCHW, torch's default flags) at the same batch size, and the max |error| of the variant
   against a float64 forward pass on a 512² crop. On CUDA: the plain loop (fp32 NCHW, TF32 off,
   no autotuning), torch's defaults (TF32 convolutions), fp32 NCHW autotuned, tf32 NCHW, fp16
   and bf16 channels_last, and ``napari_cryoden.kernels.FusedForward`` ("triton fused", what
   denoise runs for fp16) when Triton is installed. On CPU (``--cpu-only`` or no GPU): fp32 NCHW and
   channels_last on ``cpu-tile``² tiles, the size denoise uses there;
3. ``denoise()`` of one ``size``² micrograph: median wall time of ``repeat`` runs after a warm-up
   per precision on the GPU, and in fp32 on the CPU with ``cpu-threads`` threads, each with its
   ratio to the plain path of the same device (one whole-image fp32 NCHW forward, upload and
   download included) and its max |difference| from denoise's fp32 result.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from napari_cryoden.inference.denoiser import denoise
from napari_cryoden.models.nets import build_model

Row = dict[str, Any]
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=None,
                        help="batch sizes of the forward table (default 1 4 16 64; CPU 1 4)")
    parser.add_argument("--tile", type=int, default=1024, help="tile edge of the forward table")
    parser.add_argument("--cpu-tile", type=int, default=512,
                        help="tile edge of the forward table on CPU")
    parser.add_argument("--size", type=int, default=4096, help="micrograph edge for denoise()")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--normalization", default="none")
    parser.add_argument("--cpu-only", action="store_true", help="skip the GPU even if present")
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU runs")
    parser.add_argument("--cpu-threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="write all rows here")
    parser.add_argument("--plot", type=Path, default=None, help="throughput vs batch size (PNG)")
    args = parser.parse_args(argv)

    model = build_model(seed=0).eval()
    cuda = torch.cuda.is_available() and not args.cpu_only
    report: dict[str, Any] = {"torch": torch.__version__, "forward": [], "denoise": []}
    image = np.random.default_rng(0).random((args.size, args.size), dtype=np.float32)
    if cuda:
        report["device"] = torch.cuda.get_device_name()
        print(f"device: {report['device']}, torch {torch.__version__}, "
              f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
        dev = torch.device("cuda")
        report["forward"] += forward_table(model, dev, args.batches or [1, 4, 16, 64], args.tile)
        report["denoise"] += denoise_table(model, image, dev, ["fp32", "tf32", "fp16", "bf16"],
                                           args)
    if not args.no_cpu:
        torch.set_num_threads(args.cpu_threads)
        report.setdefault("device", "cpu")
        print(f"CPU: torch {torch.__version__}, {torch.get_num_threads()} threads")
        dev = torch.device("cpu")
        torch.empty(30 * 2**20, dtype=torch.uint8)  # freed at once: settles glibc's heap
        if not cuda:
            report["forward"] += forward_table(model, dev, args.batches or [1, 4],
                                               args.cpu_tile)
        report["denoise"] += denoise_table(model, image, dev, ["fp32"], args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.plot:
        plot(report["forward"], args.plot, report["device"])
        print(f"wrote {args.plot}")
    return 0


# -- the bare forward pass ----------------------------------------------------------------------
def variants(dev: torch.device) -> dict[str, tuple[str, bool, dict[str, bool]]]:
    """name → (precision, channels_last, cuDNN flags); ``{}`` keeps torch's defaults."""
    if dev.type == "cpu":
        return {"fp32 NCHW (plain)": ("fp32", False, {}), "fp32 CL": ("fp32", True, {})}
    fast = {"benchmark": True, "allow_tf32": False}
    return {
        "fp32 NCHW (plain)": ("fp32", False, {"benchmark": False, "allow_tf32": False}),
        "torch defaults": ("fp32", False, {}),
        "fp32 NCHW": ("fp32", False, fast),
        "tf32 NCHW": ("fp32", False, {"benchmark": True, "allow_tf32": True}),
        "fp16 CL": ("fp16", True, fast),
        "bf16 CL": ("bf16", True, fast),
    }


def forward_table(model: nn.Module, dev: torch.device, batches: list[int], tile: int) -> list[Row]:
    """Gpx/s of each variant at each batch size, and its max |error| against float64."""
    crop = _test_input(512, dev)
    with torch.inference_mode():
        reference = copy.deepcopy(model).to(dev).double()(crop.double())
    runs: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
    flags: dict[str, dict[str, bool]] = {}
    for name, (precision, channels_last, cudnn) in variants(dev).items():
        runs[name], flags[name] = _runner(model, dev, precision, channels_last), cudnn
    fused = _fused(model, dev)
    if fused is not None:
        runs["triton fused"], flags["triton fused"] = fused, {"benchmark": True}
    rows: list[Row] = []
    print(f"\nforward pass, batches of {tile}² tiles (Gpx/s; ratio to the plain loop):")
    print(f"{'variant':<20}{'max |err| 512²':>16}" + "".join(f"{f'b={b}':>16}" for b in batches))
    plain: dict[int, float] = {}
    for name, run in runs.items():
        with _cudnn(flags[name]), torch.inference_mode():
            error = _max_error(run, crop, reference)
            cells = []
            for b in batches:
                gpx = _throughput(run, b, tile, dev)
                plain.setdefault(b, gpx)  # the first variant is the plain loop
                rows.append({"variant": name, "device": dev.type, "batch": b, "tile": tile,
                             "gpx_per_s": gpx, "ratio": gpx / plain[b], "max_abs_error": error})
                cells.append(f"{gpx:#7.3g} ({gpx / plain[b]:4.2f})" if gpx else "     failed")
        print(f"{name:<20}{error:>16.2e}" + "".join(f"{c:>16}" for c in cells))
    return rows


def _runner(model: nn.Module, dev: torch.device, precision: str,
            channels_last: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    net = copy.deepcopy(model).to(dev)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    dtype = _DTYPES.get(precision)

    def run(x: torch.Tensor) -> torch.Tensor:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        context: Any = torch.autocast(dev.type, dtype) if dtype else contextlib.nullcontext()
        with context:
            return net(x)

    return run


def _fused(model: nn.Module, dev: torch.device) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """``kernels.FusedForward`` (what denoise runs for fp16) on fp16 input, if Triton is here."""
    from napari_cryoden import kernels

    if dev.type != "cuda" or not kernels.available():
        print("(triton fused: no Triton or no CUDA; skipped)")
        return None
    run = kernels.FusedForward(model, dev)
    return lambda x: run(x.half())


def _throughput(run: Callable[[torch.Tensor], torch.Tensor], batch: int, tile: int,
                dev: torch.device, seconds: float = 0.5) -> float:
    """Gpx/s of ``run`` on a (batch, 1, tile, tile) input; 0 if it fails (e.g. out of memory)."""
    try:
        x = torch.randn(batch, 1, tile, tile, device=dev)
        for _ in range(3):  # warm-up, cuDNN autotuning
            run(x)
        _sync(dev)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds or n < 3:
            run(x)
            n += 1
            _sync(dev)
        elapsed = time.perf_counter() - start
    except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
        print(f"  (batch {batch}: {type(exc).__name__}: {str(exc).splitlines()[0][:80]})")
        return 0.0
    finally:
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return n * batch * tile * tile / elapsed / 1e9


def _max_error(run: Callable[[torch.Tensor], torch.Tensor], crop: torch.Tensor,
               reference: torch.Tensor) -> float:
    try:
        return float((run(crop).double() - reference).abs().max())
    except RuntimeError as exc:
        print(f"  (accuracy: {str(exc).splitlines()[0][:80]})")
        return float("nan")


def _test_input(size: int, dev: torch.device) -> torch.Tensor:
    """Smooth blobs plus noise, normalised to mean 0 and std 1, as (1, 1, size, size) float32."""
    rng = np.random.default_rng(1)
    low = rng.standard_normal((size // 16, size // 16))
    smooth = np.kron(low, np.ones((16, 16))) + 0.5 * rng.standard_normal((size, size))
    smooth = (smooth - smooth.mean()) / smooth.std()
    return torch.from_numpy(smooth.astype(np.float32))[None, None].to(dev)


# -- denoise() end to end -------------------------------------------------------------------------
def denoise_table(model: nn.Module, image: np.ndarray, dev: torch.device, precisions: list[str],
                  args: argparse.Namespace) -> list[Row]:
    """Median wall time of denoise() per precision; ratios are to the first row, the plain pass."""
    size = image.shape[0]
    label = "GPU" if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"\ndenoise() of one {size}² micrograph ({label}; median of {args.repeat} after a "
          "warm-up):")
    cases: dict[str, Callable[[], np.ndarray]] = {"plain fp32 NCHW (one pass)": lambda: _plain(
        model, image, dev)}
    for precision in precisions:
        cases[f"denoise {precision}"] = _denoise_case(model, image, dev, precision, args)
    if dev.type == "cuda" and "fp16" in precisions:
        cases["denoise fp16, cuDNN"] = _denoise_case(model, image, dev, "fp16", args, fused=False)
    if dev.type == "cpu":
        cases["denoise fp32 NCHW tiles"] = _denoise_case(model, image, dev, "fp32", args,
                                                         channels_last=False)
    rows: list[Row] = []
    results: dict[str, np.ndarray] = {}
    for name, case in cases.items():
        try:
            walls, results[name] = _timed(case, args.repeat)
        except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
            print(f"{name:<30} failed: {str(exc).splitlines()[0][:80]}")
            continue
        rows.append({"case": name, "device": dev.type, "size": size,
                     "wall_s": statistics.median(walls), "walls_s": walls})
    exact = results.get("denoise fp32")
    for row in rows:
        row["ratio"] = rows[0]["wall_s"] / row["wall_s"]
        row["max_abs_vs_fp32"] = (float(np.abs(results[row["case"]] - exact).max())
                                  if exact is not None else float("nan"))
        runs = ", ".join(f"{w:.3f}" for w in row["walls_s"])
        print(f"{row['case']:<30}{row['wall_s']:8.3f} s  x{row['ratio']:5.2f}  "
              f"({size * size / row['wall_s'] / 1e6:7.1f} Mpx/s; max |Δ| vs denoise fp32 "
              f"{row['max_abs_vs_fp32']:.1e}; runs {runs})")
    return rows


def _denoise_case(model: nn.Module, image: np.ndarray, dev: torch.device, precision: str,
                  args: argparse.Namespace, **options: Any) -> Callable[[], np.ndarray]:
    def case() -> np.ndarray:
        with _quiet():
            return denoise(model, image, device=dev, precision=precision,
                           normalization=args.normalization, **options)
    return case


def _plain(model: nn.Module, image: np.ndarray, dev: torch.device) -> np.ndarray:
    """The plain PyTorch pass: the whole image at once, fp32 NCHW (TF32 off)."""
    net = model.to(dev)
    with torch.inference_mode(), _cudnn({"allow_tf32": False}):
        return net(torch.from_numpy(image)[None, None].to(dev))[0, 0].cpu().numpy()


def _timed(case: Callable[[], np.ndarray], repeat: int) -> tuple[list[float], np.ndarray]:
    result = case()  # warm-up
    walls = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = case()
        walls.append(time.perf_counter() - start)
    return walls, result


# -- helpers ------------------------------------------------------------------------------------
@contextlib.contextmanager
def _cudnn(flags: dict[str, bool]) -> Iterator[None]:
    cudnn = torch.backends.cudnn
    saved = {name: getattr(cudnn, name) for name in flags}
    for name, value in flags.items():
        setattr(cudnn, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(cudnn, name, value)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "bf16 on CPU is slower": we know
        yield


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def plot(rows: list[Row], path: Path, device: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    for name in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == name and r["gpx_per_s"] > 0]
        ax.plot([r["batch"] for r in mine], [r["gpx_per_s"] for r in mine], "o-", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel(f"batch size (tiles of {rows[0]['tile']}²)" if rows else "batch size")
    ax.set_ylabel("Gpx/s")
    ax.set_title(f"seed net forward pass, {device}")
    ax.legend()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
