"""Share a model the napari way: a BioImage Model Zoo package (bioimageio.spec 0.5).

:func:`export_bmz` writes ``OUT.zip`` with ``rdf.yaml``, TorchScript weights, a README, and a
test input with its expected output, so that ``bioimageio test OUT.zip`` (``bioimageio.core``)
and any BMZ consumer can run the model without napari-cryoden.

What the package holds:

- **Weights**: TorchScript of :class:`NormalisedDenoiser`, the network wrapped with the
  per-micrograph normalisation it was trained with (``meanstd``: mean 0, std 1;
  ``percentile``: 0.5th/99.5th percentiles to 0/1; ``none``) and its inverse, so the package
  maps a raw micrograph ``(batch, 1, y, x)`` in its own units to the denoised micrograph in
  the same units, any size, as ``cryoden denoise`` does (no pre- or postprocessing steps for
  the consumer to get right). The statistics come from the whole tensor given; ``cryoden
  denoise`` reads every k-th row of micrographs taller than 4096 rows, so on such inputs the two
  differ by that sampling.
- **Test tensors**: a simulated 256² micrograph (the cartoon simulator, seed 0, at the model's
  pixel size, or a micrograph of the user's) and the model's output on it.
- **Pixel size**: ``config.napari_cryoden.pixel_size_range`` (Å) is the range the model was
  trained for, also in the README; the input axes carry the test micrograph's pixel size in Å.
  A consumer must bin a finer micrograph to that range first (``cryoden denoise`` does it itself).

Needs ``bioimageio.spec`` (``pip install 'napari-cryoden[bmz]'``). No pickles: the weights are
a TorchScript archive, loaded by consumers with ``torch.jit.load``.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..io.atomic import atomic_write_bytes

__all__ = ["NormalisedDenoiser", "export_bmz"]

TEST_SIZE = 256
"""Side of the simulated test micrograph (px)."""
TAGS = ["cryo-em", "denoising", "micrograph", "2d", "pytorch", "napari-cryoden"]


class NormalisedDenoiser(nn.Module):
    """The network between the normalisation it was trained with and its inverse.

    ``forward(x)``: ``x`` is ``(batch, 1, y, x)`` in the micrograph's own units; each sample
    is normalised on its own statistics, denoised, and mapped back to its units.
    """

    def __init__(self, net: nn.Module, normalization: str) -> None:
        super().__init__()
        if normalization not in ("none", "meanstd", "percentile"):
            raise ValueError(f"unknown normalisation {normalization!r}")
        self.net, self.normalization = net, normalization

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the denoised ``x``, the same shape and units."""
        if self.normalization == "none":
            return self.net(x)
        flat = x.flatten(1).double()
        if self.normalization == "meanstd":
            offset, scale = flat.mean(1), flat.std(1, unbiased=False)
        else:
            limits = torch.quantile(flat, torch.tensor([0.005, 0.995], dtype=flat.dtype), dim=1)
            offset, scale = limits[0], limits[1] - limits[0]
        offset = offset.float().view(-1, 1, 1, 1)
        scale = scale.float().view(-1, 1, 1, 1)
        return self.net((x - offset) / scale) * scale + offset


def export_bmz(model: str | os.PathLike[str], out: str | os.PathLike[str], *,
               name: str | None = None, sample: np.ndarray | None = None,
               pixel_size: float | None = None) -> Path:
    """Write ``model`` as a BioImage Model Zoo package ``out`` (a ``.zip``).

    Parameters
    ----------
    model
        A ``.safetensors`` weight file or a shipped model's name.
    out
        The package to write; written whole or not at all.
    name
        The package's name (default: ``napari-cryoden <model>``).
    sample
        A 2D micrograph to use as the test input (default: a simulated 256² micrograph).
    pixel_size
        The test input's pixel size, Å (default: the model's range's middle, or 1).

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    InputError
        ``out`` is not a ``.zip``, the model cannot be loaded, the sample is not 2D, or
        ``bioimageio.spec`` is not installed.
    """
    from ..models.checkpoint import load_checkpoint
    from ..models.pretrained import resolve_model

    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise InputError(f"{out}: a BioImage Model Zoo package is a .zip file")
    spec = _spec_module()
    weights = resolve_model(model)
    net, checkpoint = load_checkpoint(weights)
    wrapped = NormalisedDenoiser(net.eval(), checkpoint.normalization).eval()
    span = checkpoint.pixel_size_range
    pixel = pixel_size or (sum(span) / 2 if span else 1.0)
    image = _test_input(sample, pixel)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        traced = _trace(wrapped, image)
        traced.save(str(work / "weights.torchscript.pt"))
        with torch.no_grad():
            expected = wrapped(torch.from_numpy(image)).numpy()
        np.save(work / "test_input.npy", image)
        np.save(work / "test_output.npy", expected)
        title = name or f"napari-cryoden {weights.stem}"
        (work / "README.md").write_text(_readme(title, weights, checkpoint, pixel))
        descr = _describe(work, title, checkpoint, pixel)
        package = work / "package.zip"
        spec.save_bioimageio_package(descr, output_path=package)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out, package.read_bytes())
    return out


def _spec_module() -> Any:
    try:
        import bioimageio.spec as spec
    except ImportError:
        raise InputError("export-bmz needs bioimageio.spec: pip install "
                         "'napari-cryoden[bmz]'") from None
    return spec


def _test_input(sample: np.ndarray | None, pixel: float) -> np.ndarray:
    """Return the test input ``(1, 1, y, x)`` float32: the sample, or a simulated one."""
    if sample is None:
        from ..simulation.micrographs import simulate_exposure
        from ..simulation.params import SimulationParams

        shot = simulate_exposure(SimulationParams(pixel_size=pixel), np.random.default_rng(0),
                                 TEST_SIZE)
        sample = shot.noisy
    image = np.asarray(sample, dtype=np.float32)
    if image.ndim != 2:
        raise InputError(f"the sample micrograph must be 2D, got shape {image.shape}")
    return image[None, None].copy()


def _trace(wrapped: nn.Module, image: np.ndarray) -> torch.jit.ScriptModule:
    """TorchScript of ``wrapped``, checked against it on the test input and two odd sizes."""
    example = torch.from_numpy(image)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit.trace's deprecation and tracer notes
        traced = torch.jit.trace(wrapped, example, check_trace=False)
        for shape in (tuple(example.shape), (2, 1, 37, 45), (1, 1, 130, 97)):
            x = torch.rand(shape, generator=torch.Generator().manual_seed(0)) + 1.0
            if not torch.allclose(traced(x), wrapped(x), rtol=1e-5, atol=1e-5):
                raise RuntimeError(f"the traced model differs from the model at {shape}")
    return traced


def _describe(work: Path, title: str, checkpoint: Any, pixel: float) -> Any:
    """Return the ``ModelDescr`` (bioimageio.spec 0.5) of the files in ``work``."""
    from bioimageio.spec.model import v0_5 as m

    image = m.TensorId("micrograph")

    def space(axis: str, size: Any, output: bool) -> Any:
        kind = m.SpaceOutputAxis if output else m.SpaceInputAxis
        return kind(id=m.AxisId(axis), size=size, unit="angstrom", scale=pixel)

    inputs = m.InputTensorDescr(
        id=image, description="a micrograph (or one half sum), in its own units",
        axes=[m.BatchAxis(), m.ChannelAxis(channel_names=[m.Identifier("micrograph")]),
              space("y", m.ParameterizedSize(min=16, step=1), False),
              space("x", m.ParameterizedSize(min=16, step=1), False)],
        test_tensor=m.FileDescr(source=work / "test_input.npy"),
        data=m.IntervalOrRatioDataDescr(type="float32"))
    outputs = m.OutputTensorDescr(
        id=m.TensorId("denoised"), description="the denoised micrograph, in the input's units",
        axes=[m.BatchAxis(), m.ChannelAxis(channel_names=[m.Identifier("denoised")]),
              space("y", m.SizeReference(tensor_id=image, axis_id=m.AxisId("y")), True),
              space("x", m.SizeReference(tensor_id=image, axis_id=m.AxisId("x")), True)],
        test_tensor=m.FileDescr(source=work / "test_output.npy"),
        data=m.IntervalOrRatioDataDescr(type="float32"))
    version = torch.__version__.split("+")[0]
    span = checkpoint.pixel_size_range
    return m.ModelDescr(
        name=title,
        description=("Denoises cryo-EM micrographs; trained with napari-cryoden for pixel sizes "
                     + (f"{span[0]:g}-{span[1]:g} Å" if span else "not recorded")),
        authors=[m.Author(name="napari-cryoden developers")],
        cite=[m.CiteEntry(text="Lehtinen et al. 2018, Noise2Noise: learning image restoration "
                               "without clean data", doi=m.Doi("10.48550/arXiv.1803.04189")),
              m.CiteEntry(text="Bepler et al. 2020, Topaz-Denoise: general deep denoising "
                               "models for cryoEM and cryoET",
                          doi=m.Doi("10.1038/s41467-020-18952-1"))],
        license=m.LicenseId("BSD-3-Clause"), tags=TAGS,
        documentation=m.FileDescr(source=work / "README.md"),
        inputs=[inputs], outputs=[outputs],
        weights=m.WeightsDescr(torchscript=m.TorchscriptWeightsDescr(
            source=work / "weights.torchscript.pt", pytorch_version=m.Version(version))),
        config=m.Config.model_validate({"napari_cryoden": {
            "pixel_size_range": list(span) if span else None,
            "normalization": checkpoint.normalization,
            "preset": checkpoint.config.model.preset,
            "test_pixel_size": pixel}}))


def _readme(title: str, weights: Path, checkpoint: Any, pixel: float) -> str:
    from .. import __version__

    span = checkpoint.pixel_size_range
    where = (f"{span[0]:g}–{span[1]:g} Å per pixel" if span else
             "an unrecorded pixel size (the weight file predates the field)")
    return f"""# {title}

A cryo-EM micrograph denoiser from napari-cryoden {__version__} (`{weights.name}`, preset
`{checkpoint.config.model.preset}`).

## Input and output
One micrograph `(batch, 1, y, x)`, float32, in its own units (counts, or whatever the motion
correction wrote); any size of at least 16 × 16 px. The output is the denoised micrograph,
same shape and units. The package normalises each micrograph itself
(`{checkpoint.normalization}`, as the model was trained) and maps the result back: no pre- or
postprocessing is needed.

## Pixel size
Trained for {where}. Bin a finer micrograph to that range first (Fourier cropping), as
`cryoden denoise --working-pixel-size auto` does; a coarser one is denoised as it is, with less
benefit. The test tensors are at {pixel:g} Å per pixel (`config.napari_cryoden`).

## Validation
napari-cryoden's `docs/quality.md` gives this model's PSNR, Pearson r and bias against the
noise-free truth of held-out simulated micrographs, beside Gaussian filters and
Topaz-Denoise, with the commands that measured them. The test tensors are one simulated
micrograph and this package's output on it (`bioimageio test` checks it reproduces).
"""
