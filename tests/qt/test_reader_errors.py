"""A bad MRC opened in napari: the user sees one message naming the file, the viewer goes on.

napari's File ▸ Open (``QtViewer._qt_open``) wraps a reader's exception in a
``ReaderPluginError`` and, when no other reader can take the file, re-raises it to the Qt event
loop, whose exception hook shows it as a notification; ``notification_manager.receive_error`` is
that hook.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mrcfile
import numpy as np
import pytest
from napari.utils.notifications import notification_manager


def _truncated(path: Path) -> str:
    path.write_bytes(b"\0" * 100)
    return "too short for an MRC header"


def _short_data(path: Path) -> str:
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.zeros((64, 64), np.float32))
    with path.open("r+b") as f:
        f.truncate(1024 + 64 * 32 * 4)  # half of the pixels are gone
    return "header"


def _absurd(path: Path) -> str:
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.zeros((8, 8), np.float32))
    with path.open("r+b") as f:
        f.write(np.array([2**30, 2**30, 1], "<i4").tobytes())  # nx, ny, nz
    return "header"


@pytest.mark.parametrize("make", [_truncated, _short_data, _absurd])
def test_a_bad_mrc_becomes_one_notification_and_the_viewer_keeps_working(
        make_napari_viewer: Any, tmp_path: Path, make: Any) -> None:
    viewer = make_napari_viewer()
    bad = tmp_path / "bad.mrc"
    problem = make(bad)
    seen: list[str] = []

    def note(notification: Any) -> None:
        seen.append(notification.message)

    notification_manager.notification_ready.connect(note)
    try:
        with pytest.raises(Exception) as caught:  # noqa: PT011 - napari's wrapper type varies
            viewer.window._qt_viewer._qt_open([str(bad)], stack=False)
        notification_manager.receive_error(caught.type, caught.value, caught.tb)
    finally:
        notification_manager.notification_ready.disconnect(note)
        notification_manager.records.clear()  # they hold the traceback, which holds the viewer
        del caught
    ours = [line for message in seen for line in message.splitlines() if "InputError" in line]
    assert len(ours) == 1, seen
    assert str(bad) in ours[0] and problem in ours[0]
    assert len(viewer.layers) == 0  # nothing half-read was added

    good = tmp_path / "good.mrc"
    with mrcfile.new(good) as mrc:
        mrc.set_data(np.ones((16, 24), np.float32))
    viewer.open(str(good), plugin="napari-cryoden")
    assert viewer.layers[0].data.shape == (16, 24)
