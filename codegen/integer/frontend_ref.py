"""The integer front end's reference arithmetic: the executable definition of :mod:`codegen.integer.frontend`.

Pure functions over explicit state, numpy int64 throughout, vectorized over a batch of independent streams
(axis 0) and, for the stateless spectral part, over frames. Every value the C holds in an int32 register is
checked against that width (``OverflowError`` instead of a silent wrap), the power against uint32 and the
filterbank energy against the int64 this module computes in (the C holds it in a uint64). The per-bin loop of
:func:`feed` is checked by bounds proven once per call (the trackers by :func:`_check_tracker_ranges`, the
encoder by its invariant ``0 <= v < threshold``) and runs the encoder through a table of :func:`encode` over
every valid state; the tests compare both forms on every state.

:func:`feed` is the streaming step: any number of samples in, the counts of every bin they complete out,
and the new state. Feeding a stream in pieces gives exactly the counts and the state of one call.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from . import fixedpoint as fx
from .fixedpoint import ACC_BITS
from .frontend import (
    FILTER_BITS, LOG_INTERP_BITS, LOG_TABLE_BITS, LOGADD_STEP_BITS, SPLIT_SHIFT, TWIDDLE_BITS, WINDOW_BITS,
    IntFrontEnd, filterbank_matrix, validate_frontend,
)

PCM_RANGE = fx.int_range(16)
UINT32_MAX = (1 << 32) - 1


@dataclass
class State:
    """Everything the front end remembers, for ``B`` streams that receive the same number of samples.

    ``ring`` (B, N): the last N samples, sample ``g`` of the stream at slot ``g mod N`` (zeros before the
    stream began); ``pos``: the slot the next sample goes to; ``fill``: samples of the current bin so far
    (0..hop-1); ``floor``, ``v``, ``refractory``, ``counts`` (B, C): the noise floor, the encoder's membrane
    and refractory counter, and the counts of the last completed bin; ``peak`` (B,): the peak tracker;
    ``prev`` (B, C): the last completed bin's L (0 after a reset; unused with ``pool_bins`` 1, where it stays 0).
    """

    ring: np.ndarray
    pos: int
    fill: int
    floor: np.ndarray
    peak: np.ndarray
    v: np.ndarray
    refractory: np.ndarray
    counts: np.ndarray
    prev: np.ndarray

    @property
    def batch(self) -> int:
        return int(self.ring.shape[0])

    def copy(self) -> "State":
        return State(self.ring.copy(), self.pos, self.fill, self.floor.copy(), self.peak.copy(), self.v.copy(),
                     self.refractory.copy(), self.counts.copy(), self.prev.copy())


@dataclass(frozen=True)
class Trace:
    """Per completed bin (axis 1, after the stream axis 0): the values the bin computed and the state after it.

    ``power`` (B, nb, M + 1), ``energy``/``log``/``level``/``feature``/``floor``/``v``/``refractory``/``counts``
    (B, nb, C), ``peak`` (B, nb); ``pos`` (nb,) the ring position when the bin completed. ``log`` is L,
    ``level`` the pooled Lp the gain control reads (equal to L with ``pool_bins`` 1).
    """

    power: np.ndarray
    energy: np.ndarray
    log: np.ndarray
    level: np.ndarray
    feature: np.ndarray
    floor: np.ndarray
    peak: np.ndarray
    v: np.ndarray
    refractory: np.ndarray
    counts: np.ndarray
    pos: np.ndarray


def initial_state(fe: IntFrontEnd, batch: int = 1) -> State:
    """The state after a reset: silence in the ring, every floor at ``floor_init``, the peak and the
    membranes at zero."""
    validate_frontend(fe)
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    c = fe.n_channels
    zeros = np.zeros((batch, c), dtype=np.int64)
    return State(np.zeros((batch, fe.frame), dtype=np.int64), 0, 0, np.full((batch, c), fe.floor_init, np.int64),
                 np.zeros(batch, dtype=np.int64), zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy())


# ------------------------------------------------------------------------------------------ checks


def _checked(a: np.ndarray, bits: int, what: str) -> np.ndarray:
    lo, hi = fx.int_range(bits)
    if a.size and (int(a.min()) < lo or int(a.max()) > hi):
        raise OverflowError(f"front end: {what} leaves the {bits}-bit range (min {int(a.min())}, max {int(a.max())})")
    return a


def _product_sum(c: np.ndarray, x: np.ndarray, s: np.ndarray, y: np.ndarray, what: str) -> np.ndarray:
    """``c*x + s*y`` with each product and the sum checked against int32, as the C computes it."""
    p = _checked(c * x, ACC_BITS, f"{what} (first product)")
    q = _checked(s * y, ACC_BITS, f"{what} (second product)")
    return _checked(p + q, ACC_BITS, what)


# ------------------------------------------------------------------------------------- spectral part


def bit_reverse(m: int) -> np.ndarray:
    """The bit-reversal permutation of 0..m-1 (m a power of two)."""
    bits = m.bit_length() - 1
    idx = np.arange(m)
    rev = np.zeros(m, dtype=np.int64)
    for b in range(bits):
        rev |= ((idx >> b) & 1) << (bits - 1 - b)
    return rev


def window(fe: IntFrontEnd, frames: np.ndarray) -> np.ndarray:
    """``rshift(x * w, 15)`` per sample; frames (..., N) int16 values."""
    return fx.rshift_round(frames * fe.window.astype(np.int64), WINDOW_BITS)


def fft(fe: IntFrontEnd, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The scaled M-point complex FFT of ``z[m] = y[2m] + i y[2m+1]``: (re, im), each (..., M), natural order."""
    m = fe.half
    rev = bit_reverse(m)
    re = np.ascontiguousarray(y[..., 0::2][..., rev])
    im = np.ascontiguousarray(y[..., 1::2][..., rev])
    lead = re.shape[:-1]
    cos, sin = fe.cos.astype(np.int64), fe.sin.astype(np.int64)
    h = 1
    for stage, shift in enumerate(fe.fft_shifts):
        k = np.arange(h) * (fe.frame // (2 * h))
        c, s = cos[k], sin[k]
        re4 = re.reshape(*lead, m // (2 * h), 2, h)
        im4 = im.reshape(*lead, m // (2 * h), 2, h)
        ar, ai, br, bi = re4[..., 0, :], im4[..., 0, :], re4[..., 1, :], im4[..., 1, :]
        where = f"FFT stage {stage}"
        tr = fx.rshift_round(_product_sum(c, br, s, bi, f"{where} twiddle product (real)"), TWIDDLE_BITS)
        ti = fx.rshift_round(_product_sum(c, bi, -s, br, f"{where} twiddle product (imaginary)"), TWIDDLE_BITS)
        out_re = np.empty_like(re4)
        out_im = np.empty_like(im4)
        out_re[..., 0, :] = fx.rshift_round(_checked(ar + tr, ACC_BITS, f"{where} sum"), shift)
        out_im[..., 0, :] = fx.rshift_round(_checked(ai + ti, ACC_BITS, f"{where} sum"), shift)
        out_re[..., 1, :] = fx.rshift_round(_checked(ar - tr, ACC_BITS, f"{where} difference"), shift)
        out_im[..., 1, :] = fx.rshift_round(_checked(ai - ti, ACC_BITS, f"{where} difference"), shift)
        re, im = out_re.reshape(*lead, m), out_im.reshape(*lead, m)
        h *= 2
    return re, im


def split(fe: IntFrontEnd, re: np.ndarray, im: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The N-point real spectrum X[k], k = 0..M, from the M-point complex FFT (see the module docstring)."""
    m = fe.half
    k = np.arange(m + 1)
    z1r, z1i = re[..., k % m], im[..., k % m]
    z2r, z2i = re[..., (m - k) % m], im[..., (m - k) % m]
    ar = _checked(z1r + z2r, ACC_BITS, "split sum")
    ai = _checked(z1i - z2i, ACC_BITS, "split sum")
    br = _checked(z1r - z2r, ACC_BITS, "split difference")
    bi = _checked(z1i + z2i, ACC_BITS, "split difference")
    c, s = fe.cos.astype(np.int64), fe.sin.astype(np.int64)
    tr = fx.rshift_round(_product_sum(c, bi, -s, br, "split twiddle product (real)"), TWIDDLE_BITS)
    ti = fx.rshift_round(_product_sum(-c, br, -s, bi, "split twiddle product (imaginary)"), TWIDDLE_BITS)
    xr = fx.rshift_round(_checked(ar + tr, ACC_BITS, "split output"), SPLIT_SHIFT)
    xi = fx.rshift_round(_checked(ai + ti, ACC_BITS, "split output"), SPLIT_SHIFT)
    return xr, xi


def power(xr: np.ndarray, xi: np.ndarray) -> np.ndarray:
    """``Xr^2 + Xi^2``, held in a uint32."""
    p = xr * xr + xi * xi
    if p.size and int(p.max()) > UINT32_MAX:
        raise OverflowError(f"front end: the power leaves the uint32 range (max {int(p.max())})")
    return p


def spectrum(fe: IntFrontEnd, frames: np.ndarray) -> np.ndarray:
    """Power spectrum (..., M + 1) of frames (..., N) of int16 samples: window, FFT, split, power."""
    re, im = fft(fe, window(fe, frames))
    return power(*split(fe, re, im))


def filterbank(fe: IntFrontEnd, p: np.ndarray) -> np.ndarray:
    """Channel energies (..., C): ``sum_k g[c, k] P[k]`` (below 2^63: checked by the bounds analysis)."""
    g = filterbank_matrix(fe.chan, fe.weight, fe.n_channels)
    if p.size and int(p.max()) * int(g.sum(axis=1).max()) >= 1 << 63:
        raise OverflowError("front end: a filterbank energy could leave the 64-bit range")
    return p @ g.T


def log2_fixed(fe: IntFrontEnd, e: np.ndarray) -> np.ndarray:
    """``L = log2(E)`` in Q(log_frac) by leading-zero count, table and interpolation; 0 for E = 0."""
    e = np.asarray(e, dtype=np.int64)
    if e.size and int(e.min()) < 0:
        raise ValueError("energies are not negative")
    u = e.astype(np.uint64)
    msb = np.zeros(e.shape, dtype=np.int64)  # floor(log2 E) for E >= 1, by binary search on the bits
    for step in (32, 16, 8, 4, 2, 1):
        higher = (u >> (msb + step).astype(np.uint64)) > 0
        msb += step * higher
    normal = u << (63 - msb).astype(np.uint64)  # leading one at bit 63
    t, r = LOG_TABLE_BITS, LOG_INTERP_BITS
    index = ((normal >> np.uint64(63 - t)) & np.uint64((1 << t) - 1)).astype(np.int64)
    rest = ((normal >> np.uint64(63 - t - r)) & np.uint64((1 << r) - 1)).astype(np.int64)
    tab = fe.log_table.astype(np.int64)
    step = tab[index + 1] - tab[index]
    frac = fx.rshift_round(step * rest, r)
    out = (msb << fe.log_frac) + tab[index] + frac
    return np.where(e == 0, 0, out)


def pool(fe: IntFrontEnd, log: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """The level ``Lp`` of bins with logs ``log`` whose previous bins had ``prev`` (same shapes): ``log`` itself
    with ``pool_bins`` 1, else ``max(L, lp) + add[min(|L - lp| >> 1, A - 1)]`` (``log2(E + E_prev)``), where
    the table term is left out when L or lp is 0 (the log of no energy: silence pools to silence)."""
    log = np.asarray(log, dtype=np.int64)
    if fe.pool_bins == 1:
        return log
    prev = np.asarray(prev, dtype=np.int64)
    table = fe.logadd_table.astype(np.int64)
    index = np.minimum(np.abs(log - prev) >> LOGADD_STEP_BITS, table.size - 1)
    return np.maximum(log, prev) + np.where((log > 0) & (prev > 0), table[index], 0)


# ------------------------------------------------------------------------------------ per-bin state


def track(fe: IntFrontEnd, t: np.ndarray, x: np.ndarray, up: int, down: int, what: str,
          checked: bool = True) -> np.ndarray:
    """A level tracker: ``t + rshift(d, up)`` if ``d = x * 2^G - t > 0`` else ``t + rshift(d, down)``.

    ``checked=False`` skips the int32 checks (for a caller that has proven the ranges, see :func:`feed`)."""
    d = (x << fe.floor_frac) - t
    if not checked:
        return t + np.where(d > 0, fx.rshift_round_values(d, up), fx.rshift_round_values(d, down))
    _checked(d, ACC_BITS, f"{what} difference")
    step = np.where(d > 0, fx.rshift_round(d, up), fx.rshift_round(d, down))
    return _checked(t + step, ACC_BITS, what)


def gain(fe: IntFrontEnd, floor: np.ndarray, peak: np.ndarray, log: np.ndarray, checked: bool = True):
    """One bin of the causal gain control: (encoder input f (..., C), new floor (..., C), new peak (...,))."""
    shift = fx.rshift_round if checked else fx.rshift_round_values
    quiet = np.maximum(shift(floor, fe.floor_frac), fe.floor_min) + fe.offset
    loud = shift(peak, fe.floor_frac)[..., None] - fe.depth
    difference = log - np.maximum(quiet, loud)
    f = np.clip(_checked(difference, ACC_BITS, "gain difference") if checked else difference, 0, fe.threshold - 1)
    floor = track(fe, floor, log, fe.floor_rise_shift, fe.floor_fall_shift, "floor", checked)
    peak = track(fe, peak, log.max(axis=-1), 0, fe.peak_fall_shift, "peak", checked)
    return f, floor, peak


def _check_tracker_ranges(fe: IntFrontEnd, floor: np.ndarray, peak: np.ndarray, log: np.ndarray) -> None:
    """Prove that no tracker register of the bins ahead can leave int32, so :func:`feed` may run them unchecked.

    A tracker moves from ``t`` towards ``x * 2^G`` by a rounded fraction of the difference, never past it, so
    every tracker value stays within [min(t0, 0), max(t0, max L * 2^G)] and every difference within twice that;
    the gain difference is within the same bound. One check of that bound covers every bin."""
    lo, hi = fx.int_range(ACC_BITS)
    values = [int(floor.min()), int(floor.max()), int(peak.min()), int(peak.max())] if floor.size else [0]
    extent = max(max(abs(v) for v in values), (int(log.max()) << fe.floor_frac) if log.size else 0, 0)
    bias = max(fx.rounding_bias(k) for k in (fe.floor_frac, fe.floor_rise_shift, fe.floor_fall_shift,
                                              fe.peak_fall_shift))
    if int(log.min(initial=0)) < 0 or 2 * extent + bias + fe.offset + fe.depth + fe.floor_min > hi:
        raise OverflowError("front end: a tracker register could leave the 32-bit range")


def encode(fe: IntFrontEnd, v: np.ndarray, refractory: np.ndarray, f: np.ndarray):
    """One bin of the LIF encoder (``substeps`` sub-steps of constant input ``f``): (counts, v, refractory).

    ``v`` and ``f`` are never negative, so no sub-step's membrane exceeds ``v + substeps * f``: that bound is
    checked against int32 once, before the sub-steps.
    """
    if v.size and int(v.max()) + fe.substeps * int(f.max()) > fx.int_range(ACC_BITS)[1]:
        raise OverflowError("front end: the encoder membrane could leave the 32-bit range")
    count = np.zeros(f.shape, dtype=np.int64)
    for _ in range(fe.substeps):
        active = refractory == 0
        if fe.leak_shift:
            v = v - fx.rshift_round_values(v, fe.leak_shift)
        v = v + f * active
        fired = active & (v >= fe.threshold)
        v = v - fe.threshold * fired
        count += fired
        refractory = np.where(active, fe.refractory * fired, refractory - 1)
    return count, v, refractory


MAX_TABLE = 1 << 22  # encoder states (v, refractory, f) tabulated at most


@functools.lru_cache(maxsize=4)
def encoder_table(fe: IntFrontEnd) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """:func:`encode` of every valid state, so that a bin of the encoder is one lookup: arrays of (count, v,
    refractory) indexed by ``(r * threshold + v) * threshold + f`` for 0 <= v, f < threshold and 0 <= r <= refractory
    (every state the encoder reaches from rest: the membrane stays below the threshold); None when that would
    exceed :data:`MAX_TABLE` states (the encoder then runs sub-step by sub-step)."""
    theta, r_max = fe.threshold, fe.refractory
    size = theta * theta * (r_max + 1)
    if size > MAX_TABLE:
        return None
    index = np.arange(size, dtype=np.int64)
    f, rest = index % theta, index // theta
    v, r = rest % theta, rest // theta
    count, v_next, r_next = encode(fe, v, r, f)
    assert v_next.min() >= 0 and v_next.max() < theta and r_next.max() <= r_max, "the encoder left its states"
    return count.astype(np.uint8), v_next.astype(np.int32), r_next.astype(np.uint8)


def encode_bin(fe: IntFrontEnd, v: np.ndarray, refractory: np.ndarray, f: np.ndarray):
    """:func:`encode`, through :func:`encoder_table` when the state is one it tabulates."""
    table = encoder_table(fe)
    theta = fe.threshold
    if table is None or v.min(initial=0) < 0 or v.max(initial=0) >= theta or refractory.max(initial=0) > fe.refractory:
        return encode(fe, v, refractory, f)
    index = (refractory * theta + v) * theta + f
    return table[0][index].astype(np.int64), table[1][index].astype(np.int64), table[2][index].astype(np.int64)


# ------------------------------------------------------------------------------------------ streaming


def _pcm(fe: IntFrontEnd, state: State, pcm) -> np.ndarray:
    x = np.asarray(pcm)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[0] != state.batch:
        raise ValueError(f"pcm must be (n,) or ({state.batch}, n), got shape {np.shape(pcm)}")
    if x.dtype.kind not in "iu":
        raise ValueError(f"pcm must be integer samples, got dtype {x.dtype}")
    if x.size and (int(x.min()) < PCM_RANGE[0] or int(x.max()) > PCM_RANGE[1]):
        raise ValueError("pcm samples must be int16 values (-32768..32767)")
    return x.astype(np.int64)


def feed(fe: IntFrontEnd, state: State, pcm, keep_trace: bool = False) -> tuple[np.ndarray, State, Trace | None]:
    """Feed ``pcm`` ((n,) for one stream, (B, n) for B) to the front end.

    Returns the counts of every bin the samples complete, (B, nb, C) uint8 with ``nb = (fill + n) // hop``,
    the new state (``state`` itself is not changed) and, with ``keep_trace``, a :class:`Trace` of those bins.
    """
    x = _pcm(fe, state, pcm)
    n_frame, hop = fe.frame, fe.hop
    b, n = x.shape
    nb = (state.fill + n) // hop
    history = np.roll(state.ring, -state.pos, axis=1)  # oldest sample first
    stream = np.concatenate([history, x], axis=1)  # stream index n_frame + t is pcm sample t
    first_end = n_frame + hop - state.fill  # one past the last sample of the first completed bin
    ends = first_end + hop * np.arange(nb)
    new_pos = (state.pos + n) % n_frame
    ring = np.roll(stream[:, -n_frame:], new_pos, axis=1)
    fill = (state.fill + n) % hop
    c = fe.n_channels
    counts = np.zeros((b, nb, c), dtype=np.int64)
    floor, peak, v, refractory, last = state.floor, state.peak, state.v, state.refractory, state.counts
    prev = state.prev
    trace_rows = []
    if nb:
        frames = stream[:, ends[:, None] + np.arange(-n_frame, 0)[None, :]]  # (B, nb, N)
        p = spectrum(fe, frames)
        energy = filterbank(fe, p)
        log = log2_fixed(fe, energy)
        if fe.pool_bins == 2:
            level = pool(fe, log, np.concatenate([prev[:, None], log[:, :-1]], axis=1))
            prev = log[:, -1]
        else:
            level = log
        _check_tracker_ranges(fe, floor, peak, level)
        for i in range(nb):
            f, floor, peak = gain(fe, floor, peak, level[:, i], checked=False)
            counts[:, i], v, refractory = encode_bin(fe, v, refractory, f)
            if keep_trace:
                trace_rows.append((f, floor, peak, v, refractory))
        last = counts[:, -1].copy()
    new = State(ring, new_pos, fill, floor.copy(), peak.copy(), v.copy(), refractory.copy(), last, prev.copy())
    trace = None
    if keep_trace:
        def stack(j: int) -> np.ndarray:
            if not trace_rows:
                return np.zeros((b, 0) + (() if j == 2 else (c,)), dtype=np.int64)
            return np.stack([row[j] for row in trace_rows], axis=1)

        pos = (state.pos + ends - n_frame) % n_frame
        if not nb:
            p = np.zeros((b, 0, fe.half + 1), np.int64)
            energy = log = level = np.zeros((b, 0, c), np.int64)
        trace = Trace(p, energy, log, level, stack(0), stack(1), stack(2), stack(3), stack(4), counts.copy(), pos)
    return counts.astype(np.uint8), new, trace


def run(fe: IntFrontEnd, pcm, keep_trace: bool = False) -> tuple[np.ndarray, State, Trace | None]:
    """:func:`feed` from a fresh state: ``pcm`` (n,) or (B, n)."""
    x = np.asarray(pcm)
    return feed(fe, initial_state(fe, 1 if x.ndim == 1 else x.shape[0]), x, keep_trace)


def encode_clips(fe: IntFrontEnd, clips) -> list[np.ndarray]:
    """Counts of whole clips from rest, one (len // hop, C) uint8 array per clip, computed as one batch.

    Shorter clips are padded with silence at the end; being causal, the front end's output for their own
    bins does not depend on it.
    """
    clips = [np.asarray(c) for c in clips]
    if not clips:
        return []
    longest = max(c.size for c in clips)
    batch = np.zeros((len(clips), longest), dtype=np.int64)
    for i, c in enumerate(clips):
        if c.ndim != 1:
            raise ValueError(f"clip {i} is not mono (shape {c.shape})")
        batch[i, : c.size] = c
    counts, _, _ = feed(fe, initial_state(fe, len(clips)), batch)
    return [counts[i, : c.size // fe.hop] for i, c in enumerate(clips)]


def to_pcm16(audio) -> np.ndarray:
    """Float audio in [-1, 1] to int16 PCM: ``sat16(rnd(x * 32768))`` (the project's rounding rule)."""
    return fx.saturate(fx.round_half_up(np.asarray(audio, dtype=np.float64) * 32768.0), 16).astype(np.int16)


