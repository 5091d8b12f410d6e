"""A model as a BioImage Model Zoo package: passes `bioimageio test`, denoises as we do."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from napari_cryoden.cli.main import main
from napari_cryoden.config.sections import Config
from napari_cryoden.inference.denoiser import denoise
from napari_cryoden.interop.bmz import export_bmz
from napari_cryoden.io.images import write_mrc
from napari_cryoden.models.checkpoint import load_checkpoint, save_checkpoint
from napari_cryoden.models.nets import build_model
from napari_cryoden.models.pretrained import resolve_model


def _micrograph(seed: int, shape: tuple[int, int] = (150, 203)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (40.0 + 6.0 * rng.normal(size=shape)).astype(np.float32)  # counts, not [0, 1]


def _package_output(package: Path, image: np.ndarray) -> np.ndarray:
    """Run the package's TorchScript weights, as a BMZ consumer would."""
    with zipfile.ZipFile(package) as archive:
        rdf = yaml.safe_load(archive.read("rdf.yaml"))
        source = rdf["weights"]["torchscript"]["source"]
        net = torch.jit.load(archive.open(source))
    with torch.no_grad():
        return net(torch.from_numpy(image)[None, None]).numpy()[0, 0]


def test_the_package_passes_bioimageio_test_and_denoises_like_cryoden(tmp_path: Path) -> None:
    from bioimageio.core import test_model

    package = export_bmz("general-fast", tmp_path / "general-fast.zip")
    summary = test_model(package)
    assert summary.status == "passed", [d.name for d in summary.details if d.status == "failed"]
    with zipfile.ZipFile(package) as archive:
        rdf = yaml.safe_load(archive.read("rdf.yaml"))
        readme = archive.read("README.md").decode()
    assert rdf["config"]["napari_cryoden"]["pixel_size_range"] == [1.0, 2.5]
    assert rdf["inputs"][0]["axes"][2]["unit"] == "angstrom"
    assert "1–2.5 Å per pixel" in readme
    net, checkpoint = load_checkpoint(resolve_model("general-fast"))
    image = _micrograph(1)
    ours = denoise(net, image, normalization=checkpoint.normalization)
    np.testing.assert_allclose(_package_output(package, image), ours, rtol=1e-4, atol=1e-3)


def test_a_percentile_normalised_model_keeps_its_normalisation(tmp_path: Path) -> None:
    config = Config().replace(data={"normalization": "percentile"})
    weights = save_checkpoint(tmp_path / "p.safetensors", build_model(config.model, seed=3),
                              config, epoch=1)
    package = export_bmz(weights, tmp_path / "p.zip")
    net, checkpoint = load_checkpoint(weights)
    assert checkpoint.normalization == "percentile"
    image = _micrograph(2)
    ours = denoise(net, image, normalization="percentile")
    np.testing.assert_allclose(_package_output(package, image), ours, rtol=1e-4, atol=1e-3)


def test_cli_writes_the_package_with_a_sample_of_ones_own(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_mrc(tmp_path / "crop.mrc", _micrograph(3, (96, 128)), 1.3)
    out = tmp_path / "mine.zip"
    assert main(["export-bmz", "general-fast", str(out), "--sample", str(tmp_path / "crop.mrc"),
                 "--name", "my denoiser"]) == 0
    assert f"bioimageio test {out}" in capsys.readouterr().out
    with zipfile.ZipFile(out) as archive:
        rdf = yaml.safe_load(archive.read("rdf.yaml"))
        test_input = np.load(archive.open(rdf["inputs"][0]["test_tensor"]["source"]))
    assert rdf["name"] == "my denoiser"
    assert test_input.shape == (1, 1, 96, 128)
    assert rdf["config"]["napari_cryoden"]["test_pixel_size"] == pytest.approx(1.3)


@pytest.mark.parametrize(("args", "message"), [
    (["general-fast", "{t}/out.tar"], "out.tar: a BioImage Model Zoo package is a .zip file"),
    (["general-fast", "{t}/o.zip", "--sample", "{t}/stack.mrc"], "stack.mrc: the sample must be"),
    (["{t}/missing.safetensors", "{t}/o.zip"], "missing.safetensors"),
])
def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 args: list[str], message: str) -> None:
    write_mrc(tmp_path / "stack.mrc", np.ones((2, 32, 32), np.float32), 1.0)
    assert main(["export-bmz"] + [a.format(t=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cryoden: error:") and message in err and "\n" not in err
    assert not (tmp_path / "o.zip").exists()
