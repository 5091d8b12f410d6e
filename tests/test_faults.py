"""Faults while saving: a writer killed mid-write, a full disk, a missing folder.

The previous checkpoint must always survive whole, load, and give the same output; a failed save
is one line naming the file (``…: cannot write: disk full while saving …``); temporary files of
killed writers are hidden, ignored by readers and removed by the next save.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_cryoden.cli.main import main
from napari_cryoden.config.sections import Config
from napari_cryoden.errors import InputError, SaveError
from napari_cryoden.io.atomic import atomic_write_bytes, remove_stale_temps
from napari_cryoden.io.images import write_mrc
from napari_cryoden.models.checkpoint import load_checkpoint, save_checkpoint
from napari_cryoden.models.nets import build_model

PAD_MB = 32  # a large checkpoint: ~0.1 s to write, so random kills land mid-write

_WRITER = textwrap.dedent("""
    import os, sys, time
    import torch
    from napari_cryoden.config.sections import Config
    from napari_cryoden.models.nets import build_model
    from napari_cryoden.models.checkpoint import save_checkpoint

    path, first, pad_mb, hang = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    if hang == "hang":  # write half of the first checkpoint, then wait to be killed
        real_write = os.write
        def half_then_hang(fd, data):
            real_write(fd, bytes(memoryview(data)[: len(data) // 2]))
            print("half", flush=True)
            time.sleep(600)
        os.write = half_then_hang
    pad = torch.zeros(pad_mb * 2**18)
    epoch = first
    while True:
        print(f"writing {epoch}", flush=True)
        save_checkpoint(path, build_model(seed=epoch), Config(),
                        extra_tensors={"optim.0.pad": pad + epoch}, epoch=epoch)
        print(f"saved {epoch}", flush=True)
        epoch += 1
""")


def _output(model: torch.nn.Module) -> np.ndarray:
    image = torch.from_numpy(np.random.default_rng(0).random((1, 1, 24, 24), np.float32))
    with torch.no_grad():
        return model(image).numpy()


def _kill_writer(path: Path, first: int, rng: random.Random, hang: bool) -> tuple[int, int]:
    """Run a writer, SIGKILL it; return (last epoch it finished, epoch it was writing)."""
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(first), str(PAD_MB),
                             "hang" if hang else "run"], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.stdout is not None
    lines, target = [], first + rng.randrange(3)
    try:
        for line in proc.stdout:
            lines.append(line.strip())
            if hang and line.startswith("half"):
                break
            if not hang and line.strip() == f"writing {target}":
                time.sleep(rng.uniform(0.0, 0.2))
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        lines += [line.strip() for line in proc.stdout]
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    saved = [int(line.split()[1]) for line in lines if line.startswith("saved")]
    writing = [int(line.split()[1]) for line in lines if line.startswith("writing")]
    return (saved[-1] if saved else -1), writing[-1]


def test_sigkill_mid_write_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "best.safetensors"
    save_checkpoint(path, build_model(seed=0), Config(), epoch=0)
    rng, known = random.Random(6), 0
    for round_, first in enumerate((100, 200, 300)):
        done, writing = _kill_writer(path, first, rng, hang=round_ == 0)
        model, ckpt = load_checkpoint(path)  # must load whole, whatever the moment of the kill
        allowed = {writing, done if done >= 0 else known}
        assert ckpt.epoch in allowed, (ckpt.epoch, allowed)
        np.testing.assert_array_equal(_output(model), _output(build_model(seed=ckpt.epoch)))
        if round_ == 0:  # killed after half a write, for certain: a partial temp file is left
            temps = [p for p in tmp_path.iterdir() if p.name != path.name]
            assert temps and all(p.name.startswith(".best.safetensors.") for p in temps)
            assert 0 < temps[0].stat().st_size < PAD_MB * 2**20  # about half of a whole file
            assert ckpt.epoch == 0
        known = ckpt.epoch
    leftovers = [p for p in tmp_path.iterdir() if p.name != path.name]
    assert all(p.name.startswith(".") and p.suffix == ".tmp" for p in leftovers)
    save_checkpoint(path, build_model(seed=7), Config(), epoch=7)  # cleans the dead writers' temps
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert load_checkpoint(path)[1].epoch == 7


def test_stale_temps_of_live_writers_and_other_hosts_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "last.safetensors"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    host = os.uname().nodename
    names = {
        "dead": f".last.safetensors.{dead.stdout.strip()}@{_host()}.abc123.tmp",
        "live": f".last.safetensors.{os.getpid()}@{_host()}.def456.tmp",
        "other_host": f".last.safetensors.{dead.stdout.strip()}@not-{host[:20]}-x.aaa.tmp",
        "other_file": f".best.safetensors.{dead.stdout.strip()}@{_host()}.abc123.tmp",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"partial")
    removed = remove_stale_temps(target)
    assert [p.name for p in removed] == [names["dead"]]
    assert {p.name for p in tmp_path.iterdir()} == set(names.values()) - {names["dead"]}


def _host() -> str:
    from napari_cryoden.io import atomic as _files

    return _files._HOST


def _checkpoint(tmp_path: Path) -> tuple[Path, bytes, np.ndarray]:
    path = save_checkpoint(tmp_path / "best.safetensors", build_model(seed=1), Config(), epoch=1)
    return path, path.read_bytes(), _output(build_model(seed=1))


def _assert_intact(path: Path, before: bytes, output: np.ndarray) -> None:
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    model, ckpt = load_checkpoint(path)
    assert ckpt.epoch == 1
    np.testing.assert_array_equal(_output(model), output)


def _enospc(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_mid_write_is_one_line_and_keeps_the_checkpoint(tmp_path: Path,
                                                                   monkeypatch) -> None:
    path, before, output = _checkpoint(tmp_path)
    real_write, calls = os.write, []

    def fills_up(fd: int, data: bytes) -> int:  # the first chunk fits, then the disk is full
        if calls:
            _enospc()
        calls.append(fd)
        return real_write(fd, bytes(memoryview(data)[: len(data) // 2]))

    with monkeypatch.context() as patch:
        patch.setattr(os, "write", fills_up)
        with pytest.raises(SaveError) as caught:
            save_checkpoint(path, build_model(seed=2), Config(), epoch=2)
    error = caught.value
    assert str(error) == (f"{path}: cannot write: disk full while saving (free some space, then "
                          "save again); any previous best.safetensors is intact")
    assert error.errno == errno.ENOSPC and isinstance(error, OSError | InputError)
    assert len(calls) == 1
    _assert_intact(path, before, output)


@pytest.mark.parametrize("where", ["os.fsync", "os.replace"])
def test_disk_full_when_syncing_or_renaming(tmp_path: Path, monkeypatch, where: str) -> None:
    path, before, output = _checkpoint(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(where, _enospc)
        with pytest.raises(SaveError, match="best.safetensors: cannot write: disk full while "
                                            "saving"):
            save_checkpoint(path, build_model(seed=2), Config(), epoch=2)
    _assert_intact(path, before, output)


def test_disk_full_for_history_and_micrographs(tmp_path: Path, monkeypatch) -> None:
    history, mic = tmp_path / "history.json", tmp_path / "out.mrc"
    atomic_write_bytes(history, b'{"epochs": []}')
    write_mrc(mic, np.ones((8, 8)), pixel_size=1.5)
    before = history.read_bytes(), mic.read_bytes()
    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", _enospc)
        with pytest.raises(SaveError, match="history.json: cannot write: disk full"):
            atomic_write_bytes(history, b'{"epochs": [1]}')
        with pytest.raises(SaveError, match="out.mrc: cannot write: disk full"):
            write_mrc(mic, np.zeros((8, 8)), pixel_size=1.5)
    assert (history.read_bytes(), mic.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.json", "out.mrc"]


def test_cli_denoise_on_a_full_disk_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    model = save_checkpoint(tmp_path / "m.safetensors", build_model(seed=0), Config())
    write_mrc(tmp_path / "a.mrc", np.random.default_rng(0).random((32, 32)), pixel_size=1.0)
    monkeypatch.setattr(os, "fsync", _enospc)
    code = main(["denoise", str(model), str(tmp_path / "a.mrc"), "--out", str(tmp_path / "o")])
    lines = capsys.readouterr().err.strip().splitlines()
    err = "\n".join(line for line in lines if not line.startswith("note: "))  # scale notes
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert err == (f"cryoden: error: {tmp_path / 'o' / 'a.mrc'}: cannot write: disk full while "
                   "saving (free some space, then save again); any previous a.mrc is intact")


def test_saving_into_a_missing_folder(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "best.safetensors"
    with pytest.raises(SaveError, match=r"best.safetensors: cannot write: folder .*no/such does "
                                        r"not exist"):
        save_checkpoint(path, build_model(seed=0), Config())
