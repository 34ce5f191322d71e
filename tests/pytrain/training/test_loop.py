"""Training loop: outputs, determinism, resume, data-parallel training and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pytrain.cli import main
from pytrain.training.loop import TrainOptions, train

from toy_data import make_toy_dataset


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return make_toy_dataset(tmp_path_factory.mktemp("data") / "toy")


def _opts(toy, out, **kw):
    kw.setdefault("epochs", 2)
    return TrainOptions(preset="tiny", data=str(toy), out=out, progress=False, **kw)


def test_train_writes_metrics_and_a_weights_only_checkpoint(toy, tmp_path):
    run = tmp_path / "run"
    m = train(_opts(toy, run, epochs=3))
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("test_acc", "val_acc", "epochs", "seconds", "params_total", "params_recurrent"):
        assert key in metrics
    assert metrics["epochs"] == 3 and metrics["complete"]
    assert 0.0 <= metrics["test_acc"] <= 1.0
    rec = torch.load(run / "model.pt", weights_only=True)
    assert rec["config"]["n_inputs"] == 8 and rec["config"]["n_classes"] == 4
    assert "layers.1.rec.delays" in rec["state_dict"]
    assert m["test_acc"] == metrics["test_acc"]


def test_training_is_deterministic_on_cpu(toy, tmp_path):
    a = torch.load(train(_opts(toy, tmp_path / "a")) and tmp_path / "a" / "model.pt", weights_only=True)
    b = torch.load(train(_opts(toy, tmp_path / "b")) and tmp_path / "b" / "model.pt", weights_only=True)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_resume_continues_exactly_where_it_stopped(toy, tmp_path):
    full = train(_opts(toy, tmp_path / "full", epochs=3))
    part = train(_opts(toy, tmp_path / "part", epochs=3, stop_after=1))
    assert not part["complete"]
    resumed = train(_opts(toy, tmp_path / "part", epochs=None, resume=True))
    assert resumed["complete"]
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in full["history"]]
    assert resumed["rank_parameter_digests"] == full["rank_parameter_digests"]


def test_eval_command_reproduces_the_test_accuracy(toy, tmp_path, capsys):
    run = tmp_path / "run"
    m = train(_opts(toy, run))
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(toy), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["acc"] == m["test_acc"]


def test_every_preset_trains_on_a_dataset_of_another_width(toy, tmp_path):
    # the edge preset expects 32 channels and 20 classes; the toy set has 8 and 4
    m = train(TrainOptions(preset="edge", data=str(toy), out=tmp_path / "e", epochs=1, progress=False))
    assert m["data"]["n_inputs"] == 8


def test_data_parallel_training_with_two_processes(toy, tmp_path):
    run = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "pytrain", "train", "--preset", "tiny", "--data", str(toy), "--out", str(run), "--epochs", "2", "--no-progress"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    m = json.loads((run / "metrics.json").read_text())
    assert m["world_size"] == 2 and m["complete"]
    digests = m["rank_parameter_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]


def _cli(args):
    return subprocess.run([sys.executable, "-m", "pytrain", *args], capture_output=True, text=True, timeout=120)


def _assert_one_line_error(res, needle):
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr and needle in lines[0], res.stderr


def test_unknown_preset_is_a_one_line_error(toy, tmp_path):
    res = _cli(["train", "--preset", "huge", "--data", str(toy), "--out", str(tmp_path / "r")])
    _assert_one_line_error(res, "unknown preset 'huge'")
    assert not (tmp_path / "r").exists()
    _assert_one_line_error(_cli(["info", "--preset", "huge"]), "unknown preset")


def test_missing_dataset_folder_is_a_one_line_error(tmp_path):
    res = _cli(["train", "--preset", "tiny", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r")])
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_existing_run_is_not_overwritten_without_force(toy, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    _assert_one_line_error(_cli(["train", "--preset", "tiny", "--data", str(toy), "--out", str(run)]), "--force")
    assert (run / "notes.txt").read_text() == "mine"
    _assert_one_line_error(_cli(["train", "--preset", "tiny", "--data", str(toy), "--out", str(run), "--resume"]), "checkpoint.pt")


def test_corrupt_or_missing_model_file_is_a_one_line_error(toy, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    _assert_one_line_error(_cli(["eval", str(run), "--data", str(toy)]), "model.pt")
    (run / "model.pt").write_bytes(b"not a model")
    _assert_one_line_error(_cli(["eval", str(run), "--data", str(toy)]), "model file")


def test_steps_set_the_epochs_from_the_dataset_size(toy, tmp_path):
    from pytrain.model.config import TrainConfig
    from pytrain.training.loop import batches_per_epoch, planned_epochs

    assert batches_per_epoch(86, 8) == 11 and batches_per_epoch(86, 8, world_size=2) == 6
    tc = TrainConfig(epochs=7, steps=100)
    assert planned_epochs(tc, None, 11) == 10 and planned_epochs(tc, None, 50) == 2 and planned_epochs(tc, 3, 11) == 3
    assert planned_epochs(TrainConfig(epochs=7), None, 11) == 7

    m = train(_opts(toy, tmp_path / "r", epochs=None, overrides={"steps": 25, "batch_size": 8}))
    n_train = m["data"]["n_train"]
    per_epoch = -(-n_train // 8)
    assert m["epochs"] == -(-25 // per_epoch) and m["optimizer_steps"] == m["epochs"] * per_epoch
    # accuracy on the un-augmented training clips is recorded beside the test accuracy
    assert 0 <= m["train_correct"] <= n_train and m["train_acc"] == m["train_correct"] / n_train


def test_augmented_training_is_deterministic(toy, tmp_path):
    aug = {"aug_speed": 0.2, "aug_warp": 0.1, "aug_shift": 3, "aug_thin": 0.2, "aug_noise": 0.1, "aug_mask": 2,
           "channel_shift": 1}
    a = train(_opts(toy, tmp_path / "a", overrides=aug))
    b = train(_opts(toy, tmp_path / "b", overrides=aug))
    plain = train(_opts(toy, tmp_path / "c"))
    assert a["history"] == b["history"] != plain["history"]
    with pytest.raises(Exception, match="warp"):
        train(_opts(toy, tmp_path / "d", overrides={"aug_warp": 2.0}))


def test_cli_steps_and_no_augment(toy, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--preset", "edge", "--data", str(toy), "--out", str(run), "--steps", "3",
                 "--no-augment", "--no-progress"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    rec = torch.load(run / "model.pt", weights_only=True)
    assert metrics["optimizer_steps"] >= 3 and rec["train_config"]["aug_speed"] == 0
    assert rec["train_config"]["channel_shift"] == 0 and rec["config"]["loss"] == "active_mean"
