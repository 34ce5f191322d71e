"""The audio front end: shapes, determinism, frequency selectivity, causality and streaming."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytrain.data import frontend as fe
from pytrain.cli import main
from pytrain.data.frontend import FrontEndConfig

SR = 16000
RAW = FrontEndConfig(normalize_rms=None)  # no whole-clip pre-step: the chain is then strictly causal


def noise(seconds: float, seed: int = 0, rms: float = 0.1) -> np.ndarray:
    return rms * np.random.default_rng(seed).standard_normal(int(seconds * SR))


def sine(freq: float, seconds: float = 0.5, amplitude: float = 0.1) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(int(seconds * SR)) / SR)


def test_shapes_and_order():
    x = noise(0.5) + noise(0.5, seed=1) * np.linspace(0, 1, SR // 2)
    counts = fe.encode_counts(x[:8007])  # a partial last step is dropped
    assert counts.shape == (500, 32) and counts.dtype == np.uint8 and counts.max() == 1
    steps, channels = fe.encode(x[:8007])
    assert steps.dtype == np.int64 and channels.dtype == np.int64 and steps.size == counts.sum()
    order = steps * 32 + channels
    assert np.all(np.diff(order) > 0), "sorted by step, then channel, no duplicates"
    assert steps.max() < 500 and 0 <= channels.min() and channels.max() < 32
    np.testing.assert_array_equal(counts[steps, channels], 1)


def test_deterministic():
    x = noise(0.3, seed=5)
    a, b = fe.encode(x), fe.encode(x.copy())
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("cfg", [FrontEndConfig(), RAW])
def test_silence_gives_no_spikes(cfg):
    assert fe.encode_counts(np.zeros(SR), cfg).sum() == 0
    assert fe.encode(np.zeros(0), cfg)[0].size == 0


@pytest.mark.parametrize("channel", [2, 9, 16, 23, 30])
def test_tone_at_a_centre_frequency_drives_that_channel_most(channel):
    centre = fe.centre_frequencies(RAW)[channel]
    counts = fe.encode_counts(sine(centre), RAW).sum(axis=0)
    assert np.argmax(counts) == channel
    assert counts[channel] > counts[np.arange(32) != channel].max()


def test_causal_first_half_does_not_depend_on_second_half():
    first = noise(0.5, seed=1)
    a = fe.encode_counts(np.concatenate([first, noise(0.5, seed=2)]), RAW)
    b = fe.encode_counts(np.concatenate([first, noise(0.5, seed=3, rms=0.5)]), RAW)
    np.testing.assert_array_equal(a[:500], b[:500])
    assert not np.array_equal(a[500:], b[500:])


@given(st.lists(st.integers(0, 40), min_size=1, max_size=6))
def test_streaming_in_chunks_equals_one_call(chunk_steps):
    x = noise(0.25, seed=7)
    whole = fe.encode_counts(x, RAW).astype(bool)
    state, parts, start = fe.initial_state(RAW), [], 0
    for n in chunk_steps + [len(x) // 16]:  # the last chunk takes the rest
        stop = min(start + 16 * n, len(x))
        spikes, state = fe.process_chunk(x[start:stop], RAW, state)
        parts.append(spikes)
        start = stop
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_chunk_must_be_whole_steps():
    with pytest.raises(ValueError, match="multiple of 16"):
        fe.process_chunk(np.zeros(17), RAW, fe.initial_state(RAW))


def test_encode_batch_equals_encode_per_clip():
    clips = [noise(0.2, seed=1), noise(0.31, seed=2), np.zeros(5), noise(0.05, seed=3, rms=0.3)]
    for clip, (steps, channels) in zip(clips, fe.encode_batch(clips)):
        expected = fe.encode(clip)
        np.testing.assert_array_equal(steps, expected[0])
        np.testing.assert_array_equal(channels, expected[1])
    assert fe.encode_batch([]) == []


def test_rms_normalisation_makes_gain_irrelevant():
    x = noise(0.2, seed=4)
    a, b = fe.encode_counts(x), fe.encode_counts(x * 7.0)
    assert np.mean(a != b) < 1e-3  # identical up to float rounding at the threshold


def test_lif_hand_computed_trajectory():
    """beta = 1/2, threshold 1/2, constant input 3/8: every value is exact in binary floating point."""
    features = np.full((8, 1), 0.375)
    rest = np.zeros(1)
    spikes, v, r = fe.lif_encode(features, 0.5, 0.5, 1, rest, rest)
    assert np.flatnonzero(spikes[:, 0]).tolist() == [1, 4, 7]
    assert v[0] == 0.5712890625 - 0.5 and r[0] == 1
    spikes, _, _ = fe.lif_encode(features, 0.5, 0.5, 0, rest, rest)
    assert np.flatnonzero(spikes[:, 0]).tolist() == [1, 3, 5, 7]


def test_refractory_step_limits_the_rate():
    counts = fe.encode_counts(noise(0.3, rms=0.3))
    assert not np.any(counts[1:] & counts[:-1]), "no channel fires in two consecutive steps"
    assert counts.sum() > 0


def test_centre_frequencies_are_erb_spaced():
    fc = fe.centre_frequencies(FrontEndConfig())
    assert fc.size == 32 and abs(fc[0] - 100) < 1e-9 and abs(fc[-1] - 7000) < 1e-6
    np.testing.assert_allclose(np.diff(fe.hz_to_erb_rate(fc)), np.diff(fe.hz_to_erb_rate(fc))[0])
    edges = fe.band_edges(FrontEndConfig())
    assert edges[-1, 1] == 0.98 * SR / 2 and np.all(edges[:, 0] < fc) and np.all(fc < edges[:, 1])


def test_filter_design_is_cached_and_stable():
    sos = fe.design_filterbank(FrontEndConfig())
    assert sos is fe.design_filterbank(FrontEndConfig())
    assert sos.shape == (32, 2, 6) and not sos.flags.writeable
    poles = np.concatenate([np.roots([1.0, s[4], s[5]]) for s in sos.reshape(-1, 6)])
    assert np.all(np.abs(poles) < 1)


@pytest.mark.parametrize(
    "kwargs",
    [dict(step_ms=0.1), dict(f_high=7900.0), dict(f_low=0.0), dict(n_channels=0), dict(normalize_rms=0.0), dict(q=0.5)],
)
def test_invalid_configs_are_rejected(kwargs):
    with pytest.raises(ValueError):
        FrontEndConfig(**kwargs)


def test_other_rates_and_channel_counts():
    cfg = FrontEndConfig(sample_rate=8000, n_channels=16, f_high=3500.0)
    counts = fe.encode_counts(noise(0.5)[:4000], cfg)
    assert counts.shape == (500, 16) and counts.sum() > 0


def test_bench_frontend_command(capsys):
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    argv = ["bench-frontend", "--seconds", "0.2", "--channels", "8", "16", "--repeats", "3"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "x real time" in lines[1] and len(lines) == 2 + 2 * 3, "integer, integer batched and float per count"
    rows = [line.rsplit(None, 6) for line in lines[2:]]
    assert [(r[0], int(r[1])) for r in rows] == [
        ("integer", 8), ("integer, 16 clips of 1 s", 8), ("float", 8),
        ("integer", 16), ("integer, 16 clips of 1 s", 16), ("float", 16)]
    assert all(float(r[-1]) > 0 and float(r[3]) <= float(r[4]) <= float(r[5]) for r in rows)
    assert main([*argv, "--front-end", "float"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    if before is not None:
        assert os.sched_getaffinity(0) == before, "the CPU pinning is undone afterwards"
    assert main([*argv, "--front-end", "cochlea"]) == 2


def test_front_end_follows_the_recordings_sample_rate():
    from pytrain.data.frontend import FrontEndConfig, band_edges, describe, front_end_for_rate

    default = FrontEndConfig()
    for rate in (16000, 22050, 44100, 48000):
        assert front_end_for_rate(rate) == default  # wide-band recordings keep the 7 kHz default
    for rate in (8000, 11025, 12000):
        cfg = front_end_for_rate(rate)
        assert cfg.sample_rate == 8000 and cfg.n_channels == default.n_channels and cfg.f_low == default.f_low
        assert cfg.f_high == 3370.0 and band_edges(cfg)[-1, 1] <= 0.95 * 4000  # nothing above what 8 kHz holds
    assert front_end_for_rate(6000).f_high == 2530.0
    assert describe(front_end_for_rate(8000)) == (
        "front end: 8000 Hz, 32 channels, centres 100..3370 Hz (ERB-spaced, Q 4), 1 ms steps")
    with pytest.raises(ValueError):
        front_end_for_rate(0)
