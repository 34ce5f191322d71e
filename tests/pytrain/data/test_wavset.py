"""``data wav``: datasets from WAV folders in both layouts, and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.io import wavfile

from pytrain.cli import main
from pytrain.data.spikefile import read_meta
from pytrain.data.wavset import clip_duration_s, natural_key, scan

CLASS_FREQS = {"down": 300.0, "up": 900.0, "yes": 2500.0}
SPEAKERS = ("alice", "bob", "carol", "dave", "erin")


def write_tone(path: Path, freq: float, seconds: float = 0.3, sr: int = 16000, seed: int = 0) -> None:
    """Quiet noise, then after 60 ms a tone: the front end fires on what stands out of the background."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t) * (t >= 0.06) + 0.01 * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, sr, np.floor(x * 32767 + 0.5).astype(np.int16))


def make_flat(root: Path, per_speaker: int = 2) -> Path:
    """Layout B: <label>_<speaker>_<n>.wav; clip lengths vary, the longest is just over 0.345 s."""
    for i, (label, freq) in enumerate(CLASS_FREQS.items()):
        for j, speaker in enumerate(SPEAKERS):
            for n in range(per_speaker):
                seconds = 0.2 + 0.005 * (i + j + n) + (0.1101 if (i, j, n) == (2, 4, 1) else 0.0)
                write_tone(root / f"{label}_{speaker}_{n}.wav", freq, seconds, seed=i * 100 + j * 10 + n)
    return root


def make_folders(root: Path, per_class: int = 6) -> Path:
    """Layout A: one folder per class; half the files follow the B naming (speaker known)."""
    for i, (label, freq) in enumerate(CLASS_FREQS.items()):
        for n in range(per_class):
            name = f"{label}_{SPEAKERS[n % 3]}_{n}.wav" if n % 2 else f"take{n}.wav"
            write_tone(root / label / name, freq, 0.25, sr=(8000, 22050, 48000)[n % 3], seed=i * 10 + n)
    return root


def read_split(out: Path, split: str) -> dict:
    with h5py.File(out / "SHD" / f"shd_{split}.h5", "r") as f:
        return {
            "labels": f["labels"][:],
            "speakers": f["extra/speaker"][:],
            "keys": [k.decode() for k in f["extra/keys"][:]],
            "times": [f["spikes/times"][i] for i in range(len(f["labels"]))],
            "units": [f["spikes/units"][i] for i in range(len(f["labels"]))],
        }


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.endswith(".partial"))


def test_flat_layout_speaker_split(tmp_path, capsys):
    root, out = make_flat(tmp_path / "wavs"), tmp_path / "ds"
    assert main(["data", "wav", "--root", str(root), "--out", str(out)]) == 0
    announce, summary = capsys.readouterr().out.splitlines()
    assert announce == ("recordings at 16000 Hz; integer front end: 16000 Hz, 32 mel channels, 100..7600 Hz, "
                        "256-point FFT every 10 ms")
    meta = read_meta(out)
    assert meta.classes == ["down", "up", "yes"] and meta.n_channels == 32
    assert meta.duration_s == 0.35  # 0.3451 s rounded up to 10 ms
    assert sorted(meta.speakers.values()) == sorted(SPEAKERS)
    train, test = read_split(out, "train"), read_split(out, "test")
    assert len(train["labels"]) + len(test["labels"]) == 30 and len(test["labels"]) >= 6
    assert summary.startswith(f"wrote {out}: {len(train['labels'])} train / {len(test['labels'])} test samples")
    assert not set(train["speakers"]) & set(test["speakers"]), "no speaker in both splits"
    assert train["keys"] == meta.classes
    for split in (train, test):
        for times, units in zip(split["times"], split["units"]):
            assert times.dtype == np.float16 and units.dtype == np.uint16 and times.size == units.size > 0
            assert times.max() < meta.duration_s and units.max() < 32
    # A tone drives the channels near its frequency: classes differ in their busiest channel.
    busiest = {}
    for label, units in zip(train["labels"], train["units"]):
        busiest.setdefault(int(label), []).append(int(np.bincount(units, minlength=32).argmax()))
    assert busiest[0][0] < busiest[1][0] < busiest[2][0]


def test_folder_layout_random_split_is_stratified(tmp_path):
    root, out = make_folders(tmp_path / "wavs"), tmp_path / "ds"
    assert main(["data", "wav", "--root", str(root), "--out", str(out), "--split", "random", "--test-fraction", "0.34"]) == 0
    meta = read_meta(out)
    assert meta.classes == ["down", "up", "yes"] and meta.duration_s == 0.25
    train, test = read_split(out, "train"), read_split(out, "test")
    assert np.bincount(test["labels"], minlength=3).tolist() == [2, 2, 2]
    assert np.bincount(train["labels"], minlength=3).tolist() == [4, 4, 4]
    # Files named <label>_<speaker>_<n> share their speaker; the others are speakers of their own.
    assert {"alice", "bob", "carol"} <= set(meta.speakers.values())
    assert "down/take0.wav" in meta.speakers.values()


def test_folder_layout_speaker_split(tmp_path):
    root, out = make_folders(tmp_path / "wavs"), tmp_path / "ds"
    assert main(["data", "wav", "--root", str(root), "--out", str(out), "--seed", "3"]) == 0
    train, test = read_split(out, "train"), read_split(out, "test")
    assert not set(train["speakers"]) & set(test["speakers"])
    assert len(train["labels"]) + len(test["labels"]) == 18


def test_same_seed_same_dataset(tmp_path):
    root = make_flat(tmp_path / "wavs", per_speaker=1)
    for name in ("a", "b"):
        assert main(["data", "wav", "--root", str(root), "--out", str(tmp_path / name)]) == 0
    for split in ("train", "test"):
        ra, rb = read_split(tmp_path / "a", split), read_split(tmp_path / "b", split)
        assert np.array_equal(ra["labels"], rb["labels"]) and np.array_equal(ra["speakers"], rb["speakers"])
        assert all(np.array_equal(x, y) for x, y in zip(ra["units"], rb["units"]))


def test_long_clips_are_truncated_with_a_warning(tmp_path, capsys):
    root = tmp_path / "wavs"
    write_tone(root / "a_s1_0.wav", 500.0, 2.5)
    write_tone(root / "a_s2_0.wav", 500.0, 0.5)
    out = tmp_path / "ds"
    assert main(["data", "wav", "--root", str(root), "--out", str(out)]) == 0
    assert "truncated" in capsys.readouterr().err
    meta = read_meta(out)
    assert meta.duration_s == 2.0
    for split in ("train", "test"):
        assert all(t.max() < 2.0 for t in read_split(out, split)["times"])


def expect_user_error(argv: list[str], capsys, *fragments: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("delrec-edge: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_missing_folder(tmp_path, capsys):
    out = tmp_path / "ds"
    expect_user_error(["data", "wav", "--root", str(tmp_path / "nope"), "--out", str(out)], capsys, "does not exist")
    assert not out.exists()


def test_no_wav_files(tmp_path, capsys):
    (tmp_path / "wavs").mkdir()
    (tmp_path / "wavs" / "notes.txt").write_text("hello")
    out = tmp_path / "ds"
    expect_user_error(["data", "wav", "--root", str(tmp_path / "wavs"), "--out", str(out)], capsys, "no audio files (.wav, .flac, .ogg)")
    assert not out.exists()


def test_unreadable_wav_leaves_nothing(tmp_path, capsys):
    root = make_flat(tmp_path / "wavs", per_speaker=1)
    (root / "yes_erin_7.wav").write_bytes(b"RIFF not really a wave file")
    out = tmp_path / "ds"
    expect_user_error(["data", "wav", "--root", str(root), "--out", str(out)], capsys, "yes_erin_7.wav", "not a readable audio file")
    assert not out.exists() and leftovers(tmp_path) == []


def test_empty_wav_leaves_nothing(tmp_path, capsys):
    root = make_flat(tmp_path / "wavs", per_speaker=1)
    wavfile.write(root / "up_bob_9.wav", 16000, np.zeros(0, np.int16))
    out = tmp_path / "ds"
    expect_user_error(["data", "wav", "--root", str(root), "--out", str(out)], capsys, "up_bob_9.wav", "no audio samples")
    assert not out.exists() and leftovers(tmp_path) == []


def test_empty_class_folder(tmp_path, capsys):
    root = make_folders(tmp_path / "wavs")
    (root / "left").mkdir()
    out = tmp_path / "ds"
    expect_user_error(["data", "wav", "--root", str(root), "--out", str(out)], capsys, "left", "no audio files (.wav, .flac, .ogg)")
    assert not out.exists()


def test_bad_file_name_in_flat_layout(tmp_path, capsys):
    root = make_flat(tmp_path / "wavs", per_speaker=1)
    write_tone(root / "recording.wav", 440.0)
    out = tmp_path / "ds"
    expect_user_error(["data", "wav", "--root", str(root), "--out", str(out)], capsys, "recording.wav", "<label>_<speaker>_<n>")
    assert not out.exists()


def test_single_speaker_cannot_be_split_by_speaker(tmp_path, capsys):
    root = tmp_path / "wavs"
    for n in range(4):
        write_tone(root / f"{'ab'[n % 2]}_solo_{n}.wav", 400.0 + 300 * (n % 2))
    out = tmp_path / "ds"
    expect_user_error(["data", "wav", "--root", str(root), "--out", str(out)], capsys, "at least 2 speakers", "--split random")
    assert not out.exists()
    assert main(["data", "wav", "--root", str(root), "--out", str(out), "--split", "random"]) == 0


def test_bad_test_fraction(tmp_path, capsys):
    root = make_flat(tmp_path / "wavs", per_speaker=1)
    out = tmp_path / "ds"
    expect_user_error(["data", "wav", "--root", str(root), "--out", str(out), "--test-fraction", "1.5"], capsys, "--test-fraction")
    assert not out.exists()


def test_existing_out_needs_force(tmp_path, capsys):
    root, out = make_flat(tmp_path / "wavs", per_speaker=1), tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    expect_user_error(["data", "wav", "--root", str(root), "--out", str(out)], capsys, "--force")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert main(["data", "wav", "--root", str(root), "--out", str(out), "--force"]) == 0
    assert not (out / "keep.txt").exists() and read_meta(out).classes == ["down", "up", "yes"]


def test_mixed_layouts_are_refused(tmp_path):
    root = make_folders(tmp_path / "wavs", per_class=1)
    write_tone(root / "up_bob_0.wav", 440.0)
    with pytest.raises(Exception, match="mixes class sub-folders"):
        scan(root)


def test_helpers():
    assert sorted(["10", "9", "b", "a2", "a10"], key=natural_key) == ["9", "10", "a2", "a10", "b"]
    assert clip_duration_s(16000, 16000, 2.0) == 1.0 and clip_duration_s(16001, 16000, 2.0) == 1.01
    assert clip_duration_s(10**6, 16000, 2.0) == 2.0


def test_integer_front_end_keeps_the_test_audio_it_heard(tmp_path):
    from codegen.integer.frontend_ref import encode_clips
    from pytrain.data.loader import load_data
    from pytrain.data.spikefile import read_audio

    root, out = make_flat(tmp_path / "wavs"), tmp_path / "ds"
    assert main(["data", "wav", "--root", str(root), "--out", str(out)]) == 0
    meta = read_meta(out)
    assert meta.front_end["kind"] == "integer" and (out / "frontend.int.npz").is_file()
    clips, labels, rate = read_audio(out, meta)
    bundle = load_data(str(out), bin_ms=10, progress=False)
    assert rate == 16000 and len(clips) == len(bundle.test.y) and len({c.size for c in clips}) > 1
    x = bundle.test.x.numpy()
    for i, (clip, counts) in enumerate(zip(clips, encode_clips(bundle.frontend, clips))):
        n = counts.shape[0]
        assert np.array_equal(counts, x[i, :n]) and not x[i, n:].any(), "the padded tail of a short clip is silent"
    assert np.array_equal(labels, bundle.test.y.numpy()) and x.sum() > 0


def test_float_front_end_option(tmp_path, capsys):
    root, out = make_flat(tmp_path / "wavs"), tmp_path / "ds"
    assert main(["data", "wav", "--root", str(root), "--out", str(out), "--front-end", "float"]) == 0
    assert "float front end" in capsys.readouterr().out
    meta = read_meta(out)
    assert meta.front_end["kind"] == "float" and meta.audio == {}
