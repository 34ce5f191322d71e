"""The generated C on emulated Cortex-M cores: cross builds, QEMU parity with the reference, budgets, reports.

These tests need arm-none-eabi-gcc, newlib and qemu-system-arm (``scripts/install-system-deps.sh``, run by
``make test``); without them they fail with the install hint rather than skip.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, note, settings

from codegen.integer import refmodel as rm
from codegen.generator.emit import generate
from intnet_builders import WIDTH_PAIRS, tiny_network, width_model
from intnet_strategies import describe, networks_with_inputs
from codegen.verify import firmware_run as fw
from pytrain.cli import main

EXAMPLES = max(3, settings().max_examples // 8)  # a cross build and a QEMU run each: 5 in ci, 50 with --slow


@pytest.fixture(scope="module", autouse=True)
def _toolchain():
    assert fw.environment_ok(), f"the Cortex-M toolchain or QEMU is missing; {fw.INSTALL_HINT}"


def _cli(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytrain", *args], capture_output=True, text=True, timeout=600,
                          env=env)


@pytest.mark.parametrize("target", fw.TARGETS)
def test_trained_edge_model_is_bit_exact_on_target(quantized_edge, target, tmp_path, capsys):
    """Every internal state after every step (hashed), the readout, the scores and the class of real test
    samples are equal on the emulated core and in the integer reference."""
    _, run = quantized_edge
    out_json = tmp_path / "r.json"
    assert main(["firmware", "run", "--target", target, "--model", str(run), "--samples", "6",
                 "--out", str(tmp_path / "w"), "--json", str(out_json)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert f"target parity ({target}, " in text and "bit-exact on 6/6 samples" in text
    (r,) = json.loads(out_json.read_text())
    assert r["bit_exact"] == 6 and r["insns_per_inference"] > 0 and r["insns_per_synaptic_event"] > 0
    # the per-inference count (classify: reset, every step, argmax) covers every step
    assert r["insns_per_inference"] >= 0.95 * r["insns_per_step"] * 40  # toy samples have 40 steps
    assert r["insns_per_step_max"] >= r["insns_per_step"]
    assert r["ram"] >= r["model_state_ram"] and r["flash"] > r["model_flash_data"]


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m55", "cortex-m0plus"])
@settings(max_examples=EXAMPLES)
@given(case=networks_with_inputs())
def test_random_models_are_bit_exact_on_target(target, case):
    """Hypothesis models of every variant, built for the core and run under QEMU, equal the reference: the DSP
    kernels (Cortex-M4), the Helium kernels (Cortex-M55) and the portable packed kernels (Cortex-M0+)."""
    net, x = case
    note(describe(net))
    try:
        plan, files = generate(net, "hyp")
    except ValueError:
        assume(False)  # refused by the static overflow check: not an example (the host tests cover that path)
    samples = np.stack([x, x[::-1].copy()])  # two samples: the drawn input and its time reversal
    with tempfile.TemporaryDirectory() as tmp:
        r = fw.target_parity(net, plan, files, samples, target, Path(tmp), optimize="-O2")
    assert r.bit_exact == 2, r.first_mismatch
    assert r.insns_per_inference > 0


def test_build_and_size_report(quantized_edge, tmp_path, capsys):
    _, run = quantized_edge
    assert main(["firmware", "build", "--target", "cortex-m0plus", "--model", str(run), "--samples", "2",
                 "--opt=-Os", "--out", str(tmp_path)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "for cortex-m0plus (-Os" in text and "memory (bytes)" in text and ".text" in text
    assert (tmp_path / "build" / "app.elf").is_file()


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m55", "cortex-m0plus", "cortex-m33"])
@pytest.mark.parametrize("widths", WIDTH_PAIRS, ids=lambda w: f"{w[0]}-{w[1]}")
def test_partial_spike_words_are_bit_exact_on_target(target, widths):
    """Layers of 31, 33, 63, 65, 100, 257, 20 and 88 neurons (spike words partly used, rows that end inside a block of
    the packed kernels, odd neuron counts for the pairwise LIF), int8 and int4, on every kernel set."""
    for bits in (8, 4):
        net = width_model(widths[0], widths[1], bits=bits, seed=widths[2])
        plan, files = generate(net, "wid")
        x = np.random.default_rng(1).integers(0, 3, (2, 20, 7)).astype(np.uint8)
        spikes = rm.run(net, x, keep_trace=True).trace
        assert all(0 < layer.spikes.mean() < 0.9 for layer in spikes.layers), "the layers must be active"
        with tempfile.TemporaryDirectory() as tmp:
            r = fw.target_parity(net, plan, files, x, target, Path(tmp), optimize="-O2")
        assert r.bit_exact == 2, (bits, r.first_mismatch)


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m55", "cortex-m0plus"])
def test_packed_sums_fall_back_to_32_bits_on_target(target):
    """Quiet steps pack; steps whose counts add up beyond the DSP kernels' list of repeated events (2 x 6) or
    beyond the matrix's packing limit (255) sum in 32 bits: every path is exact on the core."""
    net = tiny_network(None, n_in=6, n=9, n_layers=2, seed=4)
    w = np.tile(np.array([127, 127, 127, 127, 127, -128], np.int8), (9, 1))
    layer0 = dataclasses.replace(net.layers[0], weight=w, weight_frac=0, v_frac=0, threshold=1 << 12, leak_mul=1,
                                 leak_shift=1)
    net = dataclasses.replace(net, layers=(layer0, net.layers[1]))
    plan, files = generate(net, "lim")
    x = np.zeros((2, 12, 6), np.uint8)
    x[:, 0::3] = 1  # total 6: packed
    x[:, 1::3] = 3  # total 18 > 12 repeated events: 32-bit sums on DSP cores, packed elsewhere
    x[:, 2::3] = 200  # total 1200 > 255: 32-bit sums
    with tempfile.TemporaryDirectory() as tmp:
        r = fw.target_parity(net, plan, files, x, target, Path(tmp))
    assert r.bit_exact == 2, r.first_mismatch


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m55"])
def test_forced_portable_kernels_on_target(target, quantized_edge):
    """-DDELREC_PORTABLE_KERNELS builds the plain event kernels on a DSP / Helium core, bit-exact too."""
    from pytrain.deploy.cfolder import load_deployment
    from pytrain.deploy.parity import load_test_samples

    _, run = quantized_edge
    path, net, plan, files = load_deployment(run)
    x = load_test_samples(path.parent, net, None, None, 2).x
    with tempfile.TemporaryDirectory() as tmp:
        r = fw.target_parity(net, plan, files, x, target, Path(tmp), portable_kernels=True)
    assert r.bit_exact == 2, r.first_mismatch


def test_budget_fails_the_build(quantized_edge, tmp_path):
    _, run = quantized_edge
    res = _cli("firmware", "build", "--target", "cortex-m4", "--model", str(run), "--samples", "1",
               "--flash-budget", "1000", "--out", str(tmp_path))  # fmt: skip
    assert res.returncode == 2 and "FLASH_BUDGET" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "build" / "app.elf").exists()


def test_missing_toolchain_is_a_one_line_error(quantized_edge, tmp_path):
    _, run = quantized_edge
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))  # python, but no cross compiler or make
    res = _cli("firmware", "run", "--target", "cortex-m4", "--model", str(run), env=env)
    assert res.returncode == 2 and "apt-get install -y gcc-arm-none-eabi" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_report_on_two_targets(quantized_edge, tmp_path, capsys):
    _, run = quantized_edge
    out_json = tmp_path / "report.json"
    assert main(["firmware", "report", "--targets", "cortex-m3,cortex-m0plus", "--model", str(run), "--samples", "2",
                 "--opt=-Os", "--out", str(tmp_path / "w"), "--json", str(out_json)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "not cycles" in text and "2/2" in text
    rows = {r["target"]: r for r in json.loads(out_json.read_text())}
    assert rows["cortex-m0plus"]["bit_exact"] == 2 and rows["cortex-m3"]["bit_exact"] == 2
    assert rows["cortex-m3"]["machine"] == "mps2-an385" and rows["cortex-m0plus"]["machine"] == "microbit"


def test_expected_values_come_from_the_reference(quantized_edge):
    """The events and classes the firmware is checked against are the reference model's own."""
    from codegen.verify import firmware_app as tgt
    from pytrain.deploy.cfolder import load_deployment
    from pytrain.deploy.parity import load_test_samples

    _, run = quantized_edge
    path, net, _, _ = load_deployment(run)
    x = load_test_samples(path.parent, net, None, None, 3).x
    exp = tgt.expected(net, x)
    assert np.array_equal(exp.predicted, rm.run(net, x).predictions)
    assert (exp.events > 0).all()


def _calibrate(target: str, tmp_path: Path) -> str:
    fwdir = Path(fw.__file__).resolve().parents[2] / "firmware"
    proc = subprocess.run(["make", "-s", "-C", str(fwdir), f"TARGET={target}", "APP=calib",
                           f"BUILD_DIR={tmp_path / target}", "run"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m55"])
def test_the_calibration_app_confirms_the_configured_ratio(target, tmp_path):
    """The instructions-per-tick constant behind every instruction count is measured on the board: a loop of
    known length, timed with port_ticks(), gives the ratio of the target's .mk file to within one tick."""
    out = _calibrate(target, tmp_path)
    info = fw.target_info(target)
    assert f"calib configured insns_per_tick={info['insns_per_tick']}" in out
    assert "calib ratio ok" in out and out.rstrip().endswith("done")


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cortex-m3", "cortex-m7", "cortex-m33"])
def test_the_calibration_app_on_the_other_boards(target, tmp_path):
    out = _calibrate(target, tmp_path)
    assert "calib ratio ok" in out


def test_reference_kernels_run_on_a_target(quantized_edge, tmp_path):
    """The plain nested-loop kernels (-DDELREC_REFERENCE_KERNELS) are bit-exact on the emulated core too, and
    cost more instructions than the event-driven default (the flag really switched the kernels)."""
    from pytrain.deploy.cfolder import load_deployment
    from pytrain.deploy.parity import load_test_samples

    _, run = quantized_edge
    path, net, plan, files = load_deployment(run)
    x = load_test_samples(path.parent, net, None, None, 2).x
    ref = fw.target_parity(net, plan, files, x, "cortex-m4", tmp_path / "ref", reference_kernels=True)
    event = fw.target_parity(net, plan, files, x, "cortex-m4", tmp_path / "event")
    assert ref.bit_exact == 2 and event.bit_exact == 2, (ref.first_mismatch, event.first_mismatch)
    assert ref.insns_per_inference > 2 * event.insns_per_inference


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cortex-m3", "cortex-m7", "cortex-m33"])
@settings(max_examples=EXAMPLES)
@given(case=networks_with_inputs())
def test_random_models_are_bit_exact_on_every_other_target(target, case):
    """The hypothesis models of every variant on the cores the CI run leaves to ``make test-slow``."""
    test_random_models_are_bit_exact_on_target.hypothesis.inner_test(target, case)


def test_the_stack_of_a_step_is_measured_on_target_and_agrees_with_the_static_analysis(quantized_edge, tmp_path):
    """Painting on the core (-Os, as the static analysis compiles) measures what gcc's static analysis of the
    same code predicts: at most its worst case plus one interrupt frame (SysTick may fire during a step: up
    to 26 words with the FPU context), and no less than its worst case minus 16 words (a path the samples do
    not take)."""
    from codegen.generator.memory import memory_report
    from pytrain.deploy.cfolder import load_deployment
    from pytrain.deploy.parity import load_test_samples

    _, run = quantized_edge
    path, net, plan, files = load_deployment(run)
    x = load_test_samples(path.parent, net, None, None, 2).x
    r = fw.target_parity(net, plan, files, x, "cortex-m4", tmp_path, optimize="-Os")
    static = memory_report(plan, files)["flash"]["code"]["stack_step"]
    assert static - 16 * 4 <= r.stack_step_max <= static + 26 * 4, (r.stack_step_max, static)
