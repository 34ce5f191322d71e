"""The generated front end equals the integer reference (``codegen/integer/frontend_ref.py``) bit for bit.

Zero tolerance: every count of every channel at every bin, and the front end's complete state (ring, positions,
floor, peak, encoder membranes and refractory counters, last counts) after every piece of input, for hypothesis
PCM (silence, full-scale squares and sines, chirps, noise, clipping at the extremes, DC, impulses, mixtures) fed
in random pieces; ``<prefix>_listen`` against the Python pipeline (front end, then the reference model) at every
step; an AddressSanitizer + UBSan build in a subprocess; one stream of 10 minutes without a reset; the C API.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal
from audio_strategies import chunkings, make_signal, pcm
from intnet_builders import tiny_network

from codegen.generator.emit import generate
from codegen.integer import frontend_ref as fr
from codegen.integer import refmodel as rm
from codegen.integer.frontend import FrontEndConfig, design
from codegen.integer.modelfile import save_network
from codegen.verify.hostbuild import BuildOptions, build, build_host_model, sanitizer_env

EXAMPLES = settings().max_examples
CONFIGS = {
    "default": FrontEndConfig(),
    "8 kHz": FrontEndConfig(sample_rate=8000, f_high=3800.0),
    "leaky, 16 channels, unpooled": FrontEndConfig(n_channels=16, leak_shift=2, substeps=12, refractory=2, floor_fall_shift=1,
                                                  pool_bins=1),
}


def hearing_network(name: str = "default", variant: str = "conv"):
    fe = design(CONFIGS[name])
    net = tiny_network(variant, n_in=fe.n_channels, n=8, n_layers=2, n_classes=3, seed=9)
    return dataclasses.replace(net, bin_ms=fe.hop_ms, frontend=fe)


_HOSTS: dict = {}


def host(name: str = "default", reference_kernels: bool = False):
    """(net, HostModel), built once per configuration and kernel set."""
    key = (name, reference_kernels)
    if key not in _HOSTS:
        net = hearing_network(name)
        plan, files = generate(net, "ear")
        _HOSTS[key] = net, build_host_model(plan, files, BuildOptions(reference_kernels=reference_kernels))
    return _HOSTS[key]


def expected_states(fe, x: np.ndarray, sizes: list[int]):
    """The reference's counts of every bin and its state after every piece."""
    state = fr.initial_state(fe)
    counts, states, at = [], [], 0
    for n in sizes:
        c, state, _ = fr.feed(fe, state, x[at : at + n])
        counts.append(c[0])
        states.append(state)
        at += n
    return np.concatenate(counts), states


def assert_hear_equal(heard, counts, states, where: str = "") -> None:
    assert_array_equal(heard.bins, counts, err_msg=f"counts {where}")
    for name in ("floor", "v", "refractory", "counts", "ring", "prev"):
        assert_array_equal(getattr(heard, name), np.stack([getattr(s, name)[0] for s in states]),
                           err_msg=f"{name} after each piece {where}")
    assert_array_equal(heard.peak, [s.peak[0] for s in states], err_msg=f"peak {where}")
    assert_array_equal(heard.pos, [s.pos for s in states], err_msg=f"ring position {where}")
    assert_array_equal(heard.fill, [s.fill for s in states], err_msg=f"fill {where}")


# ------------------------------------------------------------------------------- 1. host build, hear


@settings(max_examples=max(10, EXAMPLES))
@given(name=st.sampled_from(sorted(CONFIGS)), reference_kernels=st.booleans(), data=st.data())
def test_hear_equals_the_reference_for_any_pcm_and_any_chunking(name, reference_kernels, data):
    net, hm = host(name, reference_kernels)
    fe = net.frontend
    x = data.draw(pcm(max_bins=30, hop=fe.hop, sample_rate=fe.sample_rate))
    sizes = data.draw(chunkings(x.size, fe.hop))
    note(f"{name}, {x.size} samples, pieces {sizes}")
    counts, states = expected_states(fe, x, sizes)
    assert_hear_equal(hm.hear(hm.new_state(), x, sizes), counts, states)


@pytest.mark.parametrize("kind", ["alternate", "full-noise", "dc", "impulses", "square"])
def test_the_extremes_for_long_enough_to_reach_steady_state(kind):
    net, hm = host()
    x = make_signal(kind, 16000, 3)
    counts, states = expected_states(net.frontend, x, [x.size])
    assert_hear_equal(hm.hear(hm.new_state(), x), counts, states, kind)


# ---------------------------------------------------------------------------- 2. listen: audio -> class


@settings(max_examples=max(10, EXAMPLES // 2))
@given(reference_kernels=st.booleans(), data=st.data())
def test_listen_equals_the_python_pipeline(reference_kernels, data):
    net, hm = host("default", reference_kernels)
    x = data.draw(pcm(max_bins=30))
    sizes = data.draw(chunkings(x.size))
    got = hm.listen(hm.new_state(), x, sizes)
    counts, _, trace = fr.run(net.frontend, x, keep_trace=True)
    assert_array_equal(got.counts, counts[0])
    assert_array_equal(got.floor, trace.floor[0])
    assert_array_equal(got.v, trace.v[0])
    if counts.shape[1]:
        ref = rm.run(net, counts.astype(np.int64), keep_trace=True)
        assert_array_equal(got.u, ref.trace.u[0])
        assert_array_equal(got.score, ref.trace.score[0])
    else:
        assert got.u.shape == (0, net.n_classes)


# ------------------------------------------------------------------------------------- 3. sanitizers


def run_audio_worker(net, x: np.ndarray, sizes, options: BuildOptions, tmp: Path) -> dict:
    model, inputs, chunks, outputs = tmp / "m.int.npz", tmp / "pcm.npy", tmp / "chunks.npy", tmp / "out.npz"
    save_network(net, model)
    np.save(inputs, x)
    np.save(chunks, np.asarray(sizes, np.int64))
    flags = ["--audio", "--chunks", str(chunks), f"--optimize={options.optimize}"]
    flags += ["--reference-kernels"] if options.reference_kernels else []
    flags += ["--sanitize"] if options.sanitize else []
    cmd = [sys.executable, "-m", "codegen.verify.hostworker", str(model), "ear", str(inputs), str(outputs), *flags]
    proc = subprocess.run(cmd, env=sanitizer_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"worker failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-6000:]}"
    with np.load(outputs, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@settings(max_examples=max(4, EXAMPLES // 5))
@given(name=st.sampled_from(sorted(CONFIGS)), reference_kernels=st.booleans(), data=st.data())
def test_sanitizer_build_equals_the_reference(name, reference_kernels, data):
    """Built with ``-fsanitize=address,undefined -fno-sanitize-recover=all`` (any finding aborts the worker), the
    front end and listen run hypothesis PCM in random pieces and still equal the reference."""
    net = hearing_network(name)
    fe = net.frontend
    x = data.draw(pcm(max_bins=20, hop=fe.hop, sample_rate=fe.sample_rate))
    sizes = data.draw(chunkings(x.size, fe.hop))
    plan, files = generate(net, "ear")
    options = BuildOptions(reference_kernels=reference_kernels, sanitize=True)
    build(plan, files, options)  # compile here, outside the preloaded process; the worker finds it cached
    with tempfile.TemporaryDirectory() as tmp:
        out = run_audio_worker(net, x, sizes, options, Path(tmp))
    counts, states = expected_states(fe, x, sizes)
    assert_array_equal(out["bins"], counts)
    for name_ in ("floor", "v", "refractory", "counts", "ring", "prev"):
        assert_array_equal(out[name_], np.stack([getattr(s, name_)[0] for s in states]), err_msg=name_)
    assert_array_equal(out["listen_counts"], counts)
    if counts.shape[0]:
        ref = rm.run(net, counts[None].astype(np.int64), keep_trace=True)
        assert_array_equal(out["u"], ref.trace.u[0])
        assert_array_equal(out["score"], ref.trace.score[0])


PROBE = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location(sys.argv[1], sys.argv[2])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
ffi, lib = mod.ffi, mod.lib
state = ffi.new('ear_state *')
lib.ear_reset(state)
counts = ffi.new('uint8_t[]', 32 * 8)
assert lib.ear_hear(state, ffi.new('int16_t[]', 400), 400, counts, 8) == 2
print("harmless call done", flush=True)
{call}
print("survived", flush=True)
"""


@pytest.mark.parametrize(
    "call, finding",
    [
        # 400 samples announced, 3 given: the front end reads past the heap block
        ("lib.ear_hear(state, ffi.new('int16_t[]', 3), 400, counts, 8)", "AddressSanitizer: heap-buffer-overflow"),
        # a corrupted encoder membrane (far outside 0..threshold): adding the input overflows int32
        ("state.fe_v[0] = 2**31 - 1\nlib.ear_hear(state, ffi.new('int16_t[]', [30000, -30000] * 400), 800, counts, 8)",
         "runtime error: signed integer overflow"),
    ],
)
def test_sanitizers_instrument_the_front_end_itself(call, finding):
    """Negative control: misuse that makes the generated front end misbehave is reported from its own code."""
    b = build(*generate(hearing_network(), "ear"), BuildOptions(sanitize=True))
    proc = subprocess.run([sys.executable, "-c", PROBE.format(call=call), b.module, str(b.path)], env=sanitizer_env(),
                          capture_output=True, text=True, timeout=120)
    assert "harmless call done" in proc.stdout, proc.stderr[-4000:]
    assert proc.returncode != 0 and "survived" not in proc.stdout and finding in proc.stderr, proc.stderr[-4000:]
    assert any(name in proc.stderr for name in ("delrec_frontend.h", "ear_frontend.c", "ear_hear", "delrec_fe_")), \
        "the finding is in the front end's own code"


# --------------------------------------------------------------------------- 4. ten minutes, no reset


def stream(seconds: int, seed: int) -> np.ndarray:
    """Speech-like audio: quiet noise with bursts, tones, chirps and clipped stretches, second by second."""
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(seconds):
        base = (make_signal("noise", 16000, seed * 100000 + i) // 200).astype(np.int64)
        kind = ["noise", "chirp", "sine", "square", "mix", "silence"][int(rng.integers(6))]
        burst = make_signal(kind, 6400, seed * 100000 + i + 50000).astype(np.int64)
        start = int(rng.integers(0, 16000 - 6400))
        base[start : start + 6400] += burst
        parts.append(np.clip(base, -32768, 32767).astype(np.int16))
    return np.concatenate(parts)


def test_ten_minutes_without_a_reset():
    """600 s (60,000 bins) in one stream, fed to the C in random pieces: every count of every bin and the final
    state equal the reference, fed in its own pieces of 10 s."""
    net, hm = host()
    fe = net.frontend
    x = stream(600, 1)
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.integers(0, x.size, size=2000))
    sizes = np.diff(np.concatenate([[0], cuts, [x.size]])).tolist()
    heard = hm.hear(hm.new_state(), x, sizes)
    state, counts = fr.initial_state(fe), []
    for start in range(0, x.size, 160000):
        c, state, _ = fr.feed(fe, state, x[start : start + 160000])
        counts.append(c[0])
    counts = np.concatenate(counts)
    assert counts.shape == (60000, 32) and 0.005 < counts.mean() < 1.0, "the stream exercises the front end"
    assert_array_equal(heard.bins, counts)
    for name in ("floor", "v", "refractory", "counts", "ring", "prev"):
        assert_array_equal(getattr(heard, name)[-1], getattr(state, name)[0], err_msg=name)
    assert heard.peak[-1] == state.peak[0] and heard.pos[-1] == state.pos and heard.fill[-1] == state.fill


@pytest.mark.slow
def test_an_hour_without_a_reset():
    net, hm = host("8 kHz")
    fe = net.frontend
    x = stream(3600, 2)[::2]  # one hour at 8 kHz
    heard = hm.hear(hm.new_state(), x, [x.size // 3, x.size - x.size // 3])
    state, counts = fr.initial_state(fe), []
    for start in range(0, x.size, 80000):
        c, state, _ = fr.feed(fe, state, x[start : start + 80000])
        counts.append(c[0])
    assert_array_equal(heard.bins, np.concatenate(counts))
    assert_array_equal(heard.floor[-1], state.floor[0])


# ----------------------------------------------------------------------------------------- 5. the API


def state_bytes(hm, state) -> bytes:
    return bytes(hm.ffi.buffer(state))


def busy_state(hm):
    state = hm.new_state()
    hm.listen(state, make_signal("mix", 3337, 4))
    return state


def test_zero_samples_and_null_pointers(capsys):
    net, hm = host()
    lib, ffi = hm.lib, hm.ffi
    state = busy_state(hm)
    before = state_bytes(hm, state)
    pcm16 = np.zeros(400, np.int16)
    counts = np.zeros((4, 32), np.uint8)
    buf = ffi.from_buffer
    assert lib.ear_hear(state, ffi.NULL, 0, ffi.NULL, 0) == 0
    assert lib.ear_listen(state, ffi.NULL, 0, ffi.NULL, ffi.NULL) == 0
    assert lib.ear_hear(ffi.NULL, buf("int16_t[]", pcm16), 10, buf("uint8_t[]", counts), 4) == -1
    assert lib.ear_hear(state, ffi.NULL, 10, buf("uint8_t[]", counts), 4) == -1
    assert lib.ear_hear(state, buf("int16_t[]", pcm16), 400, ffi.NULL, 4) == -1
    assert lib.ear_listen(ffi.NULL, buf("int16_t[]", pcm16), 10, ffi.NULL, ffi.NULL) == -1
    assert state_bytes(hm, state) == before


def test_too_small_a_count_buffer_is_refused_and_changes_nothing():
    net, hm = host()
    state = busy_state(hm)
    fill = state.fe_fill
    before = state_bytes(hm, state)
    pcm16 = make_signal("noise", 1000, 2)
    counts = np.zeros((8, 32), np.uint8)
    bins = (fill + 1000) // 160
    buf = hm.ffi.from_buffer
    assert hm.lib.ear_hear(state, buf("int16_t[]", pcm16), 1000, buf("uint8_t[]", counts), bins - 1) == -2
    assert state_bytes(hm, state) == before
    assert hm.lib.ear_hear(state, buf("int16_t[]", pcm16), 1000, buf("uint8_t[]", counts), bins) == bins


@pytest.mark.parametrize("field, value", [("fe_pos", 256), ("fe_pos", 10**6), ("fe_fill", 160), ("fe_fill", 2**32 - 1)])
def test_a_state_with_an_index_out_of_range_is_refused(field, value):
    net, hm = host()
    state = busy_state(hm)
    setattr(state, field, value)
    before = state_bytes(hm, state)
    pcm16 = make_signal("noise", 500, 2)
    buf = hm.ffi.from_buffer
    counts = np.zeros((8, 32), np.uint8)
    assert hm.lib.ear_hear(state, buf("int16_t[]", pcm16), 500, buf("uint8_t[]", counts), 8) == -3
    assert hm.lib.ear_listen(state, buf("int16_t[]", pcm16), 500, hm.ffi.NULL, hm.ffi.NULL) == -3
    assert state_bytes(hm, state) == before


def test_reset_restores_the_front_end_and_the_struct_matches_the_plan():
    net, hm = host()
    state = busy_state(hm)
    hm.reset(state)
    fresh = fr.initial_state(net.frontend)
    assert list(state.fe_floor) == fresh.floor[0].tolist() and state.fe_peak == 0 and state.fe_pos == 0
    assert not any(state.fe_ring) and not any(state.fe_v) and not any(state.score)
    assert hm.ffi.sizeof("ear_state") == hm.plan.state_bytes
    hm.lib.ear_fe_reset(state)
    assert state.fe_fill == 0


def test_generated_front_end_files_are_deterministic():
    a = generate(hearing_network(), "ear")[1]
    b = generate(hearing_network(), "ear")[1]
    assert a == b and "ear_frontend.c" in a and "delrec_frontend.h" in a
    assert "DO NOT EDIT" in a["ear_frontend.c"].splitlines()[1] or "DO NOT EDIT" in a["ear_frontend.c"]
    assert "malloc" not in a["ear_frontend.c"] + a["delrec_frontend.h"]
    assert "float" not in a["ear_frontend.c"] and "double" not in a["delrec_frontend.h"]


def test_the_front_end_stack_and_the_step_stack_do_not_add():
    """The per-bin work is kept out of ``listen`` (DELREC_NOINLINE), so its FFT buffers are freed before the step:
    the static stack of listen is its own frame plus the larger of the two, not their sum."""
    from codegen.generator.memory import memory_report

    plan, files = generate(hearing_network(), "ear")[:2]
    report = memory_report(plan, files)
    fe, step = report["frontend"]["code"], report["flash"]["code"]["stack_step"]
    assert "DELREC_NOINLINE int ear_fe_feed(" in files["ear_frontend.c"]
    assert "ear_step" not in fe["stack_unknown_callees"], "the step's frames are in the graph"
    assert fe["stack_hear"] > step and fe["stack_hear"] <= fe["stack_listen"] < fe["stack_hear"] + step
