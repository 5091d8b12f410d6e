"""The packed loader's read-ahead alone: patches/s by ring depth from a cold store, against the
host memory each depth holds.

``python benchmarks/bench_ring.py --data /scratch/ring --depths 1 2 3 4 --step-ms 11.5``

Issue 18 asks for the streaming trainer's host memory above the runtime to be at most 300 MB;
the loader's ring of whole-batch buffers (4 batches of 32 patches of 1024² float16, 256 MiB,
until this benchmark showed 2 enough: ``data._packed_ring.ring_depth``) is most of it. This
measures what a shallower ring costs in rate, without the model: the ring
(``data._packed_ring.Ring``) is driven by its own ``Ring.batches``, as ``PackedStream`` drives
it (submit ``depth`` batches ahead, deliver one, refill its slot once its copy is done), and the
training step is replaced by a wait of ``--step-ms`` per batch (11.5 ms: the fused step's 2,788
patches/s at batch 32 on the H100, 2026-11-24). Every depth reads the same shuffled patches from
a cold page cache (``benchmarks/_disk.py``), and its rate is taken over the batches after the
first ``depth`` (read before the first step, in no time a short window would count). The bound
is ``--depths`` 's deepest ring with no wait (``--step-ms 0``), i.e. the readers alone, and the
step alone (``batch / step``).

On CUDA the buffers are pinned and the copies go to the GPU on a side stream, as in training;
elsewhere the copy is a blocking host copy (which the GPU's asynchronous copy is not: on a CPU
the consumer costs more per batch). ``--json`` writes the rows with the device.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _disk import evict  # noqa: E402
from trace_train_rss import write_store  # noqa: E402


def run_depth(store: Any, order: np.ndarray, depth: int, batch: int, threads: int,
              step_s: float, device: Any) -> dict[str, Any]:
    """Drive a ring of ``depth`` over ``order`` (cold) with a consumer of ``step_s`` a batch."""
    import torch

    from napari_cryoden.data import _packed_ring

    for name in store.arrays:
        evict(store.file(name))
    _packed_ring.RING = depth
    cuda = device.type == "cuda"
    ring = _packed_ring.Ring(store, batch, threads, pinned=cuda)
    side = torch.cuda.Stream(device) if cuda else None
    def plan(k: int) -> tuple[np.ndarray, np.ndarray]:
        return order[k * batch:(k + 1) * batch], np.zeros((batch, 4), np.float32)

    times = []
    try:
        start = time.perf_counter()
        for arrays, _ in ring.batches(len(order) // batch, plan, device, side, torch.float16):
            if cuda:
                torch.cuda.current_stream(device).synchronize()  # the batch is on the GPU
            times.append(time.perf_counter() - start)
            if step_s:
                time.sleep(step_s)
            del arrays
    finally:
        ring.close()
    skip = depth
    window = times[-1] - times[skip - 1] if len(times) > skip else float("nan")
    patches = (len(times) - skip) * batch
    rate = patches / window if window > 0 else float("nan")
    return {"depth": depth, "patches_per_s": rate,
            "disk_mb_per_s": rate * store.patch_bytes * len(store.arrays) / 1e6,
            "window_s": window, "batches": len(times),
            "host_mb": depth * _packed_ring.batch_bytes(store, batch) / 2**20}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/cryoden_ring"))
    parser.add_argument("--patches", type=int, default=6144)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=8, help="reader threads")
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--step-ms", type=float, default=11.5,
                        help="the training step replaced by a wait of this long per batch")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import torch

    from napari_cryoden.data.packed import PackedStore

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA GPU: use --device cpu")
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"CPU ({os.cpu_count()} cores)")
    store = PackedStore.open(write_store(args.data, args.patches, args.size))
    order = np.random.default_rng(0).permutation(store.count)
    rows = [{"step_ms": 0.0, "what": "readers alone (deepest ring, no step)",
             **run_depth(store, order, max(args.depths), args.batch, args.threads, 0.0, device)}]
    for depth in args.depths:
        rows.append({"step_ms": args.step_ms, "what": f"ring {depth}",
                     **run_depth(store, order, depth, args.batch, args.threads,
                                 args.step_ms / 1e3, device)})
    step_alone = args.batch / (args.step_ms / 1e3) if args.step_ms else float("inf")
    bound = min(rows[0]["patches_per_s"], step_alone)
    print(f"{name}, torch {torch.__version__}; {store.count} patches of {args.size}² float16, "
          f"batch {args.batch}, {args.threads} reader threads, cold cache each run, "
          f"{time.strftime('%Y-%m-%d')}")
    print(f"bound: readers alone {rows[0]['patches_per_s']:.0f} patches/s "
          f"({rows[0]['disk_mb_per_s']:.0f} MB/s), the step alone {step_alone:.0f} patches/s")
    print(f"{'run':40s} {'patches/s':>10} {'MB/s':>7} {'of bound':>9} {'host MB':>8} "
          f"{'window s':>9}")
    for row in rows:
        row["of_bound"] = row["patches_per_s"] / bound
        print(f"{row['what']:40s} {row['patches_per_s']:10.0f} {row['disk_mb_per_s']:7.0f} "
              f"{row['of_bound']:9.0%} {row['host_mb']:8.0f} {row['window_s']:9.1f}")
    if args.json:
        args.json.write_text(json.dumps({"device": name, "torch": torch.__version__,
                                         "batch": args.batch, "size": args.size,
                                         "threads": args.threads, "step_ms": args.step_ms,
                                         "bound": bound, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
