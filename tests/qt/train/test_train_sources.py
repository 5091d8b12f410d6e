"""The Train widget's folders and ``cryoden train``'s flags become the same training pairs.

Run under Xvfb: ``xvfb-run -a python -m pytest tests/qt/train/test_train_sources.py -q``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("magicgui")

from napari_cryoden._qt.train.data_form import FolderPair, prepare_pairs  # noqa: E402
from napari_cryoden.cli._sources import sources_from_args  # noqa: E402
from napari_cryoden.cli.main import build_parser  # noqa: E402
from napari_cryoden.cli.train import train_config  # noqa: E402
from napari_cryoden.data.sources import training_data  # noqa: E402
from napari_cryoden.errors import InputError  # noqa: E402
from napari_cryoden.io.images import write_mrc  # noqa: E402


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    image = np.zeros((16, 16), np.float32)
    for i in range(5):
        for folder, suffix in (("noisy", ""), ("clean", ""), ("even", "_EVN"), ("odd", "_ODD")):
            (tmp_path / folder).mkdir(exist_ok=True)
            write_mrc(tmp_path / folder / f"mic_{i}{suffix}.mrc", image, 1.0)
    return tmp_path


@pytest.mark.parametrize(("mode", "flags", "dirs"), [
    ("n2c", ["--noisy", "noisy", "--clean", "clean"], ("noisy", "clean")),
    ("n2n", ["--even", "even", "--odd", "odd"], ("even", "odd")),
    ("n2v", ["--noisy", "noisy"], ("noisy", None)),
])
def test_widget_folders_and_cli_flags_give_the_same_pairs(folders: Path, mode: str,
                                                          flags: list[str],
                                                          dirs: tuple[str, str | None]) -> None:
    argv = ["train", "--out", str(folders / "run"), "--mode", mode, "--val-fraction", "0.4",
            "--seed", "3", *(str(folders / f) if not f.startswith("--") else f for f in flags)]
    args = build_parser().parse_args(argv)
    config = train_config(args)
    train, val, _ = training_data(sources_from_args(args), config)
    source = FolderPair(folders / dirs[0], None if dirs[1] is None else folders / dirs[1])
    assert prepare_pairs(source, folders / "run", config) == (train, val)
    assert len(train) == 3 and len(val) == 2


def test_widget_says_one_folder_file_cannot_be_held_out(tmp_path: Path) -> None:
    for folder in ("noisy", "clean"):
        (tmp_path / folder).mkdir()
        write_mrc(tmp_path / folder / "a.mrc", np.zeros((16, 16), np.float32), 1.0)
    config = train_config(build_parser().parse_args(["train", "--val-fraction", "0.2"]))
    with pytest.raises(InputError, match="only one micrograph, so none can be held out for "
                                         "validation; set 'validation fraction' to 0 or add files"):
        prepare_pairs(FolderPair(tmp_path / "noisy", tmp_path / "clean"), tmp_path, config)
