"""Noise-colour augmentation for noisy → clean training (``train.noise_colour``).

The noise of a real motion-corrected sum is correlated between neighbouring pixels (detector
MTF, the sub-pixel interpolation of frame alignment, dose weighting, Fourier binning); a net
trained on white noise only takes such noise for signal. With a noise-free target, each
training patch's noise ``n = noisy - clean`` is replaced by ``n'``: ``n`` blurred by a Gaussian
of σ drawn uniformly per patch from ``[low, high]`` px (a Fourier filter
``exp(-2π² σ² |f|²)``, periodic at the patch edges), rescaled about its mean to the patch's noise
variance; the input becomes ``clean + n'``. σ = 0 leaves a patch as it was, bit for bit.

Both images of a pair are normalised with the same affine map, fitted on the noisy micrograph
(:mod:`napari_cryoden.data.normalize`; a clean-only store fits it on the noisy patch it made),
so ``noisy - clean`` is the noise in normalised units, and keeping its variance keeps the
input's statistics as the normaliser saw them.
"""

from __future__ import annotations

import math

import torch

__all__ = ["colour_noise"]


def colour_noise(noisy: torch.Tensor, clean: torch.Tensor, low: float, high: float,
                 generator: torch.Generator) -> torch.Tensor:
    """Return ``clean + n'``: each patch's noise coloured by a Gaussian of random σ.

    Parameters
    ----------
    noisy, clean
        ``(B, 1, h, w)`` normalised training pairs (any float dtype, on one device).
    low, high
        The range of σ in px, drawn uniformly per patch (``low == high``: that σ).
    generator
        Draws the σ; on the batch's device, seeded by the caller per step.

    Returns
    -------
    torch.Tensor
        The new input, of ``noisy``'s shape and dtype; patches drawn with σ = 0 unchanged.
    """
    b, _, h, w = noisy.shape
    sigma = low + (high - low) * torch.rand(b, generator=generator, device=noisy.device)
    noise = (noisy.float() - clean.float())
    fy = torch.fft.fftfreq(h, device=noisy.device)[:, None]
    fx = torch.fft.rfftfreq(w, device=noisy.device)[None, :]
    gain = torch.exp(-2 * math.pi**2 * sigma.view(b, 1, 1, 1)**2 * (fy**2 + fx**2))
    blurred = torch.fft.irfft2(torch.fft.rfft2(noise) * gain, s=(h, w))
    mean = noise.mean(dim=(2, 3), keepdim=True)
    spread = (noise - mean).square().mean(dim=(2, 3), keepdim=True)
    kept = (blurred - mean).square().mean(dim=(2, 3), keepdim=True)
    coloured = mean + (blurred - mean) * torch.sqrt(spread / kept.clamp_min(1e-30))
    out = (clean.float() + coloured).to(noisy.dtype)
    return torch.where(sigma.view(b, 1, 1, 1) > 0, out, noisy)
