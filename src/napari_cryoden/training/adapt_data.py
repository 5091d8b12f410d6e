"""The patches an adaptation learns from and the held-out patches it is judged on.

The user's micrographs are normalised the way the starting model was trained (per micrograph,
statistics of the noisy image), cut into a grid of square patches, and a seeded share of the
patches is held out: the same seed holds out the same regions. With even/odd halves each patch
is a pair (Noise2Noise); with one noisy image per micrograph it is the image itself (blind spot).

A blind spot needs noise that is independent from pixel to pixel. :func:`check_white_noise`
refuses micrographs whose power spectrum falls towards Nyquist (detector MTF, the interpolation
of motion correction, dose weighting): on such physics-grade sums the blind-spot fine-tune made
``general`` 11-15 dB worse while its held-out loss improved (docs/quality.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..data.normalize import fit_normalizer
from ..errors import InputError
from ..simulation.physics.detector import radial_frequency

__all__ = ["AdaptData", "Micrograph", "WHITE_NOISE_RATIO", "check_white_noise",
           "default_names", "held_out_boxes", "nyquist_power_ratio", "split_patches", "turned"]

WHITE_NOISE_RATIO = 0.8
"""Least :func:`nyquist_power_ratio` of a micrograph a blind spot may learn from. Measured
(benchmarks/adapt_shift.py's micrographs): 0.975-0.996 with white noise (cartoon simulator),
0.13-0.44 on physics-grade sums (K2, K3, Falcon 4i MTFs, motion correction, dose weighting)."""

Micrograph = tuple[np.ndarray, np.ndarray | None]
"""One micrograph: the noisy image (or even half) and its odd half, or None."""


@dataclass(frozen=True)
class AdaptData:
    """Normalised patches ``(N, 1, P, P)``: inputs and partners (the inputs again without halves).

    ``train_*`` are learned from, ``val_*`` are held out (never seen by the optimizer).
    """

    train_a: torch.Tensor
    train_b: torch.Tensor
    val_a: torch.Tensor
    val_b: torch.Tensor

    @property
    def n_train(self) -> int:
        """Training patches."""
        return int(self.train_a.shape[0])

    @property
    def n_val(self) -> int:
        """Held-out patches."""
        return int(self.val_a.shape[0])

    def capped(self, most: int) -> AdaptData:
        """Keep at most ``most`` held-out patches (evenly spaced, so still spread out)."""
        if self.n_val <= most:
            return self
        keep = torch.linspace(0, self.n_val - 1, most).round().long()
        return AdaptData(self.train_a, self.train_b, self.val_a[keep], self.val_b[keep])

    def batch(self, generator: torch.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``size`` training patches at random, each turned by a random one of the 8 flips.

        Parameters
        ----------
        generator
            CPU random source: the same state gives the same batch.
        size
            Patches in the batch.

        Returns
        -------
        tuple of torch.Tensor
            Inputs and partners, ``(size, 1, P, P)``.
        """
        pick, turns = self.draw(generator, size)
        return turned(self.train_a[pick], turns), turned(self.train_b[pick], turns)

    def draw(self, generator: torch.Generator, size: int) -> tuple[torch.Tensor, list[int]]:
        """Pick ``size`` training patches and one of the 8 flips for each.

        What :meth:`batch` uses: indices into ``train_*`` and turns for :func:`turned`.
        """
        pick = torch.randint(0, self.n_train, (size,), generator=generator)
        return pick, torch.randint(0, 8, (size,), generator=generator).tolist()


def split_patches(micrographs: Sequence[Micrograph], patch_size: int, held_out: float,
                  seed: int, normalization: str, names: Sequence[str] | None = None,
                  by_micrograph: bool = False) -> AdaptData:
    """Cut the micrographs into patches and hold out a seeded share of them.

    Parameters
    ----------
    micrographs
        2D noisy images, each with its odd half (then the image is the even half) or None.
    patch_size
        Side of the square patches (px); micrographs smaller than a patch are refused.
    held_out
        Share of the patches held out (at least one patch, at most all but one).
    seed
        Which patches are held out.
    normalization
        The starting model's per-micrograph normalisation (fitted on the noisy image or even
        half, applied to both halves).
    names
        File names for error messages.
    by_micrograph
        Hold out whole micrographs (that share of them, at least one, at most all but one)
        instead of patches spread over all: the judge then sees micrographs the fine-tune never
        learned from. Needs two micrographs or more (with one, patches are held out).

    Raises
    ------
    InputError
        A micrograph is not 2D, is smaller than a patch, its halves differ in shape, or there
        are fewer than two patches in all.
    """
    names = list(names or default_names(len(micrographs)))
    a_parts, b_parts = [], []
    for (a, b), name in zip(micrographs, names, strict=True):
        pa, pb = _patches(a, b, patch_size, normalization, name)
        a_parts.append(pa)
        b_parts.append(pb)
    all_a, all_b = np.concatenate(a_parts), np.concatenate(b_parts)
    n = all_a.shape[0]
    if n < 2:
        raise InputError(f"{names[0]}: too small to adapt on: it gives {n} patch of "
                         f"{patch_size} px; need 2 (one to learn from, one to hold out)")
    val, train = _held_out([len(pa) for pa in a_parts], held_out, seed, by_micrograph)

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x[:, None], dtype=np.float32))

    return AdaptData(tensor(all_a[train]), tensor(all_b[train]), tensor(all_a[val]),
                     tensor(all_b[val]))


def nyquist_power_ratio(image: np.ndarray, crop: int = 1024) -> float:
    """Return the mean power at 0.4-0.5 cycles/px over that at 0.2-0.3 cycles/px.

    About 1 for noise independent from pixel to pixel (a flat spectrum), which dominates a
    low-dose micrograph's outer spectrum; well below 1 when neighbouring pixels share their
    noise. Signal only lowers it. The centre ``crop``² of a larger image is used.
    """
    a = np.asarray(image, np.float64)
    top, left = max(0, (a.shape[0] - crop) // 2), max(0, (a.shape[1] - crop) // 2)
    a = a[top:top + crop, left:left + crop]
    power = np.abs(np.fft.rfft2(a - a.mean())) ** 2
    radius = radial_frequency(a.shape)
    outer = power[(radius > 0.4) & (radius <= 0.5)]
    middle = power[(radius > 0.2) & (radius <= 0.3)]
    return float(outer.mean() / max(middle.mean(), 1e-300))


def check_white_noise(images: Sequence[np.ndarray], names: Sequence[str]) -> None:
    """Refuse, in one line naming the file, a micrograph whose noise a blind spot would learn.

    Raises
    ------
    InputError
        The :func:`nyquist_power_ratio` of an image is below :data:`WHITE_NOISE_RATIO`.
    """
    for image, name in zip(images, names, strict=True):
        ratio = nyquist_power_ratio(image)
        if ratio < WHITE_NOISE_RATIO:
            raise InputError(
                f"{name}: its noise is shared between neighbouring pixels (power near Nyquist "
                f"{ratio:.2f}× that at 0.25 cycles/px; white noise gives 1), as in motion-"
                "corrected sums: a blind-spot fine-tune learns such noise and makes the model "
                "worse. Use the model as it is, or give the even/odd frame sums (Noise2Noise)")


def default_names(n: int) -> list[str]:
    """``micrograph 1`` … ``micrograph n``: what error messages call unnamed micrographs."""
    return [f"micrograph {i + 1}" for i in range(n)]


def held_out_boxes(shapes: Sequence[tuple[int, ...]], patch_size: int, held_out: float,
                   seed: int, by_micrograph: bool = False) -> list[list[tuple[int, int]]]:
    """Return where the held-out patches of :func:`split_patches` lie in each micrograph.

    Parameters
    ----------
    shapes
        The micrographs' shapes, in the order given to :func:`split_patches`.
    patch_size, held_out, seed, by_micrograph
        As given to :func:`split_patches`.

    Returns
    -------
    list of list of (int, int)
        Per micrograph, the ``(y, x)`` top-left corners of its held-out patches.
    """
    grids = [(s[0] // patch_size, s[1] // patch_size) for s in shapes]
    firsts = np.cumsum([0] + [ny * nx for ny, nx in grids])
    val, _ = _held_out([ny * nx for ny, nx in grids], held_out, seed, by_micrograph)
    boxes: list[list[tuple[int, int]]] = [[] for _ in shapes]
    for index in val.tolist():
        k = int(np.searchsorted(firsts, index, side="right")) - 1
        row, col = divmod(index - int(firsts[k]), grids[k][1])
        boxes[k].append((row * patch_size, col * patch_size))
    return boxes


def _held_out(counts: Sequence[int], held_out: float, seed: int,
              by_micrograph: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices of the held-out and the training patches (seeded).

    ``counts`` are the micrographs' patch counts, patches numbered micrograph after micrograph.
    """
    n = int(sum(counts))
    rng = np.random.default_rng(seed)
    if by_micrograph and len(counts) >= 2:
        n_val = min(len(counts) - 1, max(1, round(held_out * len(counts))))
        firsts = np.cumsum([0, *counts])
        chosen = np.sort(rng.permutation(len(counts))[:n_val])
        val = np.concatenate([np.arange(firsts[k], firsts[k + 1]) for k in chosen])
        return val, np.setdiff1d(np.arange(n), val)
    n_val = min(n - 1, max(1, round(held_out * n)))
    order = rng.permutation(n)
    return np.sort(order[:n_val]), np.sort(order[n_val:])


def _patches(a: np.ndarray, b: np.ndarray | None, size: int, normalization: str,
             name: str) -> tuple[np.ndarray, np.ndarray]:
    """Normalised non-overlapping patches of one micrograph (and of its partner)."""
    if a.ndim != 2:
        raise InputError(f"{name}: expected a 2D micrograph, got shape {tuple(a.shape)}")
    if b is not None and b.shape != a.shape:
        raise InputError(f"{name}: the even and odd halves differ in shape "
                         f"({tuple(a.shape)} vs {tuple(b.shape)})")
    if min(a.shape) < size:
        raise InputError(f"{name}: {a.shape[1]} x {a.shape[0]} px is smaller than one "
                         f"{size} px patch: use a smaller patch size")
    norm = fit_normalizer(a, normalization, name)
    ny, nx = a.shape[0] // size, a.shape[1] // size

    def cut(image: np.ndarray) -> np.ndarray:
        x = norm.apply(np.asarray(image[:ny * size, :nx * size], dtype=np.float32))
        return x.reshape(ny, size, nx, size).transpose(0, 2, 1, 3).reshape(-1, size, size)

    pa = cut(a)
    return pa, (cut(b) if b is not None else pa)


def turned(patches: torch.Tensor, turns: Sequence[int]) -> torch.Tensor:
    """Each ``(1, P, P)`` patch of ``patches`` turned by its one of the 8 rotations/reflections."""
    return torch.stack([_dihedral(p, t) for p, t in zip(patches, turns, strict=True)])


def _dihedral(patch: torch.Tensor, turn: int) -> torch.Tensor:
    """One of the 8 rotations/reflections of a ``(1, P, P)`` patch."""
    patch = torch.rot90(patch, turn % 4, dims=(-2, -1))
    return patch.flip(-1) if turn >= 4 else patch
