"""Every bad input is one line on stderr and exit status 2, nothing is half-written, and the chain's own
guarantees hold: quantize enforces fake-quant == integer, a partial parity check never replaces a full one.

Unwritable outputs are real paths of this machine: under ``/proc`` (no such directory can exist there) and
``/sys`` (the kernel refuses new entries); a read-only file system is simulated by making the creation of
temporary files fail with EROFS, the first thing every writer does.
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from pytrain.cli import main

UNWRITABLE = ["/proc/delrec-edge-test/out", "/sys/delrec-edge-test/out"]


def one_line_error(capsys, argv: list[str]) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1, f"status {rc}, stderr:\n{err}"
    assert lines[0].startswith("delrec-edge: error: ") and "Traceback" not in err
    return lines[0]


@pytest.fixture
def run(quantized_edge, tmp_path):
    """A private copy of the trained and quantized edge run (the shared one stays untouched)."""
    data, shared = quantized_edge
    copy = tmp_path / "run"
    shutil.copytree(shared, copy)
    return data, copy


@pytest.fixture
def read_only_fs(monkeypatch):
    """Every new temporary file or folder fails as on a read-only file system."""
    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(tempfile, "mkdtemp", refuse)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------ unwritable outputs


@pytest.mark.parametrize("out", UNWRITABLE)
def test_unwritable_outputs_of_every_command(run, tmp_path, capsys, out):
    data, run_dir = run
    wavs = tmp_path / "wavs"
    for speaker in ("a", "b"):
        for label in ("yes", "no"):
            (wavs / label).mkdir(parents=True, exist_ok=True)
            wavfile.write(wavs / label / f"{label}_{speaker}_0.wav", 16000, np.zeros(1600, np.int16))
    before = _snapshot(run_dir)
    commands = [
        ["data", "wav", "--root", str(wavs), "--out", out],
        ["train", "--preset", "tiny", "--data", str(data), "--out", out, "--epochs", "1", "--no-progress"],
        ["quantize", str(run_dir), "--out", out, "--calib", "8", "--no-progress"],
        ["codegen", str(run_dir), "--out", out],
        ["report", str(run_dir), "--out", out, "--no-progress"],
        ["firmware", "build", "--target", "cortex-m4", "--model", str(run_dir), "--samples", "1", "--out", out],
        ["firmware", "run", "--target", "cortex-m4", "--model", str(run_dir), "--samples", "1", "--out", out],
        ["bench-infer", str(run_dir), "--samples", "1", "--repeats", "1", "--json", out + "/t.json"],
        ["export-nir", str(run_dir), "--out", out + "/m.nir"],
    ]
    if shutil.which("espeak-ng"):  # make test installs it; the refusal comes before any synthesis
        commands.append(["data", "synth", "--out", out, "--voices", "m1,m7", "--test-voices", "m7"])
    for argv in commands:
        line = one_line_error(capsys, argv)
        assert out.split("/")[1] in line, (argv, line)
    assert _snapshot(run_dir) == before


def test_read_only_file_system(run, capsys, read_only_fs):
    _, run_dir = run
    before = _snapshot(run_dir)
    for argv in (["codegen", str(run_dir), "--force"], ["parity", str(run_dir), "--no-progress", "--limit", "2"],
                 ["quantize", str(run_dir), "--calib", "8", "--no-progress"]):
        assert "Read-only file system" in one_line_error(capsys, argv)
    assert _snapshot(run_dir) == before


# --------------------------------------------------------------------------------- unreadable inputs


@pytest.mark.parametrize("content", [b"[1, 2]", b"null", b"\xff\xfe not utf-8", b"{not json", "directory"])
def test_a_bad_metrics_json_is_one_line_and_nothing_is_written(run, capsys, content):
    _, run_dir = run
    metrics = run_dir / "metrics.json"
    metrics.unlink()
    if content == "directory":
        metrics.mkdir()
    else:
        metrics.write_bytes(content)
    assert main(["codegen", str(run_dir), "--force"]) == 0  # codegen does not read metrics.json
    capsys.readouterr()
    before = _snapshot(run_dir)
    for argv in (["quantize", str(run_dir), "--calib", "8", "--no-progress"], ["parity", str(run_dir), "--no-progress"],
                 ["report", str(run_dir), "--no-progress"]):
        assert "metrics.json" in one_line_error(capsys, argv)
    assert _snapshot(run_dir) == before


def test_an_invalid_memory_json_is_one_line(run, capsys):
    _, run_dir = run
    assert main(["codegen", str(run_dir), "--force"]) == 0
    (run_dir / "c" / "memory.json").write_text("{ truncated")
    capsys.readouterr()
    for argv in (["parity", str(run_dir), "--no-progress"],
                 ["firmware", "run", "--target", "cortex-m4", "--model", str(run_dir), "--samples", "1"]):
        assert "memory.json is not valid JSON" in one_line_error(capsys, argv)


@pytest.mark.parametrize(
    "option, value, field",
    [("--lr", "nan", "lr"), ("--lr", "-1", "lr"), ("--lr-delay", "nan", "lr_delay"), ("--grad-clip", "-1", "grad_clip"),
     ("--rate-target", "nan", "rate_target"), ("--batch-size", "0", "batch_size"), ("--channel-shift", "-2", "channel_shift")],
)  # fmt: skip
def test_bad_training_numbers_are_refused_before_anything_runs(quantized_edge, tmp_path, capsys, option, value, field):
    data, _ = quantized_edge
    out = tmp_path / "never"
    line = one_line_error(capsys, ["train", "--preset", "tiny", "--data", str(data), "--out", str(out), option, value,
                                   "--no-progress"])  # fmt: skip
    assert field in line and option in line
    assert not out.exists()


# ---------------------------------------------------------------------------------------- WAV files


def _wav_root(tmp_path: Path, odd: dict[str, tuple[int, np.ndarray]]) -> Path:
    root = tmp_path / "wavs"
    for i, speaker in enumerate(("ann", "bob", "cy")):
        for label in ("yes", "no"):
            (root / label).mkdir(parents=True, exist_ok=True)
            tone = (np.sin(np.arange(8000) * (0.05 + 0.02 * i)) * 8000).astype(np.int16)
            wavfile.write(root / label / f"{label}_{speaker}_0.wav", 16000, tone)
    for name, (rate, samples) in odd.items():
        wavfile.write(root / "yes" / name, rate, samples)
    return root


@pytest.mark.parametrize("rate", [1, 7_999_993, 47_999])
def test_an_unusable_sample_rate_is_one_line(tmp_path, capsys, rate):
    root = _wav_root(tmp_path, {"yes_dan_0.wav": (rate, np.zeros(4000, np.int16))})
    line = one_line_error(capsys, ["data", "wav", "--root", str(root), "--out", str(tmp_path / "ds")])
    assert "yes_dan_0.wav" in line and f"{rate} Hz" in line
    assert not (tmp_path / "ds").exists()


def test_a_float_wav_holding_nan_is_refused(tmp_path, capsys):
    bad = np.zeros(4000, np.float32)
    bad[100] = np.nan
    root = _wav_root(tmp_path, {"yes_dan_0.wav": (16000, bad)})
    assert "yes_dan_0.wav: holds NaN" in one_line_error(capsys, ["data", "wav", "--root", str(root), "--out",
                                                                  str(tmp_path / "ds")])  # fmt: skip


def test_a_truncated_wav_is_used_with_a_warning_naming_it(tmp_path, capsys):
    root = _wav_root(tmp_path, {})
    victim = root / "no" / "no_cy_0.wav"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    assert main(["data", "wav", "--root", str(root), "--out", str(tmp_path / "ds")]) == 0
    err = capsys.readouterr().err
    assert f"warning: {victim} is truncated: its header declares 16000 bytes of audio, the file holds 7978" in err


# ------------------------------------------------------------------------------------- checkpoints


def _corrupt_checkpoint(run_dir: Path, what: str) -> None:
    path = run_dir / "model.pt"
    rec = torch.load(path, weights_only=True)
    sd = rec["state_dict"]
    if what == "delays":
        key = next(k for k in sd if k.endswith("rec.delays"))
        sd[key] = torch.full_like(sd[key], 1e12)
    else:
        key = next(k for k in sd if k.endswith("fc.weight"))
        sd[key][0, 0] = float("nan")
    torch.save(rec, path)


@pytest.mark.parametrize("what", ["delays", "nan"])
def test_a_checkpoint_that_loads_but_cannot_be_used_is_refused(run, tmp_path, capsys, what):
    data, run_dir = run
    _corrupt_checkpoint(run_dir, what)
    before = _snapshot(run_dir)
    nir_file = tmp_path / "m.nir"
    for argv in (["eval", str(run_dir), "--data", str(data)], ["quantize", str(run_dir), "--no-progress"],
                 ["export-nir", str(run_dir), "--out", str(nir_file)]):
        line = one_line_error(capsys, argv)
        assert ("delays of recurrent layer" in line) if what == "delays" else ("NaN" in line), line
    assert not nir_file.exists()
    assert _snapshot(run_dir) == before


def test_bench_infer_refuses_a_dataset_with_other_classes(run, tmp_path, capsys):
    from toy_data import make_toy_dataset

    _, run_dir = run
    other = make_toy_dataset(tmp_path / "other", n_classes=3)
    line = one_line_error(capsys, ["bench-infer", str(run_dir), "--data", str(other), "--samples", "1"])
    assert "3 classes" in line


# ----------------------------------------------------------------------------- the chain's guarantees


def test_quantize_refuses_a_fake_quant_model_that_differs_and_keeps_the_previous_model(run, capsys, monkeypatch):
    from codegen.integer import fixedpoint as fx
    from pytrain.export import fakequant

    _, run_dir = run
    before = _snapshot(run_dir)
    # a fake-quant leak that rounds down instead of half up: it no longer equals the integer reference
    monkeypatch.setattr(fakequant, "leak_ste", lambda v, mul, shift: fakequant.ste((v * mul) // (1 << shift),
                                                                                     v * (mul / 2.0**shift)))
    assert fx.rshift_round_values(3, 1) == 2  # the true rule rounds 1.5 up
    line = one_line_error(capsys, ["quantize", str(run_dir), "--calib", "8", "--no-progress"])
    assert "differs from the fake-quant model" in line and "nothing was written" in line
    assert _snapshot(run_dir) == before


def test_a_partial_parity_check_never_replaces_a_full_one(run, capsys):
    _, run_dir = run
    assert main(["codegen", str(run_dir), "--force"]) == 0
    assert main(["parity", str(run_dir), "--no-progress"]) == 0
    full = json.loads((run_dir / "metrics.json").read_text())
    assert main(["parity", str(run_dir), "--no-progress", "--limit", "4"]) == 0
    after = json.loads((run_dir / "metrics.json").read_text())
    assert after["c_acc"] == full["c_acc"] and after["host_parity"] == full["host_parity"]
    partial = after["host_parity_partial"]
    assert partial["n"] == 4 and partial["of"] == 48 and partial["bit_exact"] == 4
    assert full["host_parity"]["n"] == full["host_parity"]["of"] == 48


def test_requantizing_drops_the_c_accuracy_of_the_previous_model_and_says_c_is_stale(run, capsys):
    _, run_dir = run
    assert main(["codegen", str(run_dir), "--force"]) == 0
    assert main(["parity", str(run_dir), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["quantize", str(run_dir), "--calib", "8", "--weight-bits", "16", "--no-progress"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert "c_acc" not in metrics and "host_parity" not in metrics
    assert f"note: {run_dir / 'c'} was generated from another model" in out


# ------------------------------------------------------------------------------------------- the CLI


def test_a_closed_pipe_ends_quietly(run):
    _, run_dir = run
    proc = subprocess.run(f"{sys.executable} -m pytrain codegen {run_dir} --force | head -2", shell=True,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 2
    assert proc.stderr == "", proc.stderr


def test_an_unexpected_error_is_one_line_unless_debug(capsys, monkeypatch):
    from pytrain.cli import info

    def broken(preset, recurrent):
        raise RuntimeError("something nobody planned for\nsecond line")

    monkeypatch.setattr(info, "describe", broken)
    line = one_line_error(capsys, ["info", "--preset", "edge"])
    assert "unexpected RuntimeError: something nobody planned for" in line and "--debug" in line
    with pytest.raises(RuntimeError, match="nobody planned"):
        main(["info", "--preset", "edge", "--debug"])
    with pytest.raises(RuntimeError, match="nobody planned"):
        main(["--debug", "info", "--preset", "edge"])
