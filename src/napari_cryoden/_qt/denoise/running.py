"""The Denoise panel's run: the job in a worker, its progress, Cancel, and the result layer.

*Denoise* turns the panel's choices into a :class:`~napari_cryoden.inference.job.DenoiseJob` and
runs :func:`work` in a napari worker; while it runs the button reads *Cancel*. The worker also
computes what the main thread would otherwise block on (the result's contrast limits, the
scramble guards against the Clean layer), so that the slot that writes the layer stays short.
Removing the input layer cancels its run. When the panel opens, a worker imports torch and the
denoiser, so that the first click does not wait for them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import ComboBox, FloatSpinBox, Label, ProgressBar, PushButton
from napari.layers import Image
from napari.utils.notifications import show_error, show_warning
from psygnal import SignalInstance
from superqt.utils import ensure_main_thread

from napari_cryoden._qt.denoise.layers import robust_contrast_limits, write_denoised
from napari_cryoden._qt.denoise.progress import LOADING, RunControl
from napari_cryoden._qt.denoise.raw_folders import message
from napari_cryoden.errors import Cancelled, InputError
from napari_cryoden.inference.job import DenoiseJob, DenoiseResult, run_job
from napari_cryoden.inference.region import Box
from napari_cryoden.inference.scale import ScalePlan
from napari_cryoden.inference.smoothing import Smoothing, as_smoothing

if TYPE_CHECKING:
    import napari

__all__ = ["Finished", "Running", "work"]


@dataclass(frozen=True)
class Finished:
    """A run's result with what the main thread shows of it, computed in the worker."""

    result: DenoiseResult
    limits: tuple[float, float] | None
    warnings: list[str]


def work(job: DenoiseJob, clean: Any, control: RunControl) -> Finished:
    """Run ``job`` (worker thread); also the result's contrast and the scramble guards."""
    result = run_job(job, control.progress, control.loaded)
    if job.box is not None:
        return Finished(result, None, [])
    warnings: list[str] = []
    if clean is not None and np.shape(clean) == result.data.shape:
        from napari_cryoden.evaluation.guards import image_warnings

        # the weights are judged by the model's output, not by a smoothing the user chose
        warnings = image_warnings(result.model_output, np.asarray(clean, np.float32),
                                  np.asarray(job.image))
    result = replace(result, unsmoothed=None)  # judged: the layer needs only the data
    control.progress(1, 1)  # a last chance to cancel: nothing is written after it
    return Finished(result, robust_contrast_limits(result.data), warnings)


def warm_up() -> None:
    """Import torch and the denoiser (worker), so that the first click skips it."""
    import napari_cryoden.inference.denoiser  # noqa: F401
    import napari_cryoden.models.checkpoint  # noqa: F401


class Running:
    """Mixin of the Denoise panel: Denoise/Cancel, the worker, and writing the result."""

    viewer: napari.viewer.Viewer
    image: ComboBox
    clean: ComboBox
    device: ComboBox
    pixel_cutoff: FloatSpinBox
    smooth: FloatSpinBox
    smooth_where: ComboBox
    keep_detail: FloatSpinBox
    denoise_button: PushButton
    progress: ProgressBar
    status: Label
    finished: SignalInstance

    def _init_running(self) -> None:
        self.worker: Any = None
        self._control: RunControl | None = None
        self._source: Image | None = None
        self._plan: ScalePlan | None = None
        self._show_progress = ensure_main_thread(self._set_progress)
        self.denoise_button.clicked.connect(self._on_denoise_clicked)
        self.viewer.layers.events.removed.connect(self._on_layer_removed)
        self.progress.native.setFormat("")
        from napari.qt.threading import create_worker

        create_worker(warm_up).start()

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def _on_denoise_clicked(self) -> None:
        if self.busy:
            self.cancel()
        else:
            self.start()

    def cancel(self) -> None:
        """Stop the running job at its next batch of tiles; nothing is added."""
        if self._control is not None:
            self._control.cancel()
            self.denoise_button.enabled, self.denoise_button.text = False, "Cancelling…"

    def _on_layer_removed(self, event: Any) -> None:
        if self.busy and event.value is self._source:
            self.cancel()

    def start(self) -> None:
        """Check the choices and start denoising in a worker (errors become notifications)."""
        if self.busy:
            return
        try:
            made = self._make_job()
        except Exception as exc:  # a slot must not raise: tell the user instead
            show_error(message(exc))
            return
        if made is None:
            return  # the panel asked for what it needs (the pixel size) in the status line
        job, source = made
        from napari.qt.threading import create_worker

        clean = self.clean.value
        clean_data = clean.data if clean is not None and clean in self.viewer.layers else None
        self._source, self._control = source, RunControl(self._show_progress)
        self.denoise_button.text = "Cancel"
        self.status.value = (self._plan.note or "") if self._plan is not None else ""
        self.worker = create_worker(work, job, clean_data, self._control, _connect={
            "returned": self._on_returned, "errored": self._on_errored,
            "finished": self._on_finished})
        self._set_progress(LOADING, 0, 1)  # the worker's updates come through the event loop

    def _set_progress(self, text: str, done: int, total: int) -> None:
        if self.worker is None:
            return  # a late update of a run that has ended
        self.progress.max = max(total, 1)
        self.progress.value = min(done, total)
        self.progress.native.setFormat(text)

    def _on_returned(self, finished: Finished) -> None:
        source = self._source
        if self._control is not None and self._control.cancelled:
            return
        if source is None or source not in self.viewer.layers:
            show_warning("The image layer was removed while it was being denoised")
            return
        result, job = finished.result, finished.result.job
        plan = self._plan
        metadata = {"source_layer": source.name, "model": str(job.weights),
                    "pixel_size": plan.pixel_size if plan else None,
                    "working_pixel_size": plan.working_pixel_size if plan else None,
                    "bin_factor": job.bin_factor, **as_smoothing(job.smooth).record()}
        try:
            layer = write_denoised(self.viewer, source, result.data, job.box, job.z, metadata,
                                   finished.limits)
        except Exception as exc:  # e.g. the input changed shape meanwhile
            show_error(f"Could not write the denoised layer: {message(exc)}")
            return
        self._keep_shapes_on_top(layer)
        size = "×".join(str(n) for n in result.data.shape)
        scale = f", {plan.describe()}" if plan is not None else ""
        note = f" — {plan.note}" if plan is not None and plan.note else ""
        self.status.value = f"{size} px in {result.seconds:.2f} s{scale}{note}"
        from napari.utils import notifications

        for warning in finished.warnings:
            notifications.show_warning(f"Check the weights: {warning}")
        self.finished.emit(layer)

    def _keep_shapes_on_top(self, result: Image) -> None:
        """Hook: the panel keeps the rectangle of a region run visible above the result."""

    def _on_errored(self, exc: BaseException) -> None:
        self.progress.value = 0
        self.progress.native.setFormat("")
        if isinstance(exc, Cancelled):
            self.status.value = "Cancelled: nothing was added"
            return
        show_error(f"Denoising failed: {message(exc)}")

    def _on_finished(self) -> None:
        self.worker, self._source, self._control = None, None, None
        self.denoise_button.enabled, self.denoise_button.text = True, "Denoise"

    # ---- the job --------------------------------------------------------------------------------
    def smoothing(self) -> Smoothing:
        """The Smoothing, Smooth where and Detail kept rows as one :class:`Smoothing` (off at
        σ 0)."""
        sigma = float(self.smooth.value)
        if not sigma:
            return Smoothing()
        return Smoothing(sigma, float(self.keep_detail.value), str(self.smooth_where.value))

    def _make_job(self) -> tuple[DenoiseJob, Image] | None:
        layer = self.image.value
        if layer is None or layer not in self.viewer.layers:
            raise InputError("No image layer chosen: open a micrograph and pick it under Image")
        if layer.rgb or layer.multiscale or layer.ndim not in (2, 3):
            kind = "RGB" if layer.rgb else "multiscale" if layer.multiscale else f"{layer.ndim}D"
            raise InputError(f"{layer.name!r} is {kind}: denoise works on 2D micrographs and "
                             "3D stacks of them")
        weights = self.model.value  # type: ignore[attr-defined]
        if weights is None:
            raise InputError("No model chosen: train one with the Train widget or open a "
                             ".safetensors weight file")
        from napari_cryoden.inference.cache import spare_cores

        self._plan = self._scale_plan(layer)
        if self._plan is None:
            return None
        cutoff, factor = float(self.pixel_cutoff.value) or None, self._plan.factor
        job = DenoiseJob(weights, self.device.value, layer.data, None, layer.name,
                         pixel_cutoff=cutoff, threads=spare_cores(), bin_factor=factor,
                         smooth=self.smoothing())
        box = self._region(layer)
        if box is None:
            return job, layer
        z = None if layer.ndim == 2 else self._current_slice(layer)
        image = layer.data if z is None else layer.data[z]
        return DenoiseJob(weights, self.device.value, image, box, layer.name, z, cutoff,
                          job.threads, factor, job.smooth), layer

    def _region(self, layer: Image) -> Box | None:
        """Hook: the panel's chosen region of the image layer, None for the whole image."""
        return None

    def _scale_plan(self, layer: Image) -> ScalePlan | None:
        """Hook: the run's binning (:mod:`.scale`); None after asking the user for more."""
        return ScalePlan()

    def _current_slice(self, layer: Image) -> int:
        z = layer.world_to_data(self.viewer.dims.point)[0]
        return int(np.clip(round(float(z)), 0, layer.data.shape[0] - 1))
