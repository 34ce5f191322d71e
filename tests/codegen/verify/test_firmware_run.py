"""The generated C on emulated Cortex-M cores: cross builds, QEMU parity with the reference, budgets, reports.

These tests need arm-none-eabi-gcc, newlib and qemu-system-arm (``scripts/install-system-deps.sh``, run by
``make test``); without them they fail with the install hint rather than skip.
"""

from __future__ import annotations

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


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m55"])
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


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m55"])
@settings(max_examples=EXAMPLES)
@given(case=networks_with_inputs())
def test_random_models_are_bit_exact_on_target(target, case):
    """Hypothesis models of every variant, built for the core and run under QEMU, equal the reference."""
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


def test_compile_only_target_and_size_report(quantized_edge, tmp_path, capsys):
    _, run = quantized_edge
    assert main(["firmware", "build", "--target", "cortex-m0plus", "--model", str(run), "--samples", "2",
                 "--opt=-Os", "--out", str(tmp_path)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "for cortex-m0plus (-Os" in text and "memory (bytes)" in text and ".text" in text
    assert (tmp_path / "build" / "app.elf").is_file()


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
    assert "not cycles" in text and "built only" in text and "2/2" in text
    rows = {r["target"]: r for r in json.loads(out_json.read_text())}
    assert rows["cortex-m0plus"]["bit_exact"] is None and rows["cortex-m3"]["bit_exact"] == 2
    assert rows["cortex-m3"]["machine"] == "mps2-an385"


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
    """Painting on the core (-Os, as the static analysis compiles) measures at least the step's scratch arrays
    and at most gcc's static worst case plus one interrupt frame (SysTick may fire during a step: up to 26
    words with the FPU context)."""
    from codegen.generator.memory import memory_report
    from pytrain.deploy.cfolder import load_deployment
    from pytrain.deploy.parity import load_test_samples

    _, run = quantized_edge
    path, net, plan, files = load_deployment(run)
    x = load_test_samples(path.parent, net, None, None, 2).x
    r = fw.target_parity(net, plan, files, x, "cortex-m4", tmp_path, optimize="-Os")
    static = memory_report(plan, files)["flash"]["code"]["stack_step"]
    assert plan.scratch_bytes <= r.stack_step_max <= static + 26 * 4, (plan.scratch_bytes, r.stack_step_max, static)
