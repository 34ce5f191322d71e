"""The audio app on emulated Cortex-M cores: int16 clips in 10 ms blocks through the generated front end and network,
every block's counts and complete state compared by hash with the integer reference; timing and the report line.

These tests need arm-none-eabi-gcc, newlib and qemu-system-arm (``scripts/install-system-deps.sh``, run by
``make test``); without them they fail with the install hint rather than skip.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from audio_strategies import make_signal
from intnet_builders import tiny_network

from codegen.generator.emit import generate
from codegen.integer.frontend import FrontEndConfig, design
from codegen.verify import firmware_audio as fa
from codegen.verify import firmware_run as fw
from pytrain.cli import main

EMULATED = ("cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")


@pytest.fixture(scope="module", autouse=True)
def _toolchain():
    assert fw.environment_ok(), f"the Cortex-M toolchain or QEMU is missing; {fw.INSTALL_HINT}"


@pytest.mark.parametrize("target", EMULATED)
def test_the_trained_model_hears_bit_exactly_on_every_emulated_core(quantized_audio_edge, target, tmp_path, capsys):
    _, run = quantized_audio_edge
    out_json = tmp_path / "a.json"
    assert main(["firmware", "run", "--target", target, "--model", str(run), "--audio", "--clips", "2",
                 "--out", str(tmp_path / "w"), "--json", str(out_json)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "target parity (audio): bit-exact on 2/2 clips" in text and "front end insns/10 ms" in text
    (r,) = json.loads(out_json.read_text())
    assert r["bit_exact"] == 2 and r["blocks"] == 100 and r["hop_ms"] == 10.0
    assert 0 < r["frontend_insns_per_hop"] < r["insns_per_hop"] <= r["insns_per_hop_max"]
    assert r["frontend_state_ram"] <= 1024


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m0plus"])
def test_the_front_end_profile_splits_the_per_bin_work_by_stage(quantized_audio_edge, target, tmp_path, capsys):
    """Every stage of the front end's per-bin work is a region with instructions; together they account for what
    SysTick measures around <prefix>_hear per block, less the call's loop and the timer reads."""
    from codegen.verify.firmware_profile import region_names

    _, run = quantized_audio_edge
    out_json = tmp_path / "a.json"
    assert main(["firmware", "run", "--target", target, "--model", str(run), "--audio", "--clips", "1", "--profile",
                 "--out", str(tmp_path / "w"), "--json", str(out_json)]) == 0  # fmt: skip
    assert "profile of the front end" in capsys.readouterr().out
    (r,) = json.loads(out_json.read_text())
    stages = region_names((tmp_path / "w" / "c" / "model_frontend.c").read_text())
    assert stages[0] == "front end samples" and stages[-1] == "front end encoder" and len(stages) == 8
    rows = r["profile"]["regions"]
    assert [x["name"] for x in rows] == stages and all(x["insns_per_step"] > 0 for x in rows)
    total = r["profile"]["total_per_step"]
    assert 0.97 * r["frontend_insns_per_hop"] <= total <= r["frontend_insns_per_hop"], (total, r["frontend_insns_per_hop"])


def test_the_m0plus_audio_app_is_built(quantized_audio_edge, tmp_path, capsys):
    _, run = quantized_audio_edge
    assert main(["firmware", "build", "--target", "cortex-m0plus", "--model", str(run), "--audio", "--clips", "1",
                 "--out", str(tmp_path / "w")]) == 0  # fmt: skip
    assert "the audio app, 1 embedded clips" in capsys.readouterr().out
    assert (tmp_path / "w" / "build-audio" / "app.elf").is_file()


def test_report_has_the_front_end_line(quantized_audio_edge, tmp_path, capsys):
    _, run = quantized_audio_edge
    out_json = tmp_path / "r.json"
    assert main(["firmware", "report", "--targets", "cortex-m4,cortex-m0plus", "--model", str(run), "--samples", "2",
                 "--clips", "1", "--out", str(tmp_path / "w"), "--json", str(out_json)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "front end (audio app, 1 test clips in 10 ms blocks):" in text and "1/1 clips" in text
    rows = json.loads(out_json.read_text())
    audio = [r for r in rows if "frontend_insns_per_hop" in r]
    assert [r["target"] for r in audio] == ["cortex-m4", "cortex-m0plus"]
    assert [(r["bit_exact"], r["clips"]) for r in audio] == [(1, 1), (1, 1)], "the M0+ runs it on the micro:bit"


FRONT_ENDS = {
    "8 kHz, 128-point FFT": FrontEndConfig(sample_rate=8000, f_high=3800.0),
    "16 channels, leak, 16 sub-steps": FrontEndConfig(n_channels=16, leak_shift=3, substeps=16, refractory=0),
    "512-point FFT, fine log, unpooled": FrontEndConfig(fft_size=512, log_frac=8, floor_frac=4, floor_fall_shift=2,
                                                        pool_bins=1),
}


@pytest.mark.parametrize("name", sorted(FRONT_ENDS))
def test_other_front_ends_are_bit_exact_on_target(name, tmp_path):
    fe = design(FRONT_ENDS[name])
    net = dataclasses.replace(tiny_network("dense", n_in=fe.n_channels, n=6, n_layers=2, seed=4), bin_ms=fe.hop_ms,
                              frontend=fe)
    plan, files = generate(net, "fe")
    clips = [make_signal(kind, n, seed) for kind, n, seed in (("mix", 4000, 1), ("full-noise", 1201, 2), ("chirp", 2000, 3))]
    r = fw.audio_parity(net, plan, files, clips, "cortex-m4", tmp_path)
    assert r.bit_exact == 3, r.first_mismatch


def test_a_changed_hash_is_found_and_named(quantized_audio_edge):
    from pytrain.deploy.cfolder import load_deployment
    from pytrain.deploy.parity import load_test_audio

    _, run = quantized_audio_edge
    path, net, _, _ = load_deployment(run)
    clips, _, _ = load_test_audio(path.parent, net, None, 2)
    exp = fa.expected(net, clips)
    lines = ["delrec-audio 1 clips=2 hop=160 channels=32 classes=4 insns_per_tick=40/1 model=" + "0" * 64]
    for i in range(2):
        for b, (s, c, h) in enumerate(zip(exp.steps[i], exp.counts_hash[i], exp.state_hash[i])):
            if (i, b) == (1, 7):
                h ^= np.uint64(1)
            lines.append(f"block {i} {b} steps {s} counts {int(c):016x} state {int(h):016x}")
        lines.append(f"clip {i} class {exp.predicted[i]} blocks {exp.steps[i].size} steps {exp.steps[i].sum()} "
                     "listen_ticks_sum 10 listen_ticks_max 1 hear_ticks_sum 5 hear_ticks_max 1")
        lines.append(f"scores {i} " + " ".join(str(v) for v in exp.scores[i]))
    lines.append("done")
    out = fa.parse_output("\n".join(lines))
    result = fa.check(exp, out)
    assert result.exact == 1 and result.first.startswith("sample 1: state hash at block 7")
    with pytest.raises(ValueError, match="does not end with 'done'"):
        fa.parse_output("\n".join(lines[:-3]))
    with pytest.raises(ValueError, match="no 'delrec-audio' header"):
        fa.parse_output("hello")


def test_the_audio_config_refuses_a_model_without_a_front_end():
    plan, _ = generate(tiny_network("conv"), "m")
    with pytest.raises(ValueError, match="no audio front end"):
        fa.audio_config(plan, [np.zeros(10, np.int16)])
