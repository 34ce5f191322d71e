r"""The fixed-point arithmetic of delrec-edge, written once.

Every later piece (fake-quant training, the integer reference model, the generated C) uses exactly these
rules; the C runtime mirrors them operation for operation.

Scales
    A real value :math:`r` is stored as an integer :math:`q` with :math:`r \approx q \cdot 2^{-f}`: ``f`` is
    the number of fraction bits of that tensor (power-of-two scales only, so every rescale is a shift).

Rounding (the one rule)
    Round half up: :math:`\mathrm{rnd}(x) = \lfloor x + 1/2 \rfloor`. Ties go towards :math:`+\infty`
    (2.5 -> 3, -2.5 -> -2). Never half-to-even (``np.round``/``torch.round``), never half away from zero.
    A right shift by :math:`k \ge 1` bits is rounded the same way:
    :math:`\mathrm{rshift}(a, k) = (a + 2^{k-1}) \gg k = \lfloor a / 2^k + 1/2 \rfloor` with an arithmetic
    (flooring) shift; :math:`\mathrm{rshift}(a, 0) = a`.

Saturation
    :math:`\mathrm{sat}_b(a) = \min(\max(a, -2^{b-1}), 2^{b-1} - 1)` for a signed ``b``-bit container.

Leak
    :math:`\beta` is stored as a multiplier :math:`m` and shift :math:`k` (:math:`\beta \approx m / 2^k`,
    :math:`0 \le m \le 2^k`); the leaked value is :math:`\mathrm{rshift}(v \cdot m, k)`. A power-of-two
    leak such as :math:`\beta = 1/2` is exact.

Ranges (for the C, which computes in 32-bit registers): ``rshift`` takes :math:`0 \le k \le 30` and an
``a`` with :math:`a + 2^{k-1}` inside int32; ``leak`` takes :math:`0 \le m \le 2^k` and a ``v`` with
:math:`v \cdot m` inside int32 (a 16-bit ``v`` with :math:`m \le 2^{15}` always is). The Python
functions compute on int64 and raise ``OverflowError`` outside these ranges instead of wrapping.
"""

from __future__ import annotations

import math

import numpy as np

MAX_SHIFT = 30
LEAK_SHIFT = 15  # fraction bits of the leak multiplier
ACC_BITS = 32  # width of every intermediate in the C


def _check_fits(a: np.ndarray, bits: int, what: str) -> None:
    lo, hi = int_range(bits)
    if a.size and (int(a.min()) < lo or int(a.max()) > hi):
        raise OverflowError(f"{what} leaves the {bits}-bit range")


def int_range(bits: int) -> tuple[int, int]:
    """Smallest and largest value of a signed ``bits``-bit integer."""
    if not 2 <= bits <= 64:
        raise ValueError(f"bits must be in 2..64, got {bits}")
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def round_half_up_float(x):
    """The rounding rule on floating-point arrays of any library with ``//`` and ``>=`` (numpy arrays, torch
    tensors): :math:`\\lfloor x \\rfloor + [x - \\lfloor x \\rfloor \\ge 1/2]`, same type and dtype as ``x``.

    ``floor(x) + [frac >= 1/2]`` instead of ``floor(x + 0.5)``: the float addition itself rounds
    (0.49999999999999994 + 0.5 == 1.0), while ``x - floor(x)`` is exact below 2**52. The training side
    (fake-quant, delays) calls this on tensors; :func:`round_half_up` adds the checks and the int64 result.
    """
    whole = x // 1  # floor division by 1 is floor() for numpy and torch alike
    return whole + ((x - whole) >= 0.5)


def round_half_up(x) -> np.ndarray:
    """:math:`\\lfloor x + 1/2 \\rfloor` as int64 (exact for float64 inputs below 2**52)."""
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("cannot round a non-finite value")
    if np.any(np.abs(x) >= 2.0**52):
        raise ValueError("value too large to round exactly")
    return np.asarray(round_half_up_float(x)).astype(np.int64)


def saturate(a, bits: int) -> np.ndarray:
    """Clamp integers to the signed ``bits``-bit range."""
    lo, hi = int_range(bits)
    return np.clip(np.asarray(a, dtype=np.int64), lo, hi)


def rounding_bias(k: int) -> int:
    """:math:`2^{k-1}` for ``k >= 1`` and 0 for ``k = 0``: what a rounded right shift by ``k`` adds first."""
    return (1 << k) >> 1


def rshift_round_values(a, k: int):
    """The rounded right shift on integer values held by any array library with ``//`` (numpy arrays, integer-
    valued torch float64 tensors): :math:`\\lfloor (a + 2^{k-1}) / 2^k \\rfloor`, the same type as ``a``.

    Floor division by :math:`2^k` is the arithmetic right shift; :func:`rshift_round` adds the range checks.
    """
    return (a + rounding_bias(k)) // (1 << k)


def rshift_round(a, k: int) -> np.ndarray:
    """Arithmetic right shift by ``k`` bits, rounded half up: :math:`(a + 2^{k-1}) \\gg k`."""
    if not 0 <= k <= MAX_SHIFT:
        raise ValueError(f"shift must be in 0..{MAX_SHIFT}, got {k}")
    a = np.asarray(a, dtype=np.int64)
    _check_fits(a + rounding_bias(k), ACC_BITS, "shift operand plus rounding bias" if k else "shift operand")
    return rshift_round_values(a, k)


def add_saturate(a, b, bits: int) -> np.ndarray:
    """:math:`\\mathrm{sat}_b(a + b)` for integer arrays inside the signed ``bits``-bit range (``bits`` <= 64),
    formed without an intermediate that could wrap: the class score's running sum (``sat64``)."""
    lo, hi = int_range(bits)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    _check_fits(a, bits, "saturating sum operand")
    _check_fits(b, bits, "saturating sum operand")
    up = a > hi - np.maximum(b, 0)  # hi - b cannot wrap for b >= 0
    down = a < lo - np.minimum(b, 0)  # lo - b cannot wrap for b <= 0
    outside = up | down
    total = np.where(outside, 0, a) + np.where(outside, 0, b)  # only the sums that fit are formed
    return np.where(up, hi, np.where(down, lo, total))


def quantize(x, frac_bits: int, bits: int) -> np.ndarray:
    """Real values to ``bits``-bit integers at scale :math:`2^{-f}`: :math:`\\mathrm{sat}_b(\\mathrm{rnd}(x 2^f))`."""
    return saturate(round_half_up(np.asarray(x, dtype=np.float64) * 2.0**frac_bits), bits)


def frac_bits_for(max_abs: float, bits: int, max_frac: int = 24) -> int:
    """The most fraction bits with which ``max_abs`` still fits a signed ``bits``-bit integer after rounding.

    May be negative for values larger than the container (then the scale is a power of two above 1).
    """
    if not math.isfinite(max_abs) or max_abs < 0:
        raise ValueError(f"max_abs must be finite and >= 0, got {max_abs}")
    _, hi = int_range(bits)
    if max_abs == 0.0:
        return max_frac
    f = math.floor(math.log2(hi / max_abs))
    while f < max_frac and math.floor(max_abs * 2.0 ** (f + 1) + 0.5) <= hi:
        f += 1
    while math.floor(max_abs * 2.0**f + 0.5) > hi:
        f -= 1
    return min(f, max_frac)


def leak_parameters(beta: float, shift: int = LEAK_SHIFT) -> tuple[int, int]:
    """:math:`(m, k)` with :math:`m = \\mathrm{rnd}(\\beta 2^k)`, :math:`0 \\le \\beta \\le 1`."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"leak factor must be in [0, 1], got {beta}")
    if not 0 <= shift <= LEAK_SHIFT:
        raise ValueError(f"leak shift must be in 0..{LEAK_SHIFT}, got {shift}")
    return int(round_half_up(beta * 2.0**shift)), shift


def reduced_leak(multiplier: int, shift: int) -> tuple[int, int]:
    r"""The same leak with the common factors of two of ``m`` and :math:`2^k` removed: equal results for every
    membrane, and the smallest product.

    For :math:`m = 2m'`, :math:`k = k' + 1`: :math:`(2m'v + 2^{k'}) \gg (k'+1) = (m'v + 2^{k'-1}) \gg k'` for
    :math:`k' \ge 1`, and :math:`(2m'v + 1) \gg 1 = m'v` for :math:`k' = 0`; :math:`m = 0` leaks every value to 0
    whatever :math:`k`. So :math:`m = 2^k` (no decay) becomes :math:`(1, 0)`, and the reduced multiplier is odd
    (or :math:`k = 0`): below :math:`2^{15}`, it fits a signed 16-bit multiplier.
    """
    if not 0 <= multiplier <= (1 << shift):
        raise ValueError(f"leak multiplier must be in 0..2**{shift}, got {multiplier}")
    if multiplier == 0:
        return 0, 0
    while shift > 0 and multiplier % 2 == 0:
        multiplier, shift = multiplier // 2, shift - 1
    return multiplier, shift


def leak(v, multiplier: int, shift: int, product_bits: int = ACC_BITS) -> np.ndarray:
    """:math:`\\mathrm{rshift}(v \\cdot m, k)`: the membrane after one step of decay.

    ``product_bits`` (32..64) is the width of the register that holds :math:`v \\cdot m` and the rounding
    bias: 32 for the 16-bit membranes, 64 for the 32-bit readout state (whose product needs up to 47 bits).
    """
    if not 0 <= multiplier <= (1 << shift):
        raise ValueError(f"leak multiplier must be in 0..2**{shift}, got {multiplier}")
    if product_bits == ACC_BITS:
        product = np.asarray(v, dtype=np.int64) * multiplier
        _check_fits(product, ACC_BITS, "leak product")
        return rshift_round(product, shift)
    return _leak_wide(np.asarray(v, dtype=np.int64), multiplier, shift, product_bits)


def _leak_wide(v: np.ndarray, multiplier: int, shift: int, product_bits: int) -> np.ndarray:
    """:func:`leak` with a product register wider than 32 bits (up to 64)."""
    if not ACC_BITS < product_bits <= 64:
        raise ValueError(f"product_bits must be in {ACC_BITS}..64, got {product_bits}")
    if not 0 <= shift <= MAX_SHIFT:
        raise ValueError(f"shift must be in 0..{MAX_SHIFT}, got {shift}")
    lo, hi = int_range(product_bits)
    # checked on Python ints: an int64 product or bias that left 64 bits would wrap silently in numpy
    # (m >= 0, so the extremes of v give the extremes of the product)
    if v.size and (int(v.min()) * multiplier < lo or int(v.max()) * multiplier + rounding_bias(shift) > hi):
        raise OverflowError(f"leak product plus rounding bias leaves the {product_bits}-bit range")
    return rshift_round_values(v * multiplier, shift)
