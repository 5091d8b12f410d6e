"""End-to-end streaming training from packed float16 stores on disk, against the plain fp32 loop.

Usage (on the GPU box; needs torch, numpy, mrcfile and safetensors)::

    python benchmarks/bench_train.py --data /tmp/bench [--patches 12288] [--pairs 2048]
                                     [--small 1024] [--steps 0] [--json OUT.json]

1. Simulates micrographs of 1024² (``data.simulate``, HIGH_CONTRAST, one process per core)
   straight into packed stores (no MRC files in between): a clean-only store of ``--patches``
   patches (for synthetic noise on the GPU; each simulation in its 4 rotations by 90°), a
   noisy/clean pair store of the first ``--pairs`` micrographs, and a clean-only store of the
   first ``--small`` (the memory-flatness check). Existing stores in ``--data`` are reused.
2. Measures the disk's cold sequential read rate (benchmarks/_disk.py) and the GPU step alone.
3. Runs each variant in its own process, after evicting the page cache
   (``/proc/sys/vm/drop_caches`` as root, else ``posix_fadvise(DONTNEED)`` on the store files;
   which one is printed):

   - ``plain fp32 loop``: a torch DataLoader (8 workers, pinned memory) over the pair store,
     float32 NCHW, Adam + MSE, run twice with the two baselines of ``benchmarks/_baseline.py``
     (PyTorch's defaults, which allow TF32 convolutions, and strict fp32): every ratio is given
     against both;
   - ``cryoden fp32, pair store``: ``training.train`` on the pair store in fp32 (TF32 off) at
     the plain loop's batch of 16: the same store, bytes, precision and batch as the plain loop
     under strict fp32, so its ratio to that loop is the loader's alone. (Until 2026-12-07 it ran
     at the trainer's automatic batch, 64, where fp32 convolutions are slower per patch on the
     H100: that row measured the batch as much as the loader.)
   - ``cryoden fp16, pair store``: the same in fp16 (fused kernels): the loader and fp16;
   - ``cryoden, clean store + GPU noise``: the same on the clean-only store, the noisy inputs
     drawn on the GPU (half the bytes read);
   - the same on the small clean store: host peak RSS at another dataset size;
   - the clean store again with a read-ahead of 4 batches instead of the loader's 2 (its
     default for 64 MiB batches since issue 18, ``data._packed_ring.ring_depth``): whether the
     rate needs the other 128 MiB of host buffers;
   - ``runtime baseline``: no data, 5 steps on one random batch (fused and cuDNN): the peak RSS
     that the CUDA runtime and torch alone take, to tell the loader's share from theirs;
   - ``quality``: the validation loss after a fixed number of steps in fp32, fp16 and bf16 on the
     same data in the same order (the fast paths must stay within 2 % of fp32).

Each prints patches/s over its steady part (the steps after the first 9: 5 of warm-up and the up
to 4 batches the loader's ring reads ahead before the first step), flagged ``WINDOW TOO SHORT`` when
that window is under ``BENCH_MIN_WINDOW`` seconds (10) or 20 steps, the GPU busy fraction
(NVML utilisation sampled every 50 ms over the same window), the host peak RSS of its process
(``VmHWM``; the DataLoader's worker processes are not included) and MB/s read from disk.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import _disk  # noqa: E402

PATCH = int(os.environ.get("BENCH_PATCH", "1024"))
DEVICE = os.environ.get("BENCH_DEVICE", "cuda")  # BENCH_DEVICE=cpu BENCH_PATCH=128: a smoke test
EMPIAR_10025_PATCHES = 29_913  # the seed's epoch


# -- data ---------------------------------------------------------------------------------------
def _simulate(seed: np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray]:
    from napari_cryoden.simulation.micrographs import simulate_micrograph
    from napari_cryoden.simulation.params import HIGH_CONTRAST

    return simulate_micrograph(HIGH_CONTRAST, np.random.default_rng(seed), PATCH)


def generate(data: Path, n: int, n_pairs: int, n_small: int, deadline: float) -> None:
    """Simulate micrographs into the three stores (skipped if they exist).

    The clean store holds each simulated micrograph in its 4 rotations by 90° (``n`` patches from
    ``n / 4`` simulations, which keeps the simulation within the lease); the pair and small stores
    hold unrotated micrographs. Simulation stops adding at ``deadline`` seconds.
    """
    from napari_cryoden.data.packed import StoreWriter
    from napari_cryoden.simulation.params import HIGH_CONTRAST

    names = {"clean": data / "clean_store", "pairs": data / "pair_store",
             "small": data / "small_store"}
    if all((p / "index.json").exists() for p in names.values()):
        print(f"reusing the stores in {data}")
        return
    start = time.perf_counter()
    px = HIGH_CONTRAST.pixel_size
    noise = {"dose": HIGH_CONTRAST.dose, "pixel_size": px, "read_noise": HIGH_CONTRAST.read_noise}
    seeds = np.random.SeedSequence(1).spawn(max(n // 4, n_pairs, n_small))
    counts = dict.fromkeys(names, 0)
    with contextlib.ExitStack() as stack:
        writers = {k: stack.enter_context(StoreWriter(
            names[k], PATCH, noise=None if k == "pairs" else noise, overwrite=True))
            for k in names}
        threads = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = "1"  # one process per core, one thread each
        pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(os.cpu_count()))
        if threads is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = threads
        blocks = (pool.imap(_simulate, seeds[j:j + 64], chunksize=2)  # bounded results in memory
                  for j in range(0, len(seeds), 64))
        for i, (noisy, clean) in enumerate(itertools.chain.from_iterable(blocks)):
            name = f"sim_{i:05d}.mrc"
            for k in range(4 if counts["clean"] < n else 0):
                writers["clean"].add(None, np.rot90(clean, k), noisy=None, clean=f"{name} rot{k}",
                                     pixel_size=px)
                counts["clean"] += 1
            if counts["pairs"] < n_pairs:
                writers["pairs"].add(noisy, clean, noisy=name, clean=name, pixel_size=px)
                counts["pairs"] += 1
            if counts["small"] < n_small:
                writers["small"].add(None, clean, noisy=None, clean=name, pixel_size=px)
                counts["small"] += 1
            if (i + 1) % 256 == 0:
                print(f"  {i + 1} simulated, {time.perf_counter() - start:.0f} s", flush=True)
            if time.perf_counter() - start > deadline:
                print(f"  generation deadline ({deadline:.0f} s) reached", flush=True)
                pool.terminate()
                break
    gb = (2 * counts["clean"] + 4 * counts["pairs"] + 2 * counts["small"]) * PATCH * PATCH / 1e9
    print(f"simulated {i + 1} micrographs of {PATCH}² into stores of {counts} patches "
          f"({gb:.1f} GB) in {time.perf_counter() - start:.0f} s", flush=True)


def evict(store: Path) -> str:
    how = "fadvise"
    for f in sorted(store.glob("*.f*")):
        how = _disk.evict(f)
    return how


# -- measuring ----------------------------------------------------------------------------------
class GpuBusy:
    """NVML utilisation ('a kernel was running') sampled every 50 ms in a thread."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())  # noqa
            self._read = lambda: pynvml.nvmlDeviceGetUtilizationRates(handle).gpu
        except Exception:  # noqa: BLE001 - no NVML: report nothing rather than guess
            self._read = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while self._read is not None and not self._stop.wait(0.05):
            self.samples.append((time.perf_counter(), self._read()))

    def fraction(self, start: float, end: float) -> float | None:
        self._stop.set()
        inside = [u for t, u in self.samples if start <= t <= end]
        return sum(inside) / len(inside) / 100 if inside else None


def _rss_mb() -> float:
    """Peak resident memory of this process (VmHWM; unlike ru_maxrss not inherited from the
    parent across fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status_mb(*keys: str) -> dict[str, float]:
    """Fields of /proc/self/status in MB (what the resident memory is made of, at the end)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in keys:
            out[key] = int(line.split()[1]) / 1024
    return out


MIN_WINDOW_S = float(os.environ.get("BENCH_MIN_WINDOW", "10"))
"""Shortest steady window (s) a rate is reported from without a flag."""
SKIP_STEPS = 5 + 4
"""Steps left out before the window: warm-up (5) and the loader's ring of up to 4 batches read
ahead before the first step (``data._packed_ring.RING_MOST``), which a short window would count
as read in no time (a small run once showed reads above the disk's cold speed)."""


def _steady(times: list[float], batch: int, skip: int = SKIP_STEPS) -> dict:
    """Patches/s over the steps after the first ``skip``, the window, and whether it is too short.

    A window shorter than :data:`MIN_WINDOW_S` seconds or 20 steps is flagged
    (``window_ok`` False): its rate is not a steady state.
    """
    if len(times) < skip + 2:
        return {"patches_per_s": float("nan"), "window_s": 0.0, "window_steps": 0,
                "window_ok": False, "start": 0.0, "end": 0.0}
    start, end = times[skip], times[-1]
    steps = len(times) - 1 - skip
    return {"patches_per_s": batch * steps / (end - start), "window_s": end - start,
            "window_steps": steps, "window_ok": end - start >= MIN_WINDOW_S and steps >= 20,
            "start": start, "end": end}


# -- variants (each in its own process) ---------------------------------------------------------
def plain_loop(store_dir: Path, batch: int, max_steps: int,
               baseline: str = "PyTorch defaults") -> dict:
    """The plain fp32 PyTorch loop: DataLoader over the pair store's files, fp32, NCHW, with the
    backend settings of ``baseline`` (benchmarks/_baseline.py)."""
    from _baseline import plain

    from napari_cryoden.data.packed import PackedStore
    from napari_cryoden.models.nets import build_model

    store = PackedStore.open(store_dir)

    class Patches(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return store.count

        def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
            return (torch.from_numpy(np.array(store.patch(i, "noisy"), np.float32))[None],
                    torch.from_numpy(np.array(store.patch(i, "clean"), np.float32))[None])

    loader = torch.utils.data.DataLoader(Patches(), batch_size=batch, shuffle=True, num_workers=8,
                                         pin_memory=True, drop_last=True,
                                         generator=torch.Generator().manual_seed(0))
    model = build_model(seed=0).to(DEVICE)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    busy, times = GpuBusy(), []
    with plain(baseline):
        for step, (noisy, clean) in enumerate(loader):
            noisy = noisy.to(DEVICE, non_blocking=True)
            clean = clean.to(DEVICE, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(model(noisy), clean)
            loss.backward()
            optimizer.step()
            float(loss)
            times.append(time.perf_counter())
            if max_steps and step + 1 >= max_steps:
                break
    window = _steady(times, batch)
    start, end = window.pop("start"), window.pop("end")
    return {**window, "gpu_busy": busy.fraction(start, end), "batch": batch,
            "precision": f"fp32 ({baseline})", "steps": len(times),
            "bytes_per_patch": 4 * PATCH * PATCH}


def cryoden_run(store_dir: Path, precision: str, batch: int, max_steps: int, epochs: int = 1,
                val_fraction: float = 0.0, crop: int | None = None, fused: bool = True,
                ring: int | None = None) -> dict:
    """``training.train`` on a store; returns throughput and, with validation, the val loss.

    ``ring`` replaces the loader's read-ahead (``data._packed_ring.RING`` whole-batch host
    buffers; None: its default, ``ring_depth``) for this run.
    """
    from napari_cryoden.config.sections import Config
    from napari_cryoden.data import _packed_ring
    from napari_cryoden.data.packed import Packed, PackedStore
    from napari_cryoden.training import EpochEnd, TrainStart, TrainStep, train

    if ring is not None:
        _packed_ring.RING = ring

    store = PackedStore.open(store_dir)
    train_idx, val_idx = store.split(val_fraction, seed=0)
    if max_steps:
        train_idx = train_idx[:max_steps * max(batch, 1)] if batch else train_idx
    config = Config.from_dict({
        "data": {"patch_size": store.patch_size, "crop": crop, "reader_threads": 8},
        "train": {"batch_size": batch, "epochs": epochs, "precision": precision,
                  "device": DEVICE, "lr": 1e-3, "fused": fused},
    })
    busy, times, info, val = GpuBusy(), [], {}, None
    run_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_run_{os.getpid()}"
    for event in train(config, Packed(store, train_idx),
                       Packed(store, val_idx) if len(val_idx) else None, run_dir):
        if isinstance(event, TrainStart):
            info = {"batch": event.batch_size, "precision": event.precision}
        elif isinstance(event, TrainStep):
            times.append(time.perf_counter())
        elif isinstance(event, EpochEnd):
            val = event.val_loss
    window = _steady(times, info["batch"])
    start, end = window.pop("start"), window.pop("end")
    per_patch = 2 * PATCH * PATCH * len(store.arrays)
    depth = _packed_ring.depth_for(store, info["batch"])
    return {**window, "gpu_busy": busy.fraction(start, end), **info,
            "steps": len(times), "val_loss": val, "bytes_per_patch": per_patch,
            "ring": depth}


def runtime_baseline(batch: int, fused: bool) -> dict:
    """No data at all: the CUDA runtime, the model and 5 training steps on one random batch.

    Its peak RSS is what any PyTorch training process on this GPU holds (CUDA context, cuDNN
    or Triton kernels, torch's libraries); the data path's own memory is the rest.
    """
    from napari_cryoden.models.nets import build_model
    from napari_cryoden.training import steps

    model = build_model(seed=0).to(DEVICE)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    if fused:
        from napari_cryoden.kernels.train import make_fused_step

        step = make_fused_step(model, optimizer)
    else:
        steps.prepare_cuda("fp16")
        model = model.to(memory_format=torch.channels_last)
        step = steps.make_step(model, optimizer, "fp16", torch.amp.GradScaler("cuda"))
    x = torch.randn(batch, 1, PATCH, PATCH, device=DEVICE)
    for _ in range(5):
        float(step(x, x))
    return {"patches_per_s": float("nan"), "gpu_busy": None, "batch": batch,
            "precision": "fp16, fused Triton kernels" if fused else "fp16", "steps": 5,
            "bytes_per_patch": 0}


def worker(args: argparse.Namespace) -> None:
    spec = json.loads(args.worker)
    kind = spec.pop("kind")
    runs = {"plain": plain_loop, "cryoden": cryoden_run, "baseline": runtime_baseline}
    result = runs[kind](**spec)
    result["peak_rss_mb"] = _rss_mb()
    result["rss_now_mb"] = _status_mb("RssAnon", "RssFile", "RssShmem")
    print("RESULT " + json.dumps(result), flush=True)


def run_variant(name: str, store: Path | None, spec: dict, rows: list[dict]) -> dict:
    how = evict(store) if store else "-"
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)],
                          capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        print(f"{name}: failed\n{proc.stderr[-3000:]}", flush=True)
        return {}
    result = {"variant": name, "store": store.name if store else None, "evicted_by": how,
              **json.loads(lines[-1][7:])}
    result["disk_mb_per_s"] = result["patches_per_s"] * result["bytes_per_patch"] / 1e6
    rows.append(result)
    busy = result["gpu_busy"]
    if name.startswith("runtime"):  # no data, no rate: its peak RSS is the point
        print(f"{name:40s}   RSS only       batch {result['batch']:3d} {result['precision']}  "
              f"RSS {result['peak_rss_mb']:6.0f} MB", flush=True)
        return result
    if not result.get("window_ok", True) and not name.startswith("quality"):
        print(f"{name}: WINDOW TOO SHORT ({result.get('window_s', 0):.1f} s, "
              f"{result.get('window_steps', 0)} steps after {SKIP_STEPS} left out; need "
              f"{MIN_WINDOW_S:.0f} s and 20 steps): its rate is not a steady state", flush=True)
    print(f"{name:40s} {result['patches_per_s']:7.0f} patches/s  batch {result['batch']:3d} "
          f"{result['precision']}  GPU busy {busy if busy is None else f'{busy:.0%}'}  "
          f"RSS {result['peak_rss_mb']:6.0f} MB  disk {result['disk_mb_per_s']:5.0f} MB/s  "
          f"(cache evicted by {how})", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/cryoden_bench"))
    parser.add_argument("--patches", type=int, default=12288,
                        help="clean-store patches: at the H100's ~820 patches/s from its disk "
                             "8192 gave a 9.6 s window, under the 10 s minimum")
    parser.add_argument("--pairs", type=int, default=2048)
    parser.add_argument("--small", type=int, default=1024)
    parser.add_argument("--deadline", type=float, default=240,
                        help="seconds after which the simulation stops adding micrographs")
    parser.add_argument("--steps", type=int, default=0, help="cap on steps per run (0: epoch)")
    parser.add_argument("--quality-steps", type=int, default=300)
    parser.add_argument("--only", nargs="+", metavar="TEXT",
                        help="run only our variants (and quality runs) whose name contains one "
                             "of these, e.g. 'fp32, pair' 'clean store + GPU noise'; the plain "
                             "loops, the baseline of every ratio, always run")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--baseline-only", action="store_true",
                        help="only the runtime baselines (no data): peak RSS without a loader")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    if DEVICE == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_train.py needs a CUDA GPU (or BENCH_DEVICE=cpu for a smoke test)")
    device = torch.cuda.get_device_name() if DEVICE == "cuda" else DEVICE
    print(f"device: {device}, torch {torch.__version__}, "
          f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}", flush=True)
    rows: list[dict] = []
    report: dict = {"device": device, "torch": torch.__version__, "rows": rows}

    def chosen(name: str) -> bool:
        return not args.only or any(text in name for text in args.only)

    def save() -> None:  # after every run, so a run cut short still leaves what it measured
        if args.json:
            args.json.write_text(json.dumps(report, indent=1))
    for fused in (True, False):
        run_variant(f"runtime baseline, no data ({'fused' if fused else 'cuDNN'})", None,
                    {"kind": "baseline", "batch": 32 if fused else 64, "fused": fused}, rows)
    save()
    if args.baseline_only:
        return 0
    args.data.mkdir(parents=True, exist_ok=True)
    generate(args.data, args.patches, args.pairs, args.small, args.deadline)
    disk = subprocess.run([sys.executable, str(Path(_disk.__file__)), str(args.data), "--gb",
                           "8"], capture_output=True, text=True).stdout.strip()
    print(disk, flush=True)
    report["disk"] = disk
    stores = {k: args.data / v for k, v in (("clean", "clean_store"), ("pairs", "pair_store"),
                                            ("small", "small_store"))}
    plains = {kind: run_variant(f"plain fp32 loop ({kind})", stores["pairs"],
                                {"kind": "plain", "store_dir": str(stores["pairs"]),
                                 "batch": 16, "max_steps": args.steps, "baseline": kind}, rows)
              for kind in ("PyTorch defaults", "strict fp32")}
    save()
    plain = plains["PyTorch defaults"]
    for name, store, precision, fused, ring, batch in (
            ("cryoden fp32, pair store", "pairs", "fp32", False, None, 16),  # the loader alone
            ("cryoden fp16, pair store", "pairs", "fp16", True, None, 0),  # + fp16 (fused)
            ("cryoden fp16, clean store + GPU noise", "clean", "fp16", True, None, 0),  # 1/2 bytes
            ("cryoden fp16 cuDNN, clean store + GPU noise", "clean", "fp16", False, None, 0),
            ("cryoden fp16, small clean store", "small", "fp16", True, None, 0),
            ("cryoden fp16, clean store + GPU noise, ring 4", "clean", "fp16", True, 4, 0)):
        if not chosen(name):
            continue
        run_variant(name, stores[store], {"kind": "cryoden", "store_dir": str(stores[store]),
                                          "precision": precision, "batch": batch,
                                          "fused": fused, "max_steps": args.steps,
                                          "ring": ring}, rows)
        save()
    print("\nquality: val loss after the same steps and data, 256² crops, batch 16", flush=True)
    for name, precision, fused in (("fp32", "fp32", False), ("fp16", "fp16", True),
                                   ("fp16 cuDNN", "fp16", False), ("bf16", "bf16", False)):
        if not chosen(f"quality {name}"):
            continue
        run_variant(f"quality {name}", stores["pairs"],
                    {"kind": "cryoden", "store_dir": str(stores["pairs"]),
                     "precision": precision, "batch": 16, "max_steps": args.quality_steps,
                     "val_fraction": 0.05, "crop": min(256, PATCH), "fused": fused}, rows)
        save()
    summarise(rows, plain, plains.get("strict fp32"))
    return 0


def summarise(rows: list[dict], plain: dict, strict: dict | None = None) -> None:
    """The table: each variant's rate against the plain loop with PyTorch's defaults and with
    strict fp32 (benchmarks/_baseline.py), then the like-for-like steps and the quality runs."""
    if not plain:
        return
    strict = strict or plain
    print(f"\n{'variant':44s} {'patches/s':>9} {'x plain':>7} {'x strict':>8} {'GPU busy':>8} "
          f"{'RSS MB':>7} {'disk MB/s':>9} {'EMPIAR-10025 epoch':>18}")
    for row in rows:
        if row["variant"].startswith(("quality", "runtime")):
            continue
        busy = "-" if row["gpu_busy"] is None else f"{row['gpu_busy']:.0%}"
        print(f"{row['variant']:44s} {row['patches_per_s']:9.0f} "
              f"{row['patches_per_s'] / plain['patches_per_s']:7.2f} "
              f"{row['patches_per_s'] / strict['patches_per_s']:8.2f} {busy:>8} "
              f"{row['peak_rss_mb']:7.0f} {row['disk_mb_per_s']:9.0f} "
              f"{EMPIAR_10025_PATCHES / row['patches_per_s']:16.0f} s")
    by_name = {r["variant"]: r for r in rows}
    steps_of = (("the loader alone (same pair store, bytes, batch; strict fp32)",
                 "cryoden fp32, pair store", None),
                ("+ fp16, the fused kernels and their batch (same pair store)",
                 "cryoden fp16, pair store", "cryoden fp32, pair store"),
                ("+ half the bytes: clean store, noise drawn on the GPU",
                 "cryoden fp16, clean store + GPU noise", "cryoden fp16, pair store"))
    print("\nlike for like, one effect a row (ratio to the row before; the first to the plain "
          "loop in strict fp32, cryoden's fp32):")
    for label, name, before in steps_of:
        if name in by_name:
            ref = by_name.get(before) if before else strict
            if ref:
                ratio = by_name[name]["patches_per_s"] / ref["patches_per_s"]
                print(f"  {label:55s} {ratio:5.2f}x")
    quality = {r["variant"]: r["val_loss"] for r in rows if r["variant"].startswith("quality")}
    reference = quality.get("quality fp32")
    for name, loss in quality.items():
        if reference and loss is not None:
            print(f"{name}: val loss {loss:.5f} ({(loss / reference - 1):+.2%} vs fp32)")


if __name__ == "__main__":
    sys.exit(main())
