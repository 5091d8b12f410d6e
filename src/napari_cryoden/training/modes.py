"""Training without clean targets: what each mode pairs, and what it does to a batch.

``train.mode`` (:data:`~napari_cryoden.config.sections.MODES`) chooses what the net learns from:

- ``n2c``: noisy input, clean target (the seed's protocol);
- ``n2n``, Noise2Noise (Lehtinen et al. 2018): two independent noisy images of the same
  specimen, e.g. the sums of the even and of the odd frames of one movie. Streams deliver them
  as ``Batch(noisy=even, clean=odd)``; per patch, input and target are swapped at random, so
  the net learns both directions. The expected loss is the MSE to the (unknown) clean image plus
  the target's noise variance, a constant, so minimising it denoises;
- ``n2v``, Noise2Void (Krull et al. 2019): single noisy micrographs, streamed as
  ``Batch(noisy=x, clean=x)``; a few pixels per patch are masked (:mod:`.data.blindspot`) and
  the loss is taken at those pixels only.

:class:`ModeBatches` turns a stream's batch into ``(input, target, mask)`` on the device with
generators seeded from ``(seed, step, rank)``, so a run is reproducible (resumed runs included)
and no host round trip is needed. The file pairs of each mode are
:func:`~napari_cryoden.data.pairs.find_mode_pairs`.
"""

from __future__ import annotations

import numpy as np
import torch

from ..config.sections import MODES, TrainConfig
from .blindspot import blind_spots
from .noise_colour import colour_noise

__all__ = ["MODES", "ModeBatches"]

_TRAIN, _VALIDATION = 0, 1  # generator purposes


class ModeBatches:
    """``(input, target, mask)`` of a batch for the run's mode; ``mask`` is None but for n2v.

    Parameters
    ----------
    config
        The run's train section (``mode``, ``seed``, ``n2v_fraction``, ``noise_colour``).
    device
        Where the batches are; the generators live there.
    rank
        This process's rank: ranks draw different swaps and masks.
    replacement
        n2v: what a masked pixel shows, ``"random"`` (a neighbour) or ``"median"`` (N2V2; see
        :func:`~napari_cryoden.training.blindspot.blind_spots`).
    """

    def __init__(self, config: TrainConfig, device: torch.device, rank: int = 0, *,
                 replacement: str = "random") -> None:
        if config.mode not in MODES:
            raise ValueError(f"unknown mode {config.mode!r}")
        self.mode, self.fraction = config.mode, config.n2v_fraction
        self.replacement = replacement
        self._seed, self._rank = config.seed, rank
        self.noise_colour = config.noise_colour_range  # n2c only (the config checks it)
        self._generator = (torch.Generator(device=device)
                           if config.mode != "n2c" or self.noise_colour else None)

    @property
    def masked(self) -> bool:
        """Whether the loss is taken at masked pixels only (n2v)."""
        return self.mode == "n2v"

    def training(self, noisy: torch.Tensor, clean: torch.Tensor,
                 step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Make the batch of global step ``step``.

        n2c as streamed, its noise coloured with ``noise_colour`` (:mod:`.noise_colour`);
        n2n with swapped halves; n2v with blind spots.
        """
        if self.mode == "n2c" and self.noise_colour is None:
            return noisy, clean, None
        generator = self._seeded(_TRAIN, step)
        if self.mode == "n2c":
            assert self.noise_colour is not None
            return colour_noise(noisy, clean, *self.noise_colour, generator), clean, None
        if self.mode == "n2n":
            swap = torch.rand(noisy.shape[0], generator=generator, device=noisy.device) < 0.5
            swap = swap.view(-1, 1, 1, 1)
            return torch.where(swap, clean, noisy), torch.where(swap, noisy, clean), None
        masked, mask = blind_spots(noisy, self.fraction, generator,
                                   replacement=self.replacement)
        return masked, noisy, mask

    def validation(self, noisy: torch.Tensor, clean: torch.Tensor,
                   index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Make validation batch ``index``.

        n2c and n2n as streamed (the held-out partner is the target); n2v with blind spots that
        are the same in every epoch.
        """
        if self.mode != "n2v":
            return noisy, clean, None
        masked, mask = blind_spots(noisy, self.fraction, self._seeded(_VALIDATION, index),
                                   replacement=self.replacement)
        return masked, noisy, mask

    def _seeded(self, purpose: int, index: int) -> torch.Generator:
        assert self._generator is not None
        words = [self._seed % 2**64, purpose, index, self._rank]
        state = np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0]
        return self._generator.manual_seed(int(state) >> 1)
