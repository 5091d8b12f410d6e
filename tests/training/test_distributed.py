"""Data-parallel training on the CPU (gloo): sharding, equivalence with one process, stop, resume.

Two ranks with batch 2 each must train exactly what one process does with batch 4 (same seed,
same data, ``shuffle_buffer=1``), up to float summation order.
"""

from __future__ import annotations

import datetime
import gc
import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from conftest import write_pairs
from napari_cryoden.cli.main import main
from napari_cryoden.config.sections import Config
from napari_cryoden.data.pairs import find_pairs
from napari_cryoden.data.stream import PatchStream
from napari_cryoden.models.checkpoint import load_checkpoint
from napari_cryoden.training import EpochEnd, TrainStep, train
from napari_cryoden.training.distributed import RANK_WEIGHTS_ENV
from napari_cryoden.training.events import from_json_line

WORLD = 2


def _config(batch_size: int, epochs: int) -> Config:
    return Config.from_dict({
        "data": {"patch_size": 32, "crop": 24, "shuffle_buffer": 1, "reader_threads": 1},
        "train": {"batch_size": batch_size, "epochs": epochs, "device": "cpu", "lr": 3e-3},
    })


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list]:
    """4 training micrographs of 64² (16 patches) and one of 96² for validation (9 patches)."""
    root = tmp_path_factory.mktemp("data")
    train_dirs = write_pairs(root / "train", n=4, size=64, seed=0)
    val_dirs = write_pairs(root / "val", n=1, size=96, seed=1)
    return {"train": find_pairs(*train_dirs), "val": find_pairs(*val_dirs)}


# -- sharding of the stream (no processes) ---------------------------------------------------
def _samples(stream: PatchStream) -> list[list[torch.Tensor]]:
    return [[batch.noisy, batch.clean] for batch in stream]


def test_ranks_share_the_single_process_batches_without_repeats(make_pairs) -> None:
    pairs = find_pairs(*make_pairs(n=5, size=64))  # 20 patches: 3 ranks get 6, 2 are dropped
    common = dict(patch_size=32, crop=24, shuffle=True, seed=5, epoch=1, shuffle_buffer=1)
    single = PatchStream(pairs, batch_size=6, **common)
    ranks = [PatchStream(pairs, batch_size=2, rank=r, world_size=3, **common) for r in range(3)]
    assert [(s.n_patches, len(s), s.n_dropped, s.n_patches_all_ranks) for s in ranks] == [
        (6, 3, 2, 18)] * 3
    per_rank = [_samples(s) for s in ranks]
    for k, (noisy, clean) in enumerate(_samples(single)[:3]):
        # rank r's i-th sample of batch k is the single batch's sample i * world + r
        union_noisy = torch.stack([per_rank[r][k][0] for r in range(3)], 1).flatten(0, 1)
        union_clean = torch.stack([per_rank[r][k][1] for r in range(3)], 1).flatten(0, 1)
        assert torch.equal(union_noisy, noisy) and torch.equal(union_clean, clean)


def test_validation_shards_keep_every_patch(make_pairs) -> None:
    pairs = find_pairs(*make_pairs(n=5, size=64))
    common = dict(patch_size=32, shuffle=False, seed=0, batch_size=4)
    ranks = [PatchStream(pairs, rank=r, world_size=3, **common) for r in range(3)]
    assert [s.n_patches for s in ranks] == [7, 7, 6] and ranks[0].n_dropped == 0
    shards = [torch.cat([b.noisy for b in s]) for s in ranks]
    whole = torch.cat([b.noisy for b in PatchStream(pairs, **common)])
    assert torch.equal(torch.cat([shards[r][i:i + 1] for i in range(7) for r in range(3)
                                  if i < len(shards[r])]), whole)
    with pytest.raises(ValueError, match="rank"):
        PatchStream(pairs, rank=3, world_size=3, **common)


# -- two gloo processes ----------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _summary(events: list) -> dict:
    end = events[-1]
    return {"types": [type(e).__name__ for e in events],
            "val_loss": [e.val_loss for e in events if isinstance(e, EpochEnd)],
            "losses": [e.loss for e in events if isinstance(e, TrainStep)],
            "end": {"stopped": end.stopped, "epochs_completed": end.epochs_completed,
                    "rank": end.rank}}


def _worker(rank: int, port: int, root: str, data: dict[str, list]) -> None:
    """One rank: a 2-epoch run, its resume to 3 epochs, and a run that rank 0 stops."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=60))
    out, results = Path(root), {}
    try:
        runs = [("ddp", _config(2, 2), out / "ddp", False),
                ("resumed", _config(2, 3), out / "ddp", True)]
        for name, config, run_dir, resume in runs:
            os.environ[RANK_WEIGHTS_ENV] = str(out / f"weights_{name}")
            events = list(train(config, data["train"], data["val"], run_dir, resume=resume))
            results[name] = _summary(events)
        stop, events = threading.Event(), []
        os.environ[RANK_WEIGHTS_ENV] = str(out / "weights_stop")
        for event in train(_config(2, 2), data["train"], data["val"],
                           out / ("stop" if rank == 0 else "stop_rank1"), stop=stop):
            events.append(event)
            if isinstance(event, TrainStep) and event.global_step == 3:
                stop.set()  # only rank 0 sees steps: its request must stop rank 1 too
        results["stop"] = _summary(events)
    finally:
        # as training.distributed.leave does: DDP wrappers left in reference cycles keep gloo
        # threads that can abort the process at exit (SIGABRT once in a full CI run)
        gc.collect()
        dist.destroy_process_group()
    (out / f"rank{rank}.json").write_text(json.dumps(results))


@pytest.fixture(scope="module")
def ddp_runs(data, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """Both ranks' results of the three runs of :func:`_worker` (spawned once per module)."""
    root = tmp_path_factory.mktemp("ddp_runs")
    context = mp.start_processes(_worker, args=(_free_port(), str(root), data), nprocs=WORLD,
                                 join=False, start_method="spawn")
    deadline = time.monotonic() + 120
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the two ranks did not finish within 120 s (a collective hung?)")
    return root, [json.loads((root / f"rank{r}.json").read_text()) for r in range(WORLD)]


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor],
                         atol: float) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=atol, msg=name)


def test_two_ranks_train_like_one_process_with_the_global_batch(ddp_runs, data,
                                                                tmp_path: Path) -> None:
    root, (rank0, rank1) = ddp_runs
    single = list(train(_config(4, 2), data["train"], data["val"], tmp_path / "single"))
    ranks = [load_file(root / "weights_ddp" / f"rank{r}.safetensors") for r in range(WORLD)]
    _assert_same_weights(ranks[0], ranks[1], atol=0)  # replicas stay identical
    single_model, _ = load_checkpoint(tmp_path / "single" / "last.safetensors")
    _assert_same_weights(ranks[0], single_model.state_dict(), atol=1e-5)
    # losses are global: the same per step and on validation (9 patches shared 5 + 4)
    expected = _summary(single)
    assert rank0["ddp"]["losses"] == pytest.approx(expected["losses"], rel=1e-5)
    assert rank0["ddp"]["val_loss"] == pytest.approx(expected["val_loss"], rel=1e-6)
    assert rank0["ddp"]["types"] == expected["types"]
    # rank 1 yields only its TrainEnd and writes nothing; rank 0 alone writes the run folder
    assert rank1["ddp"]["types"] == ["TrainEnd"] and rank1["ddp"]["end"]["rank"] == 1
    assert sorted(p.name for p in (root / "ddp").iterdir()) == [
        "best.safetensors", "history.json", "last.safetensors"]
    assert not (root / "stop_rank1").exists()
    history = json.loads((root / "ddp" / "history.json").read_text())
    assert history["world_size"] == 2 and history["global_batch_size"] == 4


def test_resume_on_every_rank_continues_like_straight_training(ddp_runs, data,
                                                               tmp_path: Path) -> None:
    root, (rank0, rank1) = ddp_runs
    list(train(_config(4, 3), data["train"], data["val"], tmp_path / "straight"))
    straight, _ = load_checkpoint(tmp_path / "straight" / "last.safetensors")
    for r in range(WORLD):
        resumed = load_file(root / "weights_resumed" / f"rank{r}.safetensors")
        _assert_same_weights(resumed, straight.state_dict(), atol=1e-5)
    saved, _ = load_checkpoint(root / "ddp" / "last.safetensors")
    _assert_same_weights(resumed, saved.state_dict(), atol=0)  # what rank 0 saved
    assert [e for e in rank0["resumed"]["types"] if e == "EpochEnd"] == ["EpochEnd"]
    history = json.loads((root / "ddp" / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3]


def test_a_stop_on_rank_0_stops_every_rank_at_the_same_step(ddp_runs) -> None:
    root, results = ddp_runs
    for result in results:
        assert result["stop"]["end"] == {"stopped": True, "epochs_completed": 0,
                                         "rank": result["stop"]["end"]["rank"]}
    assert len(results[0]["stop"]["losses"]) == 3
    history = json.loads((root / "stop" / "history.json").read_text())
    assert history["stopped"] and len(history["steps"]) == 3
    ranks = [load_file(root / "weights_stop" / f"rank{r}.safetensors") for r in range(WORLD)]
    _assert_same_weights(ranks[0], ranks[1], atol=0)  # both took exactly 3 steps


# -- the CLI launcher --------------------------------------------------------------------------
def test_cli_ddp_launches_torchrun_and_trains(data, tmp_path: Path, capfd) -> None:
    noisy, clean = data["train"][0][0].parent, data["train"][0][1].parent
    run, log = tmp_path / "cli_run", tmp_path / "events.jsonl"
    status = main(["train", "--ddp", "--nproc", "2", "--device", "cpu", "--noisy", str(noisy),
                   "--clean", str(clean), "--out", str(run), "--epochs", "2", "--patch-size",
                   "32", "--batch-size", "2", "--val-fraction", "0.25", "--no-amp",
                   "--events", str(log)])
    output, errors = capfd.readouterr()
    assert status == 0, errors
    assert "2 processes × cpu" in output and output.count("Finished after 2 epoch(s)") == 1
    history = json.loads((run / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2] and history["world_size"] == 2
    assert history["config"]["train"] == {**history["config"]["train"], "batch_size": 2,
                                          "amp": False}
    # --events reached the ranks; rank 0 alone wrote it: one start, one end (its own)
    events = [from_json_line(line) for line in log.read_text().splitlines()]
    kinds = [type(e).__name__ for e in events]
    assert kinds.count("TrainStart") == 1 and kinds.count("TrainEnd") == 1
    assert kinds[0] == "TrainStart" and kinds[-1] == "TrainEnd" and events[-1].rank == 0
    assert events[0].world_size == 2 and kinds.count("EpochEnd") == 2
    assert kinds.count("TrainStep") == len(history["steps"])


def test_cli_ddp_refuses_bad_input_before_launching(tmp_path: Path, capsys) -> None:
    status = main(["train", "--ddp", "--noisy", str(tmp_path / "absent"), "--clean",
                   str(tmp_path), "--out", str(tmp_path / "run"), "--device", "cpu"])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("cryoden: error:") and "absent" in err and "torch" not in err
