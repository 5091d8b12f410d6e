"""What a training run reads (TrainSources): the combinations each mode accepts, and the pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_cryoden.config.sections import Config
from napari_cryoden.data.pairs import find_half_pairs
from napari_cryoden.data.sources import TrainSources, training_data
from napari_cryoden.errors import CryodenError
from napari_cryoden.io.images import write_mrc


def config(mode: str, val_fraction: float = 0.25) -> Config:
    return Config.from_dict({"data": {"val_fraction": val_fraction}, "train": {"mode": mode}})


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    """4 micrographs in noisy/clean (same names) and even/odd (``_EVN``/``_ODD`` names)."""
    image = np.zeros((16, 16), np.float32)
    for i in range(4):
        for folder, suffix in (("noisy", ""), ("clean", ""), ("even", "_EVN"), ("odd", "_ODD")):
            (tmp_path / folder).mkdir(exist_ok=True)
            write_mrc(tmp_path / folder / f"mic_{i}{suffix}.mrc", image, 1.0)
    return tmp_path


@pytest.mark.parametrize(("mode", "given", "message"), [
    ("n2c", {"noisy": "n"}, "give either --noisy and --clean folders, or --store; --mode n2v "
                            "trains on noisy micrographs alone"),
    ("n2c", {"even": "e", "odd": "o"}, "give either --noisy and --clean folders, or --store; "
                                       "--even/--odd are for --mode n2n"),
    ("n2n", {"even": "e"}, "give either --even and --odd folders (or --halves), or --store for "
                           "--mode n2n"),
    ("n2n", {"noisy": "n", "clean": "c"}, "give either --even and --odd folders (or --halves), "
                                          "or --store for --mode n2n"),
    ("n2v", {"noisy": "n", "clean": "c"}, "give either a --noisy folder (without --clean), or "
                                          "--store for --mode n2v"),
    ("n2v", {"noisy": "n", "store": "s"}, "give either a --noisy folder (without --clean), or "
                                          "--store for --mode n2v"),
    ("n2c", {}, "give either --noisy and --clean folders, or --store"),
    ("n2c", {"noisy": "n", "clean": "c", "val_noisy": "v"},
     "give both --val-noisy and --val-clean, or neither"),
    ("n2c", {"store": "s", "val_noisy": "v", "val_clean": "w"},
     "--val-noisy/--val-clean do not combine with --store: the store holds out --val-fraction "
     "of its micrographs"),
])
def test_a_wrong_combination_for_the_mode_is_one_line(mode: str, given: dict[str, str],
                                                      message: str) -> None:
    sources = TrainSources(**given)
    with pytest.raises(CryodenError) as err:
        training_data(sources, config(mode))
    assert str(err.value) == message
    with pytest.raises(CryodenError, match="^give|^--val"):
        sources.check(mode)


def test_each_mode_accepts_its_folders_or_a_store() -> None:
    for mode, given in (("n2c", {"noisy": "n", "clean": "c"}), ("n2n", {"even": "e", "odd": "o"}),
                        ("n2v", {"noisy": "n"}), ("n2v", {"store": "s"})):
        TrainSources(**given).check(mode)  # nothing raised
    assert TrainSources(noisy="n").noisy == Path("n")  # strings are paths


def test_for_mode_names_the_folders_by_what_they_hold() -> None:
    assert TrainSources.for_mode("n2n", "a", "b") == TrainSources(even=Path("a"), odd=Path("b"))
    assert TrainSources.for_mode("n2c", "a", "b") == TrainSources(noisy=Path("a"),
                                                                  clean=Path("b"))
    assert TrainSources.for_mode("n2v", "a", None) == TrainSources(noisy=Path("a"))
    assert TrainSources(even=Path("e"), odd=Path("o")).folders("n2n") == (Path("e"), Path("o"))


def test_training_data_pairs_and_splits_by_mode(folders: Path) -> None:
    train, val, clean_val = training_data(
        TrainSources(even=folders / "even", odd=folders / "odd",
                     val_noisy=folders / "noisy", val_clean=folders / "clean"), config("n2n"))
    assert sorted(train + val) == find_half_pairs(folders / "even", folders / "odd")
    assert len(val) == 1 and len(clean_val) == 4  # val folders: an extra clean set for n2n
    train, val, clean_val = training_data(
        TrainSources(noisy=folders / "noisy", clean=folders / "clean",
                     val_noisy=folders / "even", val_clean=folders / "even"), config("n2c"))
    assert len(train) == 4 and len(val) == 4 and clean_val is None  # val folders replace the split
    train, val, _ = training_data(TrainSources(noisy=folders / "noisy"), config("n2v", 0.0))
    assert val == [] and all(a == b for a, b in train) and len(train) == 4
