"""Static worst-case ranges: tight on adversarial networks, sound on random ones, and refusing what can overflow."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from intnet_builders import tiny_network

from codegen.integer import overflow as ov
from codegen.integer import refmodel as rm
from codegen.integer.network import IntLayer, IntNetwork, IntReadout, IntRecurrence

SATURATE = 2**20  # a bias that drives every membrane to its ceiling: every neuron spikes every step


def extreme_rows(n, n_in):
    """Rows alternately all +127 and all -128: the int8 extremes on every synapse."""
    return np.where((np.arange(n) % 2 == 0)[:, None], 127, -128) * np.ones((n, n_in), np.int64)


def adversarial_network(variant):
    """32 inputs -> 8 -> rec 8 -> 4, all weights at the int8 extremes, every neuron forced to spike."""

    def layer(n_in, rec):
        return IntLayer(
            weight=extreme_rows(8, n_in), weight_frac=0, bias=np.full(8, SATURATE), v_frac=0, threshold=1,
            leak_mul=0, leak_shift=15, reset="zero", recurrence=rec,
        )  # fmt: skip

    if variant == "dense":
        rec = IntRecurrence("dense", extreme_rows(8, 8), 0, np.zeros(8, np.int64))
    elif variant == "taps":
        rec = IntRecurrence("taps", np.stack([extreme_rows(2, 2 * 3).reshape(2, 2, 3)] * 3), 0, np.zeros(0, np.int64))
    else:
        rec = IntRecurrence("conv", extreme_rows(2, 2 * 3).reshape(2, 2, 3), 0, np.zeros(8, np.int64))
    ro = IntReadout(extreme_rows(4, 8), 0, np.zeros(4, np.int64), 0, leak_mul=2**14, leak_shift=15)  # beta 1/2
    return IntNetwork(32, (layer(32, None), layer(8, rec)), ro, bin_ms=1.0)


@pytest.mark.parametrize("variant", ["conv", "dense", "taps"])
def test_bounds_are_reached_by_the_adversarial_input(variant):
    net = adversarial_network(variant)
    steps = 40
    res = rm.run(net, np.full((steps, 32), 255), keep_trace=True)
    tr = res.trace
    report = ov.analyse(net, max_steps=steps)
    assert tr.layers[0].spikes.all() and tr.layers[1].spikes.all()
    l0, l1 = report.layers
    assert (l0.acc_ff.lo, l0.acc_ff.hi) == (-128 * 255 * 32, 127 * 255 * 32)
    for got, bound in [(tr.layers[0].acc_ff, l0.acc_ff), (tr.layers[1].acc_ff, l1.acc_ff),
                       (tr.layers[1].acc_rec, l1.acc_rec), (tr.readout_acc, report.readout.acc)]:  # fmt: skip
        assert (int(got.min()), int(got.max())) == (bound.lo, bound.hi)  # tight: the bound is reached
    # u: a drive D with beta 1/2 settles at 2D (at -2D + 1 for D < 0: half-up rounding pulls towards +);
    # the bound adds the rounding allowance of 1/2 per step, i.e. 1 at beta 1/2
    u = report.readout.u
    assert (int(tr.u.min()), int(tr.u.max())) == (-2 * 1024 + 1, 2 * 1016)
    assert (u.lo, u.hi) == (-2 * 1024 - 1, 2 * 1016 + 1)
    assert report.score.lo <= int(res.scores.min()) and int(res.scores.max()) <= report.score.hi


def test_conv_bound_sees_zero_padding_at_the_edges():
    # kernel all +1, width 4, K = 3: edge neurons see 2 taps, interior ones 3
    rec = IntRecurrence("conv", np.ones((1, 1, 3), np.int64), 0, np.zeros(4, np.int64))
    m = ov.recurrent_matrix(rec, 4)
    assert m.sum(axis=1).tolist() == [2, 3, 3, 2]


@given(seed=st.integers(0, 2**32 - 1), channels=st.sampled_from([1, 2, 3]), kernel=st.sampled_from([1, 3, 5]))
def test_conv_matrix_equals_the_operator(seed, channels, kernel):
    rng = np.random.default_rng(seed)
    weight = rng.integers(-128, 128, (channels, channels, kernel))
    z = rng.integers(0, 2, (4, 5 * channels))
    assert rm.conv_recurrence(z, weight).tolist() == (z @ ov.conv_matrix(weight, 5 * channels).T).tolist()


def random_network(seed, variant):
    rng = np.random.default_rng(seed)
    rec = {
        "dense": lambda: IntRecurrence("dense", rng.integers(-128, 128, (6, 6)), 5, rng.integers(0, 4, 6)),
        "conv": lambda: IntRecurrence("conv", rng.integers(-128, 128, (2, 2, 3)), 5, rng.integers(0, 4, 6)),
        "taps": lambda: IntRecurrence("taps", rng.integers(-128, 128, (2, 3, 3, 3)), 5, np.zeros(0, np.int64)),
    }[variant]()

    def layer(n_in, r):
        return IntLayer(
            weight=rng.integers(-128, 128, (6, n_in)), weight_frac=6, bias=rng.integers(-300, 301, 6), v_frac=8,
            threshold=200, leak_mul=int(rng.integers(0, 2**15 + 1)), leak_shift=15,
            reset=["zero", "subtract"][seed % 2], recurrence=r,
        )  # fmt: skip

    ro = IntReadout(rng.integers(-128, 128, (3, 6)), 6, rng.integers(-99, 99, 3), 9, int(rng.integers(0, 2**15)), 15)
    return IntNetwork(5, (layer(5, None), layer(6, rec)), ro, bin_ms=1.0)


@given(seed=st.integers(0, 2**32 - 1), variant=st.sampled_from(["conv", "dense", "taps"]))
def test_bounds_hold_on_random_runs(seed, variant):
    net = random_network(seed, variant)
    x = np.random.default_rng(seed).integers(0, 256, (4, 30, 5))
    tr = rm.run(net, x, keep_trace=True).trace
    report = ov.check(net, max_steps=30)
    for lt, lb in zip(tr.layers, report.layers):
        pairs = [(lt.acc_ff, lb.acc_ff), (lt.current, lb.current)]
        pairs += [(lt.acc_rec, lb.acc_rec)] if lb.acc_rec is not None else []
        for got, bound in pairs:
            assert bound.lo <= int(got.min()) and int(got.max()) <= bound.hi
    for got, bound in [(tr.readout_acc, report.readout.acc), (tr.u, report.readout.u), (tr.score, report.score)]:
        assert bound.lo <= int(got.min()) and int(got.max()) <= bound.hi


@given(seed=st.integers(0, 2**32 - 1), variant=st.sampled_from([None, "conv", "dense", "taps"]))
def test_bounds_hold_on_shared_builder_networks(seed, variant):
    net = tiny_network(variant, n_in=4, n=6, n_layers=2, seed=seed)
    report = ov.analyse(net, max_steps=20)
    tr = rm.run(net, np.random.default_rng(seed).integers(0, 256, (3, 20, 4)), keep_trace=True).trace
    for lt, lb in zip(tr.layers, report.layers):
        assert lb.acc_ff.lo <= int(lt.acc_ff.min()) and int(lt.acc_ff.max()) <= lb.acc_ff.hi
        assert lb.current.lo <= int(lt.current.min()) and int(lt.current.max()) <= lb.current.hi
    assert report.readout.u.lo <= int(tr.u.min()) and int(tr.u.max()) <= report.readout.u.hi


def wide_network(n_in=300):
    """int16 weights at their maximum on 300 inputs: 32767 * 255 * 300 ~ 2^31.2."""
    layer = IntLayer(
        weight=np.full((2, n_in), 2**15 - 1), weight_frac=0, bias=np.zeros(2, np.int64), v_frac=0, threshold=1,
        leak_mul=0, leak_shift=15, reset="zero", weight_bits=16,
    )  # fmt: skip
    ro = IntReadout(np.ones((2, 2), np.int64), 0, np.zeros(2, np.int64), 0, 0, 15)
    return IntNetwork(n_in, (layer,), ro, bin_ms=1.0)


def test_check_refuses_an_accumulator_that_can_overflow_and_run_really_overflows():
    net = wide_network()
    with pytest.raises(ValueError, match=r"layer 0: the feed-forward accumulator can reach 2\^31\.2 .*overflows int32"):
        ov.check(net, max_steps=100)
    assert ov.check(net, max_steps=100, max_input=100).layers[0].acc_ff.fits  # a smaller input range is fine
    with pytest.raises(OverflowError):
        rm.run(net, np.full((1, 300), 255))


def test_check_refuses_a_score_that_can_overflow():
    net = adversarial_network("conv")
    ok = ov.check(net, max_steps=1000)
    assert ok.score.hi <= 1000 * 2**31
    # beta = 1 lets u run into int32 saturation; 2^33 such steps overflow the int64 score
    no_leak = IntNetwork(32, net.layers, IntReadout(net.readout.weight, 0, net.readout.bias, 0, 2**15, 15), 1.0)
    assert ov.analyse(no_leak).readout.u.hi == 2**31 - 1
    with pytest.raises(ValueError, match="network: the score can reach .* int64"):
        ov.check(no_leak, max_steps=2**33)


def test_current_bound_includes_shifts_and_bias():
    net = wide_network(n_in=2)
    layer = net.layers[0]
    shifted = IntLayer(layer.weight, 0, np.array([5, -7]), 4, 1, 0, 15, "zero", weight_bits=16)
    report = ov.analyse(IntNetwork(2, (shifted,), net.readout, 1.0))
    top = (2**15 - 1) * 255 * 2 * 16
    assert (report.layers[0].current.lo, report.layers[0].current.hi) == (-7, top + 5)


def test_report_rows_are_a_printable_table():
    report = ov.analyse(adversarial_network("dense"), max_steps=10)
    rows = report.rows()
    assert rows[0] == ov.OverflowReport.HEADER
    assert len(rows) == 1 + len(report.quantities()) == 1 + 4 + 5 + 3 + 1
    assert all(len(r) == len(rows[0]) for r in rows)
    text = str(report)
    assert "feed-forward accumulator" in text and "score" in text and "NO" not in text


@pytest.mark.parametrize("state_bits, leak_mul, fits", [(16, 1 << 15, True), (17, 1 << 15, True), (18, 1 << 15, False), (24, 128, True),
                                                       (24, 257, False)])
def test_leak_product_bound(state_bits, leak_mul, fits):
    """v * leak_mul + rounding is a 32-bit product in the C: wide membranes need a coarse leak."""
    net = wide_network(n_in=2)
    layer = net.layers[0]
    wide = IntLayer(layer.weight, 0, np.array([0, 0]), 0, 1, leak_mul, 15, "zero", weight_bits=16, state_bits=state_bits)
    report = ov.analyse(IntNetwork(2, (wide,), net.readout, 1.0))
    q = report.layers[0].leak_product
    assert q.hi == (2 ** (state_bits - 1) - 1) * leak_mul + 2**14
    assert q.lo == -(2 ** (state_bits - 1)) * leak_mul + 2**14
    assert q.fits == fits


def test_packing_decision_from_the_weights():
    """16-bit lanes are proven when max_input times the larger row sum fits int16 (static), else allowed while
    the step's input total stays below 32767 // max|w| (dynamic); never for weights wider than 8 bits."""
    small = np.array([[100, -50, 20], [-128, -128, 10]])
    p = ov.packing(small, 1, 8)
    assert p.kind == "static" and p.bound == 256 and p.limit == ov.PACKED_ALWAYS
    counts = ov.packing(small, 255, 8)
    assert counts.kind == "dynamic" and counts.bound == 255 * 256 and counts.limit == 32767 // 128
    assert ov.packing(np.full((2, 300), 127), 1, 8).kind == "dynamic"  # 300 * 127 > 32767
    assert ov.packing(np.full((2, 258), 127), 1, 8).kind == "static"  # 258 * 127 = 32766
    assert ov.packing(np.array([[1000, -5]]), 1, 16).kind == "none"
