"""The Denoise panel's working pixel size: auto (the model's range), as recorded, a bin, or Å.

The layer's pixel size comes only from unambiguous evidence (:func:`layer_pixel_size`): the MRC
header the reader put in the layer's metadata (a voxel size of 0 there is *unknown*, even though
the layer's scale is then 1), a ``pixel_size`` in the metadata (sample data, earlier results),
or a scale other than 1 that someone set. Otherwise it is unknown, and the panel never guesses:
the *Pixel size* row appears under Image, and when the choice needs a pixel size (auto with a
model that records its range, or a working size in Å) a click on Denoise does not run but asks
for it in the status line. The core decides the binning (:func:`~napari_cryoden.inference.
scale.plan_scale`); the worker bins, denoises and pads back, so the result keeps the input's
shape. The pixel size used is in the status line and in the result layer's metadata.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, FloatSpinBox, Label

from napari_cryoden._qt.denoise.raw_folders import message
from napari_cryoden.inference.scale import ScalePlan, plan_scale

if TYPE_CHECKING:
    from napari.layers import Image

__all__ = ["AUTO", "BIN", "RECORDED", "SCALE_CHOICES", "WORKING", "ScaleChoice",
           "layer_pixel_size"]

AUTO, RECORDED, BIN, WORKING = ("auto (model's range)", "as recorded", "bin by a factor",
                                "working pixel size (Å)")
SCALE_CHOICES = (AUTO, RECORDED, BIN, WORKING)


def layer_pixel_size(layer: Image) -> float | None:
    """The layer's pixel size in Å from unambiguous evidence only; None when unknown."""
    metadata = layer.metadata if isinstance(layer.metadata, dict) else {}
    header = metadata.get("mrc_header")
    if isinstance(header, dict) and "voxel_size_x" in header:  # our reader: 0 means unknown
        value = header["voxel_size_x"]
        return float(value) if isinstance(value, int | float) and value > 0 else None
    value = metadata.get("pixel_size")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    scale = float(layer.scale[-1])
    return scale if scale != 1.0 else None


class ScaleChoice:
    """Mixin of the Denoise panel: the working-pixel-size rows and the plan of each run."""

    image: ComboBox
    model: ComboBox
    status: Label

    def _build_scale(self) -> None:
        self.scale_choice = ComboBox(label="Working pixel size", choices=SCALE_CHOICES,
                                     value=AUTO, tooltip=(
            "The pixel size the model sees. auto: a micrograph finer than the model's "
            "training range is Fourier-binned to the range's lower end, others are denoised "
            "as they are (never upsampled). as recorded: no binning. bin by a factor / working "
            "pixel size: as cryoden denoise --bin / --working-pixel-size. The result is padded "
            "back: it keeps the image's shape and pixel size."))
        self.scale_value = FloatSpinBox(label="Bin factor", value=2.0, min=1.0, max=16.0,
                                        step=0.5, visible=False)
        self.pixel_size = FloatSpinBox(label="Pixel size (Å)", value=0.0, min=0.0, max=100.0,
                                       step=0.1, visible=False, tooltip=(
            "The image's header records no pixel size. Enter it (Å per pixel) so the model "
            "runs at the sampling it was trained on; 0 leaves it unknown."))
        self.pixel_size.native.setSpecialValueText("unknown")  # shown at 0
        self.scale_choice.changed.connect(self._on_scale_choice)
        self.image.changed.connect(self._on_image_changed)

    def _on_scale_choice(self, value: str) -> None:
        self.scale_value.visible = value in (BIN, WORKING)
        if value == BIN:
            self.scale_value.label, self.scale_value.min = "Bin factor", 1.0
        elif value == WORKING:
            self.scale_value.label, self.scale_value.min = "Working pixel size (Å)", 0.1

    def _on_image_changed(self, *_: Any) -> None:
        self.pixel_size.value = 0.0  # a size typed for another image is not this one's
        self._show_pixel_size_row()

    def _show_pixel_size_row(self, *_: Any) -> None:
        layer = self.image.value
        self.pixel_size.visible = layer is not None and layer_pixel_size(layer) is None

    def _known_pixel_size(self, layer: Image) -> float | None:
        return layer_pixel_size(layer) or (float(self.pixel_size.value) or None)

    def _scale_plan(self, layer: Image) -> ScalePlan | None:
        """The run's binning, or None after asking for the pixel size (nothing runs then)."""
        pixel, choice = self._known_pixel_size(layer), self.scale_choice.value
        model_range = self._model_range()
        if pixel is None and (choice == WORKING or (choice == AUTO and model_range)):
            self.pixel_size.visible = True
            self.status.value = (
                f"{layer.name!r} records no pixel size: enter it under Pixel size (Å) so the "
                "model runs at the sampling it was trained on"
                + (f" ({model_range[0]:g}–{model_range[1]:g} Å)" if model_range else "")
                + ", or choose 'as recorded' under Advanced › Working pixel size")
            return None
        if choice == RECORDED:
            return ScalePlan(1.0, pixel)
        if choice == BIN:
            return plan_scale(pixel, model_range, bin_factor=float(self.scale_value.value))
        working = float(self.scale_value.value) if choice == WORKING else "auto"
        return plan_scale(pixel, model_range, working=working)

    def _model_range(self) -> tuple[float, float] | None:
        """The chosen model's training pixel sizes, from its header (no torch; milliseconds)."""
        weights = self.model.value
        if weights is None:
            return None
        from napari_cryoden.models.header import read_weight_info

        try:
            return read_weight_info(weights).pixel_size_range
        except Exception as exc:  # the run itself reports a bad file in full
            self.status.value = message(exc)
            return None
