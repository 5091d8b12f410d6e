"""``cryoden evaluate`` with even/odd halves and picks, without clean targets (issue 15)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from napari_cryoden.cli.main import main
from napari_cryoden.simulation.micrographs import simulate_exposure
from napari_cryoden.simulation.movies import simulate_movie_dataset
from napari_cryoden.simulation.params import SimulationParams

PARAMS = SimulationParams(dose=40.0, contrast_scale=3.0)


@pytest.fixture(scope="module")
def halves(tmp_path_factory) -> Path:
    """Two 256² movies' even/odd sums (and their clean halves), with .coord picks of each."""
    root = tmp_path_factory.mktemp("halves")
    simulate_movie_dataset(root, 2, 256, seed=0, params=PARAMS, frames=2, movies=False,
                           even_odd=True)
    (root / "picks").mkdir()
    for i, child in enumerate(np.random.SeedSequence(0).spawn(2)):  # as simulate_movie_dataset
        shot = simulate_exposure(PARAMS, np.random.default_rng(child), 256)
        lines = [f"{x:.1f} {y:.1f}\n" for y, x in shot.particle_centres]
        (root / "picks" / f"mic_{i:04d}.coord").write_text("".join(lines))
    return root


def test_halves_and_picks_without_clean_targets(halves: Path, tmp_path: Path, capsys) -> None:
    report_path, figures = tmp_path / "report.json", tmp_path / "figures"
    assert main(["evaluate", "general-fast", "--even", str(halves / "even"), "--odd",
                 str(halves / "odd"), "--picks", str(halves / "picks"), "--box-size", "32",
                 "--json", str(report_path), "--figures", str(figures),
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "split SNR" in out and "region SNR" in out and "Gaussian σ=8" in out
    report = json.loads(report_path.read_text())
    split = report["split_frame"]
    assert [m["file"] for m in split["micrographs"]] == ["mic_0000", "mic_0001"]
    assert split["pooled"]["gain_db"] > 3  # the shipped model raises the split-frame SNR
    assert split["pooled"]["bias_ratio"] < split["gaussian"]["bias_ratio"]
    region = report["region_snr"]["pooled"]
    assert region["n_pairs"] > 0 and region["snr_gaussian_db"] is not None
    assert [item["id"] for item in report["checklist"]] == [11, 12, 13]
    assert report["checklist"][0]["passed"] is True
    assert (figures / "split_frame_frequency.png").stat().st_size > 0
    assert "pooled" not in report  # no clean targets: no metrics against them


def test_halves_with_clean_targets_keep_the_metrics(halves: Path, tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    assert main(["evaluate", "general-fast", "--noisy", str(halves / "even"), "--clean",
                 str(halves / "clean"), "--even", str(halves / "even"), "--odd",
                 str(halves / "odd"), "--json", str(report_path), "--device", "cpu"]) == 0
    report = json.loads(report_path.read_text())
    assert "psnr" in report["pooled"] and "split_frame" in report
    assert [item["id"] for item in report["checklist"]] == list(range(1, 14))


@pytest.mark.parametrize(("flags", "problem"), [
    (["--picks", "p"], "--picks needs --even/--odd or --clean"),
    (["--even", "e"], "--even and --odd go together"),
    ([], "give --noisy/--clean, --even/--odd or --picks"),
])
def test_missing_inputs_are_one_line_errors(tmp_path: Path, capsys, flags: list[str],
                                            problem: str) -> None:
    argv = ["evaluate", "general-fast", *flags, "--json", str(tmp_path / "r.json")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert problem in err and len(err.splitlines()) == 1


def test_a_bad_pick_file_names_itself(halves: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "mic_0000.coord"
    bad.write_text("12 x\n")
    assert main(["evaluate", "general-fast", "--even", str(halves / "even"), "--odd",
                 str(halves / "odd"), "--picks", str(bad), "--box-size", "32", "--json",
                 str(tmp_path / "r.json"), "--device", "cpu"]) == 2
    assert f"{bad}: line 1 is not numbers" in capsys.readouterr().err
