"""Smoke test of the benchmark suite and the report on the tiny preset: every stage runs, the tables hold
its numbers, and the report draws every figure of a run that went through the whole chain."""

from __future__ import annotations

import json

from pytrain.bench.suite import from_json, markdown
from pytrain.cli import main
from toy_data import make_toy_dataset


def test_bench_suite_on_the_tiny_preset(tmp_path, capsys):
    data = make_toy_dataset(tmp_path / "toy")
    out_json = tmp_path / "bench.json"
    assert main(["bench", "--preset", "tiny", "--data", str(data), "--out", str(tmp_path / "runs"), "--epochs", "1",
                 "--targets", "cortex-m4", "--samples", "2", "--timing-samples", "2", "--json", str(out_json),
                 "--markdown", str(tmp_path / "bench.md"), "--no-progress"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    result = json.loads(out_json.read_text())
    rows = {r["variant"]: r for r in result["variants"]}
    assert set(rows) == {"dense", "conv", "conv-nodelay", "taps"}
    for r in rows.values():
        assert r["host_bit_exact"] == r["n_test"] > 0
        m4 = r["targets"]["cortex-m4"]
        assert m4["bit_exact"] == m4["samples"] == 2 and m4["insns_per_inference"] > 0
        assert r["c_us"] > 0 and r["flash_model"] > 0
    # the conv recurrence has far fewer recurrent parameters than the dense one
    assert rows["conv"]["params_recurrent"] < rows["dense"]["params_recurrent"]
    assert "% fewer" in text and "| conv |" in text and "not cycles" in text
    assert (tmp_path / "bench.md").read_text().strip() == text.strip()
    # the tables can be redrawn from the JSON alone
    assert markdown(from_json(result), "tiny", 1, ("cortex-m4",)).strip() == text.strip()

    # the report on one of the suite's runs (trained, quantized, generated, checked): all six figures
    run = tmp_path / "runs" / "conv"
    assert main(["report", str(run), "--no-progress"]) == 0
    pngs = sorted(p.name for p in (run / "report").glob("*.png"))
    assert pngs == ["accuracy.png", "confusion.png", "delays.png", "memory.png", "raster.png", "recurrent_kernel.png"]
    assert all((run / "report" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in pngs)
