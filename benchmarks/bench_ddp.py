"""Data-parallel scaling of ``train``: patches/s on 1 and N GPUs of one host, and a plain baseline.

Usage::

    python benchmarks/bench_ddp.py [--gpus 1 2] [--n-micrographs 256] [--size 1024] [--patch 256]
                                   [--batch-size 16] [--epochs 6] [--device cuda]

1. Simulates ``--n-micrographs`` noisy/clean pairs (napari_cryoden.simulation.micrographs,
   one process per core) into ``--data`` (a temporary folder by default).
2. Times a plain fp32 PyTorch loop on one device: the same net, Adam and MSE, all patches
   already normalised in device memory, no per-step synchronisation: the upper bound for one GPU.
3. For each N in ``--gpus`` runs ``torchrun --standalone --nproc-per-node N`` on this very
   script in worker mode, which iterates ``napari_cryoden.training.train`` (streaming from
   disk, batch ``--batch-size`` per GPU, no validation). Rank 0 times the steps.

Reported: steady patches/s (steps 4… of epochs 2…, i.e. without the epoch's start-up), epoch
patches/s (whole epochs 2…, with start-up and checkpoints), the efficiency
``pps(N) / (N * pps(1))``, and each run's ratio to the plain loop. docs/performance.md quotes it.
``--device cpu`` runs the same on gloo processes (a smoke test, not a measurement).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _simulate_one(job: tuple[str, int, int, np.random.SeedSequence]) -> None:
    from napari_cryoden.io.images import write_mrc
    from napari_cryoden.simulation.micrographs import simulate_micrograph
    from napari_cryoden.simulation.params import SimulationParams

    out, index, size, seed = job
    noisy, clean = simulate_micrograph(SimulationParams(), np.random.default_rng(seed), size)
    for name, image in (("noisy", noisy), ("clean", clean)):
        write_mrc(Path(out) / name / f"mic_{index:04d}.mrc", image, 1.0)


def simulate(out: Path, n: int, size: int, seed: int = 0) -> float:
    """Write ``n`` pairs in parallel; returns the seconds it took."""
    for name in ("noisy", "clean"):
        (out / name).mkdir(parents=True, exist_ok=True)
    jobs = [(str(out), i, size, s) for i, s in enumerate(np.random.SeedSequence(seed).spawn(n))]
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(min(os.cpu_count() or 1, 32)) as pool:
        pool.map(_simulate_one, jobs, chunksize=max(1, n // 64))
    return time.perf_counter() - start


def _pairs(data: Path) -> list:
    from napari_cryoden.data.pairs import find_pairs

    return find_pairs(data / "noisy", data / "clean")


def plain_loop(data: Path, patch: int, batch: int, steps: int, device: str) -> float:
    """Patches/s of a bare fp32 loop over patches held (normalised) in device memory."""
    from napari_cryoden.data.normalize import fit_normalizer
    from napari_cryoden.data.patches import index_patches
    from napari_cryoden.io.images import read_image
    from napari_cryoden.models.nets import build_model

    noisy, clean, wanted = [], [], steps * batch // 4 + batch  # ~1,000 patches are plenty
    for noisy_path, clean_path in _pairs(data):
        a, _ = read_image(noisy_path)
        b, _ = read_image(clean_path)
        norm = fit_normalizer(a, "meanstd")
        for ref in index_patches([(noisy_path, clean_path)], patch):
            window = np.s_[ref.y:ref.y + patch, ref.x:ref.x + patch]
            noisy.append(norm.apply(a[window]))
            clean.append(norm.apply(b[window]))
        if len(noisy) >= wanted:
            break
    x = torch.from_numpy(np.stack(noisy)[:, None]).to(device)
    y = torch.from_numpy(np.stack(clean)[:, None]).to(device)
    model = build_model(seed=0).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    order = torch.randint(0, len(x), (steps + 10, batch), generator=generator)
    start = 0.0
    for i, rows in enumerate(order.to(device)):
        if i == 10:  # warm-up done (cuDNN autotuning, allocator)
            _sync(device)
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x[rows]), y[rows])
        loss.backward()
        optimizer.step()
    _sync(device)
    return steps * batch / (time.perf_counter() - start)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def worker(args: argparse.Namespace) -> None:
    """One torchrun rank: train, and on rank 0 write the step times to ``--result``."""
    from napari_cryoden.config.sections import Config
    from napari_cryoden.training import EpochEnd, TrainStart, TrainStep, train

    config = Config.from_dict({
        "data": {"patch_size": args.patch, "reader_threads": args.reader_threads},
        "train": {"batch_size": args.batch_size, "epochs": args.epochs, "device": args.device},
    })
    run_dir = Path(args.result).with_suffix(".run")
    steps, epochs, device, per_epoch = [], [], "", 0
    for event in train(config, _pairs(Path(args.data)), [], run_dir):
        if isinstance(event, TrainStep):
            steps.append((event.epoch, event.step, time.perf_counter(), event.patches_per_s))
        elif isinstance(event, TrainStart):
            device, per_epoch = event.device, event.n_train_patches
        elif isinstance(event, EpochEnd):
            epochs.append(event.seconds)
    if int(os.environ.get("RANK", "0")) == 0:
        Path(args.result).write_text(json.dumps(
            {"steps": steps, "epochs": epochs, "patches_per_epoch": per_epoch,
             "global_batch": args.batch_size * int(os.environ.get("WORLD_SIZE", "1")),
             "device": device}))


def measure(result: dict) -> tuple[float, float]:
    """(steady patches/s, epoch patches/s) over epochs 2… of a worker's result."""
    batch, patches, seconds = result["global_batch"], 0, 0.0
    for epoch in sorted({s[0] for s in result["steps"]})[1:]:
        times = [s[2] for s in result["steps"] if s[0] == epoch]
        first = min(3, len(times) - 2)  # skip the epoch's start-up (3 steps when there are many)
        if first >= 0:
            patches += batch * (len(times) - 1 - first)  # a smaller last batch: negligible
            seconds += times[-1] - times[first]
    later = result["epochs"][1:]
    return patches / seconds, result["patches_per_epoch"] * len(later) / sum(later)


def run_gpus(args: argparse.Namespace, data: Path, nproc: int, scratch: Path) -> dict:
    result = scratch / f"result_{nproc}.json"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={nproc}", __file__, "--worker", "--data", str(data),
               "--result", str(result), *_shared_flags(args)]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env)  # torchrun's default thread count, for any N
    out = json.loads(result.read_text())
    out["wall_s"] = time.perf_counter() - start
    return out


def _shared_flags(args: argparse.Namespace) -> list[str]:
    return ["--patch", str(args.patch), "--batch-size", str(args.batch_size), "--epochs",
            str(args.epochs), "--device", args.device, "--reader-threads",
            str(args.reader_threads)]


def _describe_host(device: str) -> None:
    print(f"torch {torch.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} cores")
    if device == "cuda":
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        print(f"GPUs: {names}; NCCL {torch.cuda.nccl.version()}; "
              f"NCCL_NVLS_ENABLE={os.environ.get('NCCL_NVLS_ENABLE')}")
        topo = subprocess.run(["nvidia-smi", "topo", "-m"], capture_output=True, text=True)
        print(topo.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--n-micrographs", type=int, default=256)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--patch", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16, help="per GPU")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--reader-threads", type=int, default=4)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--data", type=Path, default=None, help="reuse or create data here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    _describe_host(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        data = args.data or scratch / "data"
        if not (data / "noisy").is_dir():
            seconds = simulate(data, args.n_micrographs, args.size)
            print(f"simulated {args.n_micrographs} pairs of {args.size}² in {seconds:.1f} s")
        n_patches = args.n_micrographs * (args.size // args.patch) ** 2
        print(f"{n_patches} patches of {args.patch}², batch {args.batch_size} per GPU, "
              f"{args.epochs} epochs, fp32, {args.reader_threads} reader threads per process")
        plain = plain_loop(data, args.patch, args.batch_size, 200, args.device)
        print(f"plain fp32 loop, 1 device, data in device memory: {plain:,.0f} patches/s")
        rows = {n: run_gpus(args, data, n, scratch) for n in args.gpus}
    base = measure(rows[args.gpus[0]])[0] / args.gpus[0]
    print(f"{'N':>3} {'steady p/s':>11} {'epoch p/s':>10} {'efficiency':>10} "
          f"{'vs plain':>9} {'wall s':>7}  device")
    for n, result in rows.items():
        steady, epoch = measure(result)
        print(f"{n:>3} {steady:>11,.0f} {epoch:>10,.0f} {steady / (n * base):>10.1%} "
              f"{steady / plain:>9.2f} {result['wall_s']:>7.1f}  {result['device']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
