"""Is a Noise2Noise fine-tune better on the *sums*? A check that needs no clean image.

A Noise2Noise fine-tune learns from, and is judged on, one half at a time, whose noise is twice
the sum's; the model best for half-dose input can over-smooth the sums it is then used on, and
on physics-grade sums such fits came out up to 3.2 dB worse although their held-out loss fell
(docs/quality.md). This check compares the start and the fine-tune on the held-out patches of
the **sums** ``y = even + odd``, by Stein's unbiased risk estimate for Gaussian noise of
covariance ``C`` (Stein 1981)::

    E‖D(y) − s‖² = E‖D(y) − y‖² − tr C + 2 E tr(C ∇D(y))

with the divergence term by Monte Carlo (Ramani, Blu & Unser 2008):
``tr(C ∇D(y)) ≈ E_b ⟨b, D(y + εb) − D(y)⟩ / ε``, ``b ~ N(0, C)``. ``C`` comes from the halves:
``even − odd`` is noise alone with the covariance of ``even + odd``'s noise (disjoint frames:
independent noises of equal variance), so its power spectrum, averaged over patches, colours
white draws. ``tr C`` cancels in the paired difference of two models, patch by patch.

It assumes Gaussian, stationary noise (a sum of many frames of counts is close to it). On the
held-out patches of four physics-grade micrographs its estimate had the sign of the true change
in 3 of 4 (the fourth, a true gain, it called a small loss). It sees only the micrograph(s)
adapted on: a fine-tune it passed, truly better on those patches, was 2.71 dB worse on other
micrographs of the same condition (docs/quality.md), so it lowers the harm of a halves fit but
does not make it never-worse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .adapt_data import split_patches

__all__ = ["SumsCheck", "coloured_noise", "noise_spectrum", "sums_check", "sure_terms"]

DRAWS = 8
"""Noise draws per patch for the divergence."""
EPSILON = 0.01
"""Step of the finite difference, in units of the (normalised) noise."""


@dataclass(frozen=True)
class SumsCheck:
    """The estimated change of the squared error on the sums, per pixel (normalised units)."""

    change: float
    """Mean over the patches of (fine-tune − start); below 0: the fine-tune is better."""
    error: float
    """Standard error of that mean (patch to patch)."""
    n_patches: int
    evidence: float = 2.0
    """How many standard errors below zero the change must lie for the fine-tune to pass."""

    @property
    def better(self) -> bool:
        """Whether the fine-tune is better on the sums by more than chance."""
        return self.change < -self.evidence * self.error

    def summary(self) -> dict[str, float | int | bool]:
        """JSON-able numbers."""
        return {"mse_change": self.change, "error": self.error, "n_patches": self.n_patches,
                "evidence": self.evidence, "passed": self.better}


def sums_check(start: nn.Module, tuned: nn.Module,
               halves: Sequence[tuple[np.ndarray, np.ndarray]], normalization: str,
               patch_size: int, held_out: float, seed: int, device: torch.device,
               most: int = 64, evidence: float = 2.0,
               by_micrograph: bool = False) -> SumsCheck:
    """Compare ``tuned`` with ``start`` on the held-out patches of the halves' sums.

    Parameters
    ----------
    start, tuned
        The two models (evaluated, not changed).
    halves
        ``(even, odd)`` per micrograph, as given to the fine-tune.
    normalization, patch_size, held_out, seed
        As the fine-tune used them: the same patches are held out here.
    device
        Where the models run.
    most
        At most this many held-out patches (evenly spaced).
    evidence
        Standard errors below zero the change must lie to pass (the fine-tune's own rule).
    by_micrograph
        The fine-tune held out whole micrographs (the same ones are checked here).
    """
    sums, noise = _held_out_sums(halves, normalization, patch_size, held_out, seed, most,
                                 by_micrograph)
    spectrum = noise_spectrum(noise)
    generator = np.random.default_rng(seed)
    draws = [coloured_noise(spectrum, len(sums), generator) for _ in range(DRAWS)]
    risks = [_risk(net, sums, draws, device) for net in (start, tuned)]
    diff = (risks[1] - risks[0]) / patch_size**2
    error = float(diff.std()) / math.sqrt(len(diff)) if len(diff) > 1 else math.inf
    return SumsCheck(float(diff.mean()), error, len(diff), evidence)


def _held_out_sums(halves: Sequence[tuple[np.ndarray, np.ndarray]], normalization: str,
                   size: int, held_out: float, seed: int, most: int,
                   by_micrograph: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Return the normalised sums and the halves' differences at the held-out patches.

    :func:`~.adapt_data.split_patches` of the pairs ``(even + odd, 2·odd)`` holds out the
    fine-tune's patches and normalises both with the sum's statistics, so the difference of a
    pair is ``(even − odd)`` in the sum's normalised units.
    """
    pairs = [(np.asarray(e, np.float32) + np.asarray(o, np.float32),
              2 * np.asarray(o, np.float32)) for e, o in halves]
    data = split_patches(pairs, size, held_out, seed, normalization,
                         by_micrograph=by_micrograph).capped(most)
    return data.val_a[:, 0].numpy(), (data.val_a - data.val_b)[:, 0].numpy()


def noise_spectrum(noise: np.ndarray) -> np.ndarray:
    """Return noise patches' ``(N, P, P)`` mean power spectrum, per pixel (``E|N(k)|² / P²``).

    Its mean over frequencies is the noise variance per pixel (Parseval).
    """
    centred = noise - noise.mean(axis=(1, 2), keepdims=True)
    size = noise.shape[1] * noise.shape[2]
    return np.asarray((np.abs(np.fft.fft2(centred)) ** 2).mean(0) / size)


def coloured_noise(spectrum: np.ndarray, n: int, generator: np.random.Generator) -> np.ndarray:
    """``n`` Gaussian noise patches with that spectrum (circular), ``(n, P, P)`` float32."""
    white = np.fft.fft2(generator.normal(size=(n, *spectrum.shape)))
    return np.real(np.fft.ifft2(white * np.sqrt(spectrum))).astype(np.float32)


def sure_terms(net: nn.Module, y: torch.Tensor, draws: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per patch ``‖D(y) − y‖² + 2 tr(C ∇D(y))``: SURE without its constant ``tr C``.

    ``y`` is ``(B, 1, P, P)``; each draw ``b`` (same shape, noise of covariance ``C``) adds one
    Monte Carlo term ``⟨b, D(y + εb) − D(y)⟩ / ε`` to the divergence (their mean is used).
    Differentiable in the net's parameters when gradients are on: the fine-tune's loss.
    """
    denoised = net(y).float()
    fit = ((denoised - y) ** 2).flatten(1).sum(1)
    divergence = torch.zeros_like(fit)
    for b in draws:
        moved = net(y + EPSILON * b).float()
        divergence = divergence + ((moved - denoised) * b).flatten(1).sum(1) / EPSILON
    return fit + 2 * divergence / len(draws)


@torch.no_grad()
def _risk(net: nn.Module, sums: np.ndarray, draws: Sequence[np.ndarray],
          device: torch.device) -> np.ndarray:
    """Per patch ``‖D(y) − y‖² + 2 tr(C ∇D(y))`` (SURE without the constant ``tr C``)."""
    net.eval()
    out = np.zeros(len(sums))
    for start in range(0, len(sums), 16):
        y = torch.from_numpy(sums[start:start + 16, None]).to(device)
        batch = [torch.from_numpy(d[start:start + 16, None]).to(device) for d in draws]
        out[start:start + len(y)] = sure_terms(net, y, batch).double().cpu().numpy()
    return out
