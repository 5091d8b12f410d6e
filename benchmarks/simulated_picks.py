"""Write the particle centres of a ``cryoden simulate`` dataset as ``.coord`` pick files.

The simulator knows where it put each particle; this re-draws each exposure from the dataset's
``simulation.json`` (same seed, size and parameters) and writes ``OUT/mic_0000.coord`` … with one
``x y`` centre per line (x the column, y the row, px). Used by docs/quality-without-truth.md:

    python benchmarks/simulated_picks.py sim sim/picks
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from napari_cryoden.simulation.micrographs import simulate_exposure
from napari_cryoden.simulation.params import SimulationParams


def main() -> None:
    """Parse ``DATASET OUT`` and write one .coord file per micrograph."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="folder with simulation.json")
    parser.add_argument("out", type=Path, help="folder for the .coord files")
    args = parser.parse_args()
    record = json.loads((args.dataset / "simulation.json").read_text())
    params = SimulationParams.from_dict(record["params"])
    args.out.mkdir(parents=True, exist_ok=True)
    children = np.random.SeedSequence(record["seed"]).spawn(len(record["micrographs"]))
    for i, child in enumerate(children):
        shot = simulate_exposure(params, np.random.default_rng(child), tuple(record["size"]))
        lines = [f"{x:.1f} {y:.1f}\n" for y, x in shot.particle_centres]
        (args.out / f"mic_{i:04d}.coord").write_text("".join(lines))
    print(f"wrote {len(children)} .coord files to {args.out}")


if __name__ == "__main__":
    main()
