"""docs/images/guide_model_list.png: the Denoise model list with two runs' best.safetensors.

A simulated 1024² micrograph with 20 hot pixels (500, as counting-mode outliers) is written as
MRC and opened through the plugin's reader; two runs' ``best.safetensors`` are opened, the
micrograph is denoised with the shipped model, a text file is refused, and the screen (1366x768)
is grabbed with the model list open and one entry's tooltip shown. Run from the repository::

    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python scripts/screenshot_model_list.py \
        docs/images/guide_model_list.png /tmp/model_list
"""
import sys
from pathlib import Path

import mrcfile
import napari
import numpy as np
from qtpy.QtCore import QPoint, Qt, QTimer
from qtpy.QtGui import QGuiApplication
from qtpy.QtWidgets import QApplication, QToolTip

from napari_cryoden._qt.denoise.widget import DenoiseWidget
from napari_cryoden.config.sections import Config
from napari_cryoden.models.checkpoint import save_checkpoint
from napari_cryoden.models.nets import build_model
from napari_cryoden.simulation.micrographs import simulate_micrograph
from napari_cryoden.simulation.params import SimulationParams

out, work = Path(sys.argv[1]), Path(sys.argv[2])
work.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
noisy, _ = simulate_micrograph(SimulationParams(), rng, 1024)
noisy = noisy.astype(np.float32)
hot = rng.integers(0, 1024, (20, 2))
noisy[hot[:, 0], hot[:, 1]] = 500.0  # counting-mode outliers
mic = work / "FoilHole_0001_hot.mrc"
with mrcfile.new(mic, overwrite=True) as f:
    f.set_data(noisy)
    f.voxel_size = 1.06
for run, mode, epoch, loss, seed in (("run1", "n2c", 12, 0.0123, 1),
                                     ("run_n2v", "n2v", 3, 0.0871, 2)):
    config = Config.from_dict({"train": {"mode": mode}})
    (work / run).mkdir(exist_ok=True)
    save_checkpoint(work / run / "best.safetensors", build_model(config.model, seed=seed),
                    config, epoch=epoch, val_loss=loss)

viewer = napari.Viewer()
viewer.open(str(mic), plugin="napari-cryoden")
layer = viewer.layers[-1]
layer.contrast_limits = tuple(np.percentile(noisy, [0.5, 99.5]))  # item 1 does this on read
widget = DenoiseWidget(viewer)
viewer.window.add_dock_widget(widget, name="Denoise")
win = viewer.window._qt_window
win.setGeometry(0, 0, 1366, 768)
win.show()
for run in ("run1", "run_n2v"):
    widget.add_weight_file(work / run / "best.safetensors")
bad = work / "notes.safetensors"
bad.write_text("pixel size 1.06\n")


def after_denoise(layer: object) -> None:
    layer.contrast_limits = tuple(np.percentile(layer.data, [0.5, 99.5]))
    viewer.camera.zoom *= 2.5  # a closer look at the particles
    viewer.layers["FoilHole_0001_hot"].visible = False
    widget.add_weight_file(bad)  # refused: its reason stays in the panel
    QTimer.singleShot(1500, popup)


widget.finished.connect(after_denoise)
widget.model.native.setCurrentIndex(widget.model.native.findText("general (shipped)"))
QTimer.singleShot(1500, widget.denoise_button.native.click)


def popup() -> None:
    combo = widget.model.native
    combo.showPopup()
    QTimer.singleShot(600, tip)


def tip() -> None:
    combo = widget.model.native
    view = combo.view()
    index = view.model().index(combo.findText("run1 · best (seed, epoch 12)"), 0)
    rect = view.visualRect(index)
    QToolTip.showText(view.viewport().mapToGlobal(rect.center() - QPoint(260, -12)),
                      str(index.data(Qt.ItemDataRole.ToolTipRole)), view)
    QTimer.singleShot(800, grab)


def grab() -> None:
    from PIL import Image as PILImage

    image = QGuiApplication.primaryScreen().grabWindow(0).copy(0, 0, 1366, 768).toImage()
    image.save(str(out))
    rgb = PILImage.open(out).convert("RGB")  # 96 colours, no dithering: < 300 kB
    rgb.quantize(colors=96, dither=PILImage.Dither.NONE).save(out, optimize=True)
    QApplication.quit()


napari.run()
