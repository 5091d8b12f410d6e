"""Adapt a trained model to the user's own micrographs, self-supervised, in a time box.

:func:`adapt_steps` fine-tunes a model on patches of the given micrographs: Noise2Noise when
even/odd halves exist, a blind-spot objective otherwise (N2V2-style: the masked pixel shows the
median of its neighbours, not a copy of one), which it refuses for micrographs whose noise is
not white (:func:`~.adapt_data.check_white_noise`). It reuses the training loop's pieces: the
mode's batch maker (:class:`~.modes.ModeBatches`, seeded per step) and its update
(:func:`~.steps.make_step`). A seeded share of the patches is held out; the model is scored on
them before the first step and every ``validate_every`` steps, and the best state wins. A state
counts only if it beats the starting model on the same held-out patches by more than chance
(``AdaptOptions.evidence`` standard errors of the paired difference); when none does, the
result *is* the starting model (the never-worse rule). The generator yields
:class:`AdaptProgress` (the first, at step 0, the starting model's score; it is not in the
history) and finally one :class:`AdaptResult`; it never prints.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..config.sections import TrainConfig
from ..devices import resolve_device
from .adapt_data import AdaptData, Micrograph, check_white_noise, default_names, split_patches
from .modes import ModeBatches
from .steps import make_step

if TYPE_CHECKING:
    from .adapt_sums import SumsCheck

__all__ = ["AdaptOptions", "AdaptProgress", "AdaptResult", "adapt_steps", "default_batch_size",
           "default_seconds"]

CPU_SECONDS, GPU_SECONDS = 60.0, 10.0
"""Default time boxes: a minute on a CPU, ten seconds on a GPU."""
CPU_BATCH, GPU_BATCH = 8, 32
"""Default patches per step. On an H100 a step of 32 took about 1.5× one of 8 (812-982 against
889-1557 steps in 10 s), so the GPU's box sees 2.7× the patches: the mean gain over general-v1
at 0.4 Å/px rose from +1.40 to +1.81 dB and its worst seed's from +1.13 to +1.70 dB
(docs/quality.md). On 2 CPU cores a step of 32 took 2.9-3.9× one of 8, so 8 keeps more updates
in the CPU's minute."""


@dataclass(frozen=True)
class AdaptOptions:
    """How an adaptation runs.

    Defaults were chosen with benchmarks/adapt_sweep.py and adapt_shift.py (docs/quality.md).
    """

    seconds: float | None = None
    """Time box (s) for the fine-tune, validation included; None: 60 on a CPU, 10 on a GPU."""
    lr: float = 1e-3
    """Adam learning rate."""
    patch_size: int = 64
    """Side of the square patches (px) learned from and held out."""
    batch_size: int | None = None
    """Patches per step; None: 8 on a CPU, 32 on a GPU."""
    held_out: float = 0.2
    """Share of the patches held out to judge the fine-tune."""
    validate_every: int = 10
    """Steps between scorings on the held-out patches."""
    max_steps: int | None = None
    """Stop after this many steps even inside the time box (None: only the time box)."""
    seed: int = 0
    """Held-out patches, batches, flips and blind spots."""
    device: str = "auto"
    """Where to fine-tune: auto, cpu, cuda[:n] or mps."""
    n2v_fraction: float = 0.05
    """Blind spot: fraction of each patch's pixels masked per step."""
    max_val_patches: int = 64
    """At most this many held-out patches are scored (a fixed, seeded subset)."""
    val_passes: int = 4
    """Blind spot: held-out patches are scored with this many fixed sets of masked pixels (more
    pixels judged: a real gain is told from chance more often)."""
    check_sums: bool = True
    """Noise2Noise: keep a fine-tune only if it is also better on the held-out patches of the
    halves' sums by Stein's unbiased risk estimate, by ``evidence`` standard errors
    (:func:`~.adapt_sums.sums_check`)."""
    check_noise: bool = True
    """Blind spot: refuse micrographs whose noise is not white
    (:func:`~.adapt_data.check_white_noise`); False only to measure what it does to them."""
    evidence: float = 2.0
    """A fine-tuned state replaces the start only if its held-out loss is lower by more than
    this many standard errors of the per-patch difference (0: any improvement counts)."""
    tune: str = "biases"
    """Which parameters the fine-tune changes: ``biases`` (every layer's bias and no weight,
    BitFit-style: 321 numbers in ``general``, which shift each layer's response but are too few
    to learn one micrograph's particulars) or ``all``. On physics-grade sums, fits of all
    parameters that every judge passed were worse on other micrographs in 9 of 12 cases (down
    to −2.71 dB); biases-only fits were never worse there in 24 runs and gained up to 0.64 dB.
    On the cartoon conditions, far from the model's training data, ``all`` gains about twice
    as much (docs/quality.md)."""
    hold_out_micrographs: bool = False
    """Hold out whole micrographs (``held_out`` of them, at least one) instead of patches of
    every micrograph, so the judge sees micrographs the fine-tune never learned from. Needs
    two micrographs or more; with one, patches are held out."""


@dataclass(frozen=True)
class AdaptProgress:
    """A scoring on the held-out patches after ``step`` steps and ``seconds`` s."""

    step: int
    seconds: float
    train_loss: float | None
    held_out_loss: float


@dataclass(frozen=True)
class AdaptResult:
    """What an adaptation did: the model to keep and the numbers that chose it."""

    model: nn.Module
    mode: str
    kept_start: bool
    loss_before: float
    loss_after: float
    steps: int
    best_step: int
    seconds: float
    n_train_patches: int
    n_held_out_patches: int
    diverged: bool = False
    history: list[AdaptProgress] = field(default_factory=list)
    batch_size: int = CPU_BATCH
    """Patches per step (the device's default unless one was given)."""
    sums_check: dict[str, float | int | bool] | None = None
    """Noise2Noise: the check on the halves' sums (:class:`~.adapt_sums.SumsCheck`'s numbers),
    when a state beat the start on the halves; the start is kept unless ``passed``."""
    tune: str = "biases"
    """Which parameters the fine-tune changed (:attr:`AdaptOptions.tune`)."""

    def summary(self) -> dict[str, object]:
        """JSON-able numbers (no model)."""
        return {"mode": self.mode, "kept_start": self.kept_start, "diverged": self.diverged,
                "held_out_loss_before": self.loss_before, "held_out_loss_after": self.loss_after,
                "steps": self.steps, "batch_size": self.batch_size,
                "best_step": self.best_step, "seconds": self.seconds,
                "n_train_patches": self.n_train_patches,
                "n_held_out_patches": self.n_held_out_patches, "sums_check": self.sums_check,
                "tune": self.tune,
                "history": [vars(p) for p in self.history]}


def default_seconds(device: torch.device) -> float:
    """Return the default time box on ``device``: 60 s on a CPU, 10 s on a GPU."""
    return CPU_SECONDS if device.type == "cpu" else GPU_SECONDS


def default_batch_size(device: torch.device) -> int:
    """Return the default patches per step on ``device``: 8 on a CPU, 32 on a GPU."""
    return CPU_BATCH if device.type == "cpu" else GPU_BATCH


def adapt_steps(model: nn.Module, micrographs: Sequence[Micrograph], normalization: str,
                options: AdaptOptions = AdaptOptions(), *, names: Sequence[str] | None = None,
                stop: Callable[[], bool] | None = None,
                ) -> Iterator[AdaptProgress | AdaptResult]:
    """Fine-tune a copy of ``model`` on ``micrographs``; yield progress, then the result.

    Parameters
    ----------
    model
        The starting model; it is not modified.
    micrographs
        ``(noisy, None)`` per micrograph for the blind-spot objective, or ``(even, odd)`` for
        Noise2Noise (all of one kind).
    normalization
        The starting model's per-micrograph normalisation (``Checkpoint.normalization``).
    options
        Time box, learning rate, patches, seed, device.
    names
        File names, for error messages.
    stop
        Polled before every step; True ends the fine-tune early (the best state so far wins).

    Raises
    ------
    InputError
        At the first ``next``: a micrograph is too small, or (blind spot, unless
        ``options.check_noise`` is False) its noise is not white.
    """
    start_time = time.perf_counter()
    halves = [b is not None for _, b in micrographs]
    if any(halves) and not all(halves):
        raise ValueError("give even/odd halves for every micrograph or for none")
    mode = "n2n" if halves and all(halves) else "n2v"
    if mode == "n2v" and options.check_noise:
        check_white_noise([a for a, _ in micrographs], names or default_names(len(micrographs)))
    device = resolve_device(options.device)
    budget = options.seconds if options.seconds is not None else default_seconds(device)
    data = split_patches(micrographs, options.patch_size, options.held_out, options.seed,
                         normalization, names, by_micrograph=options.hold_out_micrographs)
    data = data.capped(options.max_val_patches)
    run = _Run(model, data, mode, options, device)
    yield from run.loop(start_time, budget, stop or (lambda: False))
    if mode == "n2n" and options.check_sums and run.best_state is not run.start:
        run.check_sums([(a, b) for a, b in micrographs if b is not None], normalization)
    yield run.result(time.perf_counter() - start_time)


class _Run:
    """The state of one adaptation: the model being tuned and the best state so far."""

    def __init__(self, model: nn.Module, data: AdaptData, mode: str, options: AdaptOptions,
                 device: torch.device) -> None:
        self.start = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.model = _copy(model, device)
        self.data, self.mode, self.options, self.device = data, mode, options, device
        self.batch_size = (options.batch_size if options.batch_size is not None
                           else default_batch_size(device))
        config = TrainConfig(mode=mode, seed=options.seed, n2v_fraction=options.n2v_fraction)
        self.modes = ModeBatches(config, device, replacement="median")
        optimizer = torch.optim.Adam(_trainable(self.model, options.tune), lr=options.lr)
        self.update = make_step(self.model, optimizer, "fp32")
        self.generator = torch.Generator().manual_seed(options.seed)
        self.history: list[AdaptProgress] = []
        self.steps, self.best_step, self.diverged = 0, 0, False
        self.sums: SumsCheck | None = None
        self.before, self.start_losses = self.held_out()
        self.best = self.before
        self.best_state = self.start

    def loop(self, t0: float, budget: float,
             stop: Callable[[], bool]) -> Iterator[AdaptProgress]:
        """Step until the time box, ``max_steps`` or ``stop``; score every few steps."""
        limit = self.options.max_steps
        losses: list[float] = []
        # the starting model's score, so progress reads "before → now" from the start
        yield AdaptProgress(0, time.perf_counter() - t0, None, self.before)
        while (time.perf_counter() - t0 < budget and not stop()
               and (limit is None or self.steps < limit)):
            loss = self.step()
            if not math.isfinite(loss):
                self.diverged = True
                break
            losses.append(loss)
            if self.steps % self.options.validate_every == 0:
                yield self.score(t0, losses)
                losses = []
        if losses and not self.diverged:
            yield self.score(t0, losses)

    def step(self) -> float:
        """One update on a random batch of training patches; returns its loss."""
        a, b = self.data.batch(self.generator, self.batch_size)
        x, y, mask = self.modes.training(a.to(self.device), b.to(self.device), self.steps)
        self.model.train()
        loss = self.update(x, y, **({} if mask is None else {"mask": mask}))
        self.steps += 1
        return float(loss)

    def score(self, t0: float, losses: list[float]) -> AdaptProgress:
        """Score the model on the held-out patches; keep its state if it is the best."""
        value, per_patch = self.held_out()
        if value < self.best and self.beats_start(per_patch):
            self.best, self.best_step = value, self.steps
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        progress = AdaptProgress(self.steps, time.perf_counter() - t0,
                                 sum(losses) / len(losses) if losses else None, value)
        self.history.append(progress)
        return progress

    def beats_start(self, per_patch: torch.Tensor) -> bool:
        """Whether held-out losses ``per_patch`` beat the start's by more than chance.

        The test is paired: each patch's loss minus the start's on the same patch (same blind
        spots), whose mean must lie ``options.evidence`` standard errors below zero. A
        lower mean alone is not enough: with few held-out patches it is often noise, and a
        state kept on noise can be worse on the user's other micrographs.
        """
        diff = per_patch - self.start_losses
        if diff.numel() < 2:
            return bool(diff.mean() < 0)
        error = float(diff.std()) / math.sqrt(diff.numel())
        return float(diff.mean()) < -self.options.evidence * error

    @torch.no_grad()
    def held_out(self) -> tuple[float, torch.Tensor]:
        """Return the mode's loss on the held-out patches, pooled and per patch.

        Blind-spot patches are scored on the same masked pixels every time.
        """
        self.model.eval()
        n = self.data.n_val
        sums = torch.zeros(n, dtype=torch.float64)
        counts = torch.zeros(n, dtype=torch.float64)
        passes = self.options.val_passes if self.mode == "n2v" else 1
        starts = [s for _ in range(passes) for s in range(0, n, 16)]
        for index, start in enumerate(starts):
            a = self.data.val_a[start:start + 16].to(self.device)
            b = self.data.val_b[start:start + 16].to(self.device)
            x, y, mask = self.modes.validation(a, b, index)
            err = (self.model(x).float() - y) ** 2
            if mask is None:
                mask = torch.ones_like(err, dtype=torch.bool)
            err = torch.where(mask, err, torch.zeros_like(err))
            sums[start:start + len(a)] += err.flatten(1).sum(1).double().cpu()
            counts[start:start + len(a)] += mask.flatten(1).sum(1).double().cpu()
        value = float(sums.sum() / counts.sum().clamp(min=1))
        per_patch = sums / counts.clamp(min=1)
        return (value, per_patch) if math.isfinite(value) else (math.inf, per_patch)

    def check_sums(self, halves: Sequence[tuple[Any, Any]], normalization: str) -> None:
        """Keep the start unless the best state is also better on the halves' sums."""
        from .adapt_sums import sums_check

        start = _copy(self.model, self.device)
        start.load_state_dict(self.start)
        tuned = _copy(self.model, self.device)
        tuned.load_state_dict(self.best_state)
        self.sums = sums_check(start, tuned, halves, normalization, self.options.patch_size,
                               self.options.held_out, self.options.seed, self.device,
                               self.options.max_val_patches, self.options.evidence,
                               self.options.hold_out_micrographs)
        if not self.sums.better:
            self.best_state, self.best, self.best_step = self.start, self.before, 0

    def result(self, seconds: float) -> AdaptResult:
        """Return the model to keep (the starting one, unless a state beat it) and the numbers."""
        kept = self.best_state is self.start
        self.model.load_state_dict(self.best_state)
        self.model.requires_grad_(True)  # as the caller's model was
        self.model.eval()
        return AdaptResult(self.model, self.mode, kept, self.before, self.best, self.steps,
                           self.best_step, seconds, self.data.n_train, self.data.n_val,
                           self.diverged, self.history, self.batch_size,
                           None if self.sums is None else self.sums.summary(), self.options.tune)


def _trainable(model: nn.Module, tune: str) -> list[nn.Parameter]:
    """Freeze what ``tune`` leaves alone; return the parameters to optimise."""
    if tune not in ("all", "biases"):
        raise ValueError(f"tune must be 'all' or 'biases', got {tune!r}")
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(tune == "all" or name.endswith("bias"))
    return [p for p in model.parameters() if p.requires_grad]


def _copy(model: nn.Module, device: torch.device) -> nn.Module:
    """Return a copy of ``model`` on ``device`` (the caller's model stays as it was)."""
    return copy.deepcopy(model).to(device)
