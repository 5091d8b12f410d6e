"""The CUDA timing loop the GPU benchmarks share."""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch


def cuda_time(fn: Callable[[int], object], steps: int, repeat: int, warmup: int = 2) -> float:
    """Median seconds per call of ``fn(i)`` over ``repeat`` windows of ``steps`` calls, timed by
    CUDA events after ``warmup`` calls (cuDNN autotuning, Triton compilation)."""
    for i in range(warmup):
        fn(i)
    torch.cuda.synchronize()
    windows = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for i in range(steps):
            fn(i)
        end.record()
        end.synchronize()
        windows.append(start.elapsed_time(end) / 1e3 / steps)
    return statistics.median(windows)
