"""Where the start-up of ``cryoden denoise`` goes: one process, phase by phase.

``python benchmarks/denoise_startup.py --size 4092x5760 --device cuda --dir /scratch [--json OUT]``

``batch_denoise_topaz.py`` found our whole process 4.6 s slower than Topaz's on its first K3 file
(11.8 against 7.2 s on an H100) and 5.7x faster on every file after it. This script splits that
first file into its phases, in a fresh process per variant (as a user's command runs), from a
cold page cache:

1. ``interpreter``: Python's own start, up to the first line of the child (the parent's wall
   time minus everything the child timed);
2. ``import torch``, then ``import napari_cryoden`` (the API the CLI calls);
3. ``device``: the first tensor on the device (the CUDA context);
4. ``load model``: the shipped weights onto the device;
5. ``read``: the first micrograph from disk (cold);
6. ``denoise 1``: the first micrograph through the model (tile plan, cuDNN's libraries and its
   autotuner, the first kernels), synchronised;
7. ``denoise 2``: a second, cold micrograph of the same shape: the steady cost, so ``denoise 1 -
   denoise 2`` is the one-time cost of the first call;
8. ``write``: the output MRC.

Variants (``--variants``): ``default`` (what ``cryoden denoise`` runs on one file: cuDNN's
autotuner off, ``inference.loops.fast_backend``; runs of ``inference.batch.AUTOTUNE_MIN_FILES``
files or more turn it on), ``autotune`` (the same with the autotuner on, to price it against the
steady rate it buys: before 2026-12-07 this was the default) and ``cli`` (the whole command on
one file, ``python -m napari_cryoden.cli denoise MODEL FILE --out DIR``, timed from outside
only). Each
variant runs ``--repeat`` times; the table gives the median of each phase.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

_T0 = time.perf_counter()

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

PHASES = ("interpreter", "import torch", "import napari_cryoden", "device", "load model", "read",
          "denoise 1", "denoise 2", "write")


def child(args: argparse.Namespace) -> None:
    """The timed process: prints one JSON line of phase → seconds."""
    times: dict[str, float] = {}
    mark = _T0

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        times[name] = now - mark
        mark = now

    import torch

    lap("import torch")
    import napari_cryoden as cryoden
    from napari_cryoden.inference import loops
    from napari_cryoden.io.images import read_image, write_mrc

    lap("import napari_cryoden")
    dev = torch.device(args.device)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    torch.zeros(1, device=dev).add_(1)
    sync()
    lap("device")
    if args.variant == "autotune":  # the API takes no autotune flag: force it where it is read
        plain = loops.fast_backend
        loops.fast_backend = lambda dev, precision, autotune=False: plain(dev, precision, True)
    model = cryoden.load_model(args.model, device=args.device)
    sync()
    lap("load model")
    image, pixel_size = read_image(args.files[0])
    image = image[...]  # a memory map is read here, as the CLI's reader thread does
    lap("read")
    out = cryoden.denoise(image, model, device=args.device, precision=args.precision)
    sync()
    lap("denoise 1")
    second, _ = read_image(args.files[1])
    mark = time.perf_counter()  # the second read is not a start-up phase
    cryoden.denoise(second[...], model, device=args.device, precision=args.precision)
    sync()
    lap("denoise 2")
    write_mrc(Path(args.out) / Path(args.files[0]).name, out, pixel_size)
    lap("write")
    print(json.dumps(times))


def run_variant(variant: str, args: argparse.Namespace, files: list[Path],
                out: Path) -> dict[str, float]:
    """One fresh process of ``variant`` from a cold cache: phase → seconds, and ``total``."""
    from batch_denoise import cold

    cold(files, out)
    if variant == "cli":
        argv = [sys.executable, "-m", "napari_cryoden.cli", "denoise", args.model, str(files[0]),
                "--out", str(out), "--device", args.device, "--precision", args.precision]
    else:
        argv = [sys.executable, __file__, "--child", variant, "--device", args.device,
                "--model", args.model, "--precision", args.precision, "--out", str(out),
                "--files", *map(str, files[:2])]
    start = time.perf_counter()
    src = str(Path(__file__).resolve().parents[1] / "src")
    pythonpath = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    done = subprocess.run(argv, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": pythonpath})
    total = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{variant} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    times: dict[str, float] = {"total": total}
    if variant != "cli":
        times.update(json.loads(done.stdout.strip().splitlines()[-1]))
        times["interpreter"] = total - sum(v for k, v in times.items() if k != "total")
        times["first file"] = total - times["denoise 2"]  # the one-file process, as timed
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="4092x5760", help="HxW of the micrographs")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/cryoden_startup"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--model", default="general")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--variants", nargs="+", default=["default", "autotune", "cli"],
                        choices=["default", "autotune", "cli"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--files", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.variant = args.child
        child(args)
        return 0

    from batch_denoise import dataset

    shape, files = dataset(args.size, 2, args.dir / "in")
    out = args.dir / "out"
    runs: dict[str, list[dict[str, float]]] = {}
    for variant in args.variants:
        runs[variant] = [run_variant(variant, args, files, out) for _ in range(args.repeat)]
    device = _device_name(args.device)
    print(f"{device}; {args.model} {args.precision}; one {shape[0]}x{shape[1]} float32 "
          f"micrograph per process, cold cache; medians of {args.repeat} processes (s)")
    names = [*PHASES, "first file", "total"]
    print(f"{'phase':<24}" + "".join(f"{v:>14}" for v in args.variants))
    for name in names:
        row = [statistics.median(r[name] for r in runs[v]) if name in runs[v][0] else None
               for v in args.variants]
        print(f"{name:<24}" + "".join(f"{x:>14.2f}" if x is not None else f"{'-':>14}"
                                      for x in row))
    if args.json:
        args.json.write_text(json.dumps({"device": device, "model": args.model,
                                         "precision": args.precision, "shape": shape,
                                         "runs": runs}, indent=1))
    return 0


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    import platform

    return f"CPU ({platform.processor() or platform.machine()})"


if __name__ == "__main__":
    raise SystemExit(main())
