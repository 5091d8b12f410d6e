"""Raw weight files of the Fortran/cuDNN trainer: read, write, and the axis orders (layouts).

The Fortran trainer writes, per convolution layer ``k``, two headerless files of little-endian
float32 values: ``conv{k}_weights.bin`` and ``conv{k}_bias.bin``. A weight file is a flat buffer;
which of its values is ``w[o, i, y, x]`` depends on the writer. A *layout* names that order as the
buffer's axes in C order (last letter fastest), from ``o`` (out channels), ``i`` (in channels),
``h`` (kernel rows, kH) and ``w`` (kernel columns, kW):

- ``oihw`` (axes ``oihw``): PyTorch, cuDNN NCHW filters, the seed's Fortran device buffer;
- ``fortran`` (``whio``): a Fortran array ``w(out, in, kH, kW)`` written column-major;
- ``hwio`` (``hwio``): TensorFlow/Keras ``(kH, kW, in, out)``;
- ``seed-legacy`` (``hwio``): what the seed's old loader assumed,
  ``reshape(kH, kW, in, out).transpose(3, 2, 0, 1)`` — the same order as ``hwio``.

Any permutation of the four letters is accepted too (e.g. ``ohwi``); the axis arithmetic is in
:mod:`napari_cryoden.interop.layouts` (re-exported here). :func:`check_roundtrips`
writes a model in every format and layout and checks that reading it back changes no output.
docs/weight-interop.md draws the memory orders and works through the seed's bug;
:mod:`napari_cryoden.interop.auto` imports folders and ranks the layouts on data (``auto``).
"""

from __future__ import annotations

import json
import os
import string
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config.sections import Config, ModelConfig
from ..errors import InputError, WeightFileError
from ..io.atomic import atomic_write_bytes
from ..models.nets import build_model, expected_shapes
from .layouts import (
    AXES,
    LAYOUTS,
    all_axis_orders,
    from_layout,
    layout_name,
    resolve_layout,
    to_layout,
)

__all__ = [
    "AXES", "LAYOUTS", "SIDECAR", "RawNames", "resolve_layout", "layout_name", "all_axis_orders",
    "to_layout", "from_layout", "write_raw", "read_raw_buffers", "model_from_buffers",
    "read_raw", "read_sidecar", "export_raw", "RoundTrip", "check_roundtrips", "format_roundtrips",
]

SIDECAR = "cryoden_raw.json"  # written by export_raw; optional on import
_SIDECAR_TYPES = {"layout": str, "model": dict, "normalization": str, "weights_pattern": str,
                  "bias_pattern": str}
_DTYPE = np.dtype("<f4")


@dataclass(frozen=True)
class RawNames:
    """File name patterns of one layer's weights and bias; ``{k}`` is the layer number (1 …)."""

    weights: str = "conv{k}_weights.bin"
    bias: str = "conv{k}_bias.bin"

    def __post_init__(self) -> None:
        for pattern in (self.weights, self.bias):  # may come from a sidecar: data, not paths
            if not _plain_pattern(pattern):
                raise InputError(f"file name pattern {pattern!r:.80} must contain {{k}} "
                                 "(the layer number) and be a plain file name, no folders")

    def files(self, folder: Path, k: int) -> tuple[Path, Path]:
        """Return the weight and bias file of layer ``k`` in ``folder``."""
        return folder / self.weights.format(k=k), folder / self.bias.format(k=k)


def _plain_pattern(pattern: object) -> bool:
    """Tell whether ``pattern`` is a string with no folder and only a bare ``{k}`` field."""
    if not isinstance(pattern, str) or "/" in pattern or "\\" in pattern:
        return False
    try:
        fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(pattern)
                  if f is not None]
    except ValueError:
        return False
    bare = bool(fields) and all(field == ("k", "", None) for field in fields)
    return bare and pattern.format(k=1) not in (".", "..")


def write_raw(model: torch.nn.Module, folder: str | os.PathLike[str], layout: str = "oihw",
              names: RawNames | None = None) -> list[Path]:
    """Write each layer's weights (in ``layout``) and bias as little-endian float32 files.

    Returns the paths written, weights then bias for each layer. Files are written atomically.
    """
    names, folder, axes = names or RawNames(), Path(folder), resolve_layout(layout)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    written = []
    for k in range(1, _depth(state) + 1):
        w_path, b_path = names.files(folder, k)
        atomic_write_bytes(w_path, to_layout(state[f"conv{k}.weight"], axes).astype(_DTYPE)
                           .tobytes())
        atomic_write_bytes(b_path, state[f"conv{k}.bias"].astype(_DTYPE).tobytes())
        written += [w_path, b_path]
    return written


def _depth(state: dict[str, Any]) -> int:
    return sum(1 for name in state if name.endswith(".weight"))


def read_raw_buffers(folder: str | os.PathLike[str], model: ModelConfig,
                     names: RawNames | None = None) -> dict[str, np.ndarray]:
    """Flat float32 buffers named like the model's tensors, each size-checked against ``model``.

    Raises
    ------
    WeightFileError
        A file is missing, is not a whole number of float32 values, holds another number of
        values than the model needs (expected and actual counts are named), holds NaN/Inf, or
        a layer beyond the model's depth is present.
    """
    names, folder = names or RawNames(), Path(folder)
    if not folder.is_dir():
        raise WeightFileError(f"{folder}: no such folder of raw weight files")
    shapes = expected_shapes(model)
    buffers = {}
    for k in range(1, model.depth + 1):
        for path, tensor in zip(names.files(folder, k), (f"conv{k}.weight", f"conv{k}.bias"),
                                strict=True):
            buffers[tensor] = _read_buffer(path, tensor, shapes[tensor], model)
    extra = names.files(folder, model.depth + 1)[0]
    if extra.exists():
        raise WeightFileError(f"{extra}: the folder has more layers than the model's depth "
                              f"{model.depth}; pass --depth to match the trainer")
    return buffers


def _read_buffer(path: Path, tensor: str, shape: tuple[int, ...], model: ModelConfig
                 ) -> np.ndarray:
    if not path.is_file():
        raise WeightFileError(f"{path}: missing ({tensor} of the model)")
    size, expected = path.stat().st_size, int(np.prod(shape))
    if size % _DTYPE.itemsize:
        raise WeightFileError(f"{path}: {size} bytes is not a whole number of float32 values")
    if size // _DTYPE.itemsize != expected:
        dims = "×".join(map(str, shape))
        raise WeightFileError(
            f"{path}: holds {size // _DTYPE.itemsize} float32 values, expected {expected} for "
            f"{tensor} ({dims}) of a {model.preset} model with channels {model.channels}, "
            f"depth {model.depth}, kernel {model.kernel_size}")
    values = np.fromfile(path, dtype=_DTYPE).astype(np.float32)
    if not np.isfinite(values).all():
        raise WeightFileError(f"{path}: contains NaN or Inf values")
    return values


def model_from_buffers(buffers: dict[str, np.ndarray], model: ModelConfig,
                       layout: str) -> torch.nn.Module:
    """Build a model (of ``model``'s preset) whose weights are the buffers read in ``layout``."""
    net = build_model(model)
    state = {}
    for name, shape in expected_shapes(model).items():
        value = buffers[name] if name.endswith("bias") else from_layout(buffers[name], shape,
                                                                         layout)
        state[name] = torch.from_numpy(np.array(value, np.float32).reshape(shape))
    net.load_state_dict(state)
    return net


def read_raw(folder: str | os.PathLike[str], model: ModelConfig, layout: str,
             names: RawNames | None = None) -> torch.nn.Module:
    """Read a folder of raw files in an explicit ``layout`` into a model."""
    return model_from_buffers(read_raw_buffers(folder, model, names), model, layout)


def read_sidecar(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Read the ``cryoden_raw.json`` written by :func:`export_raw`, or None if there is none."""
    path = Path(folder) / SIDECAR
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise WeightFileError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise WeightFileError(f"{path}: expected a JSON object")
    for key, kind in _SIDECAR_TYPES.items():  # what import_raw reads: plain data only
        if data.get(key) is not None and not isinstance(data[key], kind):
            raise WeightFileError(f"{path}: {key!r} must be a {kind.__name__}, "
                                  f"got {data[key]!r:.40}")
    return data


def export_raw(model_path: str | os.PathLike[str], folder: str | os.PathLike[str],
               layout: str = "oihw", names: RawNames | None = None) -> list[Path]:
    """Write a ``.safetensors`` model as raw files in ``layout`` plus a ``cryoden_raw.json``.

    The JSON records the layout, the file names, shapes, the model config and the
    normalisation, so that ``import-raw`` of the folder needs no flags.
    """
    from ..models.checkpoint import load_checkpoint

    if layout == "auto":
        raise InputError("export-raw: 'auto' is only for reading; choose the layout the reading "
                         f"program expects ({', '.join(LAYOUTS)})")
    axes = resolve_layout(layout)
    model, ckpt = load_checkpoint(model_path)
    names = names or RawNames()
    written = write_raw(model, folder, axes, names)
    shapes = expected_shapes(ckpt.config.model)
    sidecar = {
        "format": "cryoden-raw", "layout": layout, "axes": axes, "dtype": "float32 little-endian",
        "weights_pattern": names.weights, "bias_pattern": names.bias,
        "files": {p.name: list(shapes[t]) for p, t in zip(written, shapes, strict=True)},
        "model": ckpt.config.to_dict()["model"], "normalization": ckpt.normalization,
        "source": str(model_path),
    }
    atomic_write_bytes(Path(folder) / SIDECAR, json.dumps(sidecar, indent=1).encode())
    return written


@dataclass(frozen=True)
class RoundTrip:
    """One write → read round trip; controls are mis-reads that must change the output."""

    fmt: str
    layout: str
    max_abs_diff: float
    expect_equal: bool = True

    @property
    def passed(self) -> bool:
        """Whether the outputs are identical (a round trip) or differ (a control)."""
        return self.max_abs_diff == 0.0 if self.expect_equal else self.max_abs_diff > 0.0


def check_roundtrips(model: torch.nn.Module, config: Config,
                     workdir: str | os.PathLike[str] | None = None) -> list[RoundTrip]:
    """Write ``model`` in every format and layout, read it back, compare outputs (seeded, 48 px).

    Two control mis-reads (the seed's bug) must differ. Files go to a temporary dir in ``workdir``.
    """
    from ..models.checkpoint import load_checkpoint, save_checkpoint

    image = torch.from_numpy(np.random.default_rng(0).random((1, 1, 48, 48), np.float32))
    reference = _output(model, image)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        root = Path(tmp)
        loaded, _ = load_checkpoint(save_checkpoint(root / "m.safetensors", model, config))
        rows = [RoundTrip("safetensors", "-", _diff(loaded, image, reference))]
        for name, axes in LAYOUTS.items():
            rows.append(RoundTrip("raw", name, _raw_diff(model, config, root, axes, axes,
                                                         image, reference)))
        worst = max(_raw_diff(model, config, root, a, a, image, reference)
                    for a in all_axis_orders())
        rows.append(RoundTrip("raw", "all 24 axis orders", worst))
        for written, read, label in (("oihw", "hwio", "oihw read as seed-legacy"),
                                     ("whio", "hwio", "fortran read as seed-legacy")):
            diff = _raw_diff(model, config, root, written, read, image, reference)
            rows.append(RoundTrip("raw control", label, diff, expect_equal=False))
    return rows


def _output(model: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.cpu().eval()(image)


def _diff(model: torch.nn.Module, image: torch.Tensor, reference: torch.Tensor) -> float:
    return float((_output(model, image) - reference).abs().max())


def _raw_diff(model: torch.nn.Module, config: Config, root: Path, written: str, read: str,
              image: torch.Tensor, reference: torch.Tensor) -> float:
    folder = root / f"raw_{written}"
    write_raw(model, folder, written)
    return _diff(read_raw(folder, config.model, read), image, reference)


def format_roundtrips(rows: Sequence[RoundTrip]) -> str:
    """Format round trips as a pass/fail table.

    A control that does not differ is noted, not failed (the model is insensitive to that mis-read).
    """
    lines = [f"{'format':<12} {'layout':<28} {'expect':<7} {'max |Δ|':>10}  result"]
    for row in rows:
        expect = "equal" if row.expect_equal else "differ"
        verdict = "PASS" if row.passed else ("FAIL" if row.expect_equal else
                                             "same: this mis-read is invisible for this model")
        lines.append(f"{row.fmt:<12} {row.layout:<28} {expect:<7} {row.max_abs_diff:>10.3g}  "
                     f"{verdict}")
    trips = [r for r in rows if r.expect_equal]
    lines.append(f"check-weights: {sum(r.passed for r in trips)}/{len(trips)} round trips "
                 "identical")
    return "\n".join(lines)
