"""Inspect's "without a clean image" part: the even/odd and picks choices, and their results.

The choices (even half, odd half, picks, box size, "Open picks file…") sit in Inspect's form;
the results, shown after Analyse, are a small table of the split-frame and region-pair SNR of
the raw input, the model and the Gaussian σ = 8 px baseline side by side (the rows of
``cryoden evaluate``, :func:`~napari_cryoden.evaluation.truthless.truthless_rows`), a line
saying what was measured, and the split-frame SNR per frequency, drawn in a worker.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, PushButton, SpinBox
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from napari_cryoden._qt.figure_image import FigureImage
from napari_cryoden._qt.inspect.halves import (
    guess_halves,
    guess_picks,
    picks_of,
    pixels_to_points,
    points_to_pixels,
    truthless_problem,
)
from napari_cryoden._qt.inspect.truthless_jobs import (
    TruthlessJob,
    TruthlessResult,
    frequency_figure_of,
)
from napari_cryoden.evaluation.truthless import (
    TRUTHLESS_COLUMNS,
    format_truthless,
    measured_line,
    truthless_rows,
)

if TYPE_CHECKING:
    import napari

__all__ = ["TruthlessPanel", "truthless_summary"]

_TIPS = ("split-frame SNR (SNR_mixed²/SNR_raw_half), dB; raw: the halves' own",
         "split-frame SNR, Frank & Al-Ali's exact form ρ/(1−ρ), dB",
         "var_B/var_S: the share of the signal's variance the filter distorted (lower is better)",
         "region-pair SNR on the picks, dB: rewards plain smoothing, read it with var_B/var_S")
PICK_FILTER = "Picks (*.star *.box *.coord)"


class TruthlessPanel:
    """The halves and picks choices (:attr:`widgets`) and the results (:attr:`results`)."""

    def __init__(self, viewer: napari.viewer.Viewer,
                 images: Callable[[Any], list[tuple[str, Any]]],
                 noisy: Callable[[], Any]) -> None:
        self.viewer = viewer
        self._noisy = noisy  # the layer picks files are placed on without halves
        self.even = ComboBox(label="even half (optional)", choices=images, nullable=True,
                             tooltip="The even frames' sum (MotionCor2's <name>_EVN): with the "
                                     "odd half, the split-frame SNR needs no clean image.")
        self.odd = ComboBox(label="odd half (optional)", choices=images, nullable=True,
                            tooltip="The odd frames' sum (<name>_ODD), of the same micrograph.")
        self.picks = ComboBox(label="picks (optional)", choices=self._points, nullable=True,
                              tooltip="A Points layer on particles: region-pair SNR, shown "
                                      "beside a Gaussian σ = 8 px low-pass and var_B/var_S.")
        self.box_size = SpinBox(label="box size (px)", value=64, min=4, max=4096,
                                tooltip="Edge of the particle and background boxes: about the "
                                        "particle's diameter.")
        self.open_picks = PushButton(text="Open picks file…",
                                     tooltip="Read a .star, .box or .coord file into a Points "
                                             "layer on the even half (or the noisy image).")
        self.open_picks.changed.connect(self._ask_picks_file)
        self.combos = (self.even, self.odd, self.picks)
        self.widgets = [self.even, self.odd, self.picks, self.box_size, self.open_picks]
        self.result: TruthlessResult | None = None
        self._build_results(viewer)

    def _build_results(self, viewer: Any) -> None:
        self.table = QTableWidget(3, len(TRUTHLESS_COLUMNS))
        self.table.setHorizontalHeaderLabels([name for name, _ in TRUTHLESS_COLUMNS])
        for j, tip in enumerate(_TIPS):
            item = self.table.horizontalHeaderItem(j)
            if item is not None:
                item.setToolTip(tip)
        header, rows = self.table.horizontalHeader(), self.table.verticalHeader()
        assert header is not None and rows is not None  # a table view always has both
        self.table.setMinimumHeight(header.sizeHint().height() + 3 * rows.defaultSectionSize()
                                    + 2 * self.table.frameWidth() + 2)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.canvas = FigureImage(viewer, "")
        self.canvas.setMinimumHeight(240)
        self.results = QWidget()
        column = QVBoxLayout(self.results)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(QLabel("<b>Without a clean image</b>"))
        for part in (self.table, self.note, self.canvas):
            column.addWidget(part)
        self.results.setVisible(False)

    def _points(self, _widget: Any = None) -> list[tuple[str, Any]]:
        from napari.layers import Points

        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Points)]

    # -- choices ---------------------------------------------------------------------------
    def guess(self, images: list[Any], noisy: Any, user_set: set[Any]) -> None:
        """Re-list the layers; choices the user has not made take only unambiguous guesses."""
        for combo in self.combos:
            combo.reset_choices()
        guesses = (*guess_halves(images, noisy), guess_picks([lay for _, lay in self._points()]))
        for combo, guess in zip(self.combos, guesses, strict=True):
            if combo not in user_set:
                combo.value = guess

    def wanted(self) -> bool:
        """Whether halves or picks are chosen."""
        return any(combo.value is not None for combo in self.combos)

    def problem(self, model: Any, noisy: Any, denoised: Any, clean_ok: bool) -> str | None:
        """Why the chosen halves/picks cannot be measured; ``None`` when they can."""
        return truthless_problem((self.even.value, self.odd.value), model, self.picks.value,
                                 (noisy, denoised), clean_ok)

    def job(self, arrays: Callable[[Any, str], Any], noisy: Any, denoised: Any,
            patch_size: int, model_path: Path | None) -> TruthlessJob:
        """The worker's job for the chosen layers (``arrays(layer, label)`` reads a layer)."""
        even, odd = self.even.value, self.odd.value
        halves = None if even is None else (arrays(even, "even half"), arrays(odd, "odd half"))
        on_images = noisy is not None and denoised is not None
        picks, reference = self.picks.value, (noisy if on_images else even)
        xy = None if picks is None else points_to_pixels(picks, reference)
        region = (arrays(noisy, "noisy"), arrays(denoised, "denoised")) \
            if on_images and picks is not None else None
        return TruthlessJob(halves, model_path, patch_size, xy, int(self.box_size.value), region)

    # -- results ---------------------------------------------------------------------------
    def show(self, result: TruthlessResult | None) -> None:
        """Fill the rows, the line under them and the frequency plot (hidden for ``None``)."""
        self.result = result
        self.results.setVisible(result is not None)
        if result is None:
            return
        blocks = result.blocks()
        for i, (label, row) in enumerate(truthless_rows(blocks)):
            self.table.setVerticalHeaderItem(i, QTableWidgetItem(label))
            for j, (_, key) in enumerate(TRUTHLESS_COLUMNS):
                item = QTableWidgetItem(format_truthless(row.get(key), key))
                item.setData(Qt.ItemDataRole.UserRole, row.get(key))
                item.setFlags(Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled)
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        self.note.setText(measured_line(blocks) + ".")
        if result.split is not None:
            self.canvas.setVisible(True)
            self.canvas.show_figure(lambda: frequency_figure_of(result))
        else:
            self.canvas.setVisible(False)

    def value(self, row: str, column: str) -> Any:
        """The number shown in ``row`` ("raw", "model", "Gaussian…") and ``column``."""
        rows = [self.table.verticalHeaderItem(i).text()  # type: ignore[union-attr]
                for i in range(self.table.rowCount())]
        i = next(n for n, label in enumerate(rows) if label.startswith(row))
        j = [name for name, _ in TRUTHLESS_COLUMNS].index(column)
        item = self.table.item(i, j)
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    # -- picks file ------------------------------------------------------------------------
    def _ask_picks_file(self, *_: Any) -> None:
        from qtpy.QtWidgets import QFileDialog

        chosen, _filter = QFileDialog.getOpenFileName(None, "Open picks file", "", PICK_FILTER)
        if chosen:
            self.open_picks_file(Path(chosen))

    def open_picks_file(self, path: Path) -> None:
        """Read ``path`` in a worker, then add its picks as a Points layer and choose it."""
        from napari.qt.threading import create_worker

        from napari_cryoden.io.picks import read_picks

        worker = create_worker(read_picks, path, _start_thread=False)
        worker.returned.connect(self._add_points)
        worker.errored.connect(lambda exc: self._notify(str(exc)))
        worker.start()

    def _add_points(self, found: dict[str, Any]) -> None:
        image = self.even.value or self._noisy()
        if image is None:
            self._notify("Choose the even half or the noisy image the picks belong to first.")
            return
        try:
            picks = picks_of(found, image.name)
        except ValueError as exc:
            self._notify(str(exc))
            return
        if picks.box_size:
            self.box_size.value = int(round(picks.box_size))
        name = picks.source.stem if picks.source is not None else "picks"
        layer = self.viewer.add_points(name=name, size=int(self.box_size.value),
                                       face_color="transparent",
                                       border_color="yellow", **pixels_to_points(picks.xy, image))
        self.picks.reset_choices()
        self.picks.value = layer

    @staticmethod
    def _notify(text: str) -> None:
        from napari.utils.notifications import show_error

        show_error(text)


def truthless_summary(items: list[dict[str, Any]]) -> str:
    """" Items 11–13: 2/2 judged pass; not judged: 13 (needs picks …)." ("" for no items)."""
    if not items:
        return ""
    judged = [i for i in items if i["passed"] is not None]
    missing = [f"{i['id']} ({i['note']})" for i in items if i["passed"] is None]
    text = (f" Items 11–13 (without a clean image): {sum(i['passed'] is True for i in judged)}"
            f"/{len(judged)} judged pass")
    return text + (f"; not judged: {', '.join(missing)}." if missing else ".")
