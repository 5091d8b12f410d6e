"""What *Fit to these micrographs* runs in its worker, where it saves, and what it reports.

No Qt here: :func:`fit_work` is the worker's generator (it yields the time box, then the core's
progress, and returns :class:`FitDone`), :func:`default_output` the file the adapted model goes
to (next to the micrograph's file when it has one and the folder is writable, else the cache
folder; never over an existing file), and :func:`report_lines` the before/after the panel shows.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Budget", "FitDone", "FitJob", "KEPT", "OPTIONS", "breakable", "default_output",
           "fit_work", "progress_text", "report_lines", "warm_up"]

OPTIONS: dict[str, Any] = {}
"""Further :class:`~napari_cryoden.training.adapt.AdaptOptions` fields for every fit (tests)."""

KEPT = ("The fine-tune did not beat the starting model on held-out patches; kept it "
        "(a fine-tune must beat it by more than chance; Model is unchanged, no file written).")


@dataclass(frozen=True)
class FitJob:
    """One fit: the starting weights, the micrographs' data (never layers) and where to save."""

    weights: Path
    start_name: str
    device: str
    seconds: float | None
    pairs: tuple[tuple[Any, Any], ...]
    names: tuple[str, ...]
    out: Path


@dataclass(frozen=True)
class Budget:
    """Yielded first: the time box in seconds (resolved on the device)."""

    seconds: float


@dataclass(frozen=True)
class FitDone:
    """The end of a fit: its report, and the file written (None when the start was kept)."""

    report: dict[str, Any]
    out: Path | None


def fit_work(job: FitJob, stop: threading.Event) -> Generator[Any, None, FitDone]:
    """Load the start, fine-tune it on the job's micrographs, save it if it helped (worker)."""
    from napari_cryoden.inference.cache import cpu_threads, spare_cores

    with cpu_threads(spare_cores()):  # one core stays with the window's thread
        return (yield from _fit(job, stop))


def _fit(job: FitJob, stop: threading.Event) -> Generator[Any, None, FitDone]:
    from napari_cryoden.api._adapt import Adapted, adapt_events, save_adapted
    from napari_cryoden.inference.load import load_denoiser
    from napari_cryoden.training.adapt import AdaptOptions, default_seconds

    start = load_denoiser(job.weights, job.device)
    seconds = job.seconds or default_seconds(start.device)
    yield Budget(seconds)
    pairs = [(np.asarray(a, np.float32), None if b is None else np.asarray(b, np.float32))
             for a, b in job.pairs]
    options = AdaptOptions(**{"seconds": seconds, "device": str(start.device), **OPTIONS})
    for event in adapt_events(start, pairs, options, names=job.names, stop=stop.is_set):
        if not isinstance(event, Adapted):
            yield event
            continue
        if event.result.kept_start:
            return FitDone(event.report, None)
        job.out.parent.mkdir(parents=True, exist_ok=True)  # the cache folder, the first time
        return FitDone(event.report, save_adapted(start, event, job.out))
    raise RuntimeError("the fine-tune ended without a result")


def warm_up() -> None:
    """Import the fine-tune's modules and take one optimizer step on a dummy (worker).

    Run when the section is opened, so that the imports torch makes at its first optimizer
    step do not hold the interpreter while the user's fit runs.
    """
    import torch

    import napari_cryoden.api._adapt  # noqa: F401
    import napari_cryoden.training.adapt  # noqa: F401
    import napari_cryoden.training.adapt_snr  # noqa: F401

    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.Adam([weight], lr=1e-3)
    (weight * 2).sum().backward()
    optimizer.step()


def default_output(source: str | os.PathLike[str] | None, name: str) -> Path:
    """``<name>_adapted.safetensors`` next to ``source``, or in the cache folder; a free name."""
    from napari_cryoden.io.disk_cache import cache_folder

    stem = re.sub(r"[^\w.-]+", "_", name).strip("._") or "micrograph"
    folder = cache_folder() / "adapted"
    if source is not None and Path(source).parent.is_dir() and os.access(
            Path(source).parent, os.W_OK):
        folder = Path(source).parent
    path, n = folder / f"{stem}_adapted.safetensors", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}_adapted_{n}.safetensors"
    return path


def progress_text(before: float, now: float, steps: int, left: float) -> str:
    """``held-out loss 0.0123 → 0.0119, 240 steps, 31 s left``."""
    return (f"held-out loss {before:.4g} → {now:.4g}, {steps} steps, "
            f"{max(0, round(left))} s left")


def report_lines(report: dict[str, Any], out: Path | None) -> list[str]:
    """The before/after the panel shows when a fit ends."""
    from napari_cryoden.api._adapt import HALVES_CAUTION, split_frame_line, sums_line

    before, after = report["held_out_loss_before"], report["held_out_loss_after"]
    change = 100 * (after - before) / before if before else 0.0
    mode = "Noise2Noise on even/odd halves" if report["mode"] == "n2n" else "blind spot"
    lines = [f"Held-out loss: {before:.4g} before, {after:.4g} after ({change:+.1f} %); "
             f"{report['steps']} steps of {mode} in {report['seconds']:.0f} s."]
    if report.get("split_frame_snr") is not None:
        lines.append(_sentence(split_frame_line(report["split_frame_snr"])))
    elif report["mode"] == "n2n":
        lines.append("Split-frame SNR: not measured (stopped).")
    sums = report.get("sums_check")
    if sums is not None:
        lines.append(_sentence(sums_line(sums)))
    if report["kept_start"]:
        reason = (f"The fine-tune diverged. {KEPT}" if report["diverged"]
                  else "The fine-tune beat it on the halves but not on their sums; Model is "
                       "unchanged, no file written." if sums is not None else KEPT)
        lines.append(f"Kept start: yes. {reason}")
    else:
        lines.append(f"Kept start: no. Saved to {out}; it is now the Denoise model.")
        if report["mode"] == "n2n":
            lines.append(_sentence(HALVES_CAUTION))
    return lines


def _sentence(text: str) -> str:
    """``text`` capitalised, with a full stop: a report line of the CLI's as the panel says it."""
    return f"{text[0].upper()}{text[1:]}."


def breakable(text: Any) -> str:
    """``text`` with a zero-width space after each ``/``: a long path wraps in a narrow panel."""
    return str(text).replace("/", "/\u200b")
