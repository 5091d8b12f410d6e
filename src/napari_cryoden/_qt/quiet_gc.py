"""Keep Python's cycle collector from freezing the window: napari's own objects are frozen once.

A napari window holds ~300,000 objects that Python's cycle collector walks at every full
("generation 2") collection: 50–170 ms on this project's 2-core machine, with the GIL held,
whichever thread triggers it. A worker that allocates (matplotlib building a figure, a
checkpoint being read) triggers such collections every few seconds, and each one freezes the UI
thread for its whole length: that, not our code, was the largest block of Inspect's Analyse
(161 ms) and of its first row click (167 ms).

:func:`freeze_long_lived`, called when a panel opens, moves the objects alive then (napari's
window, its layers, the imported modules) into the collector's permanent generation
(:func:`gc.freeze`, CPython's facility for long-lived processes), so later full collections walk
only newer objects: measured 140 ms -> under 1 ms. Each panel that opens freezes again (a second
viewer's objects, say). Frozen objects are still freed by reference counting; only reference
cycles among them that become garbage later stay in memory (a few, in a session).

:func:`short_gil_turns` is the other half. While a worker runs Python (matplotlib building and
drawing a figure, an analysis), the UI thread must win the GIL back each time it has let go of it,
and it lets go often while napari repaints (every OpenGL call through ctypes, every blocking Qt
call); each win waits up to the interpreter's switch interval, 5 ms by default, and a paint adds
those waits up. Every :class:`~napari_cryoden._qt.figure_image.FigureImage` (the figures of Inspect
and Weights, drawn in workers) shortens it when it is made. At 1 ms, the Inspect panel's row-click
test on this project's 2-core machine under Xvfb had its longest UI-thread gap fall from 43–105 ms
(mean 73, one run over 100 ms) to 38–68 ms (mean 55) over 10 runs each, and Analyse's from 29–95 to
26–62 ms (2026-12-07, ``tests/qt/test_panel_gaps.py -k row_click``). The cost is more frequent
hand-overs between Python threads, small next to a figure's draw.
"""

from __future__ import annotations

import gc
import sys

__all__ = ["SWITCH_INTERVAL_S", "freeze_long_lived", "short_gil_turns"]

SWITCH_INTERVAL_S = 0.001
"""How long a Python thread may hold the GIL while another waits (CPython's default: 5 ms)."""


def freeze_long_lived() -> None:
    """Collect the young generations (a few ms), then freeze every object alive now."""
    gc.collect(1)
    gc.freeze()


def short_gil_turns() -> None:
    """Shorten the interpreter's switch interval to :data:`SWITCH_INTERVAL_S` (never lengthen)."""
    if sys.getswitchinterval() > SWITCH_INTERVAL_S:
        sys.setswitchinterval(SWITCH_INTERVAL_S)
