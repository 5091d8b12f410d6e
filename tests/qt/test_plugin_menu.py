"""Every widget opens from napari's Plugins menu, as a user would open it."""

from __future__ import annotations

from typing import Any

import pytest

from napari_cryoden._qt.browse import BrowseWidget
from napari_cryoden._qt.denoise.widget import DenoiseWidget
from napari_cryoden._qt.inspect_widget import InspectWidget
from napari_cryoden._qt.train.widget import TrainWidget
from napari_cryoden._qt.weights_widget import WeightsWidget


@pytest.mark.parametrize(("name", "kind"), [("Train", TrainWidget), ("Denoise", DenoiseWidget),
                                            ("Inspect", InspectWidget),
                                            ("Weights", WeightsWidget),
                                            ("Browse", BrowseWidget)])
def test_widget_opens_from_the_plugin_menu(make_napari_viewer: Any, name: str, kind: type) -> None:
    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget("napari-cryoden", name)
    assert isinstance(widget, kind)
    assert dock.widget() is not None


def test_sample_data_opens_noisy_and_clean(make_napari_viewer: Any, tmp_path: Any,
                                           monkeypatch: Any) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # the sample's cache, not the user's
    viewer = make_napari_viewer()
    viewer.open_sample("napari-cryoden", "synthetic")
    names = [layer.name for layer in viewer.layers]
    assert names == ["clean (simulated)", "noisy (simulated)"]  # the noisy one on top
    assert viewer.layers[0].data.shape == (1024, 1024)
