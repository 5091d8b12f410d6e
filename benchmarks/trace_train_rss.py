"""Where the host memory of streaming training goes: resident memory phase by phase, and the
anonymous mappings that appear or grow.

``python benchmarks/trace_train_rss.py --data /tmp/trace --patches 512 --steps 60 [--json OUT]``

One process, as a user's ``cryoden train`` on a clean-only store (float16 patches of 1024², noise
drawn on the device, fp16, the fused kernels on CUDA):

1. ``imports``: torch and the package imported;
2. ``runtime``: the device initialised, the model, Adam and the training step built and run 5
   times on one random batch (what ``bench_train.py``'s *runtime baseline* measures: the CUDA
   context, cuDNN/Triton kernels, torch's libraries);
3. ``training``: ``training.train`` over the store for ``--steps`` steps (one epoch).

For each phase it prints the peak (``VmHWM``) and current resident memory split into anonymous,
file-backed and shared (``/proc/self/status``), and at the end the anonymous mappings of
``/proc/self/smaps`` that are new or grew by more than 4 MB since the end of ``runtime``, largest
first, with their address range and flags: the loader's share, mapping by mapping. A thread
samples the resident memory every 20 ms during training and keeps the anonymous mappings at its
peak, reported the same way (memory freed before the end still shows there). On CUDA it adds
torch's pinned-host allocator statistics when this torch has them. ``--ring N`` overrides the
loader's ring of whole-batch host buffers (``data._packed_ring.RING``; default ``ring_depth``: 2
batches of 32 1024² patches) to see its cost, ``--reader-threads N`` the threads that fill it
(default 8), ``--unpinned`` makes them pageable on CUDA too, and ``--warmup-train`` runs 2
training steps (a 1-slot ring, 1 thread) between ``runtime`` and the traced training, so every
kernel and library training uses is loaded before it: what training then adds is its buffers,
not code. The store is random numbers (memory does not depend on the pixel values),
written once into ``--data``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def status_mb() -> dict[str, float]:
    """Peak and current resident memory of this process, in MB, from /proc/self/status."""
    keys = ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem")
    out: dict[str, float] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in keys:
            out[key] = int(line.split()[1]) / 1024
    return out


def anon_mappings() -> dict[str, dict[str, Any]]:
    """Anonymous mappings of this process: start address → range, size, resident (kB), flags."""
    maps: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5 and ":" in fields[3]:
            name = fields[5] if len(fields) > 5 else ""
            current = None
            if name in ("", "[heap]") or name.startswith("[anon"):
                current = {"range": fields[0], "perms": fields[1], "name": name or "anon"}
                maps[fields[0].split("-")[0]] = current  # by start: the heap grows at its end
        elif current is not None and fields and fields[0] in ("Size:", "Rss:"):
            current[fields[0][:-1].lower()] = int(fields[1])
    return maps


class PeakWatch(threading.Thread):
    """Samples VmRSS every ``interval`` s; at each new peak (8 MB above the last one) it keeps a
    snapshot of the anonymous mappings and the number of steps done, so the peak's mappings can
    be compared with the runtime's even when memory is freed before the end."""

    def __init__(self, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.interval, self.steps = interval, 0
        self.peak_mb, self.at_step, self.snapshot = 0.0, -1, {}
        self.timeline: list[tuple[float, int, float]] = []
        self._done = threading.Event()
        self._t0 = time.perf_counter()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            rss = status_mb()["VmRSS"]
            self.timeline.append((time.perf_counter() - self._t0, self.steps, rss))
            if rss > self.peak_mb + 8:
                self.peak_mb, self.at_step = rss, self.steps
                self.snapshot = anon_mappings()

    def stop(self) -> None:
        self._done.set()
        self.join()


def gpu_libraries() -> list[str]:
    """cuDNN and cuBLAS libraries mapped into this process (loaded), by file name."""
    names = {line.split()[-1].rsplit("/", 1)[-1] for line in
             Path("/proc/self/maps").read_text().splitlines() if "/" in line}
    return sorted(n for n in names if n.startswith(("libcudnn", "libcublas")))


def grown_since(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]
                ) -> list[dict[str, Any]]:
    """Anonymous mappings of ``after`` that are new or hold 4 MB more than in ``before``."""
    grown = []
    for key, m in after.items():
        was = before.get(key, {}).get("rss", 0)
        if m.get("rss", 0) - was > 4096:
            grown.append({**m, "grew_kb": m.get("rss", 0) - was, "new": key not in before})
    grown.sort(key=lambda m: -m["grew_kb"])
    return grown


def write_store(folder: Path, patches: int, size: int) -> Path:
    """A clean-only store of ``patches`` random patches (reused when it exists)."""
    from napari_cryoden.data.packed import StoreWriter

    store = folder / f"clean_{patches}_{size}"
    if (store / "index.json").exists():
        return store
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    with StoreWriter(store, size, noise={"dose": 40.0, "pixel_size": 1.0, "read_noise": 0.0},
                     overwrite=True) as writer:
        for i in range(patches):
            clean = (0.5 + 0.1 * rng.standard_normal((size, size))).astype(np.float32)
            writer.add(None, clean, noisy=None, clean=f"rand_{i:05d}.mrc", pixel_size=1.0)
    return store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/trace_rss"))
    parser.add_argument("--patches", type=int, default=512)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=0, help="0: the training default")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--ring", type=int, default=None)
    parser.add_argument("--reader-threads", type=int, default=8)
    parser.add_argument("--warmup-train", action="store_true",
                        help="2 training steps (ring 1, 1 thread) before the traced training")
    parser.add_argument("--unpinned", action="store_true",
                        help="pageable host buffers on CUDA too (to tell pinning's cost)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    phases: dict[str, dict[str, float]] = {"start": status_mb()}
    import torch

    from napari_cryoden.config.sections import Config
    from napari_cryoden.data import _packed_ring
    from napari_cryoden.data.packed import Packed, PackedStore
    from napari_cryoden.models.nets import build_model
    from napari_cryoden.training import TrainStart, TrainStep, train

    phases["imports"] = status_mb()
    from napari_cryoden.data import packed_stream

    ring = args.ring if args.ring is not None else _packed_ring.RING
    if args.unpinned:
        ring_class = packed_stream.Ring
        packed_stream.Ring = lambda store, batch, threads, pinned: ring_class(  # type: ignore
            store, batch, threads, pinned=False)
    store = PackedStore.open(write_store(args.data, args.patches, args.size))
    phases["store written"] = status_mb()

    device = torch.device(args.device)
    model = build_model(seed=0).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    if device.type == "cuda":
        from napari_cryoden.kernels.train import make_fused_step

        step = make_fused_step(model, optimizer)
        batch = args.batch or 32
    else:
        from napari_cryoden.training import steps

        step = steps.make_step(model, optimizer, "fp32")
        batch = args.batch or 4
    x = torch.randn(batch, 1, args.size, args.size, device=device)
    for _ in range(5):
        float(step(x, x))
    del x, model, optimizer, step
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
    phases["runtime"] = status_mb()

    def config(threads: int) -> Config:
        return Config.from_dict({
            "data": {"patch_size": args.size, "reader_threads": threads},
            "train": {"batch_size": args.batch, "epochs": 1, "precision": "fp16" if
                      device.type == "cuda" else "fp32", "device": args.device, "lr": 1e-3}})

    run_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"trace_run_{os.getpid()}"
    if args.warmup_train:  # every kernel and library of training loaded, one 1-slot ring
        _packed_ring.RING = 1
        for _ in train(config(1), Packed(store, np.arange(2 * batch)), None, run_dir / "w"):
            pass
        phases["warm-up training"] = status_mb()
    _packed_ring.RING = ring
    libraries_before = gpu_libraries()
    before = anon_mappings()
    idx = np.arange(min(store.count, args.steps * batch))
    steps_done, start, info = 0, time.perf_counter(), {}
    watch = PeakWatch()
    watch.start()
    for event in train(config(args.reader_threads), Packed(store, idx), None, run_dir):
        if isinstance(event, TrainStart):
            info = {"batch": event.batch_size, "precision": event.precision}
        elif isinstance(event, TrainStep):
            steps_done += 1
            watch.steps = steps_done
    watch.stop()
    phases["training"] = status_mb()
    grown = grown_since(before, anon_mappings())
    at_peak = grown_since(before, watch.snapshot)
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "ring": _packed_ring.depth_for(store, info.get("batch", 1)),
        "reader_threads": args.reader_threads, "pinned": not args.unpinned,
        "steps": steps_done,
        "seconds": time.perf_counter() - start, **info, "phases": phases,
        "gpu_libraries_loaded_by_training": sorted(set(gpu_libraries()) - set(libraries_before)),
        "grown_anon_mappings": grown[:25],
        "grown_anon_total_mb": sum(m["grew_kb"] for m in grown) / 1024,
        "sampled_peak_mb": watch.peak_mb, "sampled_peak_at_step": watch.at_step,
        "grown_at_peak": at_peak[:25],
        "grown_at_peak_total_mb": sum(m["grew_kb"] for m in at_peak) / 1024,
        "timeline": watch.timeline[:: max(1, len(watch.timeline) // 200)]}
    if device.type == "cuda" and hasattr(torch.cuda, "host_memory_stats"):
        stats = torch.cuda.host_memory_stats()
        report["pinned_host_stats"] = {k: v for k, v in stats.items()
                                       if "bytes" in k and "current" in k or "peak" in k}
    print(f"{report['device']}, torch {report['torch']}, ring {report['ring']} "
          f"({'pinned' if report['pinned'] else 'pageable'}), {args.reader_threads} reader "
          f"threads, {steps_done} steps of {info.get('batch')} ({info.get('precision')})")
    print(f"{'phase':16s} {'peak':>7} {'now':>7} {'anon':>7} {'file':>7} {'shmem':>7}  (MB)")
    for name, s in phases.items():
        print(f"{name:16s} {s['VmHWM']:7.0f} {s['VmRSS']:7.0f} {s['RssAnon']:7.0f} "
              f"{s['RssFile']:7.0f} {s['RssShmem']:7.0f}")
    top, base = phases["training"], phases.get("warm-up training", phases["runtime"])
    label = "warm-up training" if "warm-up training" in phases else "runtime"
    print(f"training above the {label} phase: peak (VmHWM) +{top['VmHWM'] - base['VmHWM']:.0f} "
          f"MB; sampled peak {watch.peak_mb - base['VmRSS']:+.0f} MB over its end; anon now "
          f"+{top['RssAnon'] - base['RssAnon']:.0f} MB; anonymous mappings new or grown since: "
          f"{report['grown_anon_total_mb']:.0f} MB")
    for m in grown[:12]:
        _print_mapping(m)
    print(f"cuDNN/cuBLAS libraries training loaded: "
          f"{report['gpu_libraries_loaded_by_training'] or 'none'}")
    print(f"sampled peak {watch.peak_mb:.0f} MB after {watch.at_step} steps; anonymous mappings "
          f"new or grown then: {report['grown_at_peak_total_mb']:.0f} MB")
    for m in at_peak[:12]:
        _print_mapping(m)
    if "pinned_host_stats" in report:
        print(f"  pinned host allocator: {report['pinned_host_stats']}")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


def _print_mapping(m: dict[str, Any]) -> None:
    print(f"  {m['range']} {m['perms']} {m['name']:8s} size {m.get('size', 0) / 1024:8.1f}"
          f" MB  resident {m.get('rss', 0) / 1024:8.1f} MB  (+{m['grew_kb'] / 1024:.1f},"
          f" {'new' if m['new'] else 'grown'})")


if __name__ == "__main__":
    sys.exit(main())
