"""Qt test helpers shared by the widget tests: how long the UI thread stays blocked."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

TICK_MS = 20
MAX_GAP_S = 0.1
"""The longest the UI thread may stay blocked: a 20 ms timer must tick at least every 100 ms."""


@dataclass
class UiGaps:
    """The ticks of a 20 ms QTimer on the UI thread; the longest gap between two is the block."""

    ticks: list[float] = field(default_factory=list)

    def tick(self) -> None:
        self.ticks.append(time.perf_counter())

    @property
    def longest(self) -> float:
        """The longest time in seconds between two ticks (or since the start, or until the end)."""
        return max((b - a for a, b in zip(self.ticks, self.ticks[1:], strict=False)), default=0.0)

    def __str__(self) -> str:
        return f"longest UI-thread gap {1000 * self.longest:.0f} ms over {len(self.ticks)} ticks"


@pytest.fixture
def ui_gaps() -> Callable[[], object]:
    """``with ui_gaps() as gaps: <drive the widget>``, then ``assert gaps.longest < MAX_GAP_S``.

    The timer starts before the block's first statement and stops after its last, so a click
    handler that runs for 1 s on the UI thread shows as a 1 s gap. Wait for the action's end
    inside the block with ``qtbot.waitUntil``/``waitSignal`` (they run the event loop).
    """
    from qtpy.QtCore import QTimer

    @contextmanager
    def measure() -> Iterator[UiGaps]:
        gaps = UiGaps()
        timer = QTimer()
        timer.setInterval(TICK_MS)
        timer.timeout.connect(gaps.tick)
        gaps.tick()
        timer.start()
        try:
            yield gaps
        finally:
            timer.stop()
            gaps.tick()

    return measure
