"""The ``--events FILE`` stream of ``cryoden train``: one JSON object per event, rank 0 only.

(The two-process case is in tests/test_distributed.py, next to the other torchrun run.)
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from napari_cryoden.cli.main import main
from napari_cryoden.training.events import (
    CheckpointSaved,
    EpochEnd,
    TrainEnd,
    TrainStart,
    TrainStep,
    TrainWarning,
    from_json_line,
    to_dict,
    to_json_line,
)

EVENTS = [
    TrainStart(device="cpu", epochs=2, first_epoch=1, steps_per_epoch=3, n_train_patches=12,
               n_val_patches=4, run_dir=Path("/runs/a"), world_size=2, batch_size=4),
    TrainStep(epoch=1, step=1, steps_per_epoch=3, global_step=1, loss=0.5, patches_per_s=80.0),
    EpochEnd(epoch=1, train_loss=0.4, val_loss=None, val_mse=None, is_best=True, seconds=1.5),
    CheckpointSaved(epoch=1, kind="best", path=Path("/runs/a/best.safetensors")),
    TrainWarning(epoch=1, message="validation loss rose"),
    TrainEnd(epochs_completed=1, best_epoch=1, best_val_loss=0.3, stopped=True,
             run_dir=Path("/runs/a")),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_event_round_trips_through_one_json_line(event) -> None:
    line = to_json_line(event)
    assert line.endswith("\n") and "\n" not in line[:-1]
    assert json.loads(line)["event"] == type(event).__name__
    assert from_json_line(line) == event


def test_json_lines_are_json_safe_and_data_only() -> None:
    step = TrainStep(epoch=1, step=1, steps_per_epoch=1, global_step=1, loss=math.nan,
                     patches_per_s=math.inf)
    data = json.loads(to_json_line(step))  # strict JSON: NaN/Inf would need allow_nan
    assert data["loss"] is None and data["patches_per_s"] is None
    back = from_json_line(to_json_line(step))
    assert math.isnan(back.loss)
    assert to_dict(EVENTS[0])["run_dir"] == "/runs/a"
    extra = {**to_dict(EVENTS[1]), "future_field": 1}  # newer writers may add fields
    assert from_json_line(json.dumps(extra)) == EVENTS[1]
    for bad in ('{"event": "os.system", "command": "ls"}', '["TrainStep"]',
                '{"event": "TrainStep", "epoch": 1}'):
        with pytest.raises(ValueError):
            from_json_line(bad)


def _train(make_pairs, out: Path, *extra: str) -> int:
    noisy, clean = make_pairs(n=3, size=64)
    return main(["train", "--noisy", str(noisy), "--clean", str(clean), "--out", str(out),
                 "--epochs", "2", "--patch-size", "32", "--batch-size", "4", "--device", "cpu",
                 "--val-fraction", "0.34", *extra])


def test_cli_events_file_holds_every_event_in_order(make_pairs, tmp_path, capsys) -> None:
    log = tmp_path / "logs" / "events.jsonl"
    assert _train(make_pairs, tmp_path / "run", "--events", str(log)) == 0
    output = capsys.readouterr().out
    assert "Finished after 2 epoch(s)" in output  # the usual lines are unchanged
    events = [from_json_line(line) for line in log.read_text().splitlines()]
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "TrainStart" and kinds[-1] == "TrainEnd"
    assert kinds.count("EpochEnd") == 2 and kinds.count("TrainStart") == 1
    steps = [e for e in events if isinstance(e, TrainStep)]
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [s.loss for s in steps] == pytest.approx([s["loss"] for s in history["steps"]])
    best = [e for e in events if isinstance(e, CheckpointSaved) and e.kind == "best"]
    assert best and best[0].path == tmp_path / "run" / "best.safetensors"
    assert events[0].run_dir == tmp_path / "run" and not events[-1].stopped


def test_cli_events_to_stdout_moves_the_usual_lines_to_stderr(make_pairs, tmp_path,
                                                              capsys) -> None:
    assert _train(make_pairs, tmp_path / "run", "--events", "-") == 0
    captured = capsys.readouterr()
    events = [from_json_line(line) for line in captured.out.splitlines()]
    assert isinstance(events[0], TrainStart) and isinstance(events[-1], TrainEnd)
    assert "Finished after 2 epoch(s)" in captured.err


def test_the_training_package_exports_train_and_the_events_without_importing_torch() -> None:
    code = ("import sys\n"
            "import napari_cryoden.training as training\n"
            "from napari_cryoden.training import EpochEnd, TrainStep\n"
            "from napari_cryoden.training.events import EpochEnd as home\n"
            "assert EpochEnd is home and 'torch' not in sys.modules, sorted(sys.modules)\n"
            "assert training.train.__module__ == 'napari_cryoden.training.loop'\n"
            "print('torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"  # train itself needs torch, loaded on first use
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        import napari_cryoden.training as training

        training.Nope  # noqa: B018
