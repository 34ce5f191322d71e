"""The integer reference model against hand-computed values and a naive scalar model of the spec."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from intnet_builders import tiny_network

from codegen.integer import fixedpoint as fx
from codegen.integer import refmodel as rm
from codegen.integer.network import IntLayer, IntNetwork, IntReadout, IntRecurrence

# ------------------------------------------------------------------------------------------- builders


def readout(n_last, k=1, weight=None, bias=None, leak_mul=0, leak_shift=15, out_shift=0):
    w = np.ones((k, n_last), np.int64) if weight is None else np.asarray(weight, np.int64)
    b = np.zeros(k, np.int64) if bias is None else np.asarray(bias, np.int64)
    return IntReadout(weight=w, weight_frac=0, bias=b, v_frac=out_shift, leak_mul=leak_mul, leak_shift=leak_shift)


def lif(weight, threshold, leak_mul, leak_shift, reset, bias=None, recurrence=None, v_frac=0, rec_frac=None,
        weight_bits=8):
    weight = np.asarray(weight, np.int64)
    n = weight.shape[0]
    b = np.zeros(n, np.int64) if bias is None else np.asarray(bias, np.int64)
    return IntLayer(
        weight=weight, weight_frac=0, bias=b, v_frac=v_frac, threshold=threshold, leak_mul=leak_mul,
        leak_shift=leak_shift, reset=reset, recurrence=recurrence, weight_bits=weight_bits,
    )  # fmt: skip


def random_recurrence(rng, variant, n, channels, kernel, max_delay, taps):
    if variant == "dense":
        weight, delays = rng.integers(-128, 128, (n, n)), rng.integers(0, max_delay + 1, n)
    elif variant == "taps":
        weight, delays = rng.integers(-128, 128, (taps, channels, channels, kernel)), np.zeros(0, np.int64)
    else:
        weight = rng.integers(-128, 128, (channels, channels, kernel))
        delays = np.zeros(n, np.int64) if variant == "conv-nodelay" else rng.integers(0, max_delay + 1, n)
    delays[: min(1, delays.size)] = 0 if variant == "conv-nodelay" else max_delay  # the ring is used in full
    return IntRecurrence(variant=variant, weight=weight, frac=5, delays=delays)


def make_network(seed, variant="conv", n_in=4, n=6, channels=2, kernel=3, max_delay=3, taps=3, reset="subtract"):
    """32 -> 64 -> rec 64 -> K in miniature: a plain LIF layer, then one with the given recurrence."""
    rng = np.random.default_rng(seed)

    def layer(n_prev, rec):
        return IntLayer(
            weight=rng.integers(-128, 128, (n, n_prev)), weight_frac=6, bias=rng.integers(-64, 65, n), v_frac=8,
            threshold=256, leak_mul=int(rng.integers(0, 2**12 + 1)), leak_shift=12, reset=reset, recurrence=rec,
        )  # fmt: skip

    rec = random_recurrence(rng, variant, n, channels, kernel, max_delay, taps)
    ro = IntReadout(
        weight=rng.integers(-128, 128, (3, n)), weight_frac=6, bias=rng.integers(-64, 65, 3), v_frac=8,
        leak_mul=int(rng.integers(0, 2**15)), leak_shift=15,
    )  # fmt: skip
    return IntNetwork(n_inputs=n_in, layers=(layer(n_in, None), layer(n, rec)), readout=ro, bin_ms=10.0)


# ------------------------------------------------------------------------ naive scalar model of the spec


def _rshift(a: int, k: int) -> int:
    return (a + (1 << (k - 1))) >> k if k else a  # Python's >> floors, as the spec's arithmetic shift


def _sat(a: int, bits: int) -> int:
    return max(-(1 << (bits - 1)), min((1 << (bits - 1)) - 1, a))


def naive_conv(z, kernel):
    """The cross-correlation written out: neurons channel-major, zero padding."""
    c, _, k = kernel.shape
    w = len(z) // c
    out = [0] * len(z)
    for co in range(c):
        for i in range(w):
            for ci in range(c):
                for o in range(k):
                    j = i + o - (k - 1) // 2
                    if 0 <= j < w:
                        out[co * w + i] += int(kernel[co, ci, o]) * z[ci * w + j]
    return out


def naive_rec(rec, history, t, n):
    """acc_rec at step t of n neurons from the *full* spike history (list of spike lists, index = step)."""

    def spikes(step):
        return history[step] if step >= 0 else [0] * n

    if rec.variant == "taps":
        acc = [0] * n
        for d in range(1, rec.weight.shape[0] + 1):
            acc = [a + b for a, b in zip(acc, naive_conv(spikes(t - d), rec.weight[d - 1]))]
        return acc
    z = [spikes(t - 1 - int(rec.delays[j]))[j] for j in range(n)]
    if rec.variant == "dense":
        return [sum(int(rec.weight[i, j]) * z[j] for j in range(n)) for i in range(n)]
    return naive_conv(z, rec.weight)


def naive_run(net, x):
    """One sample (T, n_inputs) through the spec in Python ints; per step: a list of per-layer dicts, u, score."""
    v = [[0] * layer.n for layer in net.layers]
    history = [[] for _ in net.layers]
    u, score, out = [0] * net.n_classes, [0] * net.n_classes, []
    for t in range(len(x)):
        signal = [int(a) for a in x[t]]
        steps = []
        for li, layer in enumerate(net.layers):
            n = layer.n
            acc_ff = [sum(int(layer.weight[i, j]) * signal[j] for j in range(len(signal))) for i in range(n)]
            acc_rec = [0] * n if layer.recurrence is None else naive_rec(layer.recurrence, history[li], t, n)
            rec_shift = layer.rec_shift if layer.recurrence is not None else 0
            cur = [(a << layer.ff_shift) + (r << rec_shift) + int(b) for a, r, b in zip(acc_ff, acc_rec, layer.bias)]
            leaked = [_rshift(vi * layer.leak_mul, layer.leak_shift) for vi in v[li]]
            h = [_sat(lv + c, layer.state_bits) for lv, c in zip(leaked, cur)]
            s = [int(hi >= layer.threshold) for hi in h]
            fired_to = [0 if layer.reset == "zero" else hi - layer.threshold for hi in h]
            v[li] = [f if si else hi for hi, f, si in zip(h, fired_to, s)]
            history[li].append(s)
            steps.append({"acc_ff": acc_ff, "acc_rec": acc_rec, "current": cur, "h": h, "spikes": s, "v": v[li]})
            signal = s
        ro = net.readout
        acc = [sum(int(ro.weight[k, j]) * signal[j] for j in range(len(signal))) for k in range(net.n_classes)]
        u = [
            _sat(_rshift(uk * ro.leak_mul, ro.leak_shift) + (a << ro.out_shift) + int(b), 32)
            for uk, a, b in zip(u, acc, ro.bias)
        ]
        score = [s + uk for s, uk in zip(score, u)]
        out.append((steps, acc, u, score))
    return out


def assert_matches_naive(net, x, result):
    """The stacked trace of sample 0 equals the naive model, value for value."""
    tr = result.trace
    for t, (steps, acc, u, score) in enumerate(naive_run(net, x)):
        for li, ref in enumerate(steps):
            for name, want in ref.items():
                got = getattr(tr.layers[li], name)[0, t].tolist()
                assert got == want, f"step {t} layer {li} {name}"
        assert tr.readout_acc[0, t].tolist() == acc
        assert tr.u[0, t].tolist() == u
        assert tr.score[0, t].tolist() == score


# ----------------------------------------------------------------------------- hand-computed trajectories


def one_neuron(reset, weight=1, bias=0, threshold=4):
    """1 input -> 1 neuron, leak 1/2 (m/2^k = 1/2), no shifts; readout u = leak_1/2(u) + s."""
    layer = lif([[weight]], threshold=threshold, leak_mul=1, leak_shift=1, reset=reset, bias=[bias])
    return IntNetwork(n_inputs=1, layers=(layer,), readout=readout(1, leak_mul=1, leak_shift=1), bin_ms=1.0)


@pytest.mark.parametrize(
    "reset, h, v, s",
    [
        # leak(3) = (3+1)>>1 = 2, leak(1) = 1, leak(2) = 1 (half up)
        ("zero", [3, 5, 3, 5, 0, 0], [3, 0, 3, 0, 0, 0], [0, 1, 0, 1, 0, 0]),
        ("subtract", [3, 5, 4, 3, 2, 1], [3, 1, 0, 3, 2, 1], [0, 1, 1, 0, 0, 0]),
    ],
)
def test_one_neuron_trajectory_by_hand(reset, h, v, s):
    x = np.array([3, 3, 3, 3, 0, 0])[:, None]
    res = rm.run(one_neuron(reset), x, keep_trace=True)
    layer = res.trace.layers[0]
    assert layer.current[0, :, 0].tolist() == [3, 3, 3, 3, 0, 0]
    assert layer.h[0, :, 0].tolist() == h
    assert layer.v[0, :, 0].tolist() == v
    assert layer.spikes[0, :, 0].tolist() == s
    # readout: u = rshift(u, 1) + s
    u, want = 0, []
    for si in s:
        u = (u + 1) // 2 + si
        want.append(u)
    assert res.trace.u[0, :, 0].tolist() == want
    assert res.scores.tolist() == [[sum(want)]]


def test_leak_of_odd_negative_membranes_rounds_half_up():
    # W = -1: h = -3, then leak(-3) = (-3+1)>>1 = -1 (not -2), leak(-1) = 0; -5 -> -2
    net = one_neuron("zero", weight=-1)
    res = rm.run(net, np.array([3, 0, 0, 5, 0])[:, None], keep_trace=True)
    assert res.trace.layers[0].h[0, :, 0].tolist() == [-3, -1, 0, -5, -2]
    assert fx.leak(np.array([-3, -1, -5, 3]), 1, 1).tolist() == [-1, 0, -2, 2]


def test_prediction_is_first_maximum():
    assert rm.predictions_from(np.array([[1, 5, 5, 2], [0, 0, 0, 0], [-3, -1, -2, -1]])).tolist() == [1, 0, 1]


# ------------------------------------------------------------------------------------------- delays


def delay_network(delays):
    """3 inputs -> 3 neurons one to one; identity conv kernel [0, 1, 0]; a count of 100 fires, the echo does not."""
    rec = IntRecurrence("conv", np.array([[[0, 1, 0]]]), frac=0, delays=np.array(delays))
    layer = lif(np.eye(3, dtype=np.int64), threshold=100, leak_mul=0, leak_shift=15, reset="zero", recurrence=rec)
    return IntNetwork(n_inputs=3, layers=(layer,), readout=readout(3), bin_ms=1.0)


@pytest.mark.parametrize("t0", [0, 3, 11])
def test_spike_arrives_exactly_one_plus_delay_steps_later(t0):
    delays = [0, 1, 5]
    x = np.zeros((20, 3), np.int64)
    x[t0] = 100
    tr = rm.run(delay_network(delays), x, keep_trace=True).trace.layers[0]
    assert tr.spikes[0, :, :].sum(axis=0).tolist() == [1, 1, 1]  # the echo alone never fires
    for j, d in enumerate(delays):
        assert np.flatnonzero(tr.z[0, :, j]).tolist() == [t0 + 1 + d]
        assert np.flatnonzero(tr.acc_rec[0, :, j]).tolist() == [t0 + 1 + d]


def test_ring_lengths():
    net = make_network(0, "conv", max_delay=4)
    assert rm.initial_state(net, batch=2).ring[1].shape == (6, 2, 6)  # max_delay + 2
    net = make_network(0, "taps", taps=3)
    assert rm.initial_state(net).ring[1].shape == (4, 1, 6)  # D + 1
    assert rm.initial_state(net).ring[0] is None


@pytest.mark.parametrize("variant, max_delay, steps", [("conv", 7, 10_000), ("dense", 4, 1_500), ("taps", 0, 1_500)])
def test_ring_survives_many_wraps(variant, max_delay, steps):
    # the ring (9, 6 or 4 slots) wraps hundreds of times; the naive model keeps the whole history instead
    net = make_network(7, variant, n_in=3, n=4, max_delay=max_delay, kernel=3)
    x = np.random.default_rng(1).integers(0, 4, (steps, 3))
    res = rm.run(net, x, keep_trace=True)
    spikes = res.trace.layers[1].spikes[0]
    assert 0.05 < spikes.mean() < 0.95  # the recurrence is really exercised
    history = spikes.tolist()
    want = [naive_rec(net.layers[1].recurrence, history, t, 4) for t in range(len(history))]
    assert res.trace.layers[1].acc_rec[0].tolist() == want


# ---------------------------------------------------------------------- against the naive scalar model


@given(
    seed=st.integers(0, 2**32 - 1),
    variant=st.sampled_from(["conv", "dense", "conv-nodelay", "taps"]),
    reset=st.sampled_from(["zero", "subtract"]),
    channels=st.sampled_from([1, 2, 3]),
    kernel=st.sampled_from([1, 3, 5]),
    max_delay=st.integers(0, 5),
)
def test_every_value_equals_the_naive_model(seed, variant, reset, channels, kernel, max_delay):
    net = make_network(seed, variant, n=6, channels=channels, kernel=kernel, max_delay=max_delay, reset=reset)
    x = np.random.default_rng(seed).integers(0, 5, (3, 14, 4))
    res = rm.run(net, x, keep_trace=True)
    assert_matches_naive(net, x[0], res)
    # samples of a batch are independent: sample 2 alone gives the same scores
    assert rm.run(net, x[2]).scores.tolist() == res.scores[2:3].tolist()


@given(
    seed=st.integers(0, 2**32 - 1),
    variant=st.sampled_from([None, "conv", "dense", "conv-nodelay", "taps"]),
    n=st.sampled_from([5, 6]),
)
def test_shared_builder_networks_equal_the_naive_model(seed, variant, n):
    # the shared builder stores int8 weights and int32 biases and draws every shift and leak
    net = tiny_network(variant, n_in=4, n=n, n_layers=2, seed=seed)
    x = np.random.default_rng(seed).integers(0, 256, (1, 12, 4))
    assert_matches_naive(net, x[0], rm.run(net, x, keep_trace=True))


@pytest.mark.parametrize("channels, kernel", [(1, 3), (2, 5), (3, 1)])
def test_conv_operator_equals_explicit_loop(channels, kernel):
    rng = np.random.default_rng(channels * 10 + kernel)
    weight = rng.integers(-128, 128, (channels, channels, kernel))
    z = rng.integers(0, 2, (5, 6 * channels))
    got = rm.conv_recurrence(z, weight)
    assert got.tolist() == [naive_conv(row.tolist(), weight) for row in z]


def test_step_updates_state_in_place_and_trace_does_not_alias_it():
    net = make_network(3, "conv")
    state = rm.initial_state(net, batch=2)
    tr = rm.step(net, state, np.full((2, 4), 3))
    assert state.t == 1
    assert state.v[1].tolist() == tr.layers[1].v.tolist()
    before = tr.layers[1].v.copy()
    rm.step(net, state, np.full((2, 4), 3))
    assert tr.layers[1].v.tolist() == before.tolist()


@pytest.mark.parametrize("bias, h", [(10**6, 2**15 - 1), (-(10**6), -(2**15))])
def test_membrane_saturates_at_state_bits(bias, h):
    net = one_neuron("zero", bias=bias, threshold=2**15 - 1)
    tr = rm.run(net, np.zeros((3, 1), np.int64), keep_trace=True).trace.layers[0]
    assert tr.current[0, :, 0].tolist() == [bias] * 3  # the current itself is int32, not saturated
    assert tr.h[0, :, 0].tolist() == [h] * 3
    assert tr.spikes[0, :, 0].tolist() == [int(h > 0)] * 3


@pytest.mark.parametrize("sign", [1, -1])
def test_readout_state_saturates_at_int32(sign):
    # no leak (m = 2^k): u = 2^30, 2^31 (sat), ... ; the 64-bit leak product of 2^31 - 1 must not be refused
    layer = lif([[0]], threshold=1, leak_mul=0, leak_shift=15, reset="zero")
    ro = readout(1, bias=[sign * 2**30], leak_mul=2**15, leak_shift=15)
    res = rm.run(IntNetwork(1, (layer,), ro, 1.0), np.zeros((4, 1), np.int64), keep_trace=True)
    lo, hi = fx.int_range(32)
    want = [2**30, hi, hi, hi] if sign > 0 else [-(2**30), lo, lo, lo]
    assert res.trace.u[0, :, 0].tolist() == want
    assert res.scores.tolist() == [[sum(want)]]


def test_wide_leak_product():
    hi = 2**31 - 1
    assert int(fx.leak(hi, 2**15 - 1, 15, product_bits=64)) == (hi * (2**15 - 1) + 2**14) >> 15
    with pytest.raises(OverflowError):
        fx.leak(hi, 2**15 - 1, 15)  # the default 32-bit product register is too small
    with pytest.raises(OverflowError):
        fx.leak(np.array([2**62]), 2**15, 15, product_bits=64)


def wide_network(n_in=300):
    """int16 weights at their maximum on many inputs: 32767 * 255 * 300 ~ 2^31.2."""
    layer = lif(np.full((2, n_in), 2**15 - 1), threshold=1, leak_mul=0, leak_shift=15, reset="zero", weight_bits=16)
    return IntNetwork(n_in, (layer,), readout(2), bin_ms=1.0)


def test_accumulator_overflow_raises_instead_of_wrapping():
    net = wide_network()
    rm.run(net, np.full((2, 300), 100))  # 32767 * 100 * 300 < 2^31: fine
    with pytest.raises(OverflowError, match="layer 0: feed-forward accumulator"):
        rm.run(net, np.full((2, 300), 255))


def test_current_overflow_raises():
    layer = lif([[1]], threshold=1, leak_mul=0, leak_shift=15, reset="zero", bias=[2**31 - 10], v_frac=0)
    net = IntNetwork(1, (layer,), readout(1), bin_ms=1.0)
    rm.run(net, np.array([[9]]))
    with pytest.raises(OverflowError, match="current"):
        rm.run(net, np.array([[10]]))


@pytest.mark.parametrize("start, bias, limit", [(2**63 - 25, 10, 2**63 - 1), (-(2**63) + 25, -10, -(2**63))])
def test_score_saturates_at_the_int64_limits(start, bias, limit):
    """The spec's score is sat64(score + u): from 25 below a limit, u = 10 per step takes it to 2^63 - 15, then
    2^63 - 5, then it sticks at the limit (and stays there), where int64 arithmetic would wrap."""
    layer = lif([[1]], threshold=4, leak_mul=0, leak_shift=15, reset="zero")
    net = IntNetwork(n_inputs=1, layers=(layer,), readout=readout(1, bias=[bias]), bin_ms=1.0)
    state = rm.initial_state(net)
    state.score[:] = start
    seen = [int(rm.step(net, state, np.array([[0]])).score[0, 0]) for _ in range(4)]
    step = 10 if bias > 0 else -10
    assert seen == [start + step, start + 2 * step, limit, limit]


@pytest.mark.parametrize("bad", [np.array([[256]]), np.array([[-1]]), np.array([[1.0]]), np.array([[1, 2]])])
def test_bad_inputs_are_refused(bad):
    net = one_neuron("zero")
    with pytest.raises(ValueError):
        rm.step(net, rm.initial_state(net), bad)
