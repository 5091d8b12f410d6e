"""``cryoden simulate --physics`` and the dataset writer under it: files, truths, picks, seeds."""

from __future__ import annotations

import json
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from napari_cryoden.cli.main import main
from napari_cryoden.io.picks import read_picks

FAST = ["--n", "2", "--shape", "96x128", "--pixel-size", "4:4", "--frames", "4:4",
        "--structures", "enolase_3enl", "--seed", "5"]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYODEN_CACHE", str(tmp_path_factory.getbasetemp() / "potentials"))


def _read(path: Path) -> tuple[np.ndarray, float]:
    with mrcfile.open(path, permissive=True) as mrc:
        return np.array(mrc.data), float(mrc.voxel_size.x)


def test_physics_mode_writes_sums_truths_picks_and_a_record(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    assert main(["simulate", str(out), "--physics", "--even-odd", "--detector", "k3", *FAST]) == 0
    for kind in ("noisy", "clean", "even", "odd", "clean_even", "clean_odd"):
        data, pixel = _read(out / kind / "mic_0001.mrc")
        assert data.shape == (96, 128) and data.dtype == np.float32 and pixel == 4.0, kind
    noisy, _ = _read(out / "noisy" / "mic_0000.mrc")
    clean, _ = _read(out / "clean" / "mic_0000.mrc")
    assert 0.5 < float(clean.mean()) < 1.0                    # transmission units
    record = json.loads((out / "simulation.json").read_text())
    drawn = record["micrographs"][0]
    poisson = float(clean.mean()) / (drawn["dose"] * 4.0**2)   # white counting noise, per pixel
    # K3's noise is near-white; interpolation takes some of it (a Falcon's MTF would take most)
    assert 0.5 * poisson < float(np.var(noisy - clean)) < 1.2 * poisson
    assert record["mode"] == "physics" and len(record["micrographs"]) == 2
    assert record["micrographs"][0]["frames"] == 4
    assert record["params"]["specimen"]["structures"] == ["enolase_3enl"]
    picks = sorted((out / "picks").glob("*.coord"))
    assert [p.stem for p in picks] == ["mic_0000", "mic_0001"]
    counts = [m["particles"] for m in record["micrographs"]]
    for path, count in zip(picks, counts, strict=True):
        if count:
            xy = read_picks(path)[path.stem].xy
            assert len(xy) == count and (xy >= 0).all() and (xy[:, 0] < 128).all()


def test_same_seed_same_files_whatever_the_workers(tmp_path: Path) -> None:
    assert main(["simulate", str(tmp_path / "a"), "--physics", *FAST]) == 0
    assert main(["simulate", str(tmp_path / "b"), "--physics", "--workers", "2", *FAST]) == 0
    for name in ("mic_0000", "mic_0001"):
        a, _ = _read(tmp_path / "a" / "noisy" / f"{name}.mrc")
        b, _ = _read(tmp_path / "b" / "noisy" / f"{name}.mrc")
        np.testing.assert_array_equal(a, b)
    first, _ = _read(tmp_path / "a" / "noisy" / "mic_0000.mrc")
    second, _ = _read(tmp_path / "a" / "noisy" / "mic_0001.mrc")
    assert not np.array_equal(first, second)


def test_binning_scales_the_sums_and_the_picks(tmp_path: Path) -> None:
    assert main(["simulate", str(tmp_path), "--physics", "--binning", "2", *FAST]) == 0
    data, pixel = _read(tmp_path / "noisy" / "mic_0000.mrc")
    assert data.shape == (48, 64) and pixel == 8.0


def test_particle_density_crowds_the_micrograph(tmp_path: Path) -> None:
    """``--particle-density``: the crowded micrographs of docs/quality.md (60 per 10⁶ Å²)."""
    counts = {}
    for density in ("10", "100"):
        out = tmp_path / density
        assert main(["simulate", str(out), "--physics", *FAST, "--particle-density",
                     density]) == 0
        record = json.loads((out / "simulation.json").read_text())
        assert record["params"]["specimen"]["particle_density"] == float(density)
        counts[density] = sum(m["particles"] for m in record["micrographs"])
    assert counts["100"] > 3 * max(counts["10"], 1), counts


@pytest.mark.parametrize("flags, message", [
    (["--detector", "k3"], "--detector: only with --physics"),
    (["--particle-density", "60"], "--particle-density: only with --physics"),
    (["--physics", "--particle-density", "-1"], "particle_density must be > 0"),
    (["--physics", "--contrast-scale", "3"], "cartoon simulator"),
    (["--physics", "--structures", "nonesuch"], "nonesuch"),
])
def test_bad_flags_get_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                flags: list[str], message: str) -> None:
    assert main(["simulate", str(tmp_path / "x"), "--n", "1", "--size", "64", *flags]) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
