"""The Inspect widget's form: which layers it analyses, guessed only from unambiguous evidence.

:class:`InspectChoices` builds the form (images, even/odd halves, picks, model, patch settings)
and keeps its choices current as layers come and go: a choice the user has not made takes only
the guesses of :mod:`.choices` and :mod:`.halves`; Analyse is enabled only for usable choices,
and otherwise the panel says why (:meth:`InspectChoices._check_choices`). The Inspect widget
(:class:`napari_cryoden._qt.inspect_widget.InspectWidget`) adds the analysis and its display.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, Container, PushButton
from qtpy.QtWidgets import QLabel, QWidget

from napari_cryoden._qt._models import MODELS
from napari_cryoden._qt.inspect.choices import choice_problem, guess_images
from napari_cryoden._qt.inspect.form import image_combos, map_controls, settings
from napari_cryoden._qt.inspect.truthless_panel import TruthlessPanel
from napari_cryoden.evaluation.metrics import METRICS

if TYPE_CHECKING:
    import napari

__all__ = ["InspectChoices", "MAP_METRICS"]

MAP_METRICS = {m.label: m for m in METRICS}
_PROBLEM_STYLE = "color:#e03c31;"
_OR_HALVES = " Without a clean image: choose the even and odd halves and the model."


class InspectChoices(QWidget):
    """The form and its choices; subclasses give ``run_analysis`` and ``_on_map_changed``."""

    viewer: napari.viewer.Viewer
    _worker: Any

    def run_analysis(self) -> None:
        """Analyse the chosen images (the subclass's)."""
        raise NotImplementedError

    def _on_map_changed(self, *_: Any) -> None:
        raise NotImplementedError

    # -- construction ----------------------------------------------------------------------
    def _build_form(self) -> None:
        images = lambda _w: self._image_choices()  # noqa: E731
        self.noisy, self.denoised, self.clean = image_combos(images)
        self.model, self.patch_size, self.data_range = settings(lambda _w: MODELS.labels())
        self.analyse_button = PushButton(text="Analyse")
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(_PROBLEM_STYLE)
        self.show_map, self.map_metric = map_controls(list(MAP_METRICS))
        self.truthless = TruthlessPanel(self.viewer, images, lambda: self.noisy.value)
        self.form = Container(widgets=[self.noisy, self.denoised, self.clean, self.model,
                                       *self.truthless.widgets, self.patch_size,
                                       self.data_range, self.analyse_button])
        self.map_row = Container(widgets=[self.show_map, self.map_metric], layout="horizontal",
                                 labels=False)
        self._guessing = False
        self._user_set: set[ComboBox] = set()
        for combo in (self.noisy, self.denoised, self.clean, *self.truthless.combos):
            combo.changed.connect(lambda _v, c=combo: self._on_user_choice(c))
        self.model.changed.connect(lambda _v: self._check_choices())
        self.analyse_button.changed.connect(self.run_analysis)
        self.show_map.changed.connect(self._on_map_changed)
        self.map_metric.changed.connect(self._on_map_changed)

    # -- image choices ---------------------------------------------------------------------
    def _image_choices(self) -> list[tuple[str, Any]]:
        from napari.layers import Image

        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Image)]

    def _on_layers_changed(self, event: Any) -> None:
        if getattr(event, "type", "") == "inserted":
            event.value.events.name.connect(self._refresh_choices)
        self._refresh_choices()

    def _refresh_choices(self, event: Any = None) -> None:
        """Re-list the layers; combos the user has not set take only unambiguous guesses."""
        self._guessing = True
        for combo in (self.noisy, self.denoised, self.clean, self.model):
            combo.reset_choices()
        images = [layer for _, layer in self._image_choices()]
        for combo, guess in zip((self.noisy, self.denoised, self.clean), guess_images(images),
                                strict=True):
            if combo not in self._user_set:
                combo.value = guess
        self.truthless.guess(images, self.noisy.value, self._user_set)
        self._guessing = False
        self._check_choices()

    def _check_choices(self) -> str | None:
        """Enable Analyse only for a usable trio; otherwise say why in the panel."""
        problem = self._problem()
        busy = self._worker is not None
        self.analyse_button.enabled = problem is None and not busy
        self.problem.setText(problem or "")
        self.problem.setVisible(problem is not None)
        return problem

    def _problem(self) -> str | None:
        """The clean-image trio's problem, or the halves' and picks' when they are chosen."""
        trio = choice_problem(self.noisy.value, self.denoised.value, self.clean.value)
        if not self.truthless.wanted():
            return trio if trio is None or self.clean.value is not None else trio + _OR_HALVES
        problem = self.truthless.problem(self.model.value, self.noisy.value,
                                         self.denoised.value, clean_ok=trio is None)
        return problem or (trio if self.clean.value is not None else None)

    def _on_models_changed(self, label: str, path: Any) -> None:
        with contextlib.suppress(RuntimeError):  # this widget's Qt side may be gone
            self.model.reset_choices()

    def _on_user_choice(self, combo: ComboBox) -> None:
        if not self._guessing:
            self._user_set.add(combo)
            self._check_choices()

