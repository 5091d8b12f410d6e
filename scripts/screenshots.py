"""Make every screenshot of the user guide (docs/user-guide.md) in a real napari window.

Run from the repository root after ``make install`` (``xvfb-run`` gives a display-less machine a
virtual screen; on a desktop leave it out)::

    xvfb-run -a .venv/bin/python scripts/screenshots.py [--out docs/images] [--epochs 30]
    xvfb-run -a .venv/bin/python scripts/screenshots.py --only weights-deep   # one PNG

It opens napari, loads the plugin's sample data and drives the Train, Denoise, Inspect and Weights
widgets as a user would (opened from the Plugins menu entries, buttons clicked), waiting on the
widgets' signals in a local Qt event loop, never sleeping. It writes one PNG per step
(``guide_*.png``, each at most 300 KB), prints each file and the measured times, and takes about
a minute on a 2-core CPU. Training is seeded (``train.seed`` 0) and runs on the CPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PLUGIN = "napari-cryoden"
WINDOW = (1400, 900)
DOCK_WIDTHS = {"Train": 540, "Denoise": 430, "Inspect": 540, "Weights": 470}
"""Dock widths in pixels; the kernel figure is tall, so the Weights dock is narrower."""
MAX_BYTES = 300 * 1024
EXPORT_DPI = 75
TRAIN_TIMEOUT_S = 300
TRAIN_SETTINGS = {"data.patch_size": 128, "data.crop": 0, "data.val_fraction": 0.1,
                  "train.epochs": 30, "train.batch_size": 4, "train.lr": 0.002,
                  "train.device": "cpu"}
"""30-60 s on 2 cores; beats the best Gaussian filter on the sample (the form's defaults,
patch 256 and 10 epochs, give 12 patches and 30 steps in all: not enough on one micrograph)."""
DEEP_SETTINGS = {"model.preset": "deep", "train.epochs": 3}
"""The Weights widget's picture of a larger net: the ``deep`` preset (6 layers, 32 channels),
trained briefly from the sample (about a minute on 2 cores)."""
N2N_EPOCHS = 10
"""Noise2Noise epochs for its screenshot (even/odd halves of one 1024² movie)."""
REGION = (330, 420, 530, 660)
"""The rectangle denoised in region mode: y0, x0, y1, x1 in pixels of the sample."""


# -- Qt helpers -------------------------------------------------------------------------------
def wait_for(signal: Any, trigger: Callable[[], Any] | None = None,
             timeout_s: float = 60.0) -> tuple[Any, ...]:
    """Call ``trigger`` and run a local event loop until ``signal`` fires; return its arguments.

    Works with Qt and psygnal signals alike; raises TimeoutError after ``timeout_s``.
    """
    from qtpy.QtCore import QEventLoop, QTimer

    loop, received = QEventLoop(), []

    def on_signal(*args: Any) -> None:
        received.append(args)
        loop.quit()

    signal.connect(on_signal)
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(loop.quit)
    timer.start(int(timeout_s * 1000))
    try:
        if trigger is not None:
            trigger()
        if not received:
            loop.exec()
    finally:
        timer.stop()
        signal.disconnect(on_signal)
    if not received:
        raise TimeoutError(f"no signal within {timeout_s:.0f} s")
    return received[0]


def settle(ms: int = 400) -> None:
    """Let Qt lay out and paint (a local event loop ended by a timer)."""
    from qtpy.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def save_png(image: np.ndarray, path: Path, max_bytes: int = MAX_BYTES) -> str:
    """Save an RGB(A) screenshot as PNG of at most ``max_bytes``: full colour if it fits, else
    256 then 128 colours (the micrographs are grey), then scaled down in 10 % steps.
    Returns what was done."""
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(image[..., :3]))
    picture.save(path, optimize=True)
    if path.stat().st_size <= max_bytes:
        return "full colour"
    scale = 1.0
    while True:
        size = (round(picture.width * scale), round(picture.height * scale))
        shown = picture if scale == 1.0 else picture.resize(size, Image.Resampling.LANCZOS)
        for colours in (256, 128):
            shown.quantize(colours, dither=Image.Dither.NONE).save(path, optimize=True)
            if path.stat().st_size <= max_bytes or scale < 0.5:
                return f"{colours} colours" + ("" if scale == 1.0 else f", scaled {scale:.2f}")
        scale *= 0.9


# -- the session ------------------------------------------------------------------------------
@dataclass
class Session:
    """The viewer being driven, where the PNGs go, and what the steps hand on to each other."""

    viewer: Any
    out: Path
    scratch: Path
    docks: dict[str, Any] = field(default_factory=dict)
    noisy: str = ""
    clean: str = ""

    def shoot(self, name: str, image: np.ndarray | None = None) -> Path:
        """Save the whole window (or ``image``) as ``out/name`` and say so."""
        if image is None:
            self.viewer.window._qt_window.resize(*WINDOW)  # a dock moved may have grown it
            settle()
            image = self.viewer.screenshot(canvas_only=False, flash=False)
        path = self.out / name
        how = save_png(image, path)
        print(f"wrote {path} ({path.stat().st_size // 1024} KB, {how})", flush=True)
        return path

    def open_dock(self, name: str) -> Any:
        """Open a widget from Plugins ▸ napari-cryoden as the only visible dock; return it."""
        from qtpy.QtCore import Qt

        for dock in self.docks.values():
            dock.hide()
        dock, widget = self.viewer.window.add_plugin_dock_widget(PLUGIN, name)
        self.docks[name] = dock
        dock.show()
        self.viewer.window._qt_window.resizeDocks([dock], [DOCK_WIDTHS[name]],
                                                  Qt.Orientation.Horizontal)
        settle()
        return widget

    def move_dock(self, name: str, bottom: bool) -> None:
        """Drag a dock to the bottom of the window (a wide canvas for Compare) or back right."""
        from qtpy.QtCore import Qt

        area, window, dock = Qt.DockWidgetArea, self.viewer.window._qt_window, self.docks[name]
        window.addDockWidget(area.BottomDockWidgetArea if bottom else area.RightDockWidgetArea,
                             dock)
        if bottom:
            window.resizeDocks([dock], [1], Qt.Orientation.Vertical)  # as low as it goes
        else:
            window.resizeDocks([dock], [DOCK_WIDTHS[name]], Qt.Orientation.Horizontal)
        settle()

    def view(self, centre_px: tuple[float, float], magnification: float, *shown: str) -> None:
        """Show only the layers ``shown`` (the eye icons) and :meth:`aim` the camera."""
        for layer in self.viewer.layers:
            layer.visible = layer.name in shown
        self.aim(centre_px, magnification)

    def aim(self, centre_px: tuple[float, float], magnification: float) -> None:
        """Centre the view on pixel ``centre_px`` of the sample, one pixel on ``magnification``
        screen pixels (2 keeps the PNG of a noisy micrograph small)."""
        image = self.viewer.layers[self.noisy]
        camera = self.viewer.scene.camera
        camera.center = tuple(image.data_to_world(np.asarray(centre_px, float)))
        camera.zoom = magnification / float(image.scale[-1])


# -- the steps --------------------------------------------------------------------------------
def open_sample(session: Session) -> None:
    """File ▸ Open Sample ▸ napari-cryoden ▸ Synthetic micrograph; the noisy layer shown."""
    layers = {layer.name: layer for layer in session.viewer.open_sample(PLUGIN, "synthetic")}
    noisy, clean = layers["noisy (simulated)"], layers["clean (simulated)"]  # by name: the
    session.noisy, session.clean = noisy.name, clean.name  # order is napari's stacking order
    session.viewer.layers.selection.active = noisy
    session.view((512, 512), 2.0, noisy.name)


def step_sample(session: Session) -> None:
    open_sample(session)
    session.shoot("guide_sample.png")


def step_train(session: Session, epochs: int, shot: str | None = "guide_train.png",
               run: str = "run", **settings: Any) -> tuple[float, Path]:
    """Train from the two layers on the CPU; returns the seconds from Start to finished."""
    widget = session.open_dock("Train")
    for key, value in {**TRAIN_SETTINGS, "train.epochs": epochs, **settings}.items():
        widget.form.widget(key).value = value
    widget.run_folder.value = session.scratch / run
    session.view((420, 560), 2.0, session.noisy)
    seconds = press_start(widget)
    if shot is not None:
        show_plot(widget)
        session.shoot(shot)
    return seconds, widget.run_dir


def press_start(widget: Any) -> float:
    """Press Train's Start and wait for the run's end; returns the seconds it took."""
    if not widget.start_button.isEnabled():  # clicking it would wait for nothing
        raise RuntimeError(f"Start is disabled: {widget.data.problem.value or 'no data'}")
    start = time.perf_counter()
    wait_for(widget.finished, widget.start_button.click, TRAIN_TIMEOUT_S)
    return time.perf_counter() - start


def show_plot(widget: Any) -> None:
    """Scroll the Train panel down to the whole loss plot (as a user scrolls a small screen)."""
    settle()
    bar = widget.scroll_area.verticalScrollBar()
    bar.setValue(bar.maximum())


def click_denoise(widget: Any) -> float:
    """Press Denoise and wait for the result; returns the model's seconds (status line)."""
    wait_for(widget.finished, widget.denoise_button.native.click)
    return float(widget.status.value.split(" in ")[1].split(" s")[0])


def step_denoise(session: Session) -> dict[str, float]:
    """Region mode first (a Shapes rectangle), then the whole micrograph, then Compare."""
    from napari_cryoden._qt.denoise.widget import RECTANGLE, WHOLE

    viewer, denoised = session.viewer, f"{session.noisy} denoised"
    widget = session.open_dock("Denoise")
    image = viewer.layers[session.noisy]
    widget.image.value, widget.device.value = image, "cpu"
    y0, x0, y1, x1 = REGION
    corners = np.array([[y0, x0], [y0, x1], [y1, x1], [y1, x0]], float)
    shapes = viewer.add_shapes([np.array([image.data_to_world(c) for c in corners])],
                               name="region", shape_type="rectangle", edge_color="#ffd400",
                               face_color="transparent", edge_width=3)
    widget.region.value, widget.shapes.value = RECTANGLE, shapes
    times = {"region": click_denoise(widget)}
    viewer.layers.move(viewer.layers.index(shapes), len(viewer.layers))  # outline on top
    session.view(((y0 + y1) / 2, (x0 + x1) / 2), 2.0, denoised, "region")
    session.shoot("guide_region.png")

    widget.region.value = WHOLE
    times["whole"] = click_denoise(widget)
    viewer.layers.selection.active = viewer.layers[denoised]
    session.view((512, 512), 2.0, denoised)  # the view of guide_sample.png
    session.shoot("guide_denoise.png")

    widget.clean.value = viewer.layers[session.clean]
    session.move_dock("Denoise", bottom=True)
    widget.compare_button.native.click()
    session.aim((430, 540), 2.0)
    session.shoot("guide_compare.png")
    widget.compare_button.native.click()  # back to the single view
    session.move_dock("Denoise", bottom=False)
    return times


def step_inspect(session: Session, model_label: str) -> tuple[float, str]:
    """Analyse the denoised micrograph against the clean one; click the worst patch.

    Returns the seconds Analyse took and the checklist's summary, with the failed items.
    """
    from qtpy.QtCore import Qt

    from napari_cryoden._qt.inspect_widget import COLUMNS

    widget = session.open_dock("Inspect")
    widget.model.value, widget.patch_size.value = model_label, 128
    start = time.perf_counter()
    wait_for(widget.analysed, widget.analyse_button.native.click, timeout_s=300)  # a worker
    seconds = time.perf_counter() - start
    session.view((512, 512), 2.0, f"{session.noisy} denoised")
    rmse = [title for title, _, _ in COLUMNS].index("RMSE")
    widget.table.sortItems(rmse, Qt.SortOrder.DescendingOrder)  # the header, clicked twice
    wait_for(widget.canvas.rendered, lambda: widget.table.selectRow(0))  # the worst patch
    session.shoot("guide_inspect.png")
    failed = [f"{item['id']} ({item['check']}: {item['value']}; need {item['threshold']})"
              for item in widget.analysis.checklist if item["passed"] is False]
    return seconds, widget.summary.text().split(" Click")[0] + "".join(
        f" Failed: {text}." for text in failed)


def step_weights(session: Session, best: Path, label: str) -> None:
    """The trained model's kernels; then, each saved with "Export PNG…", trained | scrambled."""
    from PIL import Image

    widget = session.open_dock("Weights")
    wait_for(widget.canvas.rendered, lambda: widget.load(best, label))  # read, drawn: workers
    session.view((560, 420), 3.0, f"{session.noisy} denoised")
    session.shoot("guide_weights.png")
    exported = [widget.export_png(session.scratch / "trained.png", dpi=EXPORT_DPI)]
    wait_for(widget.canvas.rendered, lambda: widget.load(
        scrambled_copy(best, session.scratch / "scrambled.safetensors"),
        label="the same weights, scrambled as by the seed's bug"))
    exported.append(widget.export_png(session.scratch / "scrambled.png", dpi=EXPORT_DPI))
    figures = [np.asarray(Image.open(path).convert("RGB")) for path in exported]
    height = max(figure.shape[0] for figure in figures)
    padded = [np.pad(f, ((0, height - f.shape[0]), (0, 0), (0, 0)), mode="edge")
              for f in figures]
    session.shoot("guide_weights_scrambled.png", np.concatenate(padded, axis=1))


def step_weights_deep(session: Session) -> float:
    """Train the ``deep`` preset briefly and show its weights: the first and last of its six
    layers (the figure's title names the four left out). Returns the training seconds."""
    seconds, run_dir = step_train(session, DEEP_SETTINGS["train.epochs"], shot=None,
                                  run="deep-run",
                                  **{"model.preset": DEEP_SETTINGS["model.preset"]})
    widget = session.open_dock("Weights")
    wait_for(widget.canvas.rendered,
             lambda: widget.load(run_dir / "best.safetensors", f"{run_dir.name}/best.safetensors"))
    session.view((560, 420), 3.0, session.noisy)
    session.shoot("guide_weights_deep.png")
    return seconds


def step_shipped(session: Session) -> float:
    """Denoise the sample with the shipped general model, before anything is trained."""
    name = f"{session.noisy} denoised"
    if name in session.viewer.layers:  # from step_denoise: this result gets its name
        session.viewer.layers.remove(name)
    widget = session.open_dock("Denoise")
    widget.image.value, widget.device.value = session.viewer.layers[session.noisy], "cpu"
    from napari_cryoden.models.pretrained import shipped_path

    widget.model.value = shipped_path("general")  # model-list entries are weight files
    seconds = click_denoise(widget)
    denoised = session.viewer.layers[name]
    session.viewer.layers.selection.active = denoised
    session.view((512, 512), 2.0, denoised.name)
    session.shoot("guide_denoise_general.png")
    return seconds


def step_train_n2n(session: Session) -> float:
    """Noise2Noise in the Train panel: even/odd frame sums of one simulated 8-frame movie."""
    from napari_cryoden.io.images import read_image
    from napari_cryoden.simulation.movies import simulate_movie_dataset
    from napari_cryoden.simulation.params import HIGH_CONTRAST

    simulate_movie_dataset(session.scratch / "halves", 1, 1024, seed=3, params=HIGH_CONTRAST,
                           frames=8, movies=False, even_odd=True)
    for half in ("even", "odd"):
        data, pixel = read_image(session.scratch / "halves" / half / "mic_0000.mrc")
        session.viewer.add_image(np.asarray(data), name=f"movie {half}", scale=(pixel, pixel))
    widget = session.open_dock("Train")
    widget.form.widget("train.mode").value = "n2n"
    # "movie even"/"movie odd" are not MotionCor2's names (X_EVN/X_ODD): the panel leaves the
    # choice to the user, who picks the halves
    widget.data.noisy_layer.value = session.viewer.layers["movie even"]
    widget.data.clean_layer.value = session.viewer.layers["movie odd"]
    for key, value in {**TRAIN_SETTINGS, "train.epochs": N2N_EPOCHS}.items():
        widget.form.widget(key).value = value
    widget.run_folder.value = session.scratch / "n2n-run"
    session.view((420, 560), 2.0, "movie even")
    seconds = press_start(widget)
    show_plot(widget)
    session.shoot("guide_train_n2n.png")
    return seconds


def scrambled_copy(best: Path, path: Path) -> Path:
    """``best`` with every kernel scrambled as the seed did: (out, in, kH, kW) memory read as
    (kH, kW, in, out), then transposed back (see docs/formats.md)."""
    import torch

    from napari_cryoden.models.checkpoint import load_checkpoint, save_checkpoint

    model, checkpoint = load_checkpoint(best, "cpu")
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith(".weight") and tensor.ndim == 4:
                out, inp, kh, kw = tensor.shape
                moved = tensor.numpy().reshape(kh, kw, inp, out).transpose(3, 2, 0, 1)
                tensor.copy_(torch.from_numpy(moved.copy()))
    return save_checkpoint(path, model, checkpoint.config, **checkpoint.metadata)


# -- main -------------------------------------------------------------------------------------
def run_all(session: Session, epochs: int) -> list[str]:
    """Every step in turn; returns the lines of the timing report."""
    from napari_cryoden._qt._models import MODELS

    step_sample(session)
    train_s, run_dir = step_train(session, epochs)
    label = next(label for label in MODELS.labels() if label.startswith(f"{run_dir.name} "))
    denoise_s = step_denoise(session)
    inspect_s, checklist = step_inspect(session, label)
    step_weights(session, run_dir / "best.safetensors", label)
    deep_s = step_weights_deep(session)
    extra = [f"denoising with the shipped general model: {step_shipped(session):.2f} s",
             f"Noise2Noise training: {step_train_n2n(session):.1f} s for {N2N_EPOCHS} epochs"]
    history = json.loads((run_dir / "history.json").read_text())
    per_epoch = np.mean([epoch["seconds"] for epoch in history["epochs"]])
    return [f"training, Start to finished: {train_s:.1f} s for {epochs} epochs "
            f"({per_epoch:.2f} s per epoch)",
            f"denoising the 1024² micrograph: {denoise_s['whole']:.2f} s; the rectangle: "
            f"{denoise_s['region']:.2f} s",
            f"Inspect, Analyse: {inspect_s:.2f} s. {checklist}",
            f"training the deep preset: {deep_s:.1f} s for {DEEP_SETTINGS['train.epochs']} "
            "epochs", *extra]


def run_new(session: Session, epochs: int) -> list[str]:
    """Only the shipped model in Denoise and Noise2Noise in Train (``--only shipped-n2n``)."""
    open_sample(session)
    denoise_s = step_shipped(session)
    n2n_s = step_train_n2n(session)
    return [f"denoising the 1024² sample with the shipped general model: {denoise_s:.2f} s",
            f"Noise2Noise training in the Train panel: {n2n_s:.1f} s for {N2N_EPOCHS} epochs"]


def run_deep_weights(session: Session, epochs: int) -> list[str]:
    """Only ``guide_weights_deep.png`` (``--only weights-deep``)."""
    open_sample(session)
    return [f"training the deep preset: {step_weights_deep(session):.1f} s"]


def _import_triton_first() -> None:
    """Import torch._dynamo (which imports triton, if installed) before napari's Qt/OpenGL:
    triton's first import segfaulted inside the running viewer (triton 3.x, under Xvfb)."""
    import importlib
    import importlib.util

    if importlib.util.find_spec("triton") is not None:
        importlib.import_module("torch._dynamo")


def main(argv: list[str] | None = None) -> int:
    """Take every screenshot; returns 0, or 1 when a step failed (the error is printed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"),
                        help="folder for the guide_*.png files (default: docs/images)")
    parser.add_argument("--epochs", type=int, default=TRAIN_SETTINGS["train.epochs"],
                        help="training epochs (default: %(default)s; fewer for a quick look)")
    parser.add_argument("--only", choices=("weights-deep", "shipped-n2n"), default=None,
                        help="take some screenshots only: guide_weights_deep.png, or "
                             "guide_denoise_general.png and guide_train_n2n.png")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    _import_triton_first()
    import napari
    import torch

    torch.manual_seed(0)
    begin = time.perf_counter()
    viewer = napari.Viewer(title="napari-cryoden", show=True)
    viewer.window._qt_window.resize(*WINDOW)
    scratch = Path(tempfile.mkdtemp(prefix="cryoden-guide-"))
    try:
        steps = {"weights-deep": run_deep_weights, "shipped-n2n": run_new}.get(args.only, run_all)
        report = steps(Session(viewer, args.out, scratch), args.epochs)
    except Exception as exc:  # one line, as the CLI does; the viewer is closed below
        print(f"screenshots: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        viewer.close()
        shutil.rmtree(scratch, ignore_errors=True)
    print("\n".join(report))
    print(f"whole script: {time.perf_counter() - begin:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
