"""The read → denoise → write pipeline: stages overlap, memory is bounded, failures stay local."""

from __future__ import annotations

import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from napari_cryoden.errors import Cancelled
from napari_cryoden.inference.batch import FileResult, denoise_files
from napari_cryoden.inference.load import load_denoiser
from napari_cryoden.inference.pipeline import Stages, run_pipeline
from napari_cryoden.io.images import read_image, write_mrc
from napari_cryoden.models.pretrained import shipped_path


def results(n: int, tmp_path: Path) -> list[FileResult]:
    return [FileResult(i, n, tmp_path / f"in_{i}.mrc", tmp_path / f"out_{i}.mrc", "done")
            for i in range(n)]


class Recorder:
    """Stages that sleep (as I/O does, releasing the GIL) and log when each step ran."""

    def __init__(self, seconds: float = 0.02, fail: dict[str, int] | None = None) -> None:
        self.seconds, self.fail = seconds, fail or {}
        self.log: list[tuple[str, int, float, float]] = []
        self.alive, self.most = 0, 0
        self.lock = threading.Lock()

    def step(self, name: str, result: FileResult) -> None:
        start = time.perf_counter()
        time.sleep(self.seconds)
        if self.fail.get(name) == result.index:
            raise ValueError(f"{name} broke")
        with self.lock:
            self.log.append((name, result.index, start, time.perf_counter()))

    def read(self, result: FileResult) -> np.ndarray:
        self.step("read", result)
        with self.lock:
            self.alive += 1
            self.most = max(self.most, self.alive)
        return np.zeros(4)

    def compute(self, result: FileResult, item: np.ndarray) -> np.ndarray:
        self.step("compute", result)
        return item + 1

    def write(self, result: FileResult, item: np.ndarray) -> FileResult:
        self.step("write", result)
        with self.lock:
            self.alive -= 1
        return result

    def stages(self) -> Stages:
        return Stages(self.read, self.compute, self.write)


def test_reads_and_writes_overlap_the_compute(tmp_path: Path) -> None:
    """While file k is denoised, file k+1 is being read and file k-1 written: the compute of
    file k waits (up to 5 s) for both to have started, which a loop that reads, denoises and
    writes one file at a time would never do."""
    n = 8
    read_started = [threading.Event() for _ in range(n)]
    write_started = [threading.Event() for _ in range(n)]
    seen_read, seen_write = [], []

    def read(result: FileResult) -> int:
        read_started[result.index].set()
        return result.index

    def compute(result: FileResult, item: int) -> int:
        k = result.index
        if k + 1 < n:
            seen_read.append(read_started[k + 1].wait(5.0))
        if k > 0:
            seen_write.append(write_started[k - 1].wait(5.0))
        return item

    def write(result: FileResult, item: int) -> FileResult:
        write_started[result.index].set()
        return result

    got = list(run_pipeline(results(n, tmp_path), Stages(read, compute, write), readers=1))
    assert sorted(r.index for r in got) == list(range(n))
    assert all(seen_read) and all(seen_write) and len(seen_read) == len(seen_write) == n - 1


def test_files_in_flight_are_bounded_however_many_files(tmp_path: Path) -> None:
    for n in (10, 60):
        rec = Recorder(seconds=0.001)
        list(run_pipeline(results(n, tmp_path), rec.stages(), readers=2, writers=2, depth=2))
        assert rec.most <= 2 + 2 + 1 + 2 + 2, (n, rec.most)


def test_a_failure_at_any_stage_fails_that_file_only(tmp_path: Path) -> None:
    rec = Recorder(seconds=0.001, fail={"read": 1, "compute": 3, "write": 5})
    got = {r.index: r for r in run_pipeline(results(7, tmp_path), rec.stages())}
    assert sorted(got) == list(range(7))
    failed = {i: r.message for i, r in got.items() if r.status == "failed"}
    assert set(failed) == {1, 3, 5}
    assert failed[1] == f"{tmp_path / 'in_1.mrc'}: read broke"
    assert "compute broke" in failed[3] and "write broke" in failed[5]


def test_stop_raises_cancelled_and_leaves_no_thread(tmp_path: Path) -> None:
    before = threading.active_count()
    stop = threading.Event()
    rec = Recorder(seconds=0.005)
    computed: list[int] = []

    def compute(result: FileResult, item: np.ndarray) -> np.ndarray:
        if len(computed) == 4:  # the fifth file denoised: stop, as the tile callback does
            stop.set()
            raise Cancelled("stopped")
        computed.append(result.index)
        return rec.compute(result, item)

    seen = []
    with pytest.raises(Cancelled):
        for result in run_pipeline(results(30, tmp_path), Stages(rec.read, compute, rec.write),
                                   stop=stop):
            seen.append(result.index)
    written = sorted(i for name, i, *_ in rec.log if name == "write")
    assert written == sorted(computed)  # all computed before the stop written, none after
    assert sorted(seen) == written and len(computed) == 4  # every file written is reported
    assert threading.active_count() == before


def test_leaving_early_stops_the_readers(tmp_path: Path) -> None:
    before = threading.active_count()
    rec = Recorder(seconds=0.002)
    run = run_pipeline(results(200, tmp_path), rec.stages())
    next(run)
    run.close()
    reads = sum(1 for name, *_ in rec.log if name == "read")
    assert reads < 20 and threading.active_count() == before


def test_denoise_files_memory_is_flat_in_the_number_of_files(tmp_path: Path) -> None:
    """numpy's peak while denoising 12 and 36 micrographs of 256² (tracemalloc): both fill the
    pipeline (at most 9 micrographs in flight), and the longer run holds no more."""
    denoiser = load_denoiser(shipped_path("general-fast"), "cpu")
    rng = np.random.default_rng(0)
    peaks = {}
    for n in (12, 36):
        folder = tmp_path / f"in{n}"
        folder.mkdir()
        files = []
        for i in range(n):
            files.append(folder / f"m{i}.mrc")
            write_mrc(files[-1], rng.normal(size=(256, 256)).astype(np.float32), 1.0)
        list(denoise_files(denoiser, files[:1], tmp_path / "warm"))  # first-call allocations
        tracemalloc.start()
        try:
            got = list(denoise_files(denoiser, files, tmp_path / f"out{n}"))
            peaks[n] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert [r.status for r in got] == ["done"] * n
    image = 256 * 256 * 4
    assert peaks[36] < peaks[12] + 2 * image, peaks  # not one more micrograph per file


def test_float16_output_is_half_the_size_and_close(tmp_path: Path) -> None:
    denoiser = load_denoiser(shipped_path("general-fast"), "cpu")
    source = tmp_path / "m.mrc"
    write_mrc(source, np.random.default_rng(1).normal(size=(128, 128)).astype(np.float32), 1.3)
    list(denoise_files(denoiser, [source], tmp_path / "f32"))
    list(denoise_files(denoiser, [source], tmp_path / "f16", out_dtype="float16"))
    full, pixel = read_image(tmp_path / "f32/m.mrc")
    half, pixel16 = read_image(tmp_path / "f16/m.mrc")
    assert pixel16 == pytest.approx(pixel) == pytest.approx(1.3)
    assert (tmp_path / "f16/m.mrc").stat().st_size < 0.6 * (tmp_path / "f32/m.mrc").stat().st_size
    np.testing.assert_allclose(half, full, rtol=1e-3, atol=1e-3 * float(np.abs(full).max()))
