r"""Static worst-case ranges of every checked intermediate of :mod:`codegen.integer.refmodel`, from the actual weights.

Each quantity gets an interval ``[lo, hi]`` by interval arithmetic over all inputs the network can see:
input counts in ``0..max_input`` for layer 0, spikes in ``{0, 1}`` after it (every neuron may spike at
every step), any membrane inside ``state_bits``. Because the inputs are non-negative, the extremes of an
accumulator row are ``max_input`` times the sum of its positive (negative) weights, and each is reached
by one input pattern, so the accumulator bounds are tight (a looser ``sum |W|`` bound would refuse
networks that cannot overflow).

The readout state is bounded geometrically: with leak :math:`\beta = m/2^k < 1` and a rounded shift that
errs by at most 1/2, :math:`|u_{t+1}| \le \beta |u_t| + 1/2 + |\mathrm{in}|`, so from zero
:math:`|u| \le (|\mathrm{in}| + 1/2) / (1 - \beta)`; it saturates at int32 in any case. The score over
``max_steps`` steps is at most ``max_steps`` times the largest ``|u|``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from . import fixedpoint as fx
from .fixedpoint import ACC_BITS
from .network import MAX_COUNT, SCORE_BITS, IntLayer, IntNetwork, IntReadout, IntRecurrence
from .refmodel import conv_matrix
from .validate import validate_network as validate

# what to change when a quantity can overflow, by quantity name
_ADVICE = {
    "feed-forward accumulator": "use fewer weight bits, fewer inputs per neuron or a smaller input range",
    "recurrent accumulator": "use fewer recurrent weight bits, a smaller kernel or fewer taps",
    "current": "use fewer membrane fraction bits (smaller shifts) or a smaller bias",
    "membrane before saturation": "use fewer membrane fraction bits (smaller shifts) or a smaller bias",
    "leak product": "use a narrower membrane (state_bits) or a leak with fewer fraction bits",
    "readout accumulator": "use fewer readout weight bits",
    "readout input": "use fewer readout fraction bits (a smaller shift) or a smaller bias",
    "score": "classify shorter samples (fewer steps)",
}


@dataclass(frozen=True)
class Quantity:
    """The reachable range ``lo..hi`` of one value held in a signed ``bits``-bit container."""

    where: str  # "layer 0", "readout", "network"
    name: str
    lo: int
    hi: int
    bits: int

    @property
    def worst(self) -> int:
        """Largest magnitude, >= 0."""
        return max(-self.lo, self.hi, 0)

    @property
    def fits(self) -> bool:
        lo, hi = fx.int_range(self.bits)
        return lo <= self.lo and self.hi <= hi

    @property
    def headroom_bits(self) -> float:
        """``bits - 1 - log2(worst)``: negative means it can overflow."""
        return self.bits - 1 - (math.log2(self.worst) if self.worst else 0.0)

    def message(self) -> str:
        return (
            f"{self.where}: the {self.name} can reach 2^{math.log2(self.worst):.1f} ({self.worst}), "
            f"which overflows int{self.bits}; {_ADVICE.get(self.name, 'reduce its range')}"
        )


@dataclass(frozen=True)
class LayerBounds:
    acc_ff: Quantity
    acc_rec: Quantity | None  # None without recurrence
    current: Quantity  # I after shifts, plus bias (and every partial sum of it)
    membrane_sum: Quantity  # leak(v) + I before sat_state
    leak_product: Quantity  # v * leak_mul plus the rounding bias, held in 32 bits


@dataclass(frozen=True)
class ReadoutBounds:
    acc: Quantity
    drive: Quantity  # (acc << out_shift) + bias
    u: Quantity  # the state, int32 by saturation


@dataclass(frozen=True)
class OverflowReport:
    layers: tuple[LayerBounds, ...]
    readout: ReadoutBounds
    score: Quantity | None  # None when no max_steps was given

    HEADER = ("where", "quantity", "lo", "hi", "bits", "headroom", "ok")

    def quantities(self) -> list[Quantity]:
        out: list[Quantity] = []
        for lb in self.layers:
            out += [q for q in (lb.acc_ff, lb.acc_rec, lb.current, lb.membrane_sum, lb.leak_product) if q is not None]
        out += [self.readout.acc, self.readout.drive, self.readout.u]
        if self.score is not None:
            out.append(self.score)
        return out

    def overflows(self) -> list[Quantity]:
        return [q for q in self.quantities() if not q.fits]

    def rows(self) -> list[tuple[str, ...]]:
        """The table as strings, header first; columns as :attr:`HEADER`."""
        body = [
            (q.where, q.name, str(q.lo), str(q.hi), str(q.bits), f"{q.headroom_bits:.1f}", "yes" if q.fits else "NO")
            for q in self.quantities()
        ]
        return [self.HEADER, *body]

    def __str__(self) -> str:
        rows = self.rows()
        widths = [max(len(r[c]) for r in rows) for c in range(len(self.HEADER))]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)


# ----------------------------------------------------------------------------------------------- bounds


def _row_extremes(matrix: np.ndarray, max_in: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the least and largest ``matrix @ x`` over ``0 <= x <= max_in``, as Python-int object arrays."""
    m = matrix.astype(object)  # Python ints: no bound here may wrap
    pos = np.where(m > 0, m, 0).sum(axis=1) * max_in
    neg = np.where(m < 0, m, 0).sum(axis=1) * max_in
    return neg, pos


def recurrent_matrix(rec: IntRecurrence, n: int) -> np.ndarray:
    """The weights a neuron sees from the delayed spikes; for taps, summed over lags as signed parts."""
    if rec.variant == "dense":
        return rec.weight.astype(np.int64)
    if rec.variant == "taps":
        # each lag reads an independent spike vector: stack the lags side by side, (N, D*N)
        return np.concatenate([conv_matrix(kd, n) for kd in rec.weight], axis=1)
    return conv_matrix(rec.weight, n)


def _q(where: str, name: str, lo, hi, bits: int) -> Quantity:
    return Quantity(where, name, int(np.min(lo)), int(np.max(hi)), bits)


def _layer_bounds(layer: IntLayer, where: str, max_in: int) -> LayerBounds:
    ff_lo, ff_hi = _row_extremes(layer.weight, max_in)
    bias = layer.bias.astype(object)
    cur_lo, cur_hi = ff_lo * (1 << layer.ff_shift), ff_hi * (1 << layer.ff_shift)
    acc_rec = None
    if layer.recurrence is not None:
        rec_lo, rec_hi = _row_extremes(recurrent_matrix(layer.recurrence, layer.n), 1)
        acc_rec = _q(where, "recurrent accumulator", rec_lo, rec_hi, ACC_BITS)
        cur_lo, cur_hi = cur_lo + rec_lo * (1 << layer.rec_shift), cur_hi + rec_hi * (1 << layer.rec_shift)
    # the partial sums without the bias are checked too; including them keeps the bound honest
    lo = [min(a, b) for a, b in zip(cur_lo, cur_lo + bias)]
    hi = [max(a, b) for a, b in zip(cur_hi, cur_hi + bias)]
    current = _q(where, "current", lo, hi, ACC_BITS)
    # |leak(v)| <= |v| <= 2^(state_bits-1) since m <= 2^k
    v_lo, v_hi = fx.int_range(layer.state_bits)
    membrane = _q(where, "membrane before saturation", cur_lo + bias + v_lo, cur_hi + bias + v_hi, ACC_BITS)
    rounding = fx.rounding_bias(layer.leak_shift)
    leak = Quantity(where, "leak product", v_lo * layer.leak_mul + rounding, v_hi * layer.leak_mul + rounding, ACC_BITS)
    ff = _q(where, "feed-forward accumulator", ff_lo, ff_hi, ACC_BITS)
    return LayerBounds(ff, acc_rec, current, membrane, leak)


def _geometric(drive: int, mul: int, shift: int) -> int:
    """Largest ``u >= 0`` reachable from 0 by ``u <- rshift(u*m, k) + drive`` with ``drive >= 0``, or int32 max."""
    _, hi = fx.int_range(ACC_BITS)
    beta = Fraction(mul, 1 << shift)
    if beta >= 1:
        return hi  # no decay: only saturation stops it
    bound = (Fraction(drive) + Fraction(1, 2)) / (1 - beta)  # fixed point of u = beta*u + 1/2 + drive
    return min(math.floor(bound), hi)


def _readout_bounds(ro: IntReadout, max_in: int = 1) -> ReadoutBounds:
    acc_lo, acc_hi = _row_extremes(ro.weight, max_in)
    bias = ro.bias.astype(object)
    shift = 1 << ro.out_shift
    lo = [min(a, b) for a, b in zip(acc_lo * shift, acc_lo * shift + bias)]
    hi = [max(a, b) for a, b in zip(acc_hi * shift, acc_hi * shift + bias)]
    drive = _q("readout", "readout input", lo, hi, ACC_BITS)
    # a positive drive pushes u up, a negative one down; each side has its own geometric bound
    up = _geometric(max(drive.hi, 0), ro.leak_mul, ro.leak_shift)
    down = _geometric(max(-drive.lo, 0), ro.leak_mul, ro.leak_shift)
    u = Quantity("readout", "readout state", -min(down, 1 << (ACC_BITS - 1)), up, ACC_BITS)
    return ReadoutBounds(_q("readout", "readout accumulator", acc_lo, acc_hi, ACC_BITS), drive, u)


PACKED_BITS = 16  # lanes of the packed accumulation kernels
PACKED_ALWAYS = 0xFFFFFFFF  # the limit of a matrix whose every input is proven safe


@dataclass(frozen=True)
class Packing:
    """Whether the kernels may sum one weight matrix in 16-bit lanes, decided from the actual weights.

    Lanes wrap modulo 2^16, so a lane is exact when the *final* sum fits int16, whatever the order of the
    additions. ``bound`` is the largest reachable ``|acc|`` over every input (``max_input`` times the larger
    of a row's positive and negative weight sums, as for the 32-bit check); when it fits, ``limit`` is
    :data:`PACKED_ALWAYS`. Otherwise a step whose inputs add up to a total count ``C`` has ``|acc| <= C * M``
    (``M`` the largest ``|weight|``), so the kernels pack while ``C <= limit = (2^15 - 1) // M`` and use
    32-bit sums for that step beyond it. ``limit`` is 0 (never packed) for weights wider than 8 bits.
    """

    bound: int
    max_abs: int
    limit: int

    @property
    def kind(self) -> str:
        if self.limit == PACKED_ALWAYS:
            return "static"
        return "dynamic" if self.limit else "none"

    def describe(self) -> str:
        if self.kind == "static":
            return f"16-bit lanes, proven for every input (|acc| <= {self.bound})"
        if self.kind == "dynamic":
            return f"16-bit lanes while the step's input total <= {self.limit} (|w| <= {self.max_abs}), else 32-bit"
        return "32-bit sums"


def packing(weight: np.ndarray, max_input: int, weight_bits: int) -> Packing:
    """The :class:`Packing` of ``weight`` (N, N_in) for inputs in ``0..max_input``."""
    lo, hi = _row_extremes(np.asarray(weight), max_input)
    bound = int(max([0, *(-x for x in lo), *hi]))
    max_abs = int(np.max(np.abs(np.asarray(weight, dtype=np.int64)))) if np.size(weight) else 0
    top = fx.int_range(PACKED_BITS)[1]
    if weight_bits > 8:
        limit = 0
    elif bound <= top:
        limit = PACKED_ALWAYS
    else:
        limit = top // max_abs
    return Packing(bound, max_abs, limit)


def analyse(net: IntNetwork, max_input: int = MAX_COUNT, max_steps: int | None = None) -> OverflowReport:
    """Worst-case ranges for ``net`` with input counts in ``0..max_input``; the score needs ``max_steps`` >= 1."""
    validate(net)
    if not 0 <= max_input <= MAX_COUNT:
        raise ValueError(f"max_input must be in 0..{MAX_COUNT}, got {max_input}")
    layers = tuple(_layer_bounds(layer, f"layer {i}", max_input if i == 0 else 1) for i, layer in enumerate(net.layers))
    readout = _readout_bounds(net.readout)
    score = None
    if max_steps is not None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        score = Quantity("network", "score", max_steps * readout.u.lo, max_steps * readout.u.hi, SCORE_BITS)
    return OverflowReport(layers, readout, score)


def check(net: IntNetwork, max_steps: int, max_input: int = MAX_COUNT) -> OverflowReport:
    """:func:`analyse`, raising ``ValueError`` (naming the first culprit) if any value can overflow."""
    report = analyse(net, max_input=max_input, max_steps=max_steps)
    bad = report.overflows()
    if bad:
        raise ValueError("; ".join(q.message() for q in bad))
    return report
