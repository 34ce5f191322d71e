"""The integer front end: its design, its reference arithmetic (streaming, causality, hand-checked pieces), the static
overflow analysis, and its place in the model file."""

from __future__ import annotations

import dataclasses
import math
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from audio_strategies import chunkings, make_signal, pcm
from intnet_builders import tiny_network

from codegen.common.errors import UserError
from codegen.integer import frontend_bounds, frontend_ref
from codegen.integer.frontend import (
    FILTER_BITS, LOG_TABLE_BITS, FrontEndConfig, IntFrontEnd, design, filterbank_matrix, mel_points,
    validate_frontend,
)
from codegen.integer.modelfile import (
    frontend_bytes, frontend_digest, load_frontend, load_network, network_digest, save_frontend, save_network,
)
from codegen.integer.validate import validate_network

FE = design(FrontEndConfig())
FE8K = design(FrontEndConfig(sample_rate=8000, f_high=3800.0))


def bursts(n: int, seed: int, level: float = 4000.0) -> np.ndarray:
    """Quiet noise (about -60 dBFS) with a few loud bursts of noise, 150 ms each: a stand-in for words."""
    rng = np.random.default_rng(seed)
    x = 30.0 * rng.standard_normal(n)
    for start in rng.integers(0, max(n - 2400, 1), size=3):
        x[start : start + 2400] += level * rng.standard_normal(min(2400, n - start))
    return np.clip(np.floor(x + 0.5), -32768, 32767).astype(np.int16)


def with_frontend(fe: IntFrontEnd = FE, **kw):
    net = tiny_network("conv", n_in=fe.n_channels, n=8, n_layers=2, seed=3, **kw)
    return dataclasses.replace(net, bin_ms=fe.hop_ms, frontend=fe)


# -------------------------------------------------------------------------------------------- design


def test_default_design():
    assert (FE.sample_rate, FE.hop, FE.frame, FE.n_channels, FE.stages) == (16000, 160, 256, 32, 7)
    assert FE.window.max() == 32767 and FE.window[0] == 0
    assert FE.cos[0] == 1 << 14 and FE.sin[0] == 0 and FE.cos[FE.half] == -(1 << 14) and FE.sin[FE.half] == 0
    assert FE.sin[FE.half // 2] == 1 << 14, "sin(pi/2) = 1 exactly in Q14"
    assert FE.fft_shifts == (1,) * 7 and FE.max_count == 5
    assert FE.log_table[0] == 0 and FE.log_table[-1] == 1 << FE.log_frac
    validate_frontend(FE)


def test_8khz_uses_a_128_point_fft_with_the_same_hop():
    assert (FE8K.sample_rate, FE8K.hop, FE8K.frame, FE8K.hop_ms) == (8000, 80, 128, 10.0)
    frontend_bounds.check(FE8K)


def test_filterbank_is_a_partition_of_mel_triangles():
    g = filterbank_matrix(FE.chan, FE.weight, FE.n_channels)
    assert g.shape == (32, 129) and np.all(g >= 0)
    assert np.all(g.sum(axis=1) > 0), "every channel receives a bin"
    inside = g.sum(axis=0)
    points = mel_points(FrontEndConfig())
    freqs = np.arange(129) * 16000 / 256
    middle = (freqs >= points[1]) & (freqs < points[-2])
    assert np.all(inside[middle] == 1 << FILTER_BITS), "between the outer centres every bin's weights sum to one"
    peaks = np.argmax(g, axis=1)
    assert np.all(np.diff(peaks) >= 0), "channel centres rise with the channel index"


@pytest.mark.parametrize("kwargs", [
    dict(sample_rate=3000), dict(f_low=0.0), dict(f_high=9000.0), dict(hop_ms=0.01), dict(fft_size=300),
    dict(substeps=0), dict(range_db=0.0), dict(log_frac=9), dict(n_channels=0), dict(pool_bins=3),
    dict(pool_bins=0), dict(pool_bins=2, log_frac=8),
])
def test_invalid_configs_are_refused(kwargs):
    with pytest.raises(ValueError):
        FrontEndConfig(**kwargs)


def test_a_channel_without_a_bin_is_refused_with_one_line():
    with pytest.raises(ValueError, match="contains no FFT bin") as info:
        design(FrontEndConfig(n_channels=128, f_low=20.0))
    assert "\n" not in str(info.value)


def test_config_round_trips_through_a_dict():
    cfg = FrontEndConfig(sample_rate=8000, f_high=3800.0)
    assert FrontEndConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown front-end setting"):
        FrontEndConfig.from_dict({**cfg.to_dict(), "gain": 3})


# ---------------------------------------------------------------------------------- reference pieces


def test_spectrum_is_the_scaled_dft_of_the_windowed_frame():
    x = np.random.default_rng(0).integers(-30000, 30000, size=(4, 256))
    p = frontend_ref.spectrum(FE, x)
    y = frontend_ref.window(FE, x)
    exact = np.abs(np.fft.rfft(y, axis=-1) / FE.half) ** 2
    assert p.shape == (4, 129) and p.dtype == np.int64
    assert np.max(np.abs(p - exact)) <= 2e-3 * exact.max()


def test_fft_of_an_impulse_is_flat_and_exact():
    y = np.zeros((1, 256), np.int64)
    y[0, 0] = 1 << 14
    re, im = frontend_ref.fft(FE, y)
    assert np.all(re == (1 << 14) >> 7) and np.all(im == 0), "a unit impulse at z[0]: every bin 2^14 / 2^7"


@pytest.mark.parametrize("e", [1, 2, 3, 1000, 2**20, 2**40 + 12345, 2**62 - 1])
def test_log2_follows_the_table_and_stays_close(e):
    got = int(frontend_ref.log2_fixed(FE, np.array([e]))[0])
    assert abs(got / 64 - math.log2(e)) < 3 / 64
    if e & (e - 1) == 0:
        assert got == int(math.log2(e)) * 64, "powers of two are exact"


def test_log2_of_zero_is_zero_and_the_function_is_monotone():
    e = np.concatenate([[0], np.unique(np.random.default_rng(1).integers(1, 2**50, size=2000))])
    out = frontend_ref.log2_fixed(FE, e)
    assert out[0] == 0 and np.all(np.diff(out) >= 0)


def test_trackers_by_hand():
    fe = dataclasses.replace(FE, floor_rise_shift=2, floor_fall_shift=0, floor_frac=0)
    # rises by a quarter of the difference (rounded half up), falls at once
    assert frontend_ref.track(fe, np.array([100]), np.array([110]), 2, 0, "t")[0] == 103  # 100 + rnd(10 / 4)
    assert frontend_ref.track(fe, np.array([100]), np.array([40]), 2, 0, "t")[0] == 40
    assert frontend_ref.track(fe, np.array([100]), np.array([40]), 2, 1, "t")[0] == 70


def test_gain_is_measured_against_floor_and_peak():
    fe = dataclasses.replace(FE, floor_frac=0, floor_min=0, offset=10, depth=100, threshold=50)
    floor = np.array([[200, 200, 200]])
    peak = np.array([400])
    log = np.array([[205, 260, 400]])
    f, new_floor, new_peak = frontend_ref.gain(fe, floor, peak, log)
    # level = max(floor + offset, peak - depth) = max(210, 300) = 300; f = clamp(L - 300, 0, 49)
    assert f.tolist() == [[0, 0, 49]]
    assert new_peak.tolist() == [400]
    assert new_floor[0, 0] == 200 + 5 // 2 ** 7 + ((5 % 2**7) * 2 >= 2**7)


def test_encoder_trajectory_by_hand():
    fe = dataclasses.replace(FE, threshold=10, substeps=8, refractory=1, leak_shift=0)
    counts, v, r = frontend_ref.encode(fe, np.array([0]), np.array([0]), np.array([4]))
    # v: 4, 8, 12 -> fire (2), refractory, 6, 10 -> fire (0), refractory, 4
    assert counts.tolist() == [2] and v.tolist() == [4] and r.tolist() == [0]
    counts, v, r = frontend_ref.encode(fe, np.array([9]), np.array([0]), np.array([9]))
    # 18 -> fire (8), refractory, 17 -> fire (7), refractory, 16 -> 6, ., 15 -> 5, . : every other sub-step
    assert counts.tolist() == [4] and v.tolist() == [5] and r.tolist() == [0]


def test_encoder_rate_is_capped_by_the_refractory_period():
    f = np.arange(FE.threshold)[None, :]
    counts, v, _ = frontend_ref.encode(FE, np.zeros_like(f), np.zeros_like(f), f)
    assert counts.max() <= FE.max_count and np.all(np.diff(counts[0]) >= 0)
    assert np.all(v >= 0) and np.all(v < FE.threshold)


# --------------------------------------------------------------------------------------- streaming


@given(pcm(max_bins=12), st.data())
def test_any_chunking_gives_the_counts_and_state_of_one_call(x, data):
    whole, state, _ = frontend_ref.run(FE, x)
    sizes = data.draw(chunkings(x.size))
    s = frontend_ref.initial_state(FE)
    parts, at = [], 0
    for n in sizes:
        counts, s, _ = frontend_ref.feed(FE, s, x[at : at + n])
        parts.append(counts)
        at += n
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)
    for name in ("ring", "floor", "peak", "v", "refractory", "counts"):
        np.testing.assert_array_equal(getattr(s, name), getattr(state, name))
    assert (s.pos, s.fill) == (state.pos, state.fill)
    assert whole.shape == (1, x.size // FE.hop, 32) and whole.max(initial=0) <= FE.max_count


def test_feed_does_not_change_its_input_state():
    s = frontend_ref.initial_state(FE)
    before = s.copy()
    frontend_ref.feed(FE, s, make_signal("noise", 999, 1))
    for name in ("ring", "floor", "peak", "v", "refractory", "counts"):
        np.testing.assert_array_equal(getattr(s, name), getattr(before, name))


def test_causal_first_bins_do_not_depend_on_later_audio():
    first = bursts(16000, 1)
    a, _, _ = frontend_ref.run(FE, np.concatenate([first, bursts(8000, 2)]))
    b, _, _ = frontend_ref.run(FE, np.concatenate([first, bursts(8000, 3)]))
    np.testing.assert_array_equal(a[:, :100], b[:, :100])
    assert not np.array_equal(a[:, 100:], b[:, 100:])


def test_batch_equals_streams_one_by_one():
    clips = [make_signal(k, n, i) for i, (k, n) in enumerate([("noise", 5000), ("chirp", 3210), ("dc", 160), ("silence", 7)])]
    for clip, counts in zip(clips, frontend_ref.encode_clips(FE, clips)):
        np.testing.assert_array_equal(counts, frontend_ref.run(FE, clip)[0][0])


def test_silence_never_fires_and_the_trace_holds_every_bin():
    counts, state, trace = frontend_ref.run(FE, np.zeros(16000, np.int16), keep_trace=True)
    assert counts.sum() == 0 and trace.log.shape == (1, 100, 32) and np.all(trace.energy == 0)
    assert np.all(state.floor == 0), "the floor falls to silence at once"


@pytest.mark.parametrize("channel", [3, 10, 17, 24, 30])
def test_a_tone_after_quiet_noise_drives_its_own_channel_most(channel):
    points = mel_points(FrontEndConfig())
    freq = points[channel + 1]
    quiet = make_signal("noise", 8000, 5) // 300
    t = np.arange(8000) / 16000
    tone = np.clip(np.floor(8000 * np.sin(2 * np.pi * freq * t) + 0.5), -32768, 32767).astype(np.int16) + quiet[:8000]
    counts, _, _ = frontend_ref.run(FE, np.concatenate([quiet, tone]).astype(np.int16))
    per_channel = counts[0, 50:].sum(axis=0)
    assert np.argmax(per_channel) == channel


def test_a_louder_copy_gives_almost_the_same_counts():
    speechy = bursts(32000, 7, level=8000.0)
    quiet = frontend_ref.run(FE, speechy // 4)[0]
    loud = frontend_ref.run(FE, speechy)[0]
    difference = np.abs(quiet.astype(np.int64) - loud).sum()
    assert loud.sum() > 1000 and difference < 0.15 * loud.sum(), "a 12 dB gain mostly drops out"


def test_pcm_outside_int16_is_refused():
    with pytest.raises(ValueError, match="int16"):
        frontend_ref.run(FE, np.array([40000]))
    with pytest.raises(ValueError, match="integer"):
        frontend_ref.run(FE, np.array([0.5]))


def test_to_pcm16_rounds_half_up_and_saturates():
    assert frontend_ref.to_pcm16([0.0, 1.0, -1.0, 2.0, 0.5 / 32768, -0.5 / 32768, -1.5 / 32768]).tolist() == [
        0, 32767, -32768, 32767, 1, 0, -1]


# ----------------------------------------------------------------------------------- static analysis


def test_default_designs_cannot_overflow():
    for fe in (FE, FE8K, design(FrontEndConfig(fft_size=512)), design(FrontEndConfig(n_channels=16, log_frac=8, pool_bins=1))):
        report = frontend_bounds.check(fe)
        assert report.bounds and not report.overflows()
        assert "FFT stage 0" in str(report)


def test_a_design_without_fft_scaling_is_refused_with_one_line():
    fe = dataclasses.replace(FE, fft_shifts=(0,) * FE.stages)
    with pytest.raises(ValueError, match="overflows int32") as info:
        frontend_bounds.check(fe)
    assert "\n" not in str(info.value) and "FFT stage" in str(info.value)


def test_the_bounds_hold_on_the_worst_inputs_we_can_build():
    """Full-scale extremes, steps and noise never leave the analysed ranges (the reference checks every register)."""
    report = frontend_bounds.analyse(FE)
    power_hi = next(b.hi for b in report.bounds if b.name == "Xr^2 + Xi^2")
    for kind in ("alternate", "square", "dc", "full-noise", "impulses"):
        x = make_signal(kind, 4000, 11)
        _, _, trace = frontend_ref.run(FE, x, keep_trace=True)
        assert trace.power.max() <= power_hi


def test_the_linear_bound_is_tight_for_one_bin():
    """The frame that maximises one bin's real part comes within a few units of the bound on that bin."""
    report = frontend_bounds.analyse(FE)
    bound = next(b.hi for b in report.bounds if b.name == "component magnitude")
    k = 16
    n = np.arange(256)
    x = np.where(np.cos(2 * np.pi * k * n / 256) >= 0, 32767, -32768)
    re, im = frontend_ref.split(FE, *frontend_ref.fft(FE, frontend_ref.window(FE, x[None])))
    assert abs(int(re[0, k])) > 0.6 * bound


# ------------------------------------------------------------------------------------------ files


def test_frontend_file_round_trips_and_has_a_stable_digest(tmp_path):
    path = tmp_path / "frontend.int.npz"
    save_frontend(FE, path)
    again = load_frontend(path)
    assert frontend_digest(again) == frontend_digest(FE) and frontend_bytes(again) == path.read_bytes()
    assert frontend_digest(design(FrontEndConfig())) == frontend_digest(FE), "the design is deterministic"
    assert frontend_digest(FE8K) != frontend_digest(FE)


def test_model_file_carries_the_frontend(tmp_path):
    net = with_frontend()
    save_network(net, tmp_path / "m.int.npz")
    back = load_network(tmp_path / "m.int.npz")
    assert frontend_digest(back.frontend) == frontend_digest(FE) and network_digest(back) == network_digest(net)
    assert back.frontend.config == FE.config
    plain = dataclasses.replace(net, frontend=None)
    assert load_network(save_network(plain, tmp_path / "p.int.npz") or tmp_path / "p.int.npz").frontend is None


def _rewrite(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, edit(item.filename, zin.read(item.filename)))


def test_a_tampered_frontend_is_refused_with_one_line(tmp_path):
    save_network(with_frontend(), tmp_path / "m.int.npz")

    def bad_window(name, data):
        if name == "frontend.window.npy":
            a = np.lib.format.read_array(__import__("io").BytesIO(data))
            a = a.copy()
            a[3] = -5
            buf = __import__("io").BytesIO()
            np.lib.format.write_array(buf, a, version=(1, 0))
            return buf.getvalue()
        return data

    _rewrite(tmp_path / "m.int.npz", tmp_path / "bad.int.npz", bad_window)
    with pytest.raises(UserError, match="frontend.window") as info:
        load_network(tmp_path / "bad.int.npz")
    assert "\n" not in str(info.value)


def test_a_spec_1_file_is_refused(tmp_path):
    save_network(with_frontend(), tmp_path / "m.int.npz")

    def old_spec(name, data):
        return data.replace(b'"spec_version": 2', b'"spec_version": 1') if name == "header.json" else data

    _rewrite(tmp_path / "m.int.npz", tmp_path / "old.int.npz", old_spec)
    with pytest.raises(UserError, match="spec_version 1"):
        load_network(tmp_path / "old.int.npz")


def test_the_network_must_match_its_frontend():
    with pytest.raises(ValueError, match="channels"):
        validate_network(dataclasses.replace(with_frontend(), frontend=design(FrontEndConfig(n_channels=16))))
    with pytest.raises(ValueError, match="hop"):
        validate_network(dataclasses.replace(with_frontend(), bin_ms=20.0))
    validate_network(with_frontend(FE8K))


def test_table_sizes_are_fixed_by_the_spec():
    assert FE.log_table.shape == ((1 << LOG_TABLE_BITS) + 1,)
    with pytest.raises(ValueError, match="log_table"):
        validate_frontend(dataclasses.replace(FE, log_table=FE.log_table[:-1]))
    with pytest.raises(ValueError, match="chan"):
        validate_frontend(dataclasses.replace(FE, chan=np.full_like(FE.chan, 40)))


def test_the_encoder_table_is_the_encoder_on_every_state():
    count, v_next, r_next = frontend_ref.encoder_table(FE)
    theta = FE.threshold
    index = np.random.default_rng(3).integers(0, count.size, size=5000)
    f, rest = index % theta, index // theta
    v, r = rest % theta, rest // theta
    want = frontend_ref.encode(FE, v, r, f)
    assert_equal = np.testing.assert_array_equal
    for got, expected in zip(frontend_ref.encode_bin(FE, v, r, f), want):
        assert_equal(got, expected)
    assert_equal(count[index], want[0])
    leaky = dataclasses.replace(FE, leak_shift=3, refractory=2)
    got = frontend_ref.encode_bin(leaky, v, np.minimum(r, 2), f)
    for a, b in zip(got, frontend_ref.encode(leaky, v, np.minimum(r, 2), f)):
        assert_equal(a, b)
    big = dataclasses.replace(FE, threshold=5000)
    assert frontend_ref.encoder_table(big) is None, "too many states: the encoder runs sub-step by sub-step"


def test_the_unchecked_gain_is_the_checked_one():
    rng = np.random.default_rng(5)
    floor = rng.integers(0, FE.floor_init, size=(3, 32))
    peak = rng.integers(0, FE.floor_init, size=3)
    log = rng.integers(0, 3000, size=(3, 32))
    for a, b in zip(frontend_ref.gain(FE, floor, peak, log), frontend_ref.gain(FE, floor, peak, log, checked=False)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(OverflowError, match="tracker"):
        frontend_ref._check_tracker_ranges(FE, floor, peak, log + 2**30)


def test_the_log_add_table():
    from codegen.integer.frontend import LOGADD_STEP_BITS, logadd_table

    for f in range(8):
        table = logadd_table(f)
        j = np.arange(table.size)
        exact = np.log2(1 + 2.0 ** (-(j << LOGADD_STEP_BITS) / (1 << f))) * (1 << f)
        assert np.all(np.abs(table - exact) <= 0.5) and table[0] == 1 << f and table[-1] == 0 and table[-2] > 0
        assert np.all(np.diff(table) <= 0)
    assert FE.pool_bins == 2 and FE.logadd_table.tolist() == logadd_table(FE.log_frac).tolist()
    assert design(FrontEndConfig(pool_bins=1)).logadd_table.shape == (0,)
    for bad in (FE.logadd_table[:-1], FE.logadd_table[::-1], np.zeros(0, np.int16)):
        with pytest.raises(ValueError, match="logadd_table"):
            validate_frontend(dataclasses.replace(FE, logadd_table=bad))
    with pytest.raises(ValueError, match="pool_bins 2 needs log_frac"):
        validate_frontend(dataclasses.replace(design(FrontEndConfig(log_frac=8, pool_bins=1)), pool_bins=2,
                                              logadd_table=FE.logadd_table))


@given(st.integers(0, 3000), st.integers(0, 3000))
def test_pooling_is_the_log_of_the_summed_energies(a, b):
    """Lp = log2(2^(a/64) + 2^(b/64)) in Q6 within the table's rounding and its step of 2 in |a - b|; a 0 (no
    energy) leaves the other; pool_bins 1 is the identity."""
    lp = int(frontend_ref.pool(FE, np.array([a]), np.array([b]))[0])
    if a == 0 or b == 0:
        assert lp == max(a, b)
    else:
        exact = 64 * math.log2(2 ** (a / 64) + 2 ** (b / 64))
        assert abs(lp - exact) <= 1.0 and max(a, b) <= lp <= max(a, b) + 64
    unpooled = design(FrontEndConfig(pool_bins=1))
    assert int(frontend_ref.pool(unpooled, np.array([a]), np.array([b]))[0]) == a


def test_pooling_reads_the_previous_bin_across_calls():
    x = bursts(4000, seed=3)
    _, _, whole = frontend_ref.run(FE, x, keep_trace=True)
    prev = np.concatenate([[np.zeros(FE.n_channels, np.int64)], whole.log[0, :-1]])
    assert np.array_equal(whole.level[0], frontend_ref.pool(FE, whole.log[0], prev))
    assert not np.array_equal(whole.level, whole.log), "pooling changes the levels"
    state = frontend_ref.initial_state(FE)
    for piece in np.array_split(x, 7):
        _, state, _ = frontend_ref.feed(FE, state, piece)
    assert np.array_equal(state.prev[0], whole.log[0, -1])


def test_the_runtime_constants_are_the_contract_s():
    """The few constants delrec_frontend.h spells out itself are those of the integer contract."""
    import re
    from importlib import resources

    from codegen.integer import frontend as spec

    text = resources.files("codegen.generator").joinpath("runtime/delrec_frontend.h").read_text()
    macros = {m[0]: int(m[1]) for m in re.findall(r"#define DELREC_FE_(\w+) (\d+)u", text)}
    assert macros == {"TWIDDLE_BITS": spec.TWIDDLE_BITS, "WINDOW_BITS": spec.WINDOW_BITS,
                      "FILTER_ONE": 1 << spec.FILTER_BITS, "LOG_TABLE_BITS": spec.LOG_TABLE_BITS,
                      "LOG_INTERP_BITS": spec.LOG_INTERP_BITS, "LOGADD_STEP_BITS": spec.LOGADD_STEP_BITS}
