"""Local (patch) motion for ``split-frames --align --patches N``, applied by Fourier shifts.

Beam-induced motion is not one shift per frame: different parts of the field of view move
differently (doming, local charging). :func:`estimate_local_field` measures it as MotionCor2's
``-Patch N N`` does: after the whole-frame estimate, the binned movie is cut into N × N patches
(half-overlapping) and each patch's motion is refined by cross-correlation against the mean of
the other frames (teamtomo's ``torch-motion-correction``, called in pixels: see
:func:`.align.estimate_shifts`), smoothed in time; the result is a spline field over time and
space. :class:`TileShifter` applies it to a full-size frame without smoothing the noise: the
frame is cut into half-overlapping square tiles, each moved by the field's shift at its centre
by a Fourier shift (with a margin, so nothing wraps in) and blended back with a Hann window
whose shifted copies sum to one. Where two neighbouring tiles' shifts differ, their blend mixes
two copies shifted by that difference (a fraction of a pixel for smooth motion).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

__all__ = ["TILE", "TileShifter", "estimate_local_field"]

TILE = 256
"""Full-size tiles are this many pixels on a side (half-overlapping)."""
MARGIN = 32
"""Pixels around a tile shifted with it beyond the largest shift: a fractional Fourier shift is a
sinc interpolation, whose tail a narrow margin would cut."""


def estimate_local_field(binned: np.ndarray, pixel_size: float, patches: int,
                         global_shifts: np.ndarray) -> np.ndarray:
    """Refine whole-frame shifts into a field over an N × N grid of patches.

    Parameters
    ----------
    binned
        The (binned) movie ``(t, y, x)`` the global shifts were estimated on.
    pixel_size
        Its Å per pixel.
    patches
        N: patches along each axis (at least 2).
    global_shifts
        ``(t, 2)`` whole-frame (y, x) shifts in pixels of ``binned`` (middle frame at 0).

    Returns
    -------
    numpy.ndarray
        ``(2, t, gh, gw)`` (y, x) shifts in pixels of ``binned``, relative to the middle frame at
        each place, on the grid of the library's deformation field (corners at the image's).
    """
    import torch
    import torch_motion_correction as tmc

    from .align import pixel_filter

    movie = torch.from_numpy(np.ascontiguousarray(binned, dtype=np.float32))
    height, width = movie.shape[-2:]
    shape = (max(2 * height // (patches + 1), 32), max(2 * width // (patches + 1), 32))
    start = tmc.DeformationField.from_frame_shifts(
        torch.as_tensor(global_shifts, dtype=torch.float32), pixel_spacing=1.0)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        field, _ = tmc.estimate_motion_cross_correlation_patches(
            movie, 1.0, tmc.PatchSamplingConfig(patch_shape=shape, overlap=0.5),
            fourier_filter=pixel_filter(tmc, pixel_size), initial_deformation_field=start)
    data = field.data.detach().numpy().astype(np.float64)  # (2, t, gh, gw), px
    return data - data[:, len(binned) // 2, None]


class TileShifter:
    """Move full-size frames by a local shift field, tile by tile (module docstring)."""

    def __init__(self, field: np.ndarray, shape: tuple[int, int],
                 factors: tuple[float, float]) -> None:
        """``field``: ``(2, t, gh, gw)`` in binned pixels; ``factors``: full px per binned px."""
        import torch
        import torch_motion_correction as tmc

        self.shape = shape
        ny, nx = shape
        self.tile = min(TILE, ny, nx) // 2 * 2
        step = self.tile // 2
        # from half a tile before the edge: every pixel lies under two tiles along each axis,
        # whose windows sum to one
        ys, xs = np.arange(-step, ny, step), np.arange(-step, nx, step)
        self.corners = [(int(y), int(x)) for y in ys for x in xs]
        centres = np.array([(y + self.tile / 2, x + self.tile / 2) for y, x in self.corners])
        n_t = field.shape[1]
        spline = tmc.DeformationField(torch.as_tensor(field, dtype=torch.float32))
        where = np.clip(centres / np.array([max(ny - 1, 1), max(nx - 1, 1)]), 0.0, 1.0)
        self.shifts = np.empty((n_t, len(where), 2))
        with torch.no_grad():
            for k in range(n_t):
                t = k / max(n_t - 1, 1)
                tyx = torch.as_tensor(np.column_stack([np.full(len(where), t), where]),
                                      dtype=torch.float32)
                self.shifts[k] = spline(tyx).numpy() * np.asarray(factors)
        self.margin = int(math.ceil(np.abs(self.shifts).max())) + MARGIN
        window = np.sin(np.pi * (np.arange(self.tile) + 0.5) / self.tile) ** 2
        self.window = np.outer(window, window)  # shifted by half a tile, copies sum to 1

    def largest(self) -> float:
        """Return the largest shift of any tile in any frame, px."""
        return float(np.max(np.hypot(self.shifts[..., 0], self.shifts[..., 1])))

    def shift(self, frame: np.ndarray, k: int) -> np.ndarray:
        """Frame ``k`` moved by the field, float64."""
        from .align import shift_frame

        ny, nx = self.shape
        m, size = self.margin, self.tile
        padded = np.pad(np.asarray(frame, dtype=np.float32), m + size, mode="reflect")
        out, weight = np.zeros((ny, nx)), np.zeros((ny, nx))
        for (y, x), shift in zip(self.corners, self.shifts[k], strict=True):
            piece = padded[y + size:y + 2 * size + 2 * m, x + size:x + 2 * size + 2 * m]
            core = shift_frame(piece, shift)[m:m + size, m:m + size] * self.window
            y0, x0, y1, x1 = max(y, 0), max(x, 0), min(y + size, ny), min(x + size, nx)
            out[y0:y1, x0:x1] += core[y0 - y:y1 - y, x0 - x:x1 - x]
            weight[y0:y1, x0:x1] += self.window[y0 - y:y1 - y, x0 - x:x1 - x]
        return out / np.maximum(weight, 1e-6)
