"""The target parity protocol on the host: app_config.h, the state hash, the output parser, the comparison."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from codegen.integer import refmodel
from codegen.verify import firmware_app as tgt
from codegen.generator.emit import generate, write_folder
from codegen.verify.hostbuild import STRICT_FLAGS, compiler
from intnet_builders import tiny_network

HOST_MAIN = r"""
#include <stdio.h>
#include "app_config.h"
int main(void)
{
    static APP_STATE state;
    int32_t readout[APP_N_CLASSES];
    int i, t;
    for (i = 0; i < APP_N_SAMPLES; i++) {
        uint64_t h = APP_HASH_INIT;
        APP_RESET(&state);
        for (t = 0; t < APP_N_STEPS; t++) {
            if (APP_STEP(&state, &app_inputs[i][t * APP_N_INPUTS], APP_N_INPUTS, readout, APP_N_CLASSES) != 0) return 1;
            h = app_hash_state(h, &state);
        }
        printf("%d %016llx\n", APP_PREDICT(&state), (unsigned long long)h);
    }
    return 0;
}
"""


def _host_hashes(net, samples, tmp: Path, prefix: str = "tm") -> list[tuple[int, int]]:
    """Compile app_config.h with the generated model on the host and return (class, hash) per sample."""
    plan, files = generate(net, prefix)
    write_folder(files, tmp)
    (tmp / "app_config.h").write_text(tgt.app_config(plan, samples))
    (tmp / "main.c").write_text(HOST_MAIN)
    exe = tmp / "app"
    subprocess.run([compiler(), *STRICT_FLAGS, "-O1", "-I", str(tmp), str(tmp / "main.c"), str(tmp / f"{prefix}.c"),
                    "-o", str(exe)], check=True, capture_output=True)  # fmt: skip
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return [(int(c), int(h, 16)) for c, h in (line.split() for line in out.splitlines())]


@pytest.mark.parametrize("variant", [None, "conv", "dense", "conv-nodelay", "taps"])
def test_state_hash_of_the_c_equals_the_reference_fold(variant, tmp_path):
    """The app's per-step fold of the whole C state equals the fold the host computes from the reference;
    a single flipped bit in one input changes it."""
    net = tiny_network(variant, n_layers=2, seed=7)
    rng = np.random.default_rng(1)
    samples = rng.integers(0, 3, size=(3, 25, net.n_inputs)).astype(np.uint8)
    exp = tgt.expected(net, samples)
    got = _host_hashes(net, samples, tmp_path)
    assert [c for c, _ in got] == list(exp.predicted)
    assert [h for _, h in got] == [int(h) for h in exp.hash]
    changed = samples.copy()
    changed[1, 10, 0] ^= 1
    assert int(tgt.expected(net, changed).hash[1]) != int(exp.hash[1])
    assert np.array_equal(exp.scores, refmodel.run(net, samples).scores)


def test_synaptic_events_count_active_inputs_times_fan_out():
    net = tiny_network("dense", n_in=4, n=6, n_layers=1, n_classes=3, seed=2)
    x = np.zeros((1, 3, 4), np.uint8)
    x[0, 0, [0, 2]] = [5, 1]  # two active channels at step 0
    exp = tgt.expected(net, x)
    run = refmodel.run(net, x, keep_trace=True).trace
    spikes = run.layers[0].spikes[0]  # (T, N)
    z = run.layers[0].z[0]
    want = 2 * 6 + int(z.sum()) * 6 + int(spikes.sum()) * 3
    assert exp.events[0] == want
    # the same events per kernel (the profile's events per region)
    assert exp.kernel_events[("ff", 0)][0] == 2 * 6
    assert exp.kernel_events[("recurrence", 0)][0] == int(z.sum()) * 6
    assert exp.kernel_events[("readout",)][0] == int(spikes.sum()) * 3


def _output(results, k=2, ratio="40/1", sha="ab" * 32):
    lines = ["semihosting noise", f"delrec-parity 2 samples={len(results)} steps=5 classes={k} "
             f"insns_per_tick={ratio} model={sha}"]
    for i, (cls, h) in enumerate(results):
        lines += [f"sample {i} class {cls} hash {h:016x} step_ticks_sum 100 step_ticks_max 30 step_stack_max 412",
                  f"readout {i} " + " ".join(["-3"] * k), f"scores {i} " + " ".join(["-9000000000"] * k),
                  f"classify {i} class {cls} ticks 110"]
    return "\n".join(lines + ["done"])


def test_output_parser_and_comparison():
    out = tgt.parse_output(_output([(1, 0xDEADBEEF), (0, 0x1234)]))
    assert out.samples == 2 and out.steps == 5 and out.insns(out.results[0].classify_ticks) == 4400.0
    assert out.results[1].scores == (-9000000000, -9000000000) and out.results[0].readout == (-3, -3)
    exp = tgt.Expected(hash=np.array([0xDEADBEEF, 0x1234], np.uint64), predicted=np.array([1, 0]),
                       readout=np.full((2, 2), -3), scores=np.full((2, 2), -9000000000), events=np.array([10, 20]),
                       kernel_events={("readout",): np.array([10, 20])})
    assert tgt.check(exp, out) == tgt.Comparison(2, 2, None)
    bad = tgt.Expected(exp.hash.copy(), exp.predicted, exp.readout, exp.scores, exp.events, exp.kernel_events)
    bad.hash[1] ^= np.uint64(1)
    result = tgt.check(bad, out)
    assert result.exact == 1 and result.first.startswith("sample 1: state hash")


@pytest.mark.parametrize("text", [
    "nothing here",
    _output([(1, 5)]).replace("done", ""),
    _output([(1, 5)]).replace("readout 0 -3 -3", "readout 0 -3"),
    _output([(1, 5)]).replace("insns_per_tick=40/1", "insns_per_tick=40"),
])  # fmt: skip
def test_output_parser_rejects_broken_output(text):
    with pytest.raises(ValueError):
        tgt.parse_output(text)


def test_app_config_rejects_bad_samples():
    plan, _ = generate(tiny_network("conv", seed=1), "tm")
    with pytest.raises(ValueError):
        tgt.app_config(plan, np.zeros((0, 3, plan.n_inputs), np.uint8))
    with pytest.raises(ValueError):
        tgt.app_config(plan, np.zeros((1, 3, plan.n_inputs + 1), np.uint8))
    with pytest.raises(ValueError):
        tgt.app_config(plan, np.full((1, 3, plan.n_inputs), 256))
