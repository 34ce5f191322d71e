"""Hypothesis strategies: small valid :class:`~codegen.intmodel.IntNetwork` s that visit the corners of the spec.

Meant for bit-exactness tests of anything that implements the integer arithmetic (the generated C above
all). Every structural choice is drawn by hypothesis, so shrinking simplifies the network; which *corner* a
tensor visits is a drawn "mode"; the array contents themselves come from a numpy generator seeded by a
drawn integer (cheap, reproducible, and shrinking the seed towards 0 still gives a valid network):

* recurrence: none, ``conv``, ``dense``, ``conv-nodelay`` or ``taps`` per layer; 1..3 channels times a width
  of 1..5 neurons; conv kernels K in {1, 3, 5}; taps with D = 1..4 lags;
* delays: random per neuron (one neuron always at the maximum, so the whole ring is used), all equal, all
  zero, or all at the extreme :data:`MAX_DELAY`;
* weights per tensor: 4, 8 or 16 bits; uniform, all at the minimum, all at the maximum, or a random mix of
  {min, 0, max};
* thresholds 1..v_max (1 and v_max themselves often), leaks with shift 0..15 and multiplier 0..2^shift
  (0 and 2^shift often), membranes of 16 bits mostly but also 8, 12, 20 and 24 (the leak multiplier is
  then capped so that ``v * leak_mul`` plus the rounding bias fits int32, as the overflow analysis demands),
  both resets, biases from zero to a few times the state range, shifts ``v_frac - frac`` of 0..3;
* readout: 1..4 classes, its own leak (2^shift included: no decay, so ``u`` saturates at int32).

Sizes are chosen so that the static overflow check (:func:`codegen.overflow.check`) passes for every drawn
network; tests may still filter on it.

Inputs (:func:`input_counts`): 1..40 steps (:func:`networks_with_inputs` adds the longest ring length),
silent (all zero), saturated (all 255), sparse small counts, uniform 0..255, or bursts alternating between
those.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from codegen.integer.fixedpoint import LEAK_SHIFT, int_range
from codegen.integer.network import RESETS, IntLayer, IntNetwork, IntReadout, IntRecurrence
from codegen.integer.network import VARIANTS as RECURRENT_VARIANTS
from codegen.integer.refmodel import ring_length

VARIANTS = (None, *RECURRENT_VARIANTS)  # None: a layer without recurrence
WEIGHT_BITS = (8, 4, 16)
STATE_BITS = (16, 16, 16, 8, 12, 20, 24)  # mostly 16; repeated entries only weight the draw
WEIGHT_MODES = ("uniform", "min", "max", "extremes")
DELAY_MODES = ("random", "equal", "zero", "extreme")
INPUT_MODES = ("random", "sparse", "silent", "saturated", "bursts")
MAX_DELAY = 40  # the "extreme" delay: a ring of 42 slots
MAX_TAPS = 4
MAX_SHIFT = 3  # v_frac - frac of every tensor
MAX_INPUTS = 6  # small enough that 16-bit weights at 255 counts cannot overflow the int32 current
MAX_CLASSES = 4
MAX_STEPS = 40
INT32_MAX = (1 << 31) - 1

seeds = st.integers(0, 2**32 - 1)


# ------------------------------------------------------------------------------------------- pieces


def _weights(draw, rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """(weights of ``shape`` in a drawn corner, their bit width)."""
    bits = draw(st.sampled_from(WEIGHT_BITS))
    mode = draw(st.sampled_from(WEIGHT_MODES))
    lo, hi = int_range(bits)
    if mode == "uniform":
        w = rng.integers(lo, hi, size=shape, endpoint=True)
    elif mode == "min":
        w = np.full(shape, lo)
    elif mode == "max":
        w = np.full(shape, hi)
    else:
        w = rng.choice(np.array([lo, 0, hi]), size=shape)
    return w.astype(np.int8 if bits <= 8 else np.int16), bits


def max_leak_mul(shift: int, state_bits: int | None) -> int:
    """The largest multiplier for ``shift`` whose product with any ``state_bits`` membrane, plus the rounding
    bias, fits int32 (``None``: the readout, whose product is formed in 64 bits)."""
    cap = 1 << shift
    if state_bits is None:
        return cap
    lo, hi = int_range(state_bits)
    rounding = (1 << (shift - 1)) if shift else 0
    return min(cap, (INT32_MAX - rounding) // hi, (1 << 31) // -lo)


def _leak(draw, state_bits: int | None) -> tuple[int, int]:
    """(leak_mul, leak_shift): no decay at all, complete decay, exactly 1/2 (every odd membrane is then a
    rounding tie), or anything in between."""
    shift = draw(st.integers(0, LEAK_SHIFT))
    cap = max_leak_mul(shift, state_bits)
    mode = draw(st.sampled_from(("random", "none", "full", "half")))
    # "none": the least decay allowed (no decay unless capped)
    mul = {"none": cap, "full": 0, "half": min(cap, (1 << shift) // 2)}.get(mode)
    if mul is None:
        mul = draw(st.integers(0, cap))
    return mul, shift


def _delays(draw, rng: np.random.Generator, variant: str, n: int) -> np.ndarray:
    if variant == "taps":
        return np.zeros(0, np.int32)
    mode = "zero" if variant == "conv-nodelay" else draw(st.sampled_from(DELAY_MODES))
    if mode == "zero":
        return np.zeros(n, np.int32)
    if mode == "extreme":
        return np.full(n, MAX_DELAY, np.int32)
    top = draw(st.integers(0, MAX_DELAY))
    if mode == "equal":
        return np.full(n, top, np.int32)
    d = rng.integers(0, top, size=n, endpoint=True)
    d[rng.integers(n)] = top  # the ring is used in full
    return d.astype(np.int32)


def _recurrence(draw, rng, variant: str, channels: int, width: int, v_frac: int) -> IntRecurrence:
    n = channels * width
    if variant == "dense":
        shape: tuple[int, ...] = (n, n)
    else:
        kernel = draw(st.sampled_from((1, 3, 5)))
        shape = (channels, channels, kernel)
        if variant == "taps":
            shape = (draw(st.integers(1, MAX_TAPS)), *shape)
    weight, bits = _weights(draw, rng, shape)
    frac = v_frac - draw(st.integers(0, MAX_SHIFT))
    return IntRecurrence(variant, weight, frac, _delays(draw, rng, variant, n), weight_bits=bits)


def _bias(draw, rng: np.random.Generator, n: int, small: int, large: int) -> np.ndarray:
    """Zero biases, or uniform ones within ``+-small`` or ``+-large``."""
    mode = draw(st.sampled_from(("random", "zero", "large")))
    if mode == "zero":
        return np.zeros(n, np.int32)
    bound = large if mode == "large" else small
    return rng.integers(-bound, bound, size=n, endpoint=True).astype(np.int32)


def _threshold(draw, v_max: int) -> int:
    """1, v_max (fires only at saturation), small (so that a few inputs or spikes reach it) or anything."""
    mode = draw(st.sampled_from(("small", "random", "one", "max")))
    return {"one": 1, "max": v_max}.get(mode) or draw(st.integers(1, v_max if mode == "random" else min(v_max, 256)))


def _layer(draw, rng, n_in: int, variants) -> IntLayer:
    variant = draw(st.sampled_from(variants))
    channels = draw(st.integers(1, 3))
    width = draw(st.integers(1, 5))
    n = channels * width
    weight, bits = _weights(draw, rng, (n, n_in))
    weight_frac = draw(st.integers(-2, 8))
    v_frac = weight_frac + draw(st.integers(0, MAX_SHIFT))
    state_bits = draw(st.sampled_from(STATE_BITS))
    v_max = int_range(state_bits)[1]
    leak_mul, leak_shift = _leak(draw, state_bits)
    return IntLayer(
        weight=weight,
        weight_frac=weight_frac,
        bias=_bias(draw, rng, n, max(v_max // 8, 1), 4 * v_max),  # large: beyond the state range
        v_frac=v_frac,
        threshold=_threshold(draw, v_max),
        leak_mul=leak_mul,
        leak_shift=leak_shift,
        reset=draw(st.sampled_from(RESETS)),
        recurrence=None if variant is None else _recurrence(draw, rng, variant, channels, width, v_frac),
        weight_bits=bits,
        state_bits=state_bits,
    )


def _readout(draw, rng, n_in: int) -> IntReadout:
    k = draw(st.integers(1, MAX_CLASSES))
    weight, bits = _weights(draw, rng, (k, n_in))
    weight_frac = draw(st.integers(-2, 8))
    leak_mul, leak_shift = _leak(draw, None)
    return IntReadout(
        weight=weight,
        weight_frac=weight_frac,
        bias=_bias(draw, rng, k, 1 << 12, 1 << 30),  # large: u saturates within steps
        v_frac=weight_frac + draw(st.integers(0, MAX_SHIFT)),
        leak_mul=leak_mul,
        leak_shift=leak_shift,
        weight_bits=bits,
    )


# ---------------------------------------------------------------------------------------- strategies


@st.composite
def int_networks(draw, variants=VARIANTS, max_layers: int = 2, max_inputs: int = MAX_INPUTS) -> IntNetwork:
    """A valid IntNetwork of 1..``max_layers`` layers, each with a recurrence drawn from ``variants``."""
    seed = draw(seeds)
    rng = np.random.default_rng(seed)
    n_inputs = draw(st.integers(1, max_inputs))
    layers = []
    n_in = n_inputs
    for _ in range(draw(st.integers(1, max_layers))):
        layers.append(_layer(draw, rng, n_in, variants))
        n_in = layers[-1].n
    readout = _readout(draw, rng, n_in)
    named = draw(st.booleans())
    return IntNetwork(
        n_inputs=n_inputs,
        layers=tuple(layers),
        readout=readout,
        bin_ms=draw(st.sampled_from((1.0, 4.0, 10.0, 0.5))),
        classes=tuple(f"class {k}" for k in range(readout.weight.shape[0])) if named else (),
        meta={"strategy": "intnet_strategies", "seed": seed},
    )


def count_rows(rng: np.random.Generator, mode: str, steps: int, n_inputs: int) -> np.ndarray:
    """(steps, n_inputs) uint8 input counts of one ``mode`` of :data:`INPUT_MODES` (numpy only)."""
    shape = (steps, n_inputs)
    if mode == "silent":
        return np.zeros(shape, np.uint8)
    if mode == "saturated":
        return np.full(shape, 255, np.uint8)
    if mode == "sparse":
        active = rng.random(shape) < rng.uniform(0.05, 0.5)
        return (active * rng.integers(1, 3, size=shape, endpoint=True)).astype(np.uint8)
    if mode == "random":
        return rng.integers(0, 255, size=shape, endpoint=True).astype(np.uint8)
    if mode == "bursts":
        rows = np.empty(shape, np.uint8)
        t = 0
        while t < steps:
            length = int(rng.integers(1, max(steps // 3, 1), endpoint=True))
            kind = INPUT_MODES[int(rng.integers(0, 4))]  # any mode but "bursts"
            rows[t : t + length] = count_rows(rng, kind, min(length, steps - t), n_inputs)
            t += length
        return rows
    raise ValueError(f"unknown input mode {mode!r}")


@st.composite
def input_counts(draw, n_inputs: int, min_steps: int = 1, max_steps: int = MAX_STEPS) -> np.ndarray:
    """(T, n_inputs) uint8 counts, T in ``min_steps..max_steps``, in a drawn mode of :data:`INPUT_MODES`."""
    steps = draw(st.one_of(st.integers(min_steps, max_steps), st.just(max_steps)))  # long samples often
    mode = draw(st.sampled_from(INPUT_MODES))
    return count_rows(np.random.default_rng(draw(seeds)), mode, steps, n_inputs)


def longest_ring(net: IntNetwork) -> int:
    """The most ring slots of any layer (0 without recurrence): lags up to this minus 1 are read."""
    return max((ring_length(layer.recurrence) for layer in net.layers if layer.recurrence is not None), default=0)


@st.composite
def networks_with_inputs(draw, variants=VARIANTS, max_layers: int = 2, max_steps: int = MAX_STEPS):
    """(net, inputs (T, n_inputs) uint8) pairs.

    T is at most ``max_steps`` plus the longest ring of the network, so that even a spike delayed by
    :data:`MAX_DELAY` can arrive (and be read from the far end of the ring) within the sample.
    """
    net = draw(int_networks(variants=variants, max_layers=max_layers))
    return net, draw(input_counts(net.n_inputs, max_steps=max_steps + longest_ring(net)))


def describe(net: IntNetwork) -> str:
    """A few lines naming every structural choice of ``net`` (for hypothesis ``note`` on a failure)."""
    lines = [f"{net.n_inputs} inputs, {len(net.layers)} layers, {net.n_classes} classes, meta {net.meta}"]
    for i, layer in enumerate(net.layers):
        rec = layer.recurrence
        if rec is None:
            r = "no recurrence"
        else:
            delays = f"delays {rec.delays.tolist()}" if rec.delays.size else ""
            r = f"{rec.variant} {rec.weight.shape} {rec.weight_bits}-bit frac {rec.frac} {delays}"
        lines.append(
            f"layer {i}: N={layer.n} w {layer.weight_bits}-bit frac {layer.weight_frac} v_frac {layer.v_frac} "
            f"state {layer.state_bits}-bit thr {layer.threshold} leak {layer.leak_mul}/2^{layer.leak_shift} "
            f"reset {layer.reset}; {r}"
        )
    ro = net.readout
    lines.append(f"readout: w {ro.weight_bits}-bit shift {ro.out_shift} leak {ro.leak_mul}/2^{ro.leak_shift}")
    return "\n".join(lines)
