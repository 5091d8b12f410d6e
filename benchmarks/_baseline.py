"""The plain PyTorch baseline that benchmark ratios are taken against, defined once.

"Plain" used to mean two things: the kernel benchmarks turned TF32 off, ``bench_train``'s plain
loop left PyTorch's defaults on, and the docs called both "TF32 off". Two settings, named here
and used by both scripts, so every ratio says which it is against:

* ``strict fp32``: cuDNN autotuning off, TF32 off for convolutions and matrix products: every
  multiply-add in fp32;
* ``PyTorch defaults``: what a plain loop gets when it sets nothing: cuDNN autotuning off,
  TF32 allowed for convolutions (``torch.backends.cudnn.allow_tf32`` is True by default), off
  for matrix products (``torch.backends.cuda.matmul.allow_tf32`` is False by default).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

BASELINES: dict[str, dict[str, bool]] = {
    "strict fp32": {"benchmark": False, "conv_tf32": False, "matmul_tf32": False},
    "PyTorch defaults": {"benchmark": False, "conv_tf32": True, "matmul_tf32": False},
}


@contextlib.contextmanager
def plain(kind: str) -> Iterator[None]:
    """Run the block with the ``kind`` baseline's backend settings; restore them after."""
    flags = BASELINES[kind]
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32,
             torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.benchmark = flags["benchmark"]
    torch.backends.cudnn.allow_tf32 = flags["conv_tf32"]
    torch.backends.cuda.matmul.allow_tf32 = flags["matmul_tf32"]
    try:
        yield
    finally:
        (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32,
         torch.backends.cuda.matmul.allow_tf32) = saved
