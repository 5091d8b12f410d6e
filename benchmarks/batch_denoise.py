"""Denoising a dataset: the pipeline (``cryoden denoise``) against the sequential loop, and the
bound the machine sets.

``python benchmarks/batch_denoise.py --n 200 --size 4092x5760 --device cuda --dir /scratch``

writes N float32 micrographs of the given size (simulated noise, so reading cannot be
compressed away) and denoises them three ways, each from a cold page cache (every input evicted
first: ``benchmarks/_disk.py``) into an empty folder:

* **sequential**: the loop ``cryoden denoise`` ran before the pipeline: read a file, denoise it,
  write it, then the next (``inference.denoiser.denoise_file``);
* **pipeline**: ``inference.batch.denoise_files`` (reader threads, the model, writer threads);
* **bound**: the disk alone and the model alone (one micrograph held in memory, denoised
  ``--repeat`` times); a perfect pipeline runs at the slower of the two. The disk alone is the
  pipeline itself with the model taken out (``inference.pipeline.run_pipeline`` with the same
  reader and writer threads, reading every input cold and writing it back as the pipeline
  writes its outputs, atomically), so reads and writes overlap as they do in the pipeline. (The
  first version timed reading a file and then writing it, one file at a time, which a pipeline
  that overlaps the two beat: "127 % of the bound" with ``general-fast`` on an H100.)

``--precision`` applies to the model alone, the pipeline and the like-for-like sequential loop;
with ``--sequential-fp32`` the sequential loop is also timed at fp32 (what ``cryoden denoise``
ran before it had ``--precision``), so a reduced-precision pipeline is reported against both:
the pipeline's own gain (same precision) and the gain of the whole job.

It prints files/s and MB/s (input bytes) for each, the pipeline's ratio to sequential and its
fraction of the bound, and the process's peak resident memory during the pipeline (psutil,
sampled every 10 ms; 0 when psutil is missing). ``--json`` writes everything, with the
device's name.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _disk import evict  # noqa: E402

from napari_cryoden.inference.batch import (  # noqa: E402
    AUTOTUNE_MIN_FILES,
    autotune_for,
    denoise_files,
)
from napari_cryoden.inference.denoiser import denoise, denoise_file  # noqa: E402
from napari_cryoden.inference.load import load_denoiser  # noqa: E402
from napari_cryoden.io.images import read_image, write_mrc  # noqa: E402
from napari_cryoden.models.pretrained import resolve_model  # noqa: E402


def dataset(size: str, n: int, folder: Path) -> tuple[tuple[int, int], list[Path]]:
    """The shape ``size`` names (``HxW`` or one number) and the ``n`` files of that shape in
    ``folder`` (written by :func:`write_dataset` unless they exist)."""
    h, _, w = size.lower().partition("x")
    shape = (int(h), int(w or h))
    return shape, write_dataset(folder / f"in_{shape[0]}x{shape[1]}", n, shape)


def write_dataset(folder: Path, n: int, shape: tuple[int, int], seed: int = 0) -> list[Path]:
    """``n`` float32 micrographs of noise around 1 with smooth structure (1.06 Å/px)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = rng.normal(1.0, 0.3, shape).astype(np.float32)
    paths = []
    for i in range(n):
        path = folder / f"mic_{i:04d}.mrc"
        if not path.exists():
            write_mrc(path, np.roll(base, 37 * i, axis=1), 1.06)
        paths.append(path)
    return paths


class PeakRss:
    """The process's peak resident memory while the block runs (psutil, every 10 ms)."""

    def __enter__(self) -> PeakRss:
        self.peak = self.base = 0
        try:
            import psutil
        except ImportError:  # the figure is then 0: say so in the output
            self._thread = None
            return self
        self.process, self.base = psutil.Process(), psutil.Process().memory_info().rss
        self._stop = threading.Event()
        self._thread: threading.Thread | None = threading.Thread(target=self._sample,
                                                                 daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.01)

    def __exit__(self, *exc: Any) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()


def cold(files: list[Path], out: Path) -> None:
    """Evict every input from the page cache; start from an empty output folder."""
    for path in files:
        evict(path)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)


def sync_device(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def disk_alone(files: list[Path], out: Path, io_threads: int) -> float:
    """Seconds the pipeline takes with the model taken out: read cold, write back (atomically).

    The same reader and writer threads and queues as :func:`denoise_files`, so reads and writes
    overlap as they do there; the bytes written equal the inputs' (float32 in, float32 out).
    """
    from napari_cryoden.inference.batch import FileResult
    from napari_cryoden.inference.pipeline import Stages, run_pipeline

    cold(files, out)
    out.mkdir(parents=True, exist_ok=True)
    results = [FileResult(i, len(files), path, out / path.name, "done")
               for i, path in enumerate(files)]

    def write(result: FileResult, item: tuple[np.ndarray, float]) -> FileResult:
        write_mrc(result.output, item[0], item[1])
        return result

    stages = Stages(lambda result: read_image(result.source), lambda result, item: item, write)
    start = time.perf_counter()
    done = list(run_pipeline(results, stages, readers=io_threads, writers=io_threads))
    seconds = time.perf_counter() - start
    assert all(r.status == "done" for r in done), [r.message for r in done][:3]
    shutil.rmtree(out, ignore_errors=True)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--size", default="4092x5760", help="HxW (default: a K3 micrograph)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--model", default="general")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/batch_denoise"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--io-threads", type=int, default=2)
    parser.add_argument("--skip-sequential", action="store_true")
    parser.add_argument("--sequential-fp32", action="store_true",
                        help="also time the sequential loop at fp32 (with --precision fp16/bf16)")
    parser.add_argument("--autotune", choices=("auto", "on", "off"), default="auto",
                        help="cuDNN's autotuner everywhere (auto: on from "
                             f"{AUTOTUNE_MIN_FILES} files, as cryoden denoise)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    shape, files = dataset(args.size, args.n, args.dir)
    mb = sum(p.stat().st_size for p in files) / 1e6
    denoiser = load_denoiser(resolve_model(args.model), args.device)
    # cuDNN's autotuner as `cryoden denoise` sets it for this many files, in every way timed:
    # the model alone, the sequential loop and the pipeline compute alike (and write equal pixels)
    autotune = autotune_for(args.n, {"auto": None, "on": True, "off": False}[args.autotune])
    options: dict[str, Any] = {"precision": args.precision, "autotune": autotune}
    report: dict[str, Any] = {"n": args.n, "shape": shape, "input_mb": mb,
                              "model": args.model, "device": str(denoiser.device),
                              "precision": args.precision, "io_threads": args.io_threads,
                              "autotune": autotune}
    if str(denoiser.device).startswith("cuda"):
        import torch

        report["gpu"] = torch.cuda.get_device_name(denoiser.device)
    report["cpu_count"] = os.cpu_count()

    # the model alone: one micrograph in memory
    image, _ = read_image(files[0])
    denoise(denoiser.net, image, **denoiser.options(), **options)  # warm-up (cuDNN, tiles)
    sync_device(args.device)
    start = time.perf_counter()
    for _ in range(args.repeat):
        denoise(denoiser.net, image, **denoiser.options(), **options)
    sync_device(args.device)
    compute_s = (time.perf_counter() - start) / args.repeat

    # the disk alone: the pipeline with the model taken out (reads and writes overlapped)
    disk_s = disk_alone(files, args.dir / "io", args.io_threads) / len(files)
    bound = 1.0 / max(compute_s, disk_s)
    report.update(compute_s_per_file=compute_s, disk_s_per_file=disk_s, bound_files_s=bound)

    runs = [] if args.skip_sequential else [("sequential", args.precision)]
    if args.sequential_fp32 and args.precision != "fp32" and not args.skip_sequential:
        runs.append(("sequential_fp32", "fp32"))
    for name, precision in runs:
        cold(files, args.dir / "seq")
        start = time.perf_counter()
        for path in files:
            denoise_file(denoiser.net, path, args.dir / "seq" / path.name,
                         **denoiser.options(), precision=precision, autotune=autotune)
        seq_s = time.perf_counter() - start
        report[f"{name}_s"] = seq_s
        report[f"{name}_files_s"] = args.n / seq_s
        if name == "sequential":
            last_sequential = read_image(args.dir / "seq" / files[-1].name)[0]
        shutil.rmtree(args.dir / "seq", ignore_errors=True)  # room on the disk for the next

    cold(files, args.dir / "pipe")
    with PeakRss() as rss:
        start = time.perf_counter()
        results = list(denoise_files(denoiser, files, args.dir / "pipe", readers=args.io_threads,
                                     writers=args.io_threads, **options))
        pipe_s = time.perf_counter() - start
    assert all(r.status == "done" for r in results), [r.message for r in results][:3]
    report.update(pipeline_s=pipe_s, pipeline_files_s=args.n / pipe_s,
                  pipeline_mb_s=mb / pipe_s, fraction_of_bound=args.n / pipe_s / bound,
                  rss_base_mb=rss.base / 1e6, rss_peak_mb=rss.peak / 1e6)
    if "sequential_s" in report:
        report["pipeline_over_sequential"] = report["sequential_s"] / pipe_s
    if "sequential_fp32_s" in report:
        report["pipeline_over_sequential_fp32"] = report["sequential_fp32_s"] / pipe_s
    if "sequential_s" in report:  # the same pixels either way
        np.testing.assert_array_equal(last_sequential,
                                      read_image(args.dir / "pipe" / files[-1].name)[0])
    shutil.rmtree(args.dir / "pipe", ignore_errors=True)

    where = report.get("gpu", f"CPU ({report['cpu_count']} cores)")
    print(f"{args.n} micrographs of {shape[0]}x{shape[1]} ({mb / args.n:.0f} MB each), "
          f"{args.model} {args.precision} on {where}, cuDNN autotuner "
          f"{'on' if autotune else 'off'}")
    print(f"  model alone {compute_s:.3f} s/file, disk alone {disk_s:.3f} s/file (the pipeline "
          f"without the model: read cold, write back): bound {bound:.2f} files/s")
    if "sequential_s" in report:
        print(f"  sequential ({args.precision}): {report['sequential_files_s']:.2f} files/s "
              f"({mb / report['sequential_s']:.0f} MB/s)")
    if "sequential_fp32_s" in report:
        print(f"  sequential (fp32): {report['sequential_fp32_files_s']:.2f} files/s; the "
              f"pipeline is {report['pipeline_over_sequential_fp32']:.2f}x that")
    print(f"  pipeline:   {report['pipeline_files_s']:.2f} files/s ({report['pipeline_mb_s']:.0f}"
          f" MB/s) = {report['fraction_of_bound']:.0%} of the bound"
          + (f", {report['pipeline_over_sequential']:.2f}x sequential"
             if "pipeline_over_sequential" in report else ""))
    print(f"  peak RSS {report['rss_peak_mb']:.0f} MB (before the run {report['rss_base_mb']:.0f}"
          " MB)")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
