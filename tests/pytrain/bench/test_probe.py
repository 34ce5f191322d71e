"""The linear probe of the front ends (``delrec-edge bench-probe``), on a few synthetic clips instead of espeak."""

from __future__ import annotations

import json

import numpy as np
from audio_data import burst_clip

from pytrain.bench import probe
from pytrain.cli import main


def fake_synthesize(per_voice: int, seed: int, jobs: int, sample_rate: int = 16000):
    labels = np.repeat(np.arange(4), 6)
    clips = np.stack([burst_clip(int(k), seed=i, seconds=0.5) / 32768.0 for i, k in enumerate(labels)])
    is_test = np.arange(labels.size) % 6 == 5
    return clips, labels, is_test


def test_pooling_keeps_whole_segments():
    x = np.arange(2 * 7 * 3, dtype=float).reshape(2, 7, 3)
    out = probe.pooled(x, 3)
    assert out.shape == (2, 9) and out[0, :3].tolist() == [1.5, 2.5, 3.5]  # mean of steps 0 and 1


def test_probe_table_covers_every_front_end(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(probe, "synthesize", fake_synthesize)
    assert main(["bench-probe", "--per-voice", "1", "--segments", "5", "1", "--json", str(tmp_path / "p.json")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "held-out voices" in lines[0] and len(lines) == 2 + 4 * 2
    rows = json.loads((tmp_path / "p.json").read_text())
    assert {r["front_end"] for r in rows} == {"integer front end (counts)", "integer front end, unpooled (counts)",
                                             "float front end (counts)", "float log-mel (librosa)"}
    assert all(r["n_test"] == 4 and 0 <= r["correct"] <= 4 for r in rows)
    assert {r["features"] for r in rows} == {32 * 5, 32}
