"""The patch index (headers only, full coverage, clear errors) and the seeded split by file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_cryoden.data.patches import PatchRef, index_patches, patch_starts
from napari_cryoden.errors import InputError
from napari_cryoden.io.images import write_mrc


def _pair(root: Path, name: str, shape: tuple[int, ...], clean_shape: tuple[int, ...] | None = None,
          suffix: str = ".mrc") -> tuple[Path, Path]:
    paths = []
    for folder, size in (("noisy", shape), ("clean", clean_shape or shape)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        path = root / folder / f"{name}{suffix}"
        write_mrc(path, np.zeros(size, np.float32), pixel_size=1.0)
        paths.append(path)
    return paths[0], paths[1]


def test_grid_covers_every_pixel_with_the_last_patch_at_the_far_edge(tmp_path: Path) -> None:
    pair = _pair(tmp_path, "a", (70, 100))
    refs = index_patches([pair], 32)
    assert sorted({r.y for r in refs}) == [0, 32, 38]
    assert sorted({r.x for r in refs}) == [0, 32, 64, 68]
    assert len(refs) == 12
    covered = np.zeros((70, 100), int)
    for r in refs:
        covered[r.y:r.y + 32, r.x:r.x + 32] += 1
    assert covered.min() == 1


def test_exact_multiples_do_not_overlap() -> None:
    assert patch_starts(4096, 1024) == [0, 1024, 2048, 3072]
    assert patch_starts(1024, 1024) == [0]


def test_every_slice_of_a_stack_is_indexed(tmp_path: Path) -> None:
    stack_pair = _pair(tmp_path, "movie", (3, 64, 64), suffix=".mrcs")
    single_pair = _pair(tmp_path, "single", (64, 64))
    refs = index_patches([single_pair, stack_pair], 32)
    assert [r for r in refs if r.pair == 0] == [
        PatchRef(0, 0, y, x) for y in (0, 32) for x in (0, 32)
    ]
    assert sorted({r.z for r in refs if r.pair == 1}) == [0, 1, 2]
    assert len(refs) == 4 + 3 * 4


def test_shape_mismatch_names_both_files(tmp_path: Path) -> None:
    noisy, clean = _pair(tmp_path, "a", (64, 64), clean_shape=(64, 48))
    with pytest.raises(InputError) as err:
        index_patches([(noisy, clean)], 32)
    assert str(err.value) == f"{noisy} (64x64) and {clean} (48x64) differ in shape"


def test_image_smaller_than_the_patch(tmp_path: Path) -> None:
    noisy, clean = _pair(tmp_path, "small", (64, 64))
    with pytest.raises(InputError) as err:
        index_patches([(noisy, clean)], 128)
    assert str(err.value) == (
        f"{noisy}: 64x64 is smaller than the patch size 128; use a smaller --patch-size"
    )


def test_unreadable_file_in_index_is_named(tmp_path: Path) -> None:
    noisy, clean = _pair(tmp_path, "a", (64, 64))
    clean.write_bytes(b"not an mrc")
    with pytest.raises(InputError, match=str(clean)):
        index_patches([(noisy, clean)], 32)
