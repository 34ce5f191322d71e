"""``data hard``: a tiny corpus, its files, manifest and folds, reproducibility, and encoding a fold."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import soundfile

from codegen.common.errors import UserError
from pytrain.cli import main
from pytrain.data import hardset
from pytrain.data.spikefile import read_meta

TINY = dict(seed=3, speakers=4, per_speaker=1, folds=2, babble_tracks=2)


def require_espeak() -> None:
    # CI installs espeak-ng: a missing binary must fail these tests, never skip them.
    assert shutil.which("espeak-ng") is not None, "espeak-ng is not installed (apt-get install -y espeak-ng)"


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    require_espeak()
    out = tmp_path_factory.mktemp("hard") / "corpus"
    manifest = hardset.build_hard_corpus(out, hardset.HardOptions(**TINY), jobs=2)
    return out, manifest


@pytest.mark.espeak
def test_files_manifest_and_folds(tiny_corpus):
    out, manifest = tiny_corpus
    speakers = list(hardset.SPEAKER_VARIANTS[:4])
    files = sorted(p.name for p in out.glob("*.flac"))
    assert len(files) == 40 == manifest["clips"]
    assert f"seven_{speakers[2]}_0.flac" in files
    on_disk = json.loads((out / "corpus.json").read_text(encoding="utf-8"))
    assert on_disk == json.loads(json.dumps(manifest)) and manifest["format"] == "delrec-edge-corpus" and manifest["sample_rate"] == 8000
    assert manifest["classes"] == list(hardset.ENGLISH_WORDS)
    folds = manifest["folds"]
    assert len(folds) == 2 and sorted(folds[0] + folds[1]) == sorted(speakers) and not set(folds[0]) & set(folds[1])

    info = soundfile.info(str(out / files[0]))
    assert (info.samplerate, info.frames, info.subtype, info.format) == (8000, 16000, "PCM_16", "FLAC")

    with open(out / "clips.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["file"] for r in rows) == files
    for r in rows:
        assert 0.0 <= float(r["snr_db"]) <= 20.0 and r["noise"] in hardset.NOISE_KINDS
        assert -40.0 <= float(r["peak_dbfs"]) <= 6.0
        assert 0.0 <= float(r["onset_s"]) and float(r["onset_s"]) + float(r["speech_s"]) <= 2.0 + 1e-9
    assert {r["noise"] for r in rows} == set(hardset.NOISE_KINDS)
    # levels from quiet to clipping: a clip whose peak was set above full scale clips, one below does not
    assert all((int(r["clipped"]) > 0) == (float(r["peak_dbfs"]) > 0) for r in rows)


@pytest.mark.espeak
def test_same_seed_same_files(tiny_corpus, tmp_path):
    out, _ = tiny_corpus
    again = tmp_path / "again"
    hardset.build_hard_corpus(again, hardset.HardOptions(**TINY), jobs=1)
    for path in sorted(out.glob("*.flac")):
        assert (again / path.name).read_bytes() == path.read_bytes(), path.name
    assert (again / "clips.csv").read_bytes() == (out / "clips.csv").read_bytes()


@pytest.mark.espeak
def test_a_fold_encodes_with_the_8k_front_end(tiny_corpus, tmp_path, capsys):
    out, manifest = tiny_corpus
    ds = tmp_path / "fold1"
    assert main(["data", "wav", "--root", str(out), "--out", str(ds), "--fold", "1"]) == 0
    printed = capsys.readouterr().out
    assert "recordings at 8000 Hz; integer front end: 8000 Hz, 32 mel channels, 100..3800 Hz, 128-point FFT" in printed
    meta = read_meta(ds)
    assert meta.source["split"] == "fold" and meta.source["fold"] == 1
    assert meta.front_end["kind"] == "integer"
    assert meta.front_end["config"]["sample_rate"] == 8000 and meta.front_end["config"]["f_high"] == 3800.0
    assert meta.duration_s == 2.0 and meta.source["counts"] == {"train": 20, "test": 20}
    test_names = {meta.speakers[str(i)] for i in range(len(meta.speakers))} & set(manifest["folds"][1])
    assert test_names == set(manifest["folds"][1])

    folds = tmp_path / "all"
    assert main(["data", "wav", "--root", str(out), "--out", str(folds), "--fold", "all"]) == 0
    assert sorted(p.name for p in folds.iterdir()) == ["fold0", "fold1"]
    assert (folds / "fold1" / "SHD" / "shd_test.h5").read_bytes() == (ds / "SHD" / "shd_test.h5").read_bytes()


def test_fold_errors(tmp_path, capsys):
    root = tmp_path / "wavs"
    root.mkdir()
    soundfile.write(str(root / "yes_a_0.wav"), np.zeros(800, np.int16), 8000)
    soundfile.write(str(root / "no_b_0.wav"), np.zeros(800, np.int16), 8000)
    assert main(["data", "wav", "--root", str(root), "--out", str(tmp_path / "o"), "--fold", "0"]) == 2
    assert "corpus.json" in capsys.readouterr().err
    (root / "corpus.json").write_text(json.dumps({"format": "delrec-edge-corpus", "folds": [["a"], ["b"]]}))
    assert main(["data", "wav", "--root", str(root), "--out", str(tmp_path / "o"), "--fold", "2"]) == 2
    assert "--fold must be between 0 and 1" in capsys.readouterr().err
    assert main(["data", "wav", "--root", str(root), "--out", str(tmp_path / "o"), "--fold", "x"]) == 2
    assert not (tmp_path / "o").exists()


def test_options_are_validated():
    with pytest.raises(UserError, match="--folds"):
        hardset.HardOptions(speakers=4, folds=3).validate()
    with pytest.raises(UserError, match="--speakers"):
        hardset.HardOptions(speakers=1000).validate()
    folds = hardset.make_folds(hardset.HardOptions(speakers=10, folds=3))
    assert sorted(len(f) for f in folds) == [3, 3, 4]


def test_cli_refuses_bad_options_before_writing(tmp_path, capsys):
    out = tmp_path / "corpus"
    assert main(["data", "hard", "--out", str(out), "--speakers", "4", "--folds", "3"]) == 2
    assert "--folds must be between 2 and half the speakers" in capsys.readouterr().err
    assert main(["data", "hard", "--out", str(out), "--jobs", "0"]) == 2
    assert not out.exists()
    (out / "x").mkdir(parents=True)
    assert main(["data", "hard", "--out", str(out), "--speakers", "4", "--folds", "2", "--per-speaker", "1"]) == 2
    assert "already exists" in capsys.readouterr().err
