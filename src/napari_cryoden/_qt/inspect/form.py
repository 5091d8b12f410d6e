"""The Inspect widget's form controls: the image choices, the model and the patch settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox, SpinBox

__all__ = ["image_combos", "map_controls", "settings"]


def image_combos(images: Callable[[Any], list[tuple[str, Any]]]) -> tuple[ComboBox, ...]:
    """The noisy, denoised and clean choices, each listing ``images``."""
    noisy = ComboBox(label="noisy (optional)", choices=images, nullable=True,
                     tooltip="The noisy input: adds the noisy RMSE column and the baselines "
                             "that checklist item 7 compares with; with picks, the image their "
                             "region-pair SNR is scored on.")
    denoised = ComboBox(label="denoised", choices=images, nullable=True,
                        tooltip="The denoiser's output (the Denoise panel names it "
                                "'<noisy> denoised').")
    clean = ComboBox(label="clean", choices=images, nullable=True,
                     tooltip="The reference the denoised image is scored against.")
    return noisy, denoised, clean


def settings(models: Callable[[Any], list[str]]) -> tuple[ComboBox, SpinBox, FloatSpinBox]:
    """The model, patch size and data range controls."""
    model = ComboBox(label="model (optional)", nullable=True, choices=models,
                     tooltip="The model that denoised the image: its training history lets the "
                             "checklist judge items 1–3. With even/odd halves it denoises each "
                             "half on its own.")
    patch_size = SpinBox(label="patch size (px)", value=256, min=16, max=4096, step=16,
                         tooltip="Edge of the square patches (last row and column are aligned "
                                 "to the image's far edge).")
    data_range = FloatSpinBox(label="data range", value=1.0, min=1e-6, max=1e9, step=0.1,
                              tooltip="Peak-to-peak range for PSNR: 1.0 for micrographs in "
                                      "[0, 1].")
    return model, patch_size, data_range


def map_controls(metrics: list[str]) -> tuple[CheckBox, ComboBox]:
    """The metric map's switch and its metric."""
    show = CheckBox(text="metric map", value=False,
                    tooltip="Overlay one value per patch on the image.")
    metric = ComboBox(choices=metrics, value="RMSE", tooltip="The metric the map shows.")
    return show, metric
