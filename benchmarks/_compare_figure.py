"""The same crop of one held-out micrograph through every method of benchmarks/topaz_compare.py."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

SHORT = {"noisy": "noisy", "Gaussian, σ fitted on training micrographs": "Gaussian (fitted σ)",
         "oracle Gaussian (σ per micrograph on the truth)": "Gaussian (oracle σ)",
         "Topaz 0.3.20 `unet`": "Topaz unet"}


def short(name: str) -> str:
    """A column title, e.g. ``ours: `general`, then σ 3.5 px (...)`` → ``general + σ 3.5 px``,
    ``... σ 8 px keeping 0.5 of the finer detail (...)`` → ``general + σ 8 px, keep 0.5``."""
    if name in SHORT:
        return SHORT[name]
    text = name.replace("ours: ", "").replace("`", "").split(" (")[0]
    return text.replace(", then ", " + ").replace(" keeping ", ", keep ").replace(
        " of the finer detail", "")


def crop_figure(crops: dict[str, dict[str, np.ndarray]], path: Path, where: list[int]) -> None:
    """One row per condition, one column per method (truth first), the truth's grey levels."""
    y, x, n = where
    names = list(next(iter(crops.values())))
    fig, axes = plt.subplots(len(crops), len(names), squeeze=False,
                             figsize=(1.45 * len(names), 1.6 * len(crops) + 0.3))
    for i, (row, (condition, images)) in enumerate(zip(axes, crops.items(), strict=True)):
        low, high = np.percentile(images["truth"][y:y + n, x:x + n], [0.5, 99.5])
        for ax, name in zip(row, names, strict=True):
            ax.imshow(images[name][y:y + n, x:x + n], cmap="gray", vmin=low, vmax=high,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(textwrap.fill(short(name), 22), fontsize=7)
        row[0].set_ylabel(condition, fontsize=7)
    fig.tight_layout(pad=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    with Image.open(path) as image:  # grey levels only: a quarter of the RGBA file
        image.convert("L").save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} kB)")
