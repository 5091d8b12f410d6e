"""The Train panel's settings rows, built in steps so that opening the panel never blocks napari.

Building and laying out some 40 magicgui widgets under napari's style sheet takes 200-370 ms
on a loaded 2-core machine (item 7 of issue 14). :class:`SettingsRows` builds them in a few
steps, each in its own event-loop turn (a short timer apart). The "Advanced" rows follow in
further turns, a few widgets at a time, and a last turn puts them in their closed section
(:class:`~.layout.LazySection`): opening it then costs a relayout and the animation (building,
styling and laying them out in the click's turn took 56-108 ms). The form reads the values of
rows not built yet from the defaults. Code that needs a row before its turn calls :meth:`finish`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from magicgui.widgets import Container
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QVBoxLayout, QWidget

from napari_cryoden._qt.train import layout
from napari_cryoden._qt.train.data_form import DataForm
from napari_cryoden._qt.train.form import BASIC_FIELDS, ConfigForm

if TYPE_CHECKING:
    import napari
    from magicgui.widgets import FileEdit, SpinBox

__all__ = ["ROWS", "SettingsRows"]

FIRST_MS, TURN_MS = 50, 5
"""The pauses before the first step (napari docks and paints the panel meanwhile) and between
two steps: the event loop runs its due timers, input and paints between."""
ADVANCED_PER_TURN = 4
"""How many Advanced widgets one turn builds (about 1 ms each on an idle 2-core machine)."""
ROWS = frozenset({"data", "form", "settings", "advanced", "advanced_section", "run_folder",
                  "processes", "device_label"})
"""The attributes of :class:`SettingsRows` that the Train widget shows as its own."""
ADVANCED_HELP = ("Network size, normalisation, learning-rate schedule, GPU arithmetic and "
                 "kernels, data streaming, random seed and the number of processes.")


class SettingsRows:
    """The data rows, the settings form, the run folder, the device line and "Advanced".

    Parameters
    ----------
    viewer
        The napari viewer (its Image layers fill the data rows).
    column
        The panel's column; the rows go at its top, above what it holds already.
    on_checked
        Called when the data rows are built and after every check of the data choice.
    """

    data: DataForm
    form: ConfigForm
    settings: Container[Any]
    advanced: Container[Any]
    advanced_section: layout.LazySection
    run_folder: FileEdit
    processes: SpinBox
    device_label: layout.DeviceLabel

    def __init__(self, viewer: napari.Viewer, column: QVBoxLayout,
                 on_checked: Callable[[], None]) -> None:
        self._viewer, self._column, self._on_checked = viewer, column, on_checked
        self._pending = [self._build_data, self._build_form, self._add_data_rows,
                         self._add_form_rows, self._build_rest, self._build_advanced]
        self._timer = QTimer(column)  # deleted with the panel: no step after that
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._build_next)
        self._timer.start(FIRST_MS)

    @property
    def done(self) -> bool:
        """Whether every row is built, and shown (the Advanced rows: once their section opens)."""
        return not self._pending

    def finish(self) -> SettingsRows:
        """Build the rows not built yet, now; returns ``self``."""
        while self._pending:
            self._pending.pop(0)()
        return self

    def _build_next(self) -> None:
        if self._pending:
            self._pending.pop(0)()
            self._timer.start(TURN_MS)

    def _build_data(self) -> None:
        self.data = DataForm(self._viewer)
        self.settings = Container(labels=True)
        self.advanced = Container(labels=True)  # filled when "Advanced" first opens

    def _build_form(self) -> None:
        self.form = ConfigForm()
        self.run_folder, self.processes = layout.run_folder_edit(), layout.processes_spin()

    def _add_data_rows(self) -> None:
        mode = self.form.widget("train.mode")  # first: it decides what the data rows ask for
        mode.changed.connect(self.data.set_mode)
        self.settings.extend([mode, *self.data.widgets])
        layout.keep_height(self.data.source.native)
        self._column.insertWidget(0, self.settings.native)
        self.data.checked.connect(self._on_checked)
        self._on_checked()

    def _add_form_rows(self) -> None:
        mode = self.form.widget("train.mode")
        self.settings.extend([*(w for w in self.form.basic if w is not mode), self.run_folder])

    def _build_rest(self) -> None:
        self.device_label = layout.DeviceLabel()
        self.form.widget("train.device").changed.connect(self._update_device)
        self.processes.changed.connect(self._update_device)
        self._update_device()
        self.advanced_section = layout.LazySection("Advanced", self._fill_advanced,
                                                   ADVANCED_HELP)
        for index, widget in enumerate((self.device_label, self.advanced_section), start=1):
            self._column.insertWidget(index, widget)

    def _build_advanced(self) -> None:
        """Build the next few Advanced widgets; a last turn puts them in their (closed) section."""
        waiting = [key for key in self.form.unbuilt() if key not in BASIC_FIELDS]
        for key in waiting[:ADVANCED_PER_TURN]:
            self.form.widget(key)
        if waiting:
            self._pending.insert(0, self._build_advanced)
        else:
            self.advanced_section.fill()  # built and styled now: opening relayouts, animates

    def _fill_advanced(self) -> QWidget:
        """The Advanced rows (those not built yet built now), for their section."""
        self.advanced.extend([*self.form.advanced(), self.processes])  # at once: one width
        return self.advanced.native

    def _update_device(self, *_: Any) -> None:
        self.device_label.ask(self.form.widget("train.device").value, self.processes.value)
