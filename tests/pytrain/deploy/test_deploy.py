"""The deployment commands on a trained model: codegen (folder, memory report) and host parity; bench-infer."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from codegen.generator.emit import generate
from codegen.verify.hostbuild import build_host_model
from codegen.generator.memory import format_report, memory_report
from codegen.integer.modelfile import load_network, save_network
from codegen.generator.emit import RUNTIME_FILES
from intnet_builders import tiny_network
from pytrain.cli import main


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytrain", *args], capture_output=True, text=True, timeout=300)


def test_codegen_then_parity_on_the_trained_edge_model(quantized_edge, capsys):
    """The trained model's C is bit-exact with the integer reference on every real test sample."""
    _, run = quantized_edge
    assert main(["codegen", str(run), "--force"]) == 0
    out = capsys.readouterr().out
    assert "memory (bytes)" in out and "layer 1" in out and "readout" in out
    folder = run / "c"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["model.h", "model.c", "model_weights.h", "CMakeLists.txt", *RUNTIME_FILES, "memory.json"])
    assert main(["parity", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    hp = metrics["host_parity"]
    assert hp["n"] == hp["of"] == 48 and hp["bit_exact"] == 48 and hp["first_mismatch"] is None
    assert "bit-exact on 48/48 samples" in out
    # the C classifies exactly as the integer reference did in the quantize step: the same counts, and the
    # accuracies are the same numbers, computed one way (correct / total)
    counts = metrics["quantization"]["accuracy"]["int"]
    assert hp["c"] == hp["int"] == counts
    assert metrics["c_acc"] == metrics["int_acc"] == counts["correct"] / counts["total"]
    assert f"host C accuracy {counts['correct'] / 48:.4f} ({counts['correct']}/48)" in out


def test_codegen_is_byte_identical_across_runs(quantized_edge, tmp_path):
    _, run = quantized_edge
    for name in ("a", "b"):
        assert main(["codegen", str(run / "model.int.npz"), "--out", str(tmp_path / name), "--prefix", "kws"]) == 0
    a, b = sorted((tmp_path / "a").iterdir()), sorted((tmp_path / "b").iterdir())
    assert [p.name for p in a] == [p.name for p in b] and "kws.h" in [p.name for p in a]
    assert all(p.read_bytes() == q.read_bytes() for p, q in zip(a, b))


def test_parity_refuses_an_edited_c_folder(quantized_edge, tmp_path):
    _, run = quantized_edge
    assert main(["codegen", str(run), "--force"]) == 0
    weights = run / "c" / "model_weights.h"
    original = weights.read_bytes()
    try:
        weights.write_bytes(original.replace(b"static const", b"static  const", 1))
        res = _cli("parity", str(run), "--no-progress")
        assert res.returncode == 2 and "model_weights.h differs" in res.stderr and "Traceback" not in res.stderr
    finally:
        weights.write_bytes(original)


def test_memory_report_matches_the_compiled_struct():
    """RAM in the report is sizeof(state) of the compiled C; flash data is every weight array's bytes."""
    net = tiny_network("taps", n_layers=2, weight_bits=16, seed=5)
    plan, files = generate(net, "mem")
    report = memory_report(plan, files)
    host = build_host_model(plan, files)
    assert report["ram"]["state_struct"] == host.ffi.sizeof("mem_state") == plan.state_bytes
    ram_rows = sum(r["ram"]["total"] for r in report["rows"])
    assert ram_rows <= plan.state_bytes < ram_rows + 8  # only tail padding to the int64 alignment
    expected_weights = sum(layer.weight.size * 2 + layer.bias.size * 4 + layer.recurrence.weight.size * 2 + 24
                           for layer in net.layers) + net.readout.weight.size * 2 + net.readout.bias.size * 4
    assert report["flash"]["weights_and_constants"] == expected_weights
    ring = sum(r["ram"]["delay_ring"] for r in report["rows"])
    assert ring == sum((layer.recurrence.weight.shape[0] + 1) * 4 for layer in net.layers)  # D + 1 slots of 1 word
    text = format_report(report)
    assert text.splitlines()[0] == "memory (bytes)" and "total" in text


def test_codegen_errors_are_one_line_and_write_nothing(tmp_path):
    net = tiny_network("conv", seed=2)
    model = tmp_path / "m.int.npz"
    save_network(net, model)
    cases = [
        ((str(tmp_path / "missing.int.npz"), "--out", str(tmp_path / "o1")), "does not exist"),
        ((str(tmp_path), "--out", str(tmp_path / "o2")), "holds no model.int.npz"),
        ((str(model), "--out", str(tmp_path / "o3"), "--prefix", "int"), "reserved word"),
        ((str(model), "--out", str(tmp_path / "o4"), "--prefix", "delrec_net"), "collides"),
        ((str(model), "--out", str(tmp_path / "o5"), "--prefix", "9lives"), "must start with a letter"),
    ]
    for args, message in cases:
        res = _cli("codegen", *args)
        assert res.returncode == 2, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1 and message in res.stderr and "Traceback" not in res.stderr
        assert not (tmp_path / args[2]).exists()
    # an existing folder is kept unless --force
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "mine.txt").write_text("x")
    res = _cli("codegen", str(model), "--out", str(tmp_path / "keep"))
    assert res.returncode == 2 and "--force" in res.stderr
    assert [p.name for p in (tmp_path / "keep").iterdir()] == ["mine.txt"]


def test_codegen_refuses_a_model_that_could_overflow(tmp_path):
    """An int16 network whose accumulator can leave int32 is refused with the overflow analysis' reason."""
    net = tiny_network(None, n_in=300, n=2, weight_bits=16, seed=0)
    big = np.full_like(net.layers[0].weight, 32767)
    layer = net.layers[0]
    from dataclasses import replace

    net = replace(net, layers=(replace(layer, weight=big),))
    model = tmp_path / "big.int.npz"
    save_network(net, model)
    res = _cli("codegen", str(model), "--out", str(tmp_path / "c"))
    assert res.returncode == 2 and "overflows int32" in res.stderr and "feed-forward accumulator" in res.stderr
    assert not (tmp_path / "c").exists()
    assert load_network(model).n_inputs == 300


def test_codegen_json_report(quantized_edge, tmp_path):
    _, run = quantized_edge
    res = _cli("codegen", str(run), "--out", str(tmp_path / "c"), "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report == json.loads((tmp_path / "c" / "memory.json").read_text())
    assert [r["name"] for r in report["rows"]] == ["layer 0", "layer 1", "readout"]
    assert report["rows"][1]["ram"]["delay_ring"] > 0 and report["rows"][0]["ram"]["delay_ring"] == 0


def test_bench_infer_prints_the_table(quantized_edge, tmp_path, capsys):
    _, run = quantized_edge
    out_json = tmp_path / "bench.json"
    assert main(["bench-infer", str(run), "--samples", "2", "--repeats", "1", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "C vs float" in out and "edge" in out
    (row,) = json.loads(out_json.read_text())
    assert row["samples"] == 2 and row["c_event_us"] > 0 and row["speedup_vs_float"] > 0
