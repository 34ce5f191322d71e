"""``data synth``: a tiny espeak-ng build, its layout, labels and voice-disjoint splits."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from pytrain.data import synth
from pytrain.cli import main
from pytrain.cli import data as data_command
from codegen.common.errors import UserError
from codegen.integer.frontend_ref import encode_clips
from codegen.integer.modelfile import frontend_digest, load_frontend
from pytrain.data.loader import load_data
from pytrain.data.spikefile import read_audio, read_meta

SHD_ORDER = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun",
]  # fmt: skip


def require_espeak() -> str:
    # CI installs espeak-ng: a missing binary must fail these tests, never skip them.
    path = shutil.which("espeak-ng")
    assert path is not None, "espeak-ng is not installed (apt-get install -y espeak-ng)"
    return path


@pytest.mark.espeak
def test_tiny_build(tmp_path, capsys):
    require_espeak()
    out = tmp_path / "synth"
    argv = ["data", "synth", "--out", str(out), "--voices", "m1,f2,m7", "--test-voices", "m7", "--per-voice", "1"]
    assert main([*argv, "--jobs", "2", "--seed", "5"]) == 0
    assert capsys.readouterr().out.startswith(
        f"wrote {out}: 40 train / 20 test samples, 20 classes, 32 channels, 1 s clips, integer front end")

    meta = read_meta(out)
    assert meta.classes == SHD_ORDER and meta.n_channels == 32 and meta.duration_s == 1.0
    assert meta.speakers == {"0": "espeak-ng variant m1", "6": "espeak-ng variant m7", "8": "espeak-ng variant f2"}
    assert meta.source["generator"] == "pytrain.data.synth" and meta.source["seed"] == 5
    assert meta.front_end["kind"] == "integer" and meta.front_end["config"]["n_channels"] == 32
    assert meta.front_end["sha256"] == frontend_digest(load_frontend(out / "frontend.int.npz"))
    assert meta.front_end["hop_ms"] == 10.0 and meta.source["options"]["per_voice"] == 1
    assert meta.audio == {"test": "audio/test.h5"}
    assert json.loads((out / "dataset.json").read_text(encoding="utf-8"))["classes"][15] == "fünf"

    splits = {}
    for name in ("train", "test"):
        assert (out / "SHD" / f"shd_{name}.h5.zip").is_file()
        with h5py.File(out / "SHD" / f"shd_{name}.h5", "r") as f:
            assert [k.decode("utf-8") for k in f["extra/keys"][:]] == SHD_ORDER
            assert f["labels"].dtype == np.uint16 and f["extra/speaker"].dtype == np.uint16
            times, units = f["spikes/times"][0], f["spikes/units"][0]
            assert times.dtype == np.float16 and units.dtype == np.uint16 and times.size == units.size > 0
            assert np.all(np.diff(times.astype(np.float64)) >= 0) and times.max() < 1.0 and units.max() < 32
            splits[name] = (f["labels"][:], f["extra/speaker"][:])
    # the test split's audio is kept, and the stored counts are exactly what the front end hears in it
    clips, labels, rate = read_audio(out, meta)
    bundle = load_data(str(out), bin_ms=10, progress=False)
    assert rate == 16000 and len(clips) == 20 and all(c.dtype == np.int16 and c.size == 16000 for c in clips)
    assert np.array_equal(np.stack(encode_clips(bundle.frontend, clips)), bundle.test.x.numpy())
    assert np.array_equal(labels, bundle.test.y.numpy()) and bundle.test.x.max() <= bundle.frontend.max_count

    train_labels, train_speakers = splits["train"]
    test_labels, test_speakers = splits["test"]
    assert set(train_speakers) == {0, 8} and set(test_speakers) == {6}, "voices disjoint between splits"
    for speaker in (0, 8):
        assert sorted(train_labels[train_speakers == speaker]) == list(range(20))
    assert sorted(test_labels) == list(range(20))

    # Samples depend on the seed and their grid position only: one worker and a smaller voice subset
    # give the same spikes for the voices both builds share.
    subset = tmp_path / "subset"
    assert main(["data", "synth", "--out", str(subset), "--voices", "m1,m7", "--test-voices", "m7",
                 "--per-voice", "1", "--jobs", "1", "--seed", "5"]) == 0  # fmt: skip
    for name in ("train", "test"):
        with h5py.File(out / "SHD" / f"shd_{name}.h5", "r") as full, h5py.File(subset / "SHD" / f"shd_{name}.h5", "r") as part:
            speakers = full["extra/speaker"][:]
            rows = np.flatnonzero(np.isin(speakers, [0, 6]))
            assert len(rows) == len(part["labels"]) == 20
            for j, i in enumerate(rows):
                assert full["labels"][i] == part["labels"][j]
                assert np.array_equal(full["spikes/times"][i], part["spikes/times"][j])
                assert np.array_equal(full["spikes/units"][i], part["spikes/units"][j])


@pytest.mark.espeak
def test_float_front_end_is_kept_for_comparison(tmp_path, capsys):
    require_espeak()
    out = tmp_path / "float"
    assert main(["data", "synth", "--out", str(out), "--voices", "m1,m7", "--test-voices", "m7", "--per-voice", "1",
                 "--front-end", "float"]) == 0
    assert "float front end" in capsys.readouterr().out
    meta = read_meta(out)
    assert meta.front_end["kind"] == "float" and meta.audio == {} and not (out / "frontend.int.npz").exists()
    bundle = load_data(str(out), bin_ms=5, progress=False)  # 1 ms spikes: any whole-ms bin is allowed
    assert bundle.frontend is None and bundle.test.x.shape[1] == 200
    with pytest.raises(UserError, match="keeps no audio"):
        read_audio(out, meta)


@pytest.mark.espeak
def test_rendering_is_deterministic_and_augmented():
    espeak = [require_espeak(), *synth.deterministic_flags(require_espeak())]
    options = synth.SynthOptions(seed=3)
    utt = synth.Utterance(label=15, speaker=7, repetition=2)  # "fünf", variant f1
    a = synth.render_utterance(espeak, utt, options, 16000)
    b = synth.render_utterance(espeak, utt, options, 16000)
    assert a.shape == (16000,) and np.array_equal(a, b)
    other = synth.render_utterance(espeak, synth.Utterance(15, 7, 3), options, 16000)
    assert not np.array_equal(a, other), "each repetition draws its own speed, pitch, onset and noise"
    assert np.all(a != 0), "noise covers the whole clip window"


@pytest.mark.espeak
def test_german_umlaut_reaches_espeak_as_utf8():
    espeak = [require_espeak()]
    umlaut = synth.synthesize(espeak, "fünf", "de", 150, 50, 100)
    spelt_out = synth.synthesize(espeak, "fuenf", "de", 150, 50, 100)
    assert umlaut.size > 0 and not (umlaut.size == spelt_out.size and np.array_equal(umlaut, spelt_out))


def test_missing_espeak_is_a_clear_user_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(synth.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="apt-get install -y espeak-ng"):
        synth.find_espeak()
    out = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(out), "--per-voice", "1"]) == 2
    assert "espeak-ng not found" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--voices", "m1,zz"], "unknown voice"),
        (["--voices", "m1,f1"], "not among the selected voices"),
        (["--voices", "m7", "--test-voices", "m7"], "at least one voice for training"),
        (["--per-voice", "0"], "--per-voice"),
        (["--jobs", "0"], "--jobs"),
    ],
)
def test_bad_options(tmp_path, capsys, extra, message):
    out = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(out), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_grid_and_seeds():
    options = synth.SynthOptions(per_voice=2, voices=("m1", "f5"), test_voices=("f5",))
    grid = synth.utterance_grid(options)
    assert len(grid) == 2 * 20 * 2 and {u.speaker for u in grid} == {0, 11}
    assert synth.CLASSES == tuple(SHD_ORDER)
    # A sample's random stream depends on its grid position only, not on which subset is built.
    a = synth.utterance_rng(0, synth.Utterance(3, 11, 1)).uniform(size=4)
    b = synth.utterance_rng(0, synth.Utterance(3, 11, 1)).uniform(size=4)
    c = synth.utterance_rng(1, synth.Utterance(3, 11, 1)).uniform(size=4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_cli_defaults_are_the_generator_s():
    args = data_command.argparse.ArgumentParser()
    sub = args.add_subparsers()
    data_command.register(sub)
    ns = args.parse_args(["data", "synth", "--out", "x"])
    assert tuple(ns.voices.split(",")) == synth.VOICE_VARIANTS
    assert tuple(ns.test_voices.split(",")) == synth.DEFAULT_TEST_VOICES


def test_trim_silence():
    x = np.array([0.0, 0.005, 0.2, -0.3, 0.0, 0.02, 0.001])
    assert synth.trim_silence(x).tolist() == [0.2, -0.3, 0.0, 0.02]
    assert synth.trim_silence(np.zeros(3)).size == 3
