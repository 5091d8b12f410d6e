"""The format table: one place names the suffixes; an MRC header is read once per file opened."""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import yaml
from mrcfile.mrcinterpreter import MrcInterpreter

from napari_cryoden._reader import napari_get_reader, read_mrc
from napari_cryoden.errors import InputError
from napari_cryoden.io.formats import (
    FORMATS,
    MRC_SUFFIXES,
    SUPPORTED_SUFFIXES,
    format_of,
    is_stack_suffix,
    open_array,
    read_info,
)
from napari_cryoden.io.images import list_images, read_image, write_mrc

ROOT = Path(__file__).resolve().parents[2]
IO_PACKAGE = ROOT / "src" / "napari_cryoden" / "io"


def _mrc(path: Path, data: np.ndarray, voxel_size: object = 1.5, stack: bool = False) -> Path:
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data)
        if stack:
            mrc.set_image_stack()
        mrc.voxel_size = voxel_size
    return path


@pytest.fixture
def header_reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """File names of every MRC header mrcfile parses and every file opened, from now on."""
    seen: dict[str, list[str]] = {"parsed": [], "opened": []}
    parse, real_open = MrcInterpreter._read_header, builtins.open

    def counted_parse(self: MrcInterpreter) -> None:
        seen["parsed"].append(Path(self._iostream.name).name)
        parse(self)

    def counted_open(file: object, *args: object, **kwargs: object) -> object:
        if isinstance(file, str | os.PathLike):
            seen["opened"].append(Path(file).name)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(MrcInterpreter, "_read_header", counted_parse)
    monkeypatch.setattr(builtins, "open", counted_open)
    return seen


def test_napari_manifest_reader_patterns_are_the_tables_mrc_suffixes() -> None:
    manifest = yaml.safe_load((ROOT / "napari.yaml").read_text())
    [reader] = manifest["contributions"]["readers"]
    assert sorted(reader["filename_patterns"]) == sorted(f"*{s}" for s in MRC_SUFFIXES)
    assert set(MRC_SUFFIXES) == {".mrc", ".mrcs", ".map", ".st", ".rec"}


def test_every_suffix_picks_exactly_one_format_in_any_case(tmp_path: Path) -> None:
    suffixes = [s for fmt in FORMATS for s in fmt.suffixes]
    assert len(suffixes) == len(set(suffixes)) and set(suffixes) == set(SUPPORTED_SUFFIXES)
    assert {s for s in suffixes if s.lower() == s} == set(suffixes)
    assert format_of("a/B.MRCS").name == "MRC image stack" and format_of("x.Tiff").family == "tiff"
    assert [is_stack_suffix(f"a{s}") for s in (".mrcs", ".ST", ".mrc", ".map", ".rec", ".dat")] \
        == [True, True, False, False, False, False]
    with pytest.raises(InputError, match=r"^a\.png: unsupported file type '\.png' \(supported: "
                                         r"\.mrc, .*\.tiff\)$"):
        format_of("a.png")
    for name in ("b.mrc", "c.REC", "d.map", "e.st", "f.tif", "g.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_images(tmp_path)] == ["b.mrc", "c.REC", "d.map", "e.st", "f.tif"]


def test_the_napari_reader_takes_the_mrc_rows_and_declines_tiff() -> None:
    for suffix in MRC_SUFFIXES:
        assert napari_get_reader(f"a{suffix.upper()}") is read_mrc
    assert napari_get_reader("a.tif") is None and napari_get_reader("a.tiff") is None


def test_a_stack_suffix_overrides_a_volume_header(tmp_path: Path) -> None:
    volume = np.zeros((3, 8, 8), np.float32)  # mrcfile writes space group 1: a volume
    assert read_info(_mrc(tmp_path / "v.mrc", volume)).kind == "volume"
    for name in ("v.st", "v.mrcs"):
        info = read_info(_mrc(tmp_path / name, volume))
        assert info.kind == "stack" and not info.image_stack
    flagged = read_info(_mrc(tmp_path / "f.map", volume, stack=True))
    assert flagged.kind == "stack" and flagged.image_stack
    write_mrc(tmp_path / "w.st", volume, 1.0)
    with mrcfile.open(tmp_path / "w.st") as mrc:
        assert mrc.is_image_stack()


def test_info_carries_the_voxel_sizes_zero_meaning_unknown(tmp_path: Path) -> None:
    info = read_info(_mrc(tmp_path / "t.rec", np.zeros((2, 4, 6), np.float32), (3.0, 2.0, 5.0)))
    assert info.voxel_size == pytest.approx((5.0, 2.0, 3.0)) and info.pixel_size == 3.0
    unknown = read_info(_mrc(tmp_path / "u.mrc", np.zeros((4, 6), np.float32), 0.0))
    assert unknown.voxel_size == (0.0, 0.0, 0.0) and unknown.pixel_size == 1.0


def test_one_file_open_in_napari_reads_the_header_once(tmp_path: Path, header_reads) -> None:
    data = np.arange(3 * 6 * 5, dtype=np.int16).reshape(3, 6, 5)
    stack = _mrc(tmp_path / "s.mrcs", data, 2.1, stack=True)
    volume = _mrc(tmp_path / "t.rec", data.astype(np.float32), (3.0, 2.0, 5.0))
    header_reads["parsed"].clear(), header_reads["opened"].clear()
    layers = napari_get_reader([stack, volume])([stack, volume])
    assert header_reads["parsed"] == ["s.mrcs", "t.rec"]  # by mrcfile, once per file
    assert header_reads["opened"] == ["s.mrcs"] * 2 + ["t.rec"] * 2  # the header, the pixels
    (image, kwargs, _), (_, volume_kwargs, _) = layers
    np.testing.assert_array_equal(image, data.astype(np.float32))
    assert kwargs["scale"] == pytest.approx((1.0, 2.1, 2.1))
    assert volume_kwargs["scale"] == pytest.approx((5.0, 2.0, 3.0))
    header = kwargs["metadata"]["mrc_header"]
    assert header == {"nx": 5, "ny": 6, "nz": 3, "mode": 1, "voxel_size_x": pytest.approx(2.1),
                      "voxel_size_y": pytest.approx(2.1), "voxel_size_z": pytest.approx(2.1),
                      "image_stack": True}
    header_reads["parsed"].clear()
    read_image(stack)
    assert header_reads["parsed"] == ["s.mrcs"]


def test_a_file_rewritten_after_its_header_was_read_is_refused(tmp_path: Path) -> None:
    path = _mrc(tmp_path / "a.mrc", np.zeros((8, 8), np.float32))
    info = read_info(path)
    _mrc(tmp_path / "b.mrc", np.ones((4, 16), np.float32)).replace(path)  # same size, new file
    with pytest.raises(InputError, match=r"a\.mrc: changed while being read \(now 1280 bytes"):
        open_array(info)
    array, close = open_array(read_info(path))
    assert array.shape == (1, 4, 16) and float(array.max()) == 1.0
    close()


def test_a_huge_extended_header_is_never_allocated(tmp_path: Path) -> None:
    path = _mrc(tmp_path / "ext.mrc", np.zeros((4, 4), np.float32))
    raw = bytearray(path.read_bytes())
    raw[92:96] = np.int32(2**31 - 1).tobytes()  # nsymbt: 2 GB of extended header
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"truncated MRC file .* \+ 2147483647 bytes of extended"):
        read_info(path)


def test_io_imports_no_torch() -> None:
    """io/ sits below every subsystem that uses torch: reading a file must not load it."""
    modules = sorted(f"napari_cryoden.io.{p.stem}" for p in IO_PACKAGE.glob("*.py")
                     if p.stem != "__init__")
    assert "napari_cryoden.io.formats" in modules and "napari_cryoden.io.mrc" in modules
    code = (f"import sys\nfor m in {modules!r}: __import__(m)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env=env, check=True)
    assert result.stdout.strip() == "[]", result.stdout

