"""bench-train prints min / median / max over the timed steps (a benchmark, so only its form is tested)."""

import json

from pytrain.cli import main


def test_bench_train_reports_the_spread_of_its_repeats(tmp_path, capsys):
    out = tmp_path / "t.json"
    assert main(["bench-train", "--preset", "tiny", "--batch", "2", "--steps", "5", "--repeats", "3",
                 "--variants", "conv,dense", "--sigma", "0.06", "--threads", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "3 timed steps per row" in text and "min" in text and "median" in text and "max" in text
    rows = json.loads(out.read_text())
    assert [r["variant"] for r in rows] == ["conv", "dense"]
    for r in rows:
        assert len(r["times"]) == 3 and r["min"] <= r["median"] <= r["max"]
