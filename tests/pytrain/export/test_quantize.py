"""The quantize command: calibration, QAT, the integer model file and the accuracy table."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from codegen.integer import refmodel
from codegen.integer.modelfile import load_network
from pytrain.cli import main
from pytrain.training.loop import TrainOptions, train
from toy_data import make_toy_dataset


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("q")
    data = make_toy_dataset(root / "toy")
    run = root / "run"
    train(TrainOptions(preset="tiny", data=str(data), out=run, epochs=3, progress=False))
    return data, run


@pytest.mark.parametrize("bits,qat", [(8, 0), (4, 1)])
def test_quantize_writes_the_integer_model_and_the_accuracy_table(trained, bits, qat, capsys):
    data, run = trained
    assert main(["quantize", str(run), "--weight-bits", str(bits), "--qat-epochs", str(qat), "--calib", "32",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("float_acc", "fakequant_acc", "int_acc", "test_acc"):
        assert 0.0 <= metrics[key] <= 1.0
    q = metrics["quantization"]
    # the fake-quant model and the integer reference agree on every test sample, bit for bit
    assert q["fakequant_int_bit_exact"] == q["n_test"] > 0
    assert metrics["fakequant_acc"] == metrics["int_acc"]
    assert f"bit-exact on {q['n_test']}/{q['n_test']} samples" in out
    net = load_network(run / "model.int.npz")
    assert net.layers[0].weight_bits == bits
    assert net.meta["weight_bits"] == [bits] * 3 and len(net.meta["source_checkpoint_sha256"]) == 64
    x = np.zeros((1, 5, net.n_inputs), np.int64)
    assert refmodel.run(net, x).scores.shape == (1, net.n_classes)


def test_per_layer_widths_and_a_separate_output_folder(trained, tmp_path, capsys):
    _, run = trained
    out = tmp_path / "int"
    assert main(["quantize", str(run), "--weight-bits", "8,4,16", "--out", str(out), "--calib", "16", "--no-progress"]) == 0
    net = load_network(out / "model.int.npz")
    assert [layer.weight_bits for layer in net.layers] + [net.readout.weight_bits] == [8, 4, 16]
    assert json.loads((out / "metrics.json").read_text())["quantization"]["weight_bits"] == [8, 4, 16]
    assert "int8/4/16" in capsys.readouterr().out


def test_quantize_bad_input_is_a_one_line_error(tmp_path):
    res = subprocess.run([sys.executable, "-m", "pytrain", "quantize", str(tmp_path / "missing")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


def test_bad_weight_widths_are_refused(trained):
    _, run = trained
    for bad in ("5", "8,8", "x"):
        assert main(["quantize", str(run), "--weight-bits", bad, "--no-progress"]) == 2
