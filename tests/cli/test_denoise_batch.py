"""``cryoden denoise`` over a dataset: resume, overwrite, float16, bad files, several processes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_cryoden.cli.main import main
from napari_cryoden.io.images import read_image, write_mrc


def dataset(folder: Path, n: int, size: int = 96) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = [folder / f"mic_{i:02d}.mrc" for i in range(n)]
    for path in paths:
        write_mrc(path, rng.normal(size=(size, size)).astype(np.float32), 1.1)
    return paths


def test_a_second_run_resumes_and_overwrite_replaces(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    dataset(tmp_path / "in", 4)
    out = tmp_path / "out"
    assert main(["denoise", "general-fast", str(tmp_path / "in"), "--out", str(out),
                 "--device", "cpu"]) == 0
    first = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    (out / "mic_02.mrc").unlink()  # as if the run had been interrupted before it
    capsys.readouterr()
    assert main(["denoise", "general-fast", str(tmp_path / "in"), "--out", str(out),
                 "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "denoised 1 micrograph(s)" in text and "kept 3 existing output(s)" in text
    again = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert sorted(again) == sorted(first)
    assert all(again[n] == first[n] for n in first if n != "mic_02.mrc")  # untouched
    assert main(["denoise", "general-fast", str(tmp_path / "in"), "--out", str(out),
                 "--device", "cpu", "--overwrite"]) == 0
    assert "denoised 4 micrograph(s)" in capsys.readouterr().out


def test_float16_output_and_a_file_bad_inside_among_good_ones(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    files = dataset(tmp_path / "in", 3)
    broken = np.zeros((96, 96), np.float32)
    broken[5, 7] = np.nan  # a sound header: found bad only when read, mid-run
    write_mrc(files[1], broken, 1.1)
    code = main(["denoise", "general-fast", *map(str, files), "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--out-dtype", "float16"])
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "mic_01.mrc" in errors[0]
    assert "1 micrograph(s) failed" in captured.err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mic_00.mrc", "mic_02.mrc"]
    import mrcfile

    with mrcfile.open(tmp_path / "out/mic_02.mrc") as mrc:
        assert mrc.data.dtype == np.float16 and int(mrc.header.mode) == 12
    assert read_image(tmp_path / "out/mic_02.mrc")[1] == pytest.approx(1.1)


def test_two_processes_denoise_each_file_once_and_as_one_process_does(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """torchrun, 2 CPU processes (gloo): every file once, the same pixels as a single run."""
    import re

    dataset(tmp_path / "in", 5)
    assert main(["denoise", "general-fast", str(tmp_path / "in"), "--out", str(tmp_path / "one"),
                 "--device", "cpu"]) == 0
    capfd.readouterr()
    code = main(["denoise", "general-fast", str(tmp_path / "in"), "--out",
                 str(tmp_path / "two"), "--device", "cpu", "--nproc", "2"])
    assert code == 0
    counts = re.findall(r"process (\d)/2: denoised (\d) micrograph", capfd.readouterr().out)
    assert sorted(counts) == [("1", "3"), ("2", "2")]  # files 0, 2, 4 and 1, 3: each once
    names = sorted(p.name for p in (tmp_path / "two").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "one").iterdir())
    for name in names:
        np.testing.assert_array_equal(read_image(tmp_path / "two" / name)[0],
                                      read_image(tmp_path / "one" / name)[0])


def test_shards_cover_a_star_list_and_a_last_run_writes_the_star(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Three separate jobs (``--shard 1/3`` … ``3/3``, as SLURM array tasks) denoise disjoint
    thirds; the same command without --shard then keeps every output and writes the STAR."""
    project = tmp_path / "proj"
    dataset(project / "MotionCorr/job002/Movies", 7)
    star = project / "CtfFind/job003/micrographs_ctf.star"
    star.parent.mkdir(parents=True)
    star.write_text("data_micrographs\nloop_\n_rlnMicrographName #1\n" + "".join(
        f"MotionCorr/job002/Movies/mic_{i:02d}.mrc\n" for i in range(7)))
    out = project / "Denoise/job010"
    written: list[set[str]] = []
    for k in (1, 2, 3):
        before = {p.name for p in out.rglob("*.mrc")} if out.exists() else set()
        assert main(["denoise", "general-fast", "--star", str(star), "--out", str(out),
                     "--device", "cpu", "--shard", f"{k}/3"]) == 0
        written.append({p.name for p in out.rglob("*.mrc")} - before)
        assert "not written by a shard" in capsys.readouterr().out
    assert [len(w) for w in written] == [3, 2, 2] and not (out / "micrographs_ctf.star").exists()
    assert set().union(*written) == {f"mic_{i:02d}.mrc" for i in range(7)}
    assert main(["denoise", "general-fast", "--star", str(star), "--out", str(out),
                 "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "denoised 0 micrograph(s)" in text and "kept 7 existing output(s)" in text
    assert (out / "micrographs_ctf.star").is_file()
    with pytest.raises(SystemExit) as exit_:
        main(["denoise", "general-fast", "--star", str(star), "--out", str(out),
              "--shard", "4/3"])
    assert exit_.value.code == 2
    assert "is not K/N with 1 <= K <= N" in capsys.readouterr().err


def test_autotune_flag_reaches_the_run_and_every_torchrun_process(tmp_path: Path,
                                                                 monkeypatch) -> None:
    from napari_cryoden.cli import denoise as cli_denoise
    from napari_cryoden.cli.main import build_parser
    from napari_cryoden.inference import batch

    given: list[object] = []
    original = batch.denoise_files

    def recording(*args, autotune=None, **kwargs):
        given.append(autotune)
        return original(*args, autotune=autotune, **kwargs)

    monkeypatch.setattr(batch, "denoise_files", recording)
    files = dataset(tmp_path / "in", 1)
    for flag, expected in (([], None), (["--autotune"], True), (["--no-autotune"], False)):
        out = tmp_path / f"out{len(given)}"
        assert main(["denoise", "general-fast", *map(str, files), "--out", str(out),
                     *flag]) == 0
        assert given[-1] is expected
        args = build_parser().parse_args(["denoise", "general-fast", str(files[0]), "--out",
                                          str(out), *flag])
        argv = cli_denoise._rank_argv(args)
        assert [a for a in argv if a.endswith("-autotune")] == flag
