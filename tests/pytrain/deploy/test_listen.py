"""A model that hears: trained on a dataset built from audio, quantized with its front end, generated into C that
listens; host parity from audio, ``delrec-edge listen`` with both engines, and the front-end checks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from scipy.io import wavfile

from codegen.integer.modelfile import frontend_digest, load_network
from pytrain.cli import main
from pytrain.data import spikefile


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytrain", *args], capture_output=True, text=True, timeout=300)


def test_the_model_file_carries_the_dataset_s_front_end(quantized_audio_edge):
    data, run = quantized_audio_edge
    net = load_network(run / "model.int.npz")
    meta = spikefile.read_meta(data)
    assert net.frontend is not None and frontend_digest(net.frontend) == meta.front_end["sha256"]
    assert net.bin_ms == net.frontend.hop_ms == 10.0 and net.n_inputs == net.frontend.n_channels == 32


def test_codegen_parity_from_audio_and_listen(quantized_audio_edge, tmp_path, capsys):
    data, run = quantized_audio_edge
    assert main(["codegen", str(run), "--force"]) == 0
    out = capsys.readouterr().out
    assert "front end: tables and constants" in out
    names = sorted(p.name for p in (run / "c").iterdir())
    assert "model_frontend.c" in names and "delrec_frontend.h" in names
    report = json.loads((run / "c" / "memory.json").read_text())
    assert report["frontend"]["ram"]["total"] <= 1024 and report["frontend"]["flash"]["total"] > 0

    assert main(["parity", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    n = len(spikefile.read_audio(data, spikefile.read_meta(data))[0])
    assert f"bit-exact on {n}/{n} samples" in out and f"host parity (audio): bit-exact on {n}/{n} clips" in out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["host_parity_audio"]["bit_exact"] == n and metrics["host_parity_audio"]["first_mismatch"] is None
    # the audio path classifies exactly as the counts path: the stored counts are the front end's own
    assert metrics["host_parity_audio"]["c"] == metrics["host_parity"]["c"]

    # delrec-edge listen: both engines agree on every test clip, written as WAV files
    clips, labels, rate = spikefile.read_audio(data, spikefile.read_meta(data))
    for i, clip in enumerate(clips[:4]):
        wav = tmp_path / f"clip{i}.wav"
        wavfile.write(wav, rate, clip)
        results = {}
        for engine in ("c", "reference"):
            assert main(["listen", str(run), str(wav), "--engine", engine, "--json"]) == 0
            results[engine] = json.loads(capsys.readouterr().out)
        assert results["c"]["scores"] == results["reference"]["scores"]
        assert results["c"]["class"] == results["reference"]["class"] and results["c"]["steps"] == clip.size // 160
    assert main(["listen", str(run), str(tmp_path / "clip0.wav")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("class ") and "c engine" in lines[0] and len(lines) == 1 + 4 and "<-" in lines[1]


def test_listen_resamples_other_rates(quantized_audio_edge, tmp_path, capsys):
    data, run = quantized_audio_edge
    clip = spikefile.read_audio(data, spikefile.read_meta(data))[0][0]
    stereo = np.stack([clip, clip], axis=1)
    wavfile.write(tmp_path / "s.wav", 16000, stereo)
    assert main(["listen", str(run), str(tmp_path / "s.wav"), "--engine", "reference", "--json"]) == 0
    mono = json.loads(capsys.readouterr().out)
    wavfile.write(tmp_path / "m.wav", 16000, clip)
    assert main(["listen", str(run), str(tmp_path / "m.wav"), "--engine", "reference", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["scores"] == mono["scores"], "a stereo copy is the same clip"
    wavfile.write(tmp_path / "r.wav", 32000, np.repeat(clip, 2))
    assert main(["listen", str(run), str(tmp_path / "r.wav"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == clip.size // 160


def test_listen_errors_are_one_line(quantized_audio_edge, quantized_edge, tmp_path):
    _, run = quantized_audio_edge
    res = _cli("listen", str(run), str(tmp_path / "missing.wav"))
    assert res.returncode == 2 and "no such file" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    res = _cli("listen", str(run), str(tmp_path / "bad.wav"))
    assert res.returncode == 2 and "not a readable audio file" in res.stderr
    _, spikes_run = quantized_edge
    wavfile.write(tmp_path / "x.wav", 16000, np.zeros(1600, np.int16))
    res = _cli("listen", str(spikes_run), str(tmp_path / "x.wav"))
    assert res.returncode == 2 and "cannot listen" in res.stderr and "Traceback" not in res.stderr


def test_a_dataset_with_another_front_end_is_refused(quantized_audio_edge, tmp_path):
    """quantize and codegen refuse a model whose front end differs from its dataset's."""
    data, run = quantized_audio_edge
    from codegen.integer.frontend import FrontEndConfig, design
    from pytrain.data.encoding import make_encoder
    from pytrain.data.wavset import build_wav_dataset

    other = tmp_path / "other"
    build_wav_dataset(data.parent / (data.name + "-wav"), other, test_fraction=0.25,
                      encoder=make_encoder("integer", FrontEndConfig(offset_db=9.0)))
    res = _cli("quantize", str(run), "--data", str(other), "--out", str(tmp_path / "q"), "--no-progress")
    assert res.returncode == 2 and "front end" in res.stderr and "must be the same" in res.stderr
    assert not (tmp_path / "q" / "model.int.npz").exists()
    # the run's own dataset, its front end swapped for another: codegen refuses the model
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("c", "firmware"))
    swapped = tmp_path / "swapped"
    shutil.copytree(data, swapped)
    from codegen.integer.modelfile import save_frontend

    fe = design(FrontEndConfig(offset_db=9.0))
    save_frontend(fe, swapped / "frontend.int.npz")
    doc = json.loads((swapped / "dataset.json").read_text())
    doc["front_end"]["sha256"] = frontend_digest(fe)
    (swapped / "dataset.json").write_text(json.dumps(doc))
    import torch

    record = torch.load(copy / "model.pt", weights_only=True)
    record["info"]["data_spec"] = str(swapped)
    torch.save(record, copy / "model.pt")
    res = _cli("codegen", str(copy), "--force")
    assert res.returncode == 2 and "they must be the same" in res.stderr and not (copy / "c").exists()


def test_spike_models_still_work_without_a_front_end(quantized_edge, tmp_path):
    _, run = quantized_edge
    assert main(["quantize", str(run), "--calib", "8", "--no-progress", "--out", str(tmp_path / "q")]) == 0
    assert load_network(tmp_path / "q" / "model.int.npz").frontend is None
    assert main(["codegen", str(tmp_path / "q"), "--out", str(tmp_path / "c")]) == 0
    assert not (tmp_path / "c" / "model_frontend.c").exists()
