"""A Train widget job is created on the main thread, with triton imported there first.

Run under Xvfb: ``xvfb-run -a python -m pytest tests/qt/train/test_train_jobs.py -q``.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_cryoden._qt.train import process  # noqa: E402
from napari_cryoden._qt.train.data_form import FolderPair  # noqa: E402
from napari_cryoden._qt.train.worker import import_triton_on_main_thread  # noqa: E402
from napari_cryoden.config.sections import Config  # noqa: E402


def test_new_job_imports_triton_on_the_calling_thread_before_the_worker_starts(
        qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []
    monkeypatch.setattr(process, "import_triton_on_main_thread",
                        lambda: threads.append(threading.current_thread()))
    job = process.new_job(FolderPair(tmp_path, tmp_path), Config(), tmp_path / "run", False)
    assert threads == [threading.main_thread()]
    assert not job.worker.is_running and not job.done.is_set()  # created, not started
    job.events.close()


def test_with_triton_installed_torch_dynamo_is_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_spec, real_import = importlib.util.find_spec, builtins.__import__
    imported: list[str] = []

    def spy(name: str, *args: Any, **kwargs: Any) -> Any:
        imported.append(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", spy)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    import_triton_on_main_thread()
    assert "torch._dynamo" not in imported  # nothing to work around without triton
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "triton" else real_spec(name, *a))
    import_triton_on_main_thread()
    assert "torch._dynamo" in imported and "torch._dynamo" in sys.modules
