"""Baselines and the accuracy benchmark: features, classifiers on separable data, the table, a whole small run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pytrain.bench import baselines as B
from pytrain.bench.accuracy import format_table, summarise
from pytrain.cli import main
from toy_data import make_toy_dataset


def test_count_features_sum_time_into_bins():
    frames = np.zeros((2, 40, 3), np.uint8)
    frames[0, :2, 1] = 5  # first bin of 20, channel 1
    frames[1, 39, 2] = 7  # last bin, channel 2
    f = B.count_features(frames, bins=20)
    assert f.shape == (2, 60)
    assert f[0, 1] == pytest.approx(math.log1p(10)) and f[1, 19 * 3 + 2] == pytest.approx(math.log1p(7))
    assert np.count_nonzero(f) == 2


def test_logreg_and_mlp_learn_separable_data():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 30)
    features = rng.normal(size=(90, 12)) + np.eye(3)[labels].repeat(4, axis=1) * 5
    split = B.Split(np.arange(0, 90, 3).tolist() + np.arange(1, 90, 3).tolist(), np.arange(2, 90, 6), np.arange(5, 90, 6))
    split = B.Split(np.array(split.train), split.val, split.test)
    lr = B.spike_logreg(features, labels, split)
    mlp = B.logmel_mlp(features, labels, split, seed=0)
    for result in (lr, mlp):
        assert result["acc"] > 0.9 and result["n"] == len(split.test) and result["correct"] == round(result["acc"] * 15)
    assert lr["C"] in B.LOGREG_C and 0 <= mlp["best_epoch"] < B.MLP_EPOCHS


def test_logmel_features_have_a_fixed_size():
    t = np.arange(8000) / 8000
    quiet_word = np.where((t > 0.6) & (t < 1.0), np.sin(2 * np.pi * 440 * t), 0.0) + 1e-4 * np.cos(t)
    f = B.logmel_features(quiet_word, 8000)
    assert f.shape == (B.LOGMEL_BANDS * B.LOGMEL_FRAMES,) and np.isfinite(f).all()
    # per-utterance mean removal: every band averages to zero before resampling
    assert abs(f.reshape(B.LOGMEL_BANDS, -1).mean()) < 0.5


def test_summary_and_table():
    cells = [{"unit": f"fold{k}", "seed": s, "model": "snn_int8", "preset": "edge", "acc": a, "correct": c, "n": 10}
             for (k, s, a, c) in ((0, 0, 0.8, 8), (0, 1, 0.6, 6), (1, 0, 0.7, 7))]
    cells.append({"unit": "fold0", "seed": 0, "model": "spike_logreg", "acc": 0.5, "correct": 5, "n": 10})
    rows = summarise(cells)
    snn = next(r for r in rows if r["model"] == "snn_int8")
    assert snn["mean"] == pytest.approx(0.7) and snn["std"] == pytest.approx(0.1) and snn["correct"] == 21
    assert snn["units"] == ["fold0", "fold1"] and snn["seeds"] == [0, 1]
    table = format_table(rows)
    assert "| SNN int8 (test) | edge | 0.700 | 0.100 | 0.600..0.800 | 3 (2 x 2) | 21 / 30 |" in table
    assert "| logistic regression on spike counts (test) | - | 0.500 | - |" in table


def test_bench_accuracy_on_a_spike_dataset(tmp_path, capsys):
    data = make_toy_dataset(tmp_path / "toy")
    work = tmp_path / "work"
    argv = ["bench-accuracy", "--data", str(data), "--work", str(work), "--seeds", "0", "--presets", "tiny",
            "--steps", "4", "--no-progress", "--markdown", str(tmp_path / "t.md")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "SNN int8 (test) | tiny" in out and "logistic regression on spike counts" in out
    assert (tmp_path / "t.md").read_text().strip() == out.strip()
    result = json.loads((work / "accuracy.json").read_text())
    assert {c["model"] for c in result["cells"]} == {"snn_float", "snn_int8", "snn_train", "spike_logreg"}
    run = work / "runs" / "tiny" / "all" / "seed0"
    stamp = (run / "metrics.json").stat().st_mtime_ns
    assert main(argv) == 0  # a finished run is reused, not trained again
    assert (run / "metrics.json").stat().st_mtime_ns == stamp
    assert main(["bench-accuracy", "--corpus", str(data), "--work", str(work)]) == 2
