"""Draw docs/images/physics_specimen.png: a 1024² noise-free image of the specimen stage.

One micrograph at 1 Å/px, 1.5 µm underfocus, all six structures of the library, with a 256²
crop beside it at full resolution. Run from the repository root (the first run fills the
potential cache: minutes on a CPU)::

    PYTHONPATH=src python scripts/physics_specimen_figure.py [out.png] [--seed N]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    """Simulate one image and save the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from napari_cryoden.simulation.physics.specimen import SpecimenParams, noise_free_image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path,
                        default=Path("docs/images/physics_specimen.png"))
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args(argv)
    params = dataclasses.replace(SpecimenParams(), defocus=(1.5, 1.5), ice_thickness=(300, 300),
                                 carbon_edge_probability=1.0, particle_density=12.0)
    start = time.perf_counter()
    shot = noise_free_image(params, np.random.default_rng(args.seed), (1024, 1024), 1.0)
    print(f"{time.perf_counter() - start:.1f} s, mean {shot.image.mean():.3f}, "
          f"{len(shot.particle_kinds)} particles: {sorted(set(shot.particle_kinds))}")
    y, x = _crop_origin(shot.particle_centres, shot.particle_kinds)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5.2), dpi=100)
    low, high = np.percentile(shot.image, [0.5, 99.5])
    axes[0].imshow(shot.image, cmap="gray", vmin=low, vmax=high)
    axes[0].add_patch(plt.Rectangle((x, y), 256, 256, fill=False, edgecolor="white", linewidth=1.5))
    axes[0].set_title(f"noise-free image, 1024² at 1 Å/px, {shot.defocus:.1f} µm underfocus")
    crop = shot.image[y:y + 256, x:x + 256]
    axes[1].imshow(crop, cmap="gray", vmin=np.percentile(crop, 0.5),
                   vmax=np.percentile(crop, 99.5))
    axes[1].set_title("256² crop (the boxed ribosome)")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    from PIL import Image

    Image.open(args.out).convert("L").save(args.out, optimize=True)  # grey: < 300 kB
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} kB)")
    return 0


def _crop_origin(centres: np.ndarray, kinds: tuple[str, ...]) -> tuple[int, int]:
    """A 256² crop about the first ribosome in view (else the first particle)."""
    index = kinds.index("ribosome_6zu5") if "ribosome_6zu5" in kinds else 0
    if not len(centres):
        return 384, 384
    y, x = (int(np.clip(c - 128, 0, 1024 - 256)) for c in centres[index])
    return y, x


if __name__ == "__main__":
    sys.exit(main())
