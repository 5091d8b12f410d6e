"""Screenshot: the shipped ``general`` against its first release on a physics-grade micrograph.

Run from the repository root::

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshot_physics_denoise.py

It re-simulates held-out micrograph 0 of docs/quality.md's physics-grade test set (``cryoden
simulate test --physics --n 12 --size 1024 --seed 401 --pixel-size 1:2.5 --frames 20:40``: a
Falcon 4EC sum at 1.65 Å/px, 55 e/Å², bilinear drift correction), adds 20 hot pixels, opens it
with File ▸ Open's reader, and denoises it in the Denoise panel twice, hot pixels clipped at 5 σ:
with ``general-v1 (shipped, first release)`` and with the default ``general (shipped)``, both
with Smoothing 0 (the models' own outputs). The
viewer shows the three side by side (grid mode) at 1366×768: ``guide_denoise_physics_1366.png``.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshots import settle, wait_for  # noqa: E402
from screenshots_denoise import save_small  # noqa: E402

OUT = Path("docs/images/guide_denoise_physics_1366.png")


def physics_micrograph(path: Path) -> Path:
    """Write held-out micrograph 0 with 20 hot pixels at 50× its mean to ``path``."""
    from napari_cryoden.io.images import write_mrc
    from napari_cryoden.simulation.physics.dataset import PhysicsParams, simulate_physics_shot

    base = PhysicsParams()
    params = PhysicsParams(dataclasses.replace(base.specimen, pixel_size=(1.0, 2.5)),
                           dataclasses.replace(base.exposure, frames=(20, 40)))
    child = np.random.SeedSequence(401).spawn(12)[0]
    shot, _ = simulate_physics_shot(params, child, (1024, 1024))
    noisy = shot.noisy.copy()
    rng = np.random.default_rng(1)
    noisy[rng.integers(0, 1024, 20), rng.integers(0, 1024, 20)] = 50 * float(noisy.mean())
    write_mrc(path, noisy, shot.pixel_size)
    return path


def main() -> int:
    """Denoise with both models and save the grid."""
    import napari

    from napari_cryoden._qt.denoise.widget import DenoiseWidget

    with tempfile.TemporaryDirectory() as scratch:
        micrograph = physics_micrograph(Path(scratch) / "falcon4_sum.mrc")
        viewer = napari.Viewer()
        viewer.window._qt_window.resize(1366, 768)
        [layer] = viewer.open(micrograph, plugin="napari-cryoden")
        panel = DenoiseWidget(viewer)
        viewer.window.add_dock_widget(panel, name="Denoise")
        panel.advanced_section.expand(animate=False)
        panel.device.value = "cpu"
        panel.pixel_cutoff.value = 5.0
        panel.smooth.value = 0.0  # the models' own outputs: the comparison is of the models
        settle(2000)
        from napari_cryoden.models.pretrained import shipped_path

        for label in ("general-v1", "general"):
            panel.model.value = shipped_path(label)
            wait_for(panel.finished, panel.denoise_button.native.click, timeout_s=600)
            viewer.layers[-1].name = f"{layer.name} · {label}"
            print(label, "→", panel.status.value, flush=True)
        viewer.grid.enabled, viewer.grid.shape = True, (1, 3)
        viewer.reset_view()
        viewer.camera.zoom *= 1.5  # the grid is wider than the canvas is tall
        settle(800)
        image = viewer.screenshot(canvas_only=False, flash=False)
        how = save_small(image, OUT)
        print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KB, {how})")
        viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
