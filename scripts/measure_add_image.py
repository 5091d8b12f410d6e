"""How long napari's own ``add_image`` blocks the UI thread (the Inspect outline's first add).

Three 1024² layers open, then one 128² RGBA frame added between ticks of a 20 ms QTimer;
prints the call's time and the longest UI gap. ``--freeze`` first freezes the objects alive
(what the Inspect and Weights panels do when they open: napari_cryoden._qt.quiet_gc), so that no
full cycle collection of napari's objects lands in the measurement.
Run: ``xvfb-run -a python scripts/measure_add_image.py [--freeze]``.
"""

from __future__ import annotations

import sys
import time

import napari
import numpy as np
from qtpy.QtCore import QTimer


def main() -> None:
    app = napari.qt.get_qapp()
    viewer = napari.Viewer()
    rng = np.random.default_rng(0)
    for name in "abc":
        viewer.add_image(rng.random((1024, 1024), np.float32), name=name)

    def wait(seconds: float) -> None:
        end = time.time() + seconds
        while time.time() < end:
            app.processEvents()
            time.sleep(0.002)

    wait(0.8)
    if "--freeze" in sys.argv:
        from napari_cryoden._qt.quiet_gc import freeze_long_lived

        freeze_long_lived()
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    wait(0.2)
    ticks.append(time.perf_counter())
    frame = np.zeros((128, 128, 4), np.uint8)
    frame[:3] = 255
    start = time.perf_counter()
    viewer.add_image(frame, name="outline", rgb=True, blending="translucent")
    call = time.perf_counter() - start
    wait(0.5)
    longest = max(b - a for a, b in zip(ticks, ticks[1:], strict=False))
    print(f"add_image call {1000 * call:.0f} ms; longest UI gap {1000 * longest:.0f} ms")


if __name__ == "__main__":
    main()
