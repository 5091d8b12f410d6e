"""Files become training pairs: by name, by even/odd half, alone (n2v); and the seeded split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_cryoden.data.pairs import (
    TooFewPairs,
    find_half_pairs,
    find_mode_pairs,
    find_pairs,
    half_stem,
    single_pairs,
    split_half,
    split_pairs,
)
from napari_cryoden.errors import InputError
from napari_cryoden.io.images import write_mrc


def _fake_pairs(n: int) -> list[tuple[Path, Path]]:
    return [(Path(f"noisy/m{i:02d}.mrc"), Path(f"clean/m{i:02d}.mrc")) for i in range(n)]


def test_find_pairs_pairs_by_stem_and_names_the_unpaired(tmp_path: Path) -> None:
    noisy, clean = tmp_path / "noisy", tmp_path / "clean"
    noisy.mkdir()
    clean.mkdir()
    for name in ("b.mrc", "a.mrc"):
        (noisy / name).write_bytes(b"")
        (clean / name).write_bytes(b"")
    assert find_pairs(noisy, clean) == [(noisy / "a.mrc", clean / "a.mrc"),
                                        (noisy / "b.mrc", clean / "b.mrc")]

    for i in range(5):
        (noisy / f"extra_{i}.mrc").write_bytes(b"")
    (clean / "lonely.mrc").write_bytes(b"")
    with pytest.raises(InputError) as err:
        find_pairs(noisy, clean)
    message = str(err.value)
    assert "extra_0.mrc, extra_1.mrc, extra_2.mrc (+2 more)" in message
    assert f"only in {clean}: lonely.mrc" in message


def test_find_pairs_with_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "noisy").mkdir()
    (tmp_path / "clean").mkdir()
    (tmp_path / "clean" / "a.mrc").write_bytes(b"")
    with pytest.raises(InputError, match="noisy: no micrographs found"):
        find_pairs(tmp_path / "noisy", tmp_path / "clean")


def test_layer_names_split_into_micrograph_and_half() -> None:
    assert split_half("mic_01_EVN") == ("mic_01", "even")
    assert split_half("mic_01_odd") == ("mic_01", "odd")
    assert split_half("a.Even") == ("a", "even")
    assert split_half("odd") == ("", "odd") and split_half("EVN") == ("", "even")
    assert split_half("oddity") is None and split_half("noisy (simulated)") is None
    assert split_half("Todd") is None and split_half("steven") is None


def test_half_names_pair_even_with_odd(tmp_path: Path) -> None:
    assert half_stem(Path("x/mic_01_EVN.mrc")) == half_stem(Path("y/mic_01_ODD.mrc")) == "mic_01"
    assert half_stem(Path("a_even.mrc")) == half_stem(Path("a-odd.tif")) == "a"
    assert half_stem(Path("oddity.mrc")) == "oddity"
    for name in ("even", "odd"):
        (tmp_path / name).mkdir()
    image = np.zeros((8, 8), np.float32)
    write_mrc(tmp_path / "even" / "a_EVN.mrc", image, 1.0)
    write_mrc(tmp_path / "odd" / "a_ODD.mrc", image, 1.0)
    write_mrc(tmp_path / "odd" / "b_ODD.mrc", image, 1.0)
    with pytest.raises(InputError, match=r"even and odd files do not pair by name; only in .*"
                                         r"odd: b_ODD.mrc"):
        find_half_pairs(tmp_path / "even", tmp_path / "odd")
    (tmp_path / "odd" / "b_ODD.mrc").unlink()
    assert [(e.name, o.name) for e, o in find_half_pairs(tmp_path / "even", tmp_path / "odd")] \
        == [("a_EVN.mrc", "a_ODD.mrc")]


def test_each_mode_reads_its_own_pairs(tmp_path: Path) -> None:
    image = np.zeros((8, 8), np.float32)
    for folder, name in (("even", "a_EVN.mrc"), ("odd", "a_ODD.mrc"), ("even", "b_EVN.mrc"),
                         ("odd", "b_ODD.mrc")):
        (tmp_path / folder).mkdir(exist_ok=True)
        write_mrc(tmp_path / folder / name, image, 1.0)
    even, odd = tmp_path / "even", tmp_path / "odd"
    assert find_mode_pairs("n2n", even, odd) == find_half_pairs(even, odd)
    assert [p[0].name for p in find_mode_pairs("n2n", even, odd)] == ["a_EVN.mrc", "b_EVN.mrc"]
    assert find_mode_pairs("n2v", even, None) == single_pairs(even) == [
        (even / "a_EVN.mrc", even / "a_EVN.mrc"), (even / "b_EVN.mrc", even / "b_EVN.mrc")]
    with pytest.raises(InputError, match="noisy and clean files do not pair by name"):
        find_mode_pairs("n2c", even, odd)  # n2c pairs by the whole stem


def test_split_is_by_file_disjoint_and_seeded() -> None:
    pairs = _fake_pairs(20)
    train, val = split_pairs(pairs, 0.25, seed=7)
    assert len(val) == 5 and len(train) == 15
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(pairs)
    assert train == [p for p in pairs if p in train]  # input order kept
    assert split_pairs(pairs, 0.25, seed=7) == (train, val)
    assert split_pairs(list(reversed(pairs)), 0.25, seed=7)[1] == list(reversed(val))
    assert any(split_pairs(pairs, 0.25, seed=s)[1] != val for s in range(8, 12))


def test_split_keeps_one_file_on_each_side() -> None:
    train, val = split_pairs(_fake_pairs(2), 0.1, seed=0)
    assert len(train) == 1 and len(val) == 1
    train, val = split_pairs(_fake_pairs(3), 0.9, seed=0)
    assert len(train) == 1 and len(val) == 2


def test_split_without_validation_and_with_one_file() -> None:
    assert split_pairs(_fake_pairs(3), 0.0, seed=0) == (_fake_pairs(3), [])
    with pytest.raises(TooFewPairs, match="--val-noisy/--val-clean"):
        split_pairs(_fake_pairs(1), 0.1, seed=0)
    assert issubclass(TooFewPairs, InputError)
