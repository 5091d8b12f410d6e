"""*Fit to these micrographs*: adapt the Denoise panel's model to the open micrographs.

A collapsed section of the Denoise panel. The micrographs are the panel's Image layer, or the
Image layers selected in the layer list when there are several. Even/odd halves are filled in
only when the layer names say so (``X_EVN``/``X_ODD`` of an image ``X``,
:func:`~napari_cryoden._qt.train.layer_choice.halves_of`); otherwise they stay empty and the
fine-tune is blind-spot. *Fit* runs :func:`~napari_cryoden.api._adapt.adapt_events` in a worker
(:mod:`.fit_work`) for the time box; the button reads *Stop* meanwhile (the best state so far is
kept, never worse than the start). At the end the adapted model is saved (where, the panel
says), added to Model as ``adapted · <image> (from <start>)`` and selected, because the user
asked for it; the report shows held-out loss and, with halves, split-frame SNR before/after.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, ProgressBar, PushButton
from napari.layers import Image
from psygnal import Signal
from superqt import QCollapsible

from napari_cryoden._qt._models import MODELS, SHIPPED_LABELS
from napari_cryoden._qt.denoise.fit_work import (
    Budget,
    FitDone,
    FitJob,
    breakable,
    default_output,
    fit_work,
    progress_text,
    report_lines,
    warm_up,
)
from napari_cryoden._qt.denoise.raw_folders import message
from napari_cryoden._qt.denoise.sections import wrap_text
from napari_cryoden._qt.train.layer_choice import halves_of, pair_problem, shape
from napari_cryoden.errors import InputError

if TYPE_CHECKING:
    import napari

__all__ = ["AUTO_SECONDS", "FitSection", "TITLE"]

TITLE = "Fit to these micrographs"
AUTO_SECONDS = "auto: 60 on a CPU, 10 on a GPU"  # training.adapt.default_seconds
STEPS = 1000  # of the progress bar


class FitSection(Container):
    """Fine-tune the panel's model on the chosen micrographs, in a worker, and report."""

    finished = Signal(object)
    """Emitted with the report (dict) when a fit ends, or None when it failed."""

    def __init__(self, viewer: napari.viewer.Viewer, panel: Any) -> None:
        super().__init__(labels=True)
        self.viewer, self.panel = viewer, panel
        self.worker: Any = None
        self._stop = threading.Event()
        self._budget, self._started = 0.0, 0.0
        self._before = self._best = 0.0  # held-out loss of the start, and the best so far
        self._job: FitJob | None = None
        self._for: Any = None  # the micrograph the halves were guessed for
        self._warm, self._gone = False, False  # modules imported; the window closed
        self._build()
        self._connect()
        self.section = QCollapsible(TITLE)
        self.section.addWidget(self.native)
        self.section.setToolTip("Fine-tune the model chosen above on these micrographs, "
                                "self-supervised, within a time box; keep it only if it helps.")
        self.section.toggled.connect(self._warm_up)
        panel.add_section(self.section)  # after *Denoise files on disk…*
        self._refresh()

    def _warm_up(self, expanded: bool = True) -> None:
        if expanded and not self._warm:  # the fine-tune's imports, while the user chooses
            from napari.qt.threading import create_worker

            self._warm = True
            create_worker(warm_up, _connect={"finished": self._on_warm})

    def _on_warm(self) -> None:
        self.ready = True

    ready = False
    """Whether the fine-tune's modules are imported (the section was opened a moment ago)."""

    def _build(self) -> None:
        self.micrographs = Label(label="Micrographs", value="")
        self.even = ComboBox(label="Even half", choices=self._half_choices, tooltip=(
            "The even-frame sum of the micrograph (Noise2Noise). Filled in only when the layer "
            "names say so (X_EVN / X_ODD of an image X); 'none': blind-spot fine-tune."))
        self.odd = ComboBox(label="Odd half", choices=self._half_choices,
                            tooltip="The odd-frame sum of the same micrograph.")
        self.seconds = FloatSpinBox(label="Time box (s)", value=0.0, min=0.0, max=3600.0,
                                    step=5.0, tooltip="How long the fine-tune may run.")
        self.seconds.native.setSpecialValueText(AUTO_SECONDS)
        self.saves_to = Label(label="Saves to", value="")
        self.fit_button = PushButton(text="Fit", tooltip=(
            "Fine-tune the model chosen above on these micrographs; while it runs the button "
            "reads Stop (the best state so far is kept, never worse than the start)."))
        self.progress = ProgressBar(label="Progress", value=0, min=0, max=STEPS)
        self.progress.native.setFormat("")
        self.status = Label(label="", value="", visible=False)
        self.report = Label(label="", value="")
        for label in (self.micrographs, self.saves_to):
            wrap_text(label)  # in line with the other rows
        for label in (self.status, self.report):  # no row label: wrap at their natural width
            label.native.setWordWrap(True)
        self.extend([self.micrographs, self.even, self.odd, self.seconds, self.saves_to,
                     self.fit_button, self.progress, self.status, self.report])

    def _connect(self) -> None:
        self.fit_button.clicked.connect(self._on_fit_clicked)
        self.native.destroyed.connect(self._on_destroyed)  # the window closed mid-fit
        self.panel.image.changed.connect(self._refresh)
        self.viewer.layers.selection.events.changed.connect(self._refresh)
        events = self.viewer.layers.events
        for event in (events.inserted, events.removed):
            event.connect(self._refresh)

    def _half_choices(self, _: Any = None) -> list[tuple[str, Image | None]]:
        return [("none", None), *[(layer.name, layer) for layer in self._images()]]

    def _images(self) -> list[Image]:
        return [layer for layer in self.viewer.layers if isinstance(layer, Image)]

    # ---- the micrographs ------------------------------------------------------------------------
    def targets(self) -> list[Image]:
        """The micrographs to fit: several selected Image layers, else the panel's Image."""
        selected = [layer for layer in self._images() if layer in self.viewer.layers.selection]
        if len(selected) > 1:
            return selected
        image = self.panel.image.value
        return [image] if image is not None and image in self.viewer.layers else []

    def _refresh(self, event: Any = None) -> None:
        self.even.reset_choices()
        self.odd.reset_choices()
        targets = self.targets()
        single = len(targets) == 1
        self.even.visible = self.odd.visible = single
        if single and targets[0] is not self._for:
            self._for = targets[0]
            self.even.value, self.odd.value = halves_of(targets[0], self._images())
        self.micrographs.value = self._describe(targets)
        self.saves_to.value = breakable(self._output(targets)) if targets else ""

    def _describe(self, targets: list[Image]) -> str:
        if not targets:
            return "none: open a micrograph and pick it under Image"
        if len(targets) == 1:
            return f"{targets[0].name} (the Image above)"
        names = ", ".join(layer.name for layer in targets)
        halves = all(halves_of(t, self._images())[0] is not None for t in targets)
        how = "even/odd halves found by name" if halves else "blind spot (no halves for each)"
        return f"{len(targets)} selected Image layers: {names} · {how}"

    def _output(self, targets: list[Image]) -> Any:
        name = targets[0].name if len(targets) == 1 else f"{targets[0].name}_and_more"
        return default_output(getattr(targets[0].source, "path", None), name)

    def _pairs(self, targets: list[Image]) -> tuple[tuple[Any, Any], ...]:
        if len(targets) > 1:
            found = [halves_of(t, self._images()) for t in targets]
            if all(even is not None for even, _ in found):
                return tuple((even.data, odd.data) for even, odd in found)
            return tuple((t.data, None) for t in targets)
        even, odd = self.even.value, self.odd.value
        if even is None and odd is None:
            return ((targets[0].data, None),)
        problem = pair_problem(even, odd, "n2n")
        if problem is not None:
            raise InputError(problem.replace("Choose the even and the odd layer",
                                             "Choose both halves or neither"))
        return ((even.data, odd.data),)

    def _make_job(self) -> FitJob:
        targets = self.targets()
        if not targets:
            raise InputError("No micrograph to fit to: open one and pick it under Image above")
        for layer in targets:
            if layer.rgb or layer.multiscale or len(shape(layer)) != 2:
                raise InputError(f"{layer.name!r} is not a 2D micrograph: fit works on 2D "
                                 "single-channel images")
        weights = self.panel.model.value
        if weights is None:
            raise InputError("No model chosen: pick the model to start from under Model above")
        start = self.panel.model.native.currentText()
        return FitJob(weights, SHIPPED_LABELS.get(start, start), self.panel.device.value,
                      float(self.seconds.value) or None, self._pairs(targets),
                      tuple(layer.name for layer in targets), self._output(targets))

    # ---- running ------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether a fit is running."""
        return self.worker is not None

    def _on_fit_clicked(self) -> None:
        if self.busy:
            self.stop()
        else:
            self.start()

    def stop(self) -> None:
        """End the fine-tune before its next step; the best state so far is kept."""
        if self.busy:
            self._stop.set()
            self.fit_button.enabled, self.fit_button.text = False, "Stopping…"

    def start(self) -> None:
        """Check the choices and start the fit in a worker (a bad choice: one line here)."""
        if self.busy:
            return
        try:
            self._job = self._make_job()
        except Exception as exc:  # a slot must not raise: tell the user instead
            self._say(f"Cannot fit: {message(exc)}")
            self.report.value = ""
            return
        from napari.qt.threading import create_worker

        self._stop = threading.Event()
        self._started, self._budget = time.perf_counter(), 0.0
        self.fit_button.text, self.report.value = "Stop", ""
        self._say("")
        self.progress.native.setFormat("Loading the model…")
        self.progress.value = 0
        self.worker = create_worker(fit_work, self._job, self._stop, _connect={
            "yielded": self._on_yielded, "returned": self._on_returned,
            "errored": self._on_errored, "finished": self._on_finished})

    def _on_yielded(self, event: Any) -> None:
        if self._gone:
            return
        if isinstance(event, Budget):
            self._budget, self._started = event.seconds, time.perf_counter()
            return
        if hasattr(event, "what"):  # Measuring
            text = self.progress.native.format().split(" · ")[0]
            self.progress.native.setFormat(f"{text} · measuring {event.what}…")
            return
        if event.step == 0:
            self._before = self._best = event.held_out_loss
        self._best = min(self._best, event.held_out_loss)
        elapsed = time.perf_counter() - self._started
        self.progress.value = round(STEPS * min(elapsed / max(self._budget, 1e-9), 1.0))
        self.progress.native.setFormat(progress_text(self._before, self._best, event.step,
                                                     self._budget - elapsed))

    def _on_returned(self, done: FitDone) -> None:
        if self._gone:
            return
        job = self._job
        if done.out is not None and job is not None:
            names = job.names[0] if len(job.names) == 1 else f"{job.names[0]} + more"
            MODELS.register(f"adapted · {names} (from {job.start_name})", done.out,
                            tooltip=f"{done.out}\nadapted from {job.start_name} on "
                                    f"{', '.join(job.names)}")
            self.panel.model.value = done.out  # the user asked for this model: select it
            self.progress.native.setFormat("done: the adapted model is chosen above")
        else:
            self.progress.native.setFormat("done: the starting model was kept")
        self.progress.value = STEPS
        lines = report_lines(done.report, done.out)
        self.report.value = breakable("\n".join(lines))
        self.finished.emit(done.report)

    def _on_errored(self, exc: BaseException) -> None:
        if self._gone:
            return
        # bad input (noise a blind spot would learn, a micrograph too small) is not a failure
        self._say(f"{'Cannot fit' if isinstance(exc, InputError) else 'Fit failed'}: "
                  f"{message(exc)}")
        self.progress.native.setFormat("")
        self.progress.value = 0
        self.finished.emit(None)

    def _say(self, text: str) -> None:
        """A one-line reason under the progress bar (hidden when there is none)."""
        self.status.value, self.status.visible = text, bool(text)

    def _on_destroyed(self, _: Any = None) -> None:
        self._gone = True
        self._stop.set()

    def _on_finished(self) -> None:
        self.worker = None
        if self._gone:
            return
        self.fit_button.enabled, self.fit_button.text = True, "Fit"
        self._refresh()
