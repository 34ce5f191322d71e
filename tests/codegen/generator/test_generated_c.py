"""The generated C equals the integer reference model (``codegen/integer/refmodel.py``) bit for bit.

Zero tolerance throughout: every membrane, every spike, every ring head, the readout state ``u`` and the
class scores are compared as exact integers after every step. The sections:

1. random small models (hypothesis, :mod:`intnet_strategies`) built on the host, both kernel sets;
2. the same kind of models built with AddressSanitizer + UBSan and run in a subprocess
   (:mod:`codegen.verify.hostworker`), with negative controls proving the sanitizers are really active;
3. a stream of 10^6 steps without a reset, verified by induction over segments;
4. the C API contract: return codes, the state left alone on errors, reset, ties, class names, several
   models in one process and one program, deterministic generated files and their banner, prefixes.

Host builds go to a per-session cache (``tests/conftest.py``); each takes about 0.6 s.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st
from intnet_builders import WIDTH_PAIRS, tiny_network, width_model
from intnet_strategies import describe, networks_with_inputs
from numpy.testing import assert_array_equal

from codegen.integer import refmodel as rm
from codegen.generator.emit import RUNTIME_FILES, generate
from codegen.verify.hostbuild import (
    SANITIZE_FLAGS,
    STRICT_FLAGS,
    BuildOptions,
    Trace,
    build,
    build_host_model,
    compiler,
    sanitizer_env,
)
from codegen.integer.network import IntLayer, IntNetwork, IntReadout, IntRecurrence
from codegen.integer.modelfile import load_network, network_digest, save_network, validate_network
from codegen.generator.plan import MAX_PREFIX, make_plan

REPO = Path(__file__).resolve().parents[3]

# The loaded hypothesis profile sets the budget: "ci" 40 examples, "slow" (--slow) 400.
EXAMPLES = settings().max_examples


def _scaled(fraction: float, minimum: int) -> int:
    return max(minimum, int(EXAMPLES * fraction))


HOST_EXAMPLES = _scaled(1.0, 10)  # two builds (~0.6 s each) per example: 40 in ci, 400 with --slow
SANITIZER_EXAMPLES = _scaled(0.2, 4)  # an ASan build and a subprocess (~1.7 s) per example: 8 in ci, 80 with --slow


# ------------------------------------------------------------------------------------------- helpers


def plan_or_reject(net: IntNetwork, prefix: str):
    """``generate(net, prefix)``; a model the overflow check refuses is rejected as an example.

    The network is validated first, outside the filter: an invalid network is a bug of the strategy.
    """
    validate_network(net)
    try:
        return generate(net, prefix)
    except ValueError as exc:  # the prefix is valid, so this is the static overflow check
        note(f"rejected: {exc}")
        assume(False)


def expected_heads(net: IntNetwork, steps: int, start: int = 0) -> np.ndarray:
    """(steps, n_layers): the ring slot the C writes next after each step, ``(t + 1) % L``; 0 without a ring."""
    t = start + np.arange(1, steps + 1)
    cols = [
        np.zeros(steps, np.int64) if layer.recurrence is None else t % rm.ring_length(layer.recurrence)
        for layer in net.layers
    ]
    return np.stack(cols, axis=1)


def assert_trace_equal(net: IntNetwork, got: Trace, want: rm.StepTrace, label: str = "") -> None:
    """The C trace ``got`` equals sample 0 of the reference trace ``want`` after every step, value for value."""
    steps = want.u.shape[1]
    assert got.u.shape == (steps, net.n_classes), label
    for i in range(len(net.layers)):
        assert_array_equal(got.v[i], want.layers[i].v[0], err_msg=f"{label} layer {i} membranes (rows: steps)")
        assert_array_equal(got.spikes[i], want.layers[i].spikes[0], err_msg=f"{label} layer {i} spikes (rows: steps)")
    assert_array_equal(got.head, expected_heads(net, steps), err_msg=f"{label} ring heads (rows: steps)")
    assert_array_equal(got.u, want.u[0], err_msg=f"{label} readout state u (rows: steps)")
    assert_array_equal(got.score, want.score[0], err_msg=f"{label} class scores (rows: steps)")


def state_bytes(hm, state) -> bytes:
    return bytes(hm.ffi.buffer(state))


def fn(hm, name: str):
    return getattr(hm.lib, f"{hm.plan.prefix}_{name}")


# --------------------------------------------------------------------------- 1. random models, host build

# the host's kernel sets: the default packed kernels, the plain event kernels (32-bit sums), the reference loops
KERNEL_SETS = (BuildOptions(), BuildOptions(portable_kernels=True), BuildOptions(reference_kernels=True))


@settings(max_examples=HOST_EXAMPLES)
@given(case=networks_with_inputs())
def test_host_build_equals_reference_after_every_step(case):
    """For random small models in every corner of the spec and every kind of input, both kernel sets of
    the generated C reproduce every membrane, spike, ring head, ``u`` and score of the reference after every
    step; ``predict`` after the sample, ``classify`` of the sample and the per-step ``step`` API agree too."""
    net, x = case
    note(describe(net))
    plan, files = plan_or_reject(net, "hyp")
    want = rm.run(net, x, keep_trace=True)
    for options in KERNEL_SETS:
        label = f"{options.kernels} kernels"
        hm = build_host_model(plan, files, options)
        state = hm.new_state()
        assert_trace_equal(net, hm.trace(state, x), want.trace, label)
        assert fn(hm, "predict")(state) == want.predictions[0], label
        cls, scores = hm.classify(x)
        assert cls == want.predictions[0], label
        assert_array_equal(scores, want.scores[0], err_msg=label)
    # the public step function, one call per step, returns u (HostModel.trace goes through a helper)
    state = hm.new_state()
    for t in range(len(x)):
        assert_array_equal(hm.step(state, x[t]), want.trace.u[0, t], err_msg=f"step {t}")


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("widths", WIDTH_PAIRS, ids=lambda w: f"{w[0]}-{w[1]}")
def test_partial_spike_words_on_the_host(widths, bits):
    """Layers of 31, 33, 63, 65, 100, 257, 20 and 88 neurons (partly used spike words, rows ending inside a block of the
    packed kernels, odd counts), int8 and packed int4, on every kernel set of the host."""
    net = width_model(widths[0], widths[1], bits=bits, seed=widths[2])
    plan, files = generate(net, "wid")
    x = np.random.default_rng(1).integers(0, 3, (20, 7)).astype(np.uint8)
    want = rm.run(net, x, keep_trace=True)
    assert all(0 < layer.spikes.mean() < 0.9 for layer in want.trace.layers), "the layers must be active"
    for options in KERNEL_SETS:
        hm = build_host_model(plan, files, options)
        assert_trace_equal(net, hm.trace(hm.new_state(), x), want.trace, f"{options.kernels} kernels")


def test_packed_sums_fall_back_to_32_bits_beyond_their_limit():
    """Layer 0 of int8 weights at +-127/-128 packs only while a step's input counts add up to at most
    32767 // 128 = 255: a stream mixing quiet steps (packed) and loud ones (32-bit sums, where 16-bit lanes would
    wrap) is exact on every kernel set."""
    net = tiny_network(None, n_in=6, n=9, n_layers=2, seed=4)
    w = np.tile(np.array([127, 127, 127, 127, 127, -128], np.int8), (9, 1))
    layer0 = dataclasses.replace(net.layers[0], weight=w, weight_frac=0, v_frac=0, threshold=1 << 12, leak_mul=1,
                                 leak_shift=1)
    net = dataclasses.replace(net, layers=(layer0, net.layers[1]))
    plan, files = generate(net, "lim")
    assert plan.layers[0].matrix.packing.kind == "dynamic" and plan.layers[0].matrix.limit == 32767 // 128
    x = np.zeros((8, 6), np.uint8)
    x[::2] = 3  # total 18: packed
    x[1::2] = 200  # total 1200: |acc| up to 1200 * 128, beyond 16 bits
    want = rm.run(net, x, keep_trace=True)
    acc = want.trace.layers[0].acc_ff[0]
    assert np.abs(acc[1::2]).max() > 32767 and np.abs(acc[::2]).max() <= 32767
    for options in KERNEL_SETS:
        hm = build_host_model(plan, files, options)
        assert_trace_equal(net, hm.trace(hm.new_state(), x), want.trace, f"{options.kernels} kernels")


def test_int4_matrices_take_half_the_bytes_of_int8():
    """Packed two per byte, int4 matrices take exactly half the bytes of the same matrices stored as int8 (both
    pad rows to 8 columns), and the memory report shows the saving."""
    from codegen.generator.memory import format_report, memory_report

    net = width_model(64, 256, bits=4, seed=2)
    plan = make_plan(net, "w4")
    int8 = dataclasses.replace(net, layers=tuple(dataclasses.replace(layer, weight_bits=8) for layer in net.layers),
                               readout=dataclasses.replace(net.readout, weight_bits=8))
    bytes4 = {a.name: a.nbytes for a in plan.arrays}
    bytes8 = {a.name: a.nbytes for a in make_plan(int8, "w8").arrays}
    assert all(2 * bytes4[k] == bytes8[k] for k in ("l0_w", "l1_w", "ro_w"))
    report = memory_report(plan)
    assert report["int4_packed"] == {"bytes": sum(bytes4[k] for k in ("l0_w", "l1_w", "ro_w")),
                                     "int8_bytes": sum(bytes8[k] for k in ("l0_w", "l1_w", "ro_w"))}
    assert "int4 weights packed two per byte" in format_report(report)


# ------------------------------------------------------------------------------ 2. sanitizer builds


def run_worker(net: IntNetwork, prefix: str, x: np.ndarray, options: BuildOptions, tmp: Path) -> dict:
    """Run ``python -m codegen.verify.hostworker`` on ``net`` in a subprocess with the ASan runtime preloaded."""
    model, inputs, outputs = tmp / "model.int.npz", tmp / "inputs.npy", tmp / "outputs.npz"
    save_network(net, model)
    np.save(inputs, x)
    flags = [f"--optimize={options.optimize}"]  # "=": a value starting with "-" is no option
    flags += ["--reference-kernels"] if options.reference_kernels else []
    flags += ["--portable-kernels"] if options.portable_kernels else []
    flags += ["--sanitize"] if options.sanitize else []
    cmd = [sys.executable, "-m", "codegen.verify.hostworker", str(model), prefix, str(inputs), str(outputs), *flags]
    proc = subprocess.run(cmd, env=sanitizer_env(), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"worker failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-6000:]}"
    with np.load(outputs, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def worker_trace(out: dict, n_layers: int) -> Trace:
    return Trace(
        v=tuple(out[f"v{i}"] for i in range(n_layers)),
        spikes=tuple(out[f"spikes{i}"] for i in range(n_layers)),
        head=out["head"],
        u=out["u"],
        score=out["score"],
    )


@settings(max_examples=SANITIZER_EXAMPLES)
@given(case=networks_with_inputs(), kernels=st.sampled_from(("packed", "portable", "reference")))
def test_sanitizer_build_equals_reference(case, kernels):
    """Built with ``-fsanitize=address,undefined -fno-sanitize-recover=all``, the generated C runs random
    models without a single sanitizer finding (any finding aborts the worker) and still equals the reference
    after every step, in ``predict`` and in ``classify``."""
    net, x = case
    note(describe(net))
    plan, files = plan_or_reject(net, "asan")
    options = BuildOptions(reference_kernels=kernels == "reference", portable_kernels=kernels == "portable",
                           sanitize=True)
    build(plan, files, options)  # compile here, outside the preloaded process; the worker finds it cached
    with tempfile.TemporaryDirectory() as tmp:
        out = run_worker(net, "asan", x, options, Path(tmp))
    want = rm.run(net, x, keep_trace=True)
    assert_trace_equal(net, worker_trace(out, len(net.layers)), want.trace, options.label)
    assert int(out["predict"]) == want.predictions[0]
    assert int(out["classify"]) == want.predictions[0]
    assert_array_equal(out["classify_scores"], want.scores[0])


PROBE_SOURCE = r"""
#include <stdlib.h>
int probe_ok(int a) { return a + 1; }
int probe_signed_overflow(int a) { return a + 1; } /* called with INT_MAX */
int probe_heap_overflow(int i) { int r; int *p = malloc(4 * sizeof *p); p[0] = 0; r = p[i]; free(p); return r; }
"""

# Run in a subprocess: load a cffi module by path, make one harmless call, then the call under test.
PROBE_SCRIPT = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location(sys.argv[1], sys.argv[2])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
ffi, lib = mod.ffi, mod.lib
{harmless}
print("harmless call done", flush=True)
{call}
print("survived", flush=True)
"""


def run_probe(module: str, path, harmless: str, call: str) -> subprocess.CompletedProcess:
    """Run :data:`PROBE_SCRIPT` with the sanitizer environment the worker gets; returns the finished process."""
    script = PROBE_SCRIPT.format(harmless=harmless, call=call)
    return subprocess.run([sys.executable, "-c", script, module, str(path)], env=sanitizer_env(),
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def assert_aborted_with(proc: subprocess.CompletedProcess, *findings: str) -> None:
    report = proc.stderr[-4000:]
    assert "harmless call done" in proc.stdout, report  # the module loaded and ran under the sanitizers
    assert proc.returncode != 0 and "survived" not in proc.stdout, f"no sanitizer stopped it:\n{proc.stdout}{report}"
    for finding in findings:
        assert finding in proc.stderr, report


@pytest.fixture(scope="module")
def sanitizer_probe(tmp_path_factory):
    """(module, path) of a cffi module whose C has a deliberate signed overflow and heap overflow.

    Built exactly like a model: the C compiled on its own with SANITIZE_FLAGS (not through cffi, whose
    compile flags come from Python's build and include -fwrapv, which defines signed overflow and so hides
    it from UBSan), the object linked into a cffi module that is itself built with the sanitizers.
    """
    import cffi

    tmp = tmp_path_factory.mktemp("probe")
    (tmp / "probe.c").write_text(PROBE_SOURCE)
    obj = tmp / "probe.o"
    flags = list(SANITIZE_FLAGS)
    subprocess.run([compiler(), "-std=c99", "-O0", "-fPIC", *flags, "-c", str(tmp / "probe.c"), "-o", str(obj)],
                   check=True)  # fmt: skip
    decls = "int probe_ok(int a); int probe_signed_overflow(int a); int probe_heap_overflow(int i);"
    ffi = cffi.FFI()
    ffi.cdef(decls)
    name = "_delrec_sanitizer_probe"
    ffi.set_source(name, decls, extra_objects=[str(obj)], extra_compile_args=flags, extra_link_args=flags)
    return name, ffi.compile(tmpdir=str(tmp / "cffi"), verbose=False)


@pytest.mark.parametrize(
    "call, finding",
    [
        ("lib.probe_signed_overflow(2**31 - 1)", "runtime error: signed integer overflow"),
        ("lib.probe_heap_overflow(4)", "AddressSanitizer: heap-buffer-overflow"),
    ],
)
def test_sanitizer_setup_catches_a_deliberate_bug(sanitizer_probe, call, finding):
    """Negative control: C built and loaded like the model builds (SANITIZE_FLAGS, cffi, ``sanitizer_env``)
    with a deliberate signed overflow / heap overflow aborts the subprocess with the sanitizer's report,
    after a harmless call succeeded. Without this, a broken preload or a lost flag would let the sanitizer
    test pass silently."""
    module, path = sanitizer_probe
    assert_aborted_with(run_probe(module, path, "assert lib.probe_ok(41) == 42", call), finding)


@pytest.fixture(scope="module")
def canary_build():
    """A sanitizer build of a one-layer model with 24-bit membranes (int32_t in the C) and a leak of 200/2^8."""
    net = tiny_network(None, n_in=4, n=3, seed=3)
    layer = dataclasses.replace(net.layers[0], state_bits=24, leak_mul=200, leak_shift=8)
    net = dataclasses.replace(net, layers=(layer,))
    return build(*generate(net, "canary"), BuildOptions(sanitize=True))


@pytest.fixture(scope="module")
def unchecked_build():
    """A sanitizer build of a model the overflow analysis refuses (int8 weights of 127 shifted left by 20 bits:
    255 * 4 * 127 * 2^20 leaves int32), planned with that analysis switched off."""
    import codegen.generator.plan as plan_module

    net = tiny_network(None, n_in=4, n=3, seed=3)
    layer = dataclasses.replace(net.layers[0], weight=np.full((3, 4), 127, np.int8), weight_frac=0, v_frac=20,
                                bias=np.zeros(3, np.int32), threshold=1 << 14)
    net = dataclasses.replace(net, layers=(layer,))
    with pytest.raises(ValueError, match="overflows int32"):
        generate(net, "unchecked")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plan_module, "overflow_check", lambda *args, **kwargs: None)
        return build(*generate(net, "unchecked"), BuildOptions(sanitize=True))


@pytest.mark.parametrize(
    "which, call, findings",
    [
        # n_inputs 4 with a 3-byte buffer: the input kernel reads one byte past the heap block
        ("canary", "lib.canary_step(state, ffi.new('uint8_t[]', 3), 4, ffi.NULL, 0)",
         ("AddressSanitizer: heap-buffer-overflow", "canary_step")),
        # a model that the overflow analysis refuses: the shifted feed-forward accumulator overflows int32
        ("unchecked", "lib.unchecked_step(state, ffi.new('uint8_t[]', [255] * 4), 4, ffi.NULL, 0)",
         ("runtime error: signed integer overflow", "delrec_runtime.h")),
    ],
)  # fmt: skip
def test_sanitizers_instrument_the_model_code_itself(canary_build, unchecked_build, which, call, findings):
    """Negative control on a model build: misuse that makes the generated code itself misbehave (an input
    buffer shorter than ``n_inputs``; a model whose intermediates the overflow analysis would have refused)
    is reported by ASan / UBSan from the model's own functions, so the model object (not only cffi's
    wrapper) is compiled with the sanitizers and without -fwrapv."""
    b = canary_build if which == "canary" else unchecked_build
    harmless = (f"state = ffi.new('{which}_state *')\n"
                f"assert lib.{which}_step(state, ffi.new('uint8_t[]', 4), 4, ffi.NULL, 0) == 0")
    assert_aborted_with(run_probe(b.module, b.path, harmless, call), *findings)


# ------------------------------------------------------------------------- 3. a million steps, no reset

STREAM_STEPS = 1_000_000
SEGMENT = 1_000  # STREAM_STEPS / SEGMENT segments run as one batched reference state


def _int8(rng: np.random.Generator, shape, lo: int, hi: int) -> np.ndarray:
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(np.int8)


def streaming_network(case: str) -> IntNetwork:
    """Two recurrent layers whose rings have different lengths, with moderate spike rates.

    ``"conv7-dense5"``: conv recurrence with per-neuron delays 0..5 (L = 7), then dense with delays 0..3 (L = 5).
    ``"taps5-conv4"``: taps with D = 4 lags (L = 5) on 20-bit membranes, then conv with every delay 2 (L = 4).
    """
    rng = np.random.default_rng(11)
    if case == "conv7-dense5":
        d0 = rng.integers(0, 5, 8, endpoint=True)
        d0[3] = 5
        rec0 = IntRecurrence("conv", _int8(rng, (2, 2, 3), -40, 60), 6, d0.astype(np.int32))
        d1 = rng.integers(0, 3, 6, endpoint=True)
        d1[0] = 3
        rec1 = IntRecurrence("dense", _int8(rng, (6, 6), -50, 60), 6, d1.astype(np.int32))
        state_bits = (16, 16)
    elif case == "taps5-conv4":
        rec0 = IntRecurrence("taps", _int8(rng, (4, 2, 2, 3), -40, 50), 6, np.zeros(0, np.int32))
        rec1 = IntRecurrence("conv", _int8(rng, (1, 1, 5), -50, 70), 6, np.full(6, 2, np.int32))
        state_bits = (20, 16)
    else:
        raise ValueError(case)
    n0 = 8 if rec0.variant == "conv" else 6
    layers = (
        IntLayer(weight=_int8(rng, (n0, 4), -20, 40), weight_frac=6, bias=rng.integers(-20, 20, n0).astype(np.int32),
                 v_frac=8, threshold=600, leak_mul=28, leak_shift=5, reset="subtract", recurrence=rec0,
                 state_bits=state_bits[0]),
        IntLayer(weight=_int8(rng, (6, n0), -30, 80), weight_frac=6, bias=rng.integers(-20, 20, 6).astype(np.int32),
                 v_frac=7, threshold=300, leak_mul=3, leak_shift=2, reset="zero", recurrence=rec1,
                 state_bits=state_bits[1]),
    )  # fmt: skip
    readout = IntReadout(
        weight=_int8(rng, (3, 6), -100, 100),
        weight_frac=6,
        bias=np.array([5, -5, 0], np.int32),
        v_frac=8,
        leak_mul=29491,
        leak_shift=15,
    )
    return IntNetwork(n_inputs=4, layers=layers, readout=readout, bin_ms=4.0, classes=("a", "b", "c"))


def burst_stream(rng: np.random.Generator, steps: int, n_inputs: int) -> np.ndarray:
    """(steps, n_inputs) uint8 counts: stretches of silence, sparse activity, dense bursts and short
    saturated bursts, each 1..2000 steps long."""
    out = np.zeros((steps, n_inputs), np.uint8)
    t = 0
    while t < steps:
        length = min(int(rng.integers(1, 2000, endpoint=True)), steps - t)
        kind = rng.choice(4, p=[0.3, 0.3, 0.3, 0.1])
        shape = (length, n_inputs)
        if kind == 1:  # sparse
            out[t : t + length] = (rng.random(shape) < 0.2) * rng.integers(1, 3, shape, endpoint=True)
        elif kind == 2:  # dense
            out[t : t + length] = rng.integers(0, 12, shape, endpoint=True)
        elif kind == 3:  # saturated, kept short
            out[t : t + min(length, 20)] = 255
        t += length
    return out


def reference_state_at(net: IntNetwork, got: Trace, starts: np.ndarray) -> rm.State:
    """A batched reference State whose sample ``b`` is the state of a continuous run at step ``starts[b]``,
    rebuilt from the C trace: membranes, ``u`` and score after step ``starts[b] - 1``, each ring holding the
    spikes of the last ``L - 1`` steps at the slots the (local, zero-based) step counter reads them from."""
    state = rm.initial_state(net, batch=len(starts))
    first = starts == 0
    prev = np.maximum(starts - 1, 0)
    for i in range(len(net.layers)):
        v = got.v[i][prev].astype(np.int64)
        v[first] = 0
        state.v[i] = v
        ring = state.ring[i]
        if ring is not None:
            slots = ring.shape[0]
            for k in range(1, slots):  # lag k of local step 0 is read from slot (0 - k) % L
                src = starts - k
                spikes = got.spikes[i][np.maximum(src, 0)].copy()
                spikes[src < 0] = 0  # before the stream: the zero state
                ring[(-k) % slots] = spikes
    state.u = got.u[prev].astype(np.int64)
    state.u[first] = 0
    state.score = got.score[prev].astype(np.int64)
    state.score[first] = 0
    return state


@pytest.mark.parametrize("steps", [STREAM_STEPS, pytest.param(10 * STREAM_STEPS, marks=pytest.mark.slow, id="1e7")])
@pytest.mark.parametrize("case", ["conv7-dense5", "taps5-conv4"])
def test_million_step_stream_equals_one_continuous_reference_run(case, steps):
    """The C runs 10^6 steps in one call (10^7 in ``make test-slow``), without a reset (every ring wraps
    ~200,000 times per 10^6 steps); the whole trace equals one continuous run of the reference model, after
    every step.

    The Python reference cannot run 10^6 sequential steps in CI, so the proof is by induction over
    segments of S = 1000 steps. The reference State at step t is a function of the reference *trace* up to
    t - 1 alone: the membranes, ``u`` and score after step t - 1, and the spikes of steps t - L + 1 .. t - 1
    (the only ring slots any later step reads; the slot ``t % L`` is overwritten before it is read).

    * Segment 0 starts from the zero state, which is the continuous run's state at step 0.
    * If the C trace equals the continuous run on steps 0 .. t0 - 1 (t0 = b * S), then the state rebuilt
      from the C trace at t0 IS the continuous run's state at t0, so running the reference S steps from it
      gives exactly the continuous run on t0 .. t0 + S - 1; the test requires the C trace to equal that.

    Hence the C equals the continuous reference on all 10^6 steps. All segments are checked at once, as one
    batched State (batch axis = segment) whose step counter starts at 0; rebuilding the rings at slots
    ``(0 - k) % L`` keeps the reference's slot arithmetic local. The ring heads of the C are checked directly
    against ``(t + 1) % L`` after every step.
    """
    net = streaming_network(case)
    assert len({rm.ring_length(layer.recurrence) for layer in net.layers}) == 2  # the rings differ in length
    plan, files = generate(net, "stream")
    hm = build_host_model(plan, files)
    x = burst_stream(np.random.default_rng(2024), steps, net.n_inputs)
    got = hm.trace(hm.new_state(), x)  # one continuous stream

    assert_array_equal(got.head, expected_heads(net, steps), err_msg="ring heads")
    for i in range(len(net.layers)):
        rate = got.spikes[i].mean()
        assert 0.01 < rate < 0.6, f"layer {i} spike rate {rate}: the stream does not exercise the model"

    starts = np.arange(0, steps, SEGMENT)
    state = reference_state_at(net, got, starts)
    recurrent_drive = np.zeros(len(net.layers), np.int64)
    for s in range(SEGMENT):
        t = starts + s
        tr = rm.step(net, state, x[t])
        where = f"local step {s} of every segment (row b is global step b * {SEGMENT} + {s})"
        for i in range(len(net.layers)):
            assert_array_equal(got.v[i][t], tr.layers[i].v, err_msg=f"layer {i} membranes, {where}")
            assert_array_equal(got.spikes[i][t], tr.layers[i].spikes, err_msg=f"layer {i} spikes, {where}")
            recurrent_drive[i] += np.count_nonzero(tr.layers[i].acc_rec)
        assert_array_equal(got.u[t], tr.u, err_msg=f"u, {where}")
        assert_array_equal(got.score[t], tr.score, err_msg=f"score, {where}")
    # the delayed recurrence really drives the neurons (not a feed-forward stream in disguise)
    for i, layer in enumerate(net.layers):
        assert recurrent_drive[i] > 0.01 * steps * layer.n, f"layer {i}: recurrence almost never active"


# ------------------------------------------------------------------------------------- 4. the C API


API_CLASSES = 4


@pytest.fixture(scope="module")
def api_model():
    """(net, HostModel) of a 2-layer conv model with 4 inputs, 6 neurons per layer and 4 classes."""
    net = tiny_network("conv", n_in=4, n=6, n_layers=2, n_classes=API_CLASSES, seed=5)
    plan, files = generate(net, "api")
    return net, build_host_model(plan, files)


def dirty_state(hm, steps: int = 25):
    """A state after ``steps`` steps of busy input, so that most of its bytes are non-zero."""
    state = hm.new_state()
    hm.trace(state, np.random.default_rng(0).integers(0, 255, (steps, hm.plan.n_inputs), endpoint=True))
    assert state_bytes(hm, state).count(0) < len(state_bytes(hm, state))
    return state


def test_null_pointers_are_refused_and_change_nothing(api_model):
    """Every required pointer that is NULL gives ERR_NULL (-1), and the state is untouched."""
    _, hm = api_model
    ffi, null = hm.ffi, hm.ffi.NULL
    state = dirty_state(hm)
    before = state_bytes(hm, state)
    counts = ffi.new("uint8_t[]", 4 * 3)
    u = ffi.new("int32_t[]", API_CLASSES)
    scores = ffi.new("int64_t[]", API_CLASSES)
    assert fn(hm, "reset")(null) == -1
    assert fn(hm, "step")(null, counts, 4, u, API_CLASSES) == -1
    assert fn(hm, "step")(state, null, 4, u, API_CLASSES) == -1
    assert fn(hm, "classify")(null, counts, 3, 4, scores, API_CLASSES) == -1
    assert fn(hm, "classify")(state, null, 3, 4, scores, API_CLASSES) == -1
    assert fn(hm, "predict")(null) == -1
    assert state_bytes(hm, state) == before
    assert list(u) == [0] * API_CLASSES and list(scores) == [0] * API_CLASSES


@pytest.mark.parametrize(
    "call",
    [
        "step n_inputs 3", "step n_inputs 5", "step n_inputs 0", "step n_readout 3", "step n_readout 5",
        "step n_readout 0", "classify n_inputs 3", "classify n_inputs 5", "classify n_scores 3", "classify n_scores 5",
    ],
)  # fmt: skip
def test_wrong_sizes_are_refused_and_change_nothing(api_model, call):
    """A size argument that does not match the model gives ERR_SIZE (-2); neither the state nor the output
    buffer is touched."""
    _, hm = api_model
    ffi = hm.ffi
    func, what, value = call.split()
    value = int(value)
    state = dirty_state(hm)
    before = state_bytes(hm, state)
    counts = ffi.new("uint8_t[]", [7] * (4 * 3))
    if func == "step":
        out = ffi.new("int32_t[]", [-7] * API_CLASSES)
        args = (4, out, value) if what == "n_readout" else (value, out, API_CLASSES)
        rc = fn(hm, "step")(state, counts, *args)
    else:
        out = ffi.new("int64_t[]", [-7] * API_CLASSES)
        args = (4, out, value) if what == "n_scores" else (value, out, API_CLASSES)
        rc = fn(hm, "classify")(state, counts, 3, *args)
    assert rc == -2
    assert state_bytes(hm, state) == before
    assert list(out) == [-7] * API_CLASSES


def test_step_without_readout_buffer(api_model):
    """``readout`` may be NULL (then ``n_readout`` is ignored); the state advances exactly as with a buffer."""
    net, hm = api_model
    x = np.random.default_rng(1).integers(0, 20, (12, 4)).astype(np.uint8)
    with_buffer, without = hm.new_state(), hm.new_state()
    for row in x:
        counts = hm.ffi.from_buffer("uint8_t[]", np.ascontiguousarray(row))
        u = hm.ffi.new("int32_t[]", API_CLASSES)
        assert fn(hm, "step")(with_buffer, counts, 4, u, API_CLASSES) == 0
        assert fn(hm, "step")(without, counts, 4, hm.ffi.NULL, 999) == 0
        assert state_bytes(hm, with_buffer) == state_bytes(hm, without)
        assert list(u) == list(without.u)
    assert list(without.score) == rm.run(net, x).scores[0].tolist()


@pytest.mark.parametrize("inputs_null", [True, False])
def test_classify_of_zero_steps(api_model, inputs_null):
    """``n_steps`` 0 (inputs may then be NULL) resets the state and gives class 0 with all-zero scores."""
    _, hm = api_model
    state = dirty_state(hm)
    scores = hm.ffi.new("int64_t[]", [-7] * API_CLASSES)
    inputs = hm.ffi.NULL if inputs_null else hm.ffi.new("uint8_t[]", 4)
    assert fn(hm, "classify")(state, inputs, 0, 4, scores, API_CLASSES) == 0
    assert list(scores) == [0] * API_CLASSES
    assert state_bytes(hm, state).count(0) == len(state_bytes(hm, state))


@pytest.mark.parametrize(
    "scores, want",
    [([5, 9, 9, -1], 1), ([0, 0, 0, 0], 0), ([-3, -2, -2, -2], 1), ([1, 1, 1, 2], 3),
     ([-(2**63), -(2**63), -(2**63), -(2**63)], 0), ([2**63 - 1, 0, 2**63 - 1, 0], 0)],
)  # fmt: skip
def test_predict_is_the_first_largest_score(api_model, scores, want):
    """``predict`` returns the first index of the largest score (ties to the lowest index), like numpy's argmax."""
    _, hm = api_model
    state = hm.new_state()
    for k, value in enumerate(scores):
        state.score[k] = value
    assert fn(hm, "predict")(state) == want == rm.predictions_from(np.array(scores)).item()


def test_reset_clears_every_byte_and_state_size_matches_the_plan(api_model):
    """After ``reset`` every byte of a busy state is zero (membranes, rings, heads, spikes, u, score), and
    ``sizeof`` the state struct is the size the plan (and so the memory report) states."""
    _, hm = api_model
    state = dirty_state(hm)
    assert fn(hm, "reset")(state) == 0
    raw = state_bytes(hm, state)
    assert raw == bytes(len(raw))
    assert hm.ffi.sizeof("api_state") == hm.plan.state_bytes == len(raw)


def test_two_models_with_different_prefixes_in_one_process():
    """Two different models (and one of them a second time under another prefix) load side by side and,
    stepped interleaved, each equals its own reference: no shared global state, no symbol clash."""
    nets = {"alpha": tiny_network("dense", n_in=3, n=5, seed=1), "beta": tiny_network("taps", n_in=3, n=6, seed=2)}
    nets["gamma"] = nets["alpha"]
    models = {p: build_host_model(*generate(net, p)) for p, net in nets.items()}
    assert len({m.build.module for m in models.values()}) == 3
    x = np.random.default_rng(4).integers(0, 30, (30, 3)).astype(np.uint8)
    states = {p: m.new_state() for p, m in models.items()}
    got = {p: [] for p in models}
    for row in x:
        for p, m in models.items():
            got[p].append(m.step(states[p], row))
    for p, net in nets.items():
        assert_array_equal(np.array(got[p]), rm.run(net, x, keep_trace=True).trace.u[0], err_msg=p)
    assert_array_equal(got["alpha"], got["gamma"])


WEIRD_NAMES = ("plain", 'say "hi"', "back\\slash", "what??!", "na\u00efve1", "tab\there", "", "new\nline")

MAIN_C = r"""
#include <stdio.h>
#include "alpha.h"
#include "beta.h"

static const uint8_t alpha_in[{t}][ALPHA_N_INPUTS] = {{ {alpha_in} }};
static const uint8_t beta_in[{t}][BETA_N_INPUTS] = {{ {beta_in} }};

static void print_names(const char *tag, const char *const *names, int n)
{{
    int k;
    for (k = 0; k < n; k++) {{
        const char *c;
        printf("%s name", tag);
        for (c = names[k]; *c != '\0'; c++) printf(" %02x", (unsigned)(unsigned char)*c);
        printf("\n");
    }}
}}

int main(void)
{{
    static alpha_state a;
    static beta_state b;
    int64_t sa[ALPHA_N_CLASSES], sb[BETA_N_CLASSES];
    int32_t u[BETA_N_CLASSES];
    size_t t;
    int k;
    const int ca = alpha_classify(&a, &alpha_in[0][0], {t}u, ALPHA_N_INPUTS, sa, ALPHA_N_CLASSES);
    const int cb = beta_classify(&b, &beta_in[0][0], {t}u, BETA_N_INPUTS, sb, BETA_N_CLASSES);
    printf("alpha class %d scores", ca);
    for (k = 0; k < ALPHA_N_CLASSES; k++) printf(" %lld", (long long)sa[k]);
    printf("\nbeta class %d scores", cb);
    for (k = 0; k < BETA_N_CLASSES; k++) printf(" %lld", (long long)sb[k]);
    /* the usage the header documents: reset, step per bin, predict */
    if (beta_reset(&b) != BETA_OK) return 1;
    for (t = 0u; t < {t}u; t++) {{
        if (beta_step(&b, beta_in[t], BETA_N_INPUTS, u, BETA_N_CLASSES) != BETA_OK) return 1;
    }}
    printf("\nbeta streamed %d\n", beta_predict(&b));
    printf("alpha sha %s\nbeta sha %s\n", ALPHA_MODEL_SHA256, BETA_MODEL_SHA256);
    print_names("alpha", alpha_class_names, ALPHA_N_CLASSES);
    print_names("beta", beta_class_names, BETA_N_CLASSES);
    return 0;
}}
"""


def _c_rows(x: np.ndarray) -> str:
    return ", ".join("{" + ", ".join(str(int(c)) for c in row) + "}" for row in x)


def test_c_program_links_two_models_with_their_class_names(tmp_path):
    """A plain C99 program (strict flags) links two generated models into one binary; ``classify``, the
    documented reset/step/predict loop, the ``MODEL_SHA256`` macro and the class names (with quotes,
    backslashes, trigraph-like '??!', UTF-8, tabs, newlines and the empty string) all come out exactly."""
    alpha = tiny_network("conv", n_in=3, n=6, n_classes=3, seed=8)
    beta = dataclasses.replace(
        tiny_network("dense", n_in=5, n=4, n_classes=len(WEIRD_NAMES), seed=9), classes=WEIRD_NAMES
    )
    cc = compiler()
    objects = []
    for prefix, net in (("alpha", alpha), ("beta", beta)):
        folder = tmp_path / prefix
        folder.mkdir()
        for name, text in generate(net, prefix)[1].items():
            (folder / name).write_bytes(text.encode())
        obj = tmp_path / f"{prefix}.o"
        subprocess.run([cc, *STRICT_FLAGS, "-O2", "-c", str(folder / f"{prefix}.c"), "-o", str(obj)], check=True)
        objects.append(str(obj))
    rng = np.random.default_rng(10)
    xa, xb = rng.integers(0, 40, (20, 3)), rng.integers(0, 40, (20, 5))
    (tmp_path / "main.c").write_text(MAIN_C.format(t=20, alpha_in=_c_rows(xa), beta_in=_c_rows(xb)))
    exe = tmp_path / "main"
    proc = subprocess.run(
        [cc, *STRICT_FLAGS, "-O2", "-I", str(tmp_path / "alpha"), "-I", str(tmp_path / "beta"),
         str(tmp_path / "main.c"), *objects, "-o", str(exe)], capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()

    ra, rb = rm.run(alpha, xa), rm.run(beta, xb)
    names_alpha = [" ".join(f"{b:02x}" for b in f"class{k}".encode()) for k in range(3)]
    names_beta = [" ".join(f"{b:02x}" for b in n.encode()) for n in WEIRD_NAMES]
    assert lines == [
        f"alpha class {ra.predictions[0]} scores " + " ".join(map(str, ra.scores[0])),
        f"beta class {rb.predictions[0]} scores " + " ".join(map(str, rb.scores[0])),
        f"beta streamed {rb.predictions[0]}",
        f"alpha sha {network_digest(alpha)}",
        f"beta sha {network_digest(beta)}",
        *[f"alpha name {h}".rstrip() for h in names_alpha],
        *[f"beta name {h}".rstrip() for h in names_beta],
    ]


def _banner(text: str) -> str:
    if text.startswith("#\n"):  # CMakeLists.txt: the same banner as # comments
        return text[: text.index("\n#\n") + 2]
    assert text.startswith("/*\n"), text[:80]
    return text[: text.index("*/") + 2]


def test_generated_files_are_deterministic_and_carry_the_model_banner(tmp_path):
    """The same model gives byte-identical files (also after a save/load round trip of the model file);
    every file opens with the banner naming the model's sha256 and "DO NOT EDIT"; a different model
    changes every file, the runtime files only in their banner."""
    net = tiny_network("taps", n_in=4, n=6, n_layers=2, seed=12)
    _, files = generate(net, "det")
    assert sorted(files) == sorted(["det.h", "det.c", "det_weights.h", "CMakeLists.txt", *RUNTIME_FILES])
    assert generate(net, "det")[1] == files
    save_network(net, tmp_path / "m.int.npz")
    assert generate(load_network(tmp_path / "m.int.npz"), "det")[1] == files

    digest = network_digest(net)
    for name, text in files.items():
        banner = _banner(text)
        assert digest in banner and "DO NOT EDIT" in banner, name
        assert "\r" not in text and text.endswith("\n"), name

    other = tiny_network("taps", n_in=4, n=6, n_layers=2, seed=13)
    other_digest = network_digest(other)
    assert other_digest != digest
    _, other_files = generate(other, "det")
    assert sorted(other_files) == sorted(files)
    for name, text in other_files.items():
        banner = _banner(text)
        assert other_digest in banner and digest not in banner, name
        assert text != files[name], name
        if name in RUNTIME_FILES:
            assert text[len(banner) :] == files[name][len(_banner(files[name])) :], name


@pytest.mark.parametrize(
    "prefix",
    ["int", "static", "bool", "delrec_x", "delrec", "DELREC_model", "1model", "_model", "", "my-model", "model_",
     "a" * (MAX_PREFIX + 1), "caf\u00e9", "stdint", "stddef", "string", "String", "app_config"],
)  # fmt: skip
def test_unusable_prefixes_are_refused(prefix):
    """C keywords, the runtime's ``delrec_`` namespace, a leading digit or underscore, other characters and
    names too long for C99's 31 significant characters (with ``_classify``) raise ValueError."""
    net = tiny_network(None, seed=0)
    with pytest.raises(ValueError, match="prefix"):
        make_plan(net, prefix)
    with pytest.raises(ValueError, match="prefix"):
        generate(net, prefix)


def test_longest_prefix_is_accepted():
    plan = make_plan(tiny_network(None, seed=0), "a" * MAX_PREFIX)
    assert plan.macro == "A" * MAX_PREFIX
