r"""The integer reference model: the executable definition of the arithmetic in :mod:`codegen.integer.network`.

Everything is numpy int64, vectorized over the batch, with every value checked against the width the C
gives it. Where the spec says a value is held in an int32 (accumulators, the current, the membrane sum
before saturation, the readout input), leaving that range raises ``OverflowError`` instead of wrapping.
Saturation happens only where the spec says: the membrane ``h`` to ``state_bits``, the readout state ``u``
to 32 bits and the class score to 64 bits (an endless stream sticks at the int64 limits, as the C does).

Conventions that the C and the fake-quant model must share:

* Partial sums are checked too: ``I = ((acc_ff << ff_shift) + (acc_rec << rec_shift)) + bias`` is
  evaluated left to right in int32, and ``leak(v) + I`` is an int32 sum before ``sat_state``.
* Readout: ``(acc << out_shift) + bias_out`` is an int32 sum; the leaked state (product in 64 bits)
  plus that input is formed in 64 bits and saturated to int32.
* Recurrent spikes live in a ring of ``L`` slots per layer: ``L = max_delay + 2`` for conv, dense and
  conv-nodelay, ``D + 1`` for taps. The spikes of step ``t`` go to slot ``t % L``; lag ``k >= 1`` is read
  from slot ``(t - k) % L``. Slots not yet written hold zeros, which is "before the sequence".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import fixedpoint as fx
from .fixedpoint import ACC_BITS  # accumulators, the current and the readout state
from .network import MAX_COUNT, SCORE_BITS, IntLayer, IntNetwork, IntRecurrence
from .validate import validate_network


# ----------------------------------------------------------------------------------------------- state


@dataclass
class State:
    """The mutable state of a batch of ``B`` independent samples.

    ``v``: per layer (B, N) int64 membrane, inside the layer's ``state_bits``.
    ``ring``: per layer (L, B, N) uint8 spike ring, or ``None`` for a layer without recurrence.
    ``u``: (B, K) int64 readout state inside int32; ``score``: (B, K) int64 running sum of ``u``.
    ``t``: number of steps taken so far (the next step is step ``t``).
    """

    v: list[np.ndarray]
    ring: list[np.ndarray | None]
    u: np.ndarray
    score: np.ndarray
    t: int = 0

    @property
    def batch(self) -> int:
        return int(self.u.shape[0])


@dataclass(frozen=True)
class LayerTrace:
    """Every value one layer computes in one step; (B, N) each, or (B, T, N) when stacked by :func:`run`.

    ``z``: the delayed spikes fed to the recurrent operator (zeros for taps and layers without recurrence,
    whose operator reads the ring directly or nothing); ``acc_rec`` is zero without recurrence.
    ``h`` is the saturated membrane before the reset, ``v`` the membrane after it.
    """

    acc_ff: np.ndarray
    z: np.ndarray
    acc_rec: np.ndarray
    current: np.ndarray
    h: np.ndarray
    spikes: np.ndarray  # uint8
    v: np.ndarray


@dataclass(frozen=True)
class StepTrace:
    """Every value of one step: per-layer traces, the readout accumulator, its state ``u`` and the score."""

    layers: tuple[LayerTrace, ...]
    readout_acc: np.ndarray
    u: np.ndarray
    score: np.ndarray


@dataclass(frozen=True)
class RunResult:
    """``scores`` (B, K) int64, ``predictions`` (B,) int64, ``trace`` stacked over time (axis 1) or ``None``."""

    scores: np.ndarray
    predictions: np.ndarray
    trace: StepTrace | None = None


def ring_length(rec: IntRecurrence) -> int:
    """Slots of the spike ring: the longest lag read plus the slot being written."""
    if rec.variant == "taps":
        return int(rec.weight.shape[0]) + 1  # lags 1..D
    return rec.max_delay + 2  # lags 1..max_delay + 1


def initial_state(net: IntNetwork, batch: int = 1) -> State:
    """All-zero state (membranes, rings, readout, score) for ``batch`` >= 1 samples; validates ``net``."""
    validate(net)
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    v = [np.zeros((batch, layer.n), dtype=np.int64) for layer in net.layers]
    ring = [
        None if layer.recurrence is None else np.zeros((ring_length(layer.recurrence), batch, layer.n), np.uint8)
        for layer in net.layers
    ]
    k = net.n_classes
    return State(v=v, ring=ring, u=np.zeros((batch, k), np.int64), score=np.zeros((batch, k), np.int64))


# ------------------------------------------------------------------------------------------ validation


def validate(net: IntNetwork) -> None:
    """Raise ``ValueError`` if ``net`` breaks an invariant of the integer network (one definition, in validate)."""
    validate_network(net)


def _checked(a: np.ndarray, bits: int, what: str) -> np.ndarray:
    """``a`` unchanged if every element fits a signed ``bits``-bit integer, else ``OverflowError``."""
    lo, hi = fx.int_range(bits)
    if a.size and (int(a.min()) < lo or int(a.max()) > hi):
        raise OverflowError(f"{what} leaves the {bits}-bit range (min {int(a.min())}, max {int(a.max())})")
    return a


def _matvec(weight: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``x @ weight.T`` on int64 for ``x`` (B, N_in), ``weight`` (N_out, N_in); exact (products stay tiny)."""
    return x.astype(np.int64, copy=False) @ weight.astype(np.int64, copy=False).T


def conv_recurrence(z: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Same-padded cross-correlation of ``z`` (B, N) along neurons with ``kernel`` (C, C, K), int64.

    Neurons are channel-major ``(C, N/C)``; ``out[c, i] = sum_{c', o} kernel[c, c', o] z[c', i + o - (K-1)/2]``
    with zeros outside ``0..N/C-1``.
    """
    c, _, k = kernel.shape
    b, n = z.shape
    width = n // c
    pad = (k - 1) // 2
    zp = np.zeros((b, c, width + 2 * pad), dtype=np.int64)
    zp[:, :, pad : pad + width] = z.reshape(b, c, width)
    kern = kernel.astype(np.int64, copy=False)
    out = np.zeros((b, c, width), dtype=np.int64)
    for o in range(k):
        out += np.einsum("kc,bcn->bkn", kern[:, :, o], zp[:, :, o : o + width])
    return out.reshape(b, n)


def conv_matrix(kernel: np.ndarray, n: int) -> np.ndarray:
    """The (N, N) matrix ``M`` with ``conv_recurrence(z, kernel) == z @ M.T`` (zero padding at the edges).

    ``M[c*w + i, c'*w + j] = kernel[c, c', j - i + (K-1)/2]`` where that index is inside the kernel; the
    static overflow analysis bounds the recurrence through it, and the training side tests its conv against it.
    """
    c, _, k = kernel.shape
    width = n // c
    pad = (k - 1) // 2
    m = np.zeros((n, n), dtype=np.int64 if np.issubdtype(np.asarray(kernel).dtype, np.integer) else np.float64)
    for i in range(width):
        for o in range(k):
            j = i + o - pad
            if 0 <= j < width:
                m[i::width, j::width] = kernel[:, :, o]  # rows c*w + i, columns c'*w + j
    return m


def _delayed_spikes(ring: np.ndarray, delays: np.ndarray, t: int) -> np.ndarray:
    """``z[b, j] = S_j(t - 1 - d_j)`` from the ring (L, B, N): lag ``1 + d_j`` sits in slot ``(t-1-d_j) % L``."""
    slots = (t - 1 - delays.astype(np.int64)) % ring.shape[0]
    neurons = np.arange(ring.shape[2])
    return ring[slots, :, neurons].T  # fancy indexing puts the neuron axis first


def _recurrent(rec: IntRecurrence, ring: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
    """``(z, acc_rec)`` for step ``t``; ``acc_rec`` is checked against int32 by the caller."""
    if rec.variant == "taps":
        # lag d in 1..D has its own kernel; no single z exists, so the trace carries zeros
        acc = np.zeros(ring.shape[1:], dtype=np.int64)
        for d in range(1, rec.weight.shape[0] + 1):
            acc += conv_recurrence(ring[(t - d) % ring.shape[0]], rec.weight[d - 1])
        return np.zeros(ring.shape[1:], dtype=np.uint8), acc
    z = _delayed_spikes(ring, rec.delays, t)
    if rec.variant == "dense":
        return z, _matvec(rec.weight, z)
    return z, conv_recurrence(z, rec.weight)


# ------------------------------------------------------------------------------------------------ step


def _layer_step(layer: IntLayer, where: str, v: np.ndarray, ring: np.ndarray | None, t: int, x: np.ndarray):
    """One LIF layer for one step; returns its :class:`LayerTrace` (``v`` is the new membrane)."""
    acc_ff = _checked(_matvec(layer.weight, x), ACC_BITS, f"{where}: feed-forward accumulator")
    current = _checked(acc_ff << layer.ff_shift, ACC_BITS, f"{where}: shifted feed-forward accumulator")
    if layer.recurrence is None:
        z = np.zeros_like(v, dtype=np.uint8)
        acc_rec = np.zeros_like(v)
    else:
        z, acc_rec = _recurrent(layer.recurrence, ring, t)
        _checked(acc_rec, ACC_BITS, f"{where}: recurrent accumulator")
        shifted = _checked(acc_rec << layer.rec_shift, ACC_BITS, f"{where}: shifted recurrent accumulator")
        current = _checked(current + shifted, ACC_BITS, f"{where}: current (before the bias)")
    current = _checked(current + layer.bias.astype(np.int64), ACC_BITS, f"{where}: current")
    leaked = fx.leak(v, layer.leak_mul, layer.leak_shift)
    h = fx.saturate(_checked(leaked + current, ACC_BITS, f"{where}: membrane before saturation"), layer.state_bits)
    fired = h >= layer.threshold
    if layer.reset == "zero":
        v_new = np.where(fired, 0, h)
    else:
        v_new = np.where(fired, h - layer.threshold, h)
    _checked(v_new, layer.state_bits, f"{where}: membrane after reset")
    return LayerTrace(acc_ff, z, acc_rec, current, h, fired.astype(np.uint8), v_new)


def _check_input(net: IntNetwork, state: State, x) -> np.ndarray:
    x = np.asarray(x)
    if x.shape != (state.batch, net.n_inputs):
        raise ValueError(f"input must have shape ({state.batch}, {net.n_inputs}), got {x.shape}")
    if x.dtype.kind not in "iub":
        raise ValueError(f"input must be integer counts, got dtype {x.dtype}")
    if x.size and (int(x.min()) < 0 or int(x.max()) > MAX_COUNT):
        raise ValueError(f"input counts must be in 0..{MAX_COUNT}")
    return x.astype(np.int64)


def _readout_step(net: IntNetwork, state: State, s_last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Readout accumulator and new ``u`` (the only 64-bit leak product in the network)."""
    ro = net.readout
    acc = _checked(_matvec(ro.weight, s_last), ACC_BITS, "readout: accumulator")
    shifted = _checked(acc << ro.out_shift, ACC_BITS, "readout: shifted accumulator")
    drive = _checked(shifted + ro.bias.astype(np.int64), ACC_BITS, "readout: input")
    leaked = fx.leak(state.u, ro.leak_mul, ro.leak_shift, product_bits=64)
    # |leaked| and |drive| are below 2**31, so their int64 sum is exact; the C saturates it the same way
    return acc, fx.saturate(leaked + drive, ACC_BITS)


def step(net: IntNetwork, state: State, x) -> StepTrace:
    """Advance ``state`` by one step **in place** on input counts ``x`` (B, n_inputs) in 0..255.

    Returns the step's :class:`StepTrace`; its arrays are fresh (they do not alias ``state``).
    Raises ``OverflowError`` if any int32/int64 value of the spec would wrap in the C; the state is
    then partly updated and should be discarded.
    """
    signal = _check_input(net, state, x)
    t = state.t
    traces = []
    for i, layer in enumerate(net.layers):
        tr = _layer_step(layer, f"layer {i}", state.v[i], state.ring[i], t, signal)
        state.v[i] = tr.v.copy()
        if state.ring[i] is not None:
            state.ring[i][t % state.ring[i].shape[0]] = tr.spikes  # lags read above were >= 1: no clash
        traces.append(tr)
        signal = tr.spikes  # layer l+1 consumes layer l's spikes of the same step
    acc, u = _readout_step(net, state, signal)
    state.u = u
    state.score = fx.add_saturate(state.score, u, SCORE_BITS)
    state.t = t + 1
    return StepTrace(tuple(traces), acc, u.copy(), state.score.copy())


# ------------------------------------------------------------------------------------------------- run


def predictions_from(scores: np.ndarray) -> np.ndarray:
    """First index of the largest score per sample (``np.argmax`` breaks ties to the first)."""
    return np.argmax(scores, axis=-1).astype(np.int64)


def run(net: IntNetwork, inputs, keep_trace: bool = False) -> RunResult:
    """Run whole samples from the zero state: ``inputs`` (B, T, n_inputs) or (T, n_inputs) counts 0..255.

    A 2-D input is one sample: the result still has a batch axis of 1. With ``keep_trace`` every
    :class:`StepTrace` field is stacked along a new time axis 1, e.g. ``h`` is (B, T, N).
    """
    x = np.asarray(inputs)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"inputs must be (B, T, n_inputs) or (T, n_inputs), got shape {np.shape(inputs)}")
    state = initial_state(net, batch=x.shape[0])
    steps = []
    for t in range(x.shape[1]):
        tr = step(net, state, x[:, t])
        if keep_trace:
            steps.append(tr)
    trace = _stack(steps) if keep_trace and steps else None
    return RunResult(state.score.copy(), predictions_from(state.score), trace)


def _stack(steps: list[StepTrace]) -> StepTrace:
    def along_time(arrays):
        return np.stack(arrays, axis=1)

    layers = tuple(
        LayerTrace(*(along_time([getattr(s.layers[i], f) for s in steps]) for f in LayerTrace.__dataclass_fields__))
        for i in range(len(steps[0].layers))
    )
    return StepTrace(
        layers,
        along_time([s.readout_acc for s in steps]),
        along_time([s.u for s in steps]),
        along_time([s.score for s in steps]),
    )
