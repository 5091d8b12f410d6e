"""The Train widget's fixed controls: run folder, process count, the run buttons, a section.

Each builder returns one ready widget with its tooltip; :class:`.widget.TrainWidget` wires
them up and lays them out in :func:`scroll_column`, so the panel scrolls rather than pushing
the window off a small screen.
"""

from __future__ import annotations

from collections.abc import Callable

from magicgui.types import FileDialogMode
from magicgui.widgets import FileEdit, SpinBox
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QFrame,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from napari_cryoden._qt.scroll import VerticalScrollArea

__all__ = ["DeviceLabel", "LazySection", "keep_height", "processes_spin",
           "run_buttons", "run_folder_edit", "scroll_column"]


def run_folder_edit() -> FileEdit:
    """Build the run folder chooser (empty: a new folder on Start).

    Returns
    -------
    FileEdit
        A folder chooser with a placeholder and tooltip.
    """
    edit = FileEdit(mode=FileDialogMode.EXISTING_DIRECTORY, label="run folder")
    edit.tooltip = (
        "Where best.safetensors, last.safetensors and history.json go. Empty: a new folder "
        "under ~/.napari-cryoden/runs/ is created on Start. Resume continues the run in "
        "this folder (or the last run of this panel).")
    edit.line_edit.native.setPlaceholderText("a new folder on Start")
    return edit


def processes_spin() -> SpinBox:
    """Build the number-of-processes box (1: train in napari; N > 1: a subprocess).

    Returns
    -------
    SpinBox
        1 to 64, starting at 1.
    """
    return SpinBox(
        value=1, min=1, max=64, label="processes",
        tooltip="1: train here, in napari. N > 1: data-parallel training in N processes "
                "(one per GPU; on the CPU, N processes) as a 'cryoden train --nproc N' "
                "subprocess whose progress is shown here; 'batch size (patches)' is per process. "
                "See docs/distributed.md.")


def run_buttons() -> tuple[QPushButton, QPushButton, QPushButton]:
    """Build the Start, Stop and Resume buttons, with tooltips.

    Returns
    -------
    tuple of QPushButton
        ``(start, stop, resume)``, not yet connected.
    """
    start, stop, resume = QPushButton("Start"), QPushButton("Stop"), QPushButton("Resume")
    start.setToolTip("Train a new model from scratch in a new run folder.")
    stop.setToolTip("Stop at the next step; the best and last weights and the history are "
                    "kept in the run folder.")
    resume.setToolTip("Continue the run folder's last.safetensors up to 'epochs' epochs in "
                      "total.")
    return start, stop, resume


class LazySection(QCollapsible):
    """A collapsed section whose content is built the first time it opens.

    Parameters
    ----------
    title
        The section's header.
    build
        Returns the content widget; called once, by :meth:`fill` or just before the section
        first expands (a click on the header or :meth:`expand`), whichever comes first.
    tooltip
        The header's tooltip.
    """

    def __init__(self, title: str, build: Callable[[], QWidget], tooltip: str) -> None:
        super().__init__(title)
        self.setToolTip(tooltip)
        self._build: Callable[[], QWidget] | None = build
        self._policy: QSizePolicy | None = None  # the content's own, while it is ignored
        self._content_widget: QWidget | None = None

    @property
    def built(self) -> bool:
        """Whether the content has been built (the section was opened once)."""
        return self._build is None

    def fill(self) -> None:
        """Build the content now if not yet, leaving the section as it is (collapsed or not).

        Until the section first opens, the content's width does not count in the panel's: a
        closed section built early leaves the panel as narrow as an unbuilt one.
        """
        if self._build is not None:
            build, self._build = self._build, None
            content = build()
            if not self.isExpanded():
                self._policy = content.sizePolicy()
                content.setSizePolicy(QSizePolicy.Policy.Ignored,
                                      self._policy.verticalPolicy())
            self._content_widget = content
            self.addWidget(content)

    def expand(self, animate: bool = True) -> None:
        """Build the content if not yet, then expand (the header's click calls this too)."""
        self.fill()
        if self._policy is not None and self._content_widget is not None:
            self._content_widget.setSizePolicy(self._policy)  # its width counts from now on
            self._policy = None
        super().expand(animate)


def scroll_column(panel: QWidget) -> QVBoxLayout:
    """Fill ``panel`` with a vertical scroll area and return the column laid out inside it.

    The column's rows keep their minimum heights; a panel taller than its dock scrolls
    (horizontally it fits the dock's width).

    Parameters
    ----------
    panel
        The widget to fill; it gets a layout holding only the scroll area.

    Returns
    -------
    QVBoxLayout
        The layout to add the panel's rows to.
    """
    area = VerticalScrollArea(panel)  # never narrower than its rows: a dock beside can't squeeze it
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    inner = QWidget(area)
    area.setWidget(inner)
    outer = QVBoxLayout(panel)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(area)
    panel.scroll_area = area  # type: ignore[attr-defined]  # for tests and ensureWidgetVisible
    return QVBoxLayout(inner)


def keep_height(widget: QWidget) -> None:
    """Keep a row at its natural height when its column is squeezed (e.g. radio buttons)."""
    widget.setMinimumHeight(widget.sizeHint().height())
    widget.setSizePolicy(widget.sizePolicy().horizontalPolicy(), QSizePolicy.Policy.Fixed)


class DeviceLabel(QLabel):
    """"Training runs on: …", asked of torch in a worker (its first import takes seconds)."""

    def __init__(self) -> None:
        super().__init__()
        self.setToolTip("The device that will train ('device' setting).")
        self._asked: tuple[str, int] | None = None

    def ask(self, choice: str, processes: int) -> None:
        """Show where ``processes`` processes with device ``choice`` train, once known."""
        from superqt.utils import create_worker

        self._asked = (choice, processes)
        self.setText("Training runs on: (checking…)")
        worker = create_worker(_describe, choice, processes, _start_thread=False)
        worker.returned.connect(self._show)  # a bound slot: dropped if the label is deleted
        worker.start()

    def _show(self, answer: tuple[tuple[str, int], str]) -> None:
        asked, where = answer
        if asked != self._asked:
            return  # the answer to an earlier choice
        if asked[1] > 1:
            where = f"{asked[1]} processes, each on {where}"
        self.setText(f"Training runs on: {where}")


def _describe(choice: str, processes: int) -> tuple[tuple[str, int], str]:
    from napari_cryoden.devices import describe_choice

    return (choice, processes), describe_choice(choice)
