r"""Static worst-case ranges of every register of the integer front end, for any int16 input, from its coefficients.

The spectral part (window, FFT, split) is linear up to its rounded shifts, so every intermediate value ``v``
is ``sum_n c_n x[n] + err`` with coefficients ``c`` (its impulse response to the frame's samples) and a
rounding error ``|err| <= e``. The coefficients are propagated exactly as the integer butterflies combine
their operands (twiddles ``/2^14``, stage shifts ``/2^sh``), and ``e`` grows by the rounding of every shift
(at most 1/2 each) and by the coefficients' action on earlier errors. With every sample anywhere in
-32768..32767, the extremes of ``v`` are ``sum_n min/max(c_n * -32768, c_n * 32767) -/+ e``: tight for the
linear part (each extreme is reached by one input frame), where interval arithmetic per butterfly would
grow by about 1.2x per stage and refuse safe designs. The sums are computed in float64 and widened by a
relative margin of 1e-9 and one unit, far above the float error of a few hundred products.

After the spectrum everything is monotone: the power from the largest component magnitudes, the channel
energy from the power bounds and the filterbank weights, the log from the energy, and the gain control
and the encoder from the ranges of their states (both trackers stay between 0 and the larger of their
reset value and the largest ``L * 2^G``; the encoder's membrane stays below ``2 * threshold``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .fixedpoint import int_range
from .frontend import (
    LOG_INTERP_BITS, SPLIT_SHIFT, TWIDDLE_BITS, WINDOW_BITS, IntFrontEnd, filterbank_matrix, validate_frontend,
)

X_LO, X_HI = int_range(16)
MARGIN = 1e-9


@dataclass(frozen=True)
class Bound:
    """The reachable range ``lo..hi`` of one register class, held in ``container`` (e.g. int32, uint32)."""

    where: str
    name: str
    lo: int
    hi: int
    container: str

    @property
    def limits(self) -> tuple[int, int]:
        bits = int(self.container.lstrip("uint"))
        if self.container.startswith("u"):
            # a uint64 is bounded below 2^63 so that the numpy reference can hold it in an int64
            return 0, (1 << min(bits, 63)) - 1
        return int_range(bits)

    @property
    def fits(self) -> bool:
        lo, hi = self.limits
        return lo <= self.lo and self.hi <= hi

    @property
    def headroom_bits(self) -> float:
        worst = max(-self.lo, self.hi, 1)
        return math.log2(self.limits[1] + 1) - math.log2(worst)

    def message(self) -> str:
        worst = max(-self.lo, self.hi)
        return (f"front end: the {self.name} ({self.where}) can reach {worst} (2^{math.log2(max(worst, 1)):.2f}), "
                f"which overflows {self.container}; use more FFT stage shifts, fewer log or floor fraction bits, "
                f"or a smaller range")


@dataclass(frozen=True)
class FrontEndReport:
    bounds: tuple[Bound, ...]

    HEADER = ("where", "register", "lo", "hi", "container", "headroom bits", "ok")

    def overflows(self) -> list[Bound]:
        return [b for b in self.bounds if not b.fits]

    def rows(self) -> list[tuple[str, ...]]:
        body = [(b.where, b.name, str(b.lo), str(b.hi), b.container, f"{b.headroom_bits:.1f}", "yes" if b.fits else "NO")
                for b in self.bounds]
        return [self.HEADER, *body]

    def __str__(self) -> str:
        rows = self.rows()
        widths = [max(len(r[c]) for r in rows) for c in range(len(self.HEADER))]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)


class _Linear:
    """Values ``C @ x + err`` with ``|err| <= e``: C (K, N) float64 coefficients, e (K,) error bounds."""

    def __init__(self, coef: np.ndarray, err: np.ndarray):
        self.coef, self.err = coef, err

    def extremes(self, scale: float = 1.0, bias: float = 0.0) -> tuple[int, int]:
        """(lo, hi) over every row of ``scale * value + bias`` (a register that holds the value scaled)."""
        c = self.coef * scale
        hi = np.maximum(c * X_LO, c * X_HI).sum(axis=1) + self.err * abs(scale)
        lo = np.minimum(c * X_LO, c * X_HI).sum(axis=1) - self.err * abs(scale)
        hi_v = float(hi.max()) if hi.size else 0.0
        lo_v = float(lo.min()) if lo.size else 0.0
        return (math.floor(lo_v - abs(lo_v) * MARGIN - 1 + bias), math.ceil(hi_v + abs(hi_v) * MARGIN + 1 + bias))

    def __getitem__(self, index) -> "_Linear":
        return _Linear(self.coef[index], self.err[index])


def _combine(a: _Linear, ka: float, b: _Linear, kb: float) -> _Linear:
    """``ka * a + kb * b`` (exact linear combination of integer registers)."""
    return _Linear(ka * a.coef + kb * b.coef, abs(ka) * a.err + abs(kb) * b.err)


def _product_sum(c: np.ndarray, x: _Linear, s: np.ndarray, y: _Linear) -> _Linear:
    """Per row ``c * x + s * y`` with per-row integer constants ``c`` and ``s``."""
    return _Linear(c[:, None] * x.coef + s[:, None] * y.coef, np.abs(c) * x.err + np.abs(s) * y.err)


def _rshift(v: _Linear, k: int) -> _Linear:
    """The rounded shift: value / 2^k, plus at most 1/2 of rounding error (none for k = 0)."""
    return _Linear(v.coef / (1 << k), v.err / (1 << k) + (0.5 if k else 0.0))


class _Collector:
    def __init__(self) -> None:
        self.bounds: list[Bound] = []

    def linear(self, where: str, name: str, values: list[_Linear], shift: int = 0, scale: float = 1.0) -> None:
        """Record the register holding each of ``values`` (times ``scale``), plus the rounding bias of a shift."""
        bias = float((1 << shift) >> 1)
        lo, hi = zip(*(v.extremes(scale, bias) for v in values))
        self.bounds.append(Bound(where, name, min(lo), max(hi), "int32"))

    def plain(self, where: str, name: str, lo: int, hi: int, container: str = "int32") -> None:
        self.bounds.append(Bound(where, name, int(lo), int(hi), container))


def _spectral(fe: IntFrontEnd, out: _Collector) -> tuple[_Linear, _Linear]:
    n, m = fe.frame, fe.half
    w = fe.window.astype(np.float64)
    # windowed sample y[n] = rshift(x[n] * w[n], 15): coefficient w / 2^15, error 1/2
    y = _Linear(np.diag(w / (1 << WINDOW_BITS)), np.full(n, 0.5))
    out.linear("window", "rounded product plus bias", [_Linear(np.diag(w), np.zeros(n))], shift=WINDOW_BITS)
    from .frontend_ref import bit_reverse

    rev = bit_reverse(m)
    re, im = y[0::2][rev], y[1::2][rev]
    cos, sin = fe.cos.astype(np.float64), fe.sin.astype(np.float64)
    h = 1
    for stage, shift in enumerate(fe.fft_shifts):
        where = f"FFT stage {stage}"
        k = np.arange(h) * (n // (2 * h))
        blocks = m // (2 * h)
        idx_a = (np.arange(blocks)[:, None] * 2 * h + np.arange(h)[None, :]).reshape(-1)
        idx_b = idx_a + h
        c = np.tile(cos[k], blocks)
        s = np.tile(sin[k], blocks)
        ar, ai, br, bi = re[idx_a], im[idx_a], re[idx_b], im[idx_b]
        out.linear(where, "twiddle product", [_product_sum(c, br, np.zeros_like(s), bi),
                                              _product_sum(np.zeros_like(c), br, s, bi),
                                              _product_sum(c, bi, np.zeros_like(s), br),
                                              _product_sum(np.zeros_like(c), bi, -s, br)])
        pr, pi = _product_sum(c, br, s, bi), _product_sum(c, bi, -s, br)
        out.linear(where, "twiddle product sum plus bias", [pr, pi], shift=TWIDDLE_BITS)
        tr, ti = _rshift(pr, TWIDDLE_BITS), _rshift(pi, TWIDDLE_BITS)
        sums = [_combine(ar, 1, tr, 1), _combine(ai, 1, ti, 1), _combine(ar, 1, tr, -1), _combine(ai, 1, ti, -1)]
        out.linear(where, "butterfly sum plus bias", sums, shift=shift)
        new_re_coef, new_im_coef = np.empty_like(re.coef), np.empty_like(im.coef)
        new_re_err, new_im_err = np.empty_like(re.err), np.empty_like(im.err)
        for idx, val_re, val_im in ((idx_a, sums[0], sums[1]), (idx_b, sums[2], sums[3])):
            r, i = _rshift(val_re, shift), _rshift(val_im, shift)
            new_re_coef[idx], new_re_err[idx] = r.coef, r.err
            new_im_coef[idx], new_im_err[idx] = i.coef, i.err
        re, im = _Linear(new_re_coef, new_re_err), _Linear(new_im_coef, new_im_err)
        h *= 2
    # split, k = 0..M
    k = np.arange(m + 1)
    z1r, z1i, z2r, z2i = re[k % m], im[k % m], re[(m - k) % m], im[(m - k) % m]
    ar, ai = _combine(z1r, 1, z2r, 1), _combine(z1i, 1, z2i, -1)
    br, bi = _combine(z1r, 1, z2r, -1), _combine(z1i, 1, z2i, 1)
    out.linear("split", "sum and difference", [ar, ai, br, bi])
    c, s = cos, sin
    zero = np.zeros_like(c)
    out.linear("split", "twiddle product", [_product_sum(c, bi, zero, br), _product_sum(zero, bi, -s, br),
                                            _product_sum(-c, br, zero, bi), _product_sum(zero, br, -s, bi)])
    pr, pi = _product_sum(c, bi, -s, br), _product_sum(-c, br, -s, bi)
    out.linear("split", "twiddle product sum plus bias", [pr, pi], shift=TWIDDLE_BITS)
    xr_sum, xi_sum = _combine(ar, 1, _rshift(pr, TWIDDLE_BITS), 1), _combine(ai, 1, _rshift(pi, TWIDDLE_BITS), 1)
    out.linear("split", "output sum plus bias", [xr_sum, xi_sum], shift=SPLIT_SHIFT)
    return _rshift(xr_sum, SPLIT_SHIFT), _rshift(xi_sum, SPLIT_SHIFT)


def _magnitude_bounds(v: _Linear) -> np.ndarray:
    """Per row the largest |value| (integer)."""
    c = v.coef
    hi = np.maximum(c * X_LO, c * X_HI).sum(axis=1) + v.err
    lo = np.minimum(c * X_LO, c * X_HI).sum(axis=1) - v.err
    worst = np.maximum(np.abs(hi), np.abs(lo))
    return np.ceil(worst * (1 + MARGIN) + 1).astype(np.int64)


def analyse(fe: IntFrontEnd) -> FrontEndReport:
    """Worst-case ranges of every register of ``fe`` for any int16 input."""
    validate_frontend(fe)
    out = _Collector()
    xr, xi = _spectral(fe, out)
    mr, mi = _magnitude_bounds(xr), _magnitude_bounds(xi)
    out.plain("power", "component magnitude", 0, int(max(mr.max(), mi.max())), "uint16")
    p_max = [int(a) * int(a) + int(b) * int(b) for a, b in zip(mr.tolist(), mi.tolist())]
    out.plain("power", "Xr^2 + Xi^2", 0, max(p_max), "uint32")
    g = filterbank_matrix(fe.chan, fe.weight, fe.n_channels)
    energy = max(sum(int(gk) * pk for gk, pk in zip(row.tolist(), p_max)) for row in g)
    out.plain("filterbank", "channel energy", 0, energy, "uint64")
    f = fe.log_frac
    msb = max(energy.bit_length() - 1, 0)
    log_max = ((msb + 1) << f)
    tab = fe.log_table.astype(np.int64)
    out.plain("log", "interpolation product", 0, int(np.diff(tab).max()) * ((1 << LOG_INTERP_BITS) - 1))
    out.plain("log", "L", 0, log_max)
    if fe.pool_bins == 2:  # log2(E + E_prev) <= log2(2 max(E, E_prev)): at most one unit of 2^F above L
        out.plain("pool", "previous bin's L (state)", 0, log_max, "int16")
        out.plain("pool", "L difference", -log_max, log_max)
        log_max += int(fe.logadd_table[0])
        out.plain("pool", "pooled level Lp", 0, log_max)
    g_bits = fe.floor_frac
    track_max = max(fe.floor_init, log_max << g_bits)
    out.plain("gain", "tracker difference", -track_max, log_max << g_bits)
    out.plain("gain", "tracker (floor, peak)", 0, track_max)
    level_hi = max(max(track_max >> g_bits, fe.floor_min) + fe.offset, (track_max >> g_bits) - fe.depth)
    level_lo = min(fe.floor_min + fe.offset, -fe.depth)
    out.plain("gain", "L minus level", -level_hi, log_max - level_lo)
    out.plain("encoder", "membrane plus input", 0, 2 * (fe.threshold - 1))
    out.plain("encoder", "count per bin", 0, fe.max_count, "uint8")
    return FrontEndReport(tuple(out.bounds))


def check(fe: IntFrontEnd) -> FrontEndReport:
    """:func:`analyse`, raising ``ValueError`` (one line, the first culprit) if any register can overflow."""
    report = analyse(fe)
    bad = report.overflows()
    if bad:
        raise ValueError(bad[0].message())
    return report
