"""The UI-gap meter itself: it sees a block of the UI thread, and an idle loop shows none."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("pytestqt")


def test_the_gap_meter_sees_a_block_and_no_false_one(ui_gaps, qtbot):
    with ui_gaps() as gaps:
        qtbot.wait(100)
        time.sleep(0.3)  # what a slow click handler does to the window
        qtbot.wait(100)
    assert 0.29 < gaps.longest < 0.5, gaps
    with ui_gaps() as gaps:
        qtbot.wait(300)
    assert gaps.longest < 0.1, gaps
