"""The one rounding rule, saturation, shifts and leak of the fixed-point scheme."""

from fractions import Fraction
from math import floor

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codegen.integer import fixedpoint as fx

INT32 = st.integers(-(2**31), 2**31 - 1)


def test_round_half_up_on_halves_and_negatives():
    x = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999999999999994, -0.5000000000000001, 3.0, -3.0]
    assert fx.round_half_up(x).tolist() == [1, 2, 3, 0, -1, -2, 0, -1, 3, -3]


def test_round_half_up_is_not_numpy_round():
    halves = np.arange(-10, 10) + 0.5
    ours = fx.round_half_up(halves)
    assert ours.tolist() == [int(h + 0.5) if h > 0 else -int(-h - 0.5) for h in halves]
    assert not np.array_equal(ours, np.round(halves).astype(np.int64))  # numpy rounds half to even


def test_round_half_up_refuses_values_it_cannot_round_exactly():
    for bad in (float("nan"), float("inf"), 2.0**53):
        with pytest.raises(ValueError):
            fx.round_half_up([bad])


@given(k=st.integers(0, 30), a=st.integers(-(2**30), 2**30 - 1))
def test_rshift_round_is_floor_of_exact_quotient_plus_half(k, a):
    assert int(fx.rshift_round(a, k)) == floor(Fraction(a, 2**k) + Fraction(1, 2))


def test_rshift_round_ties_go_up():
    assert fx.rshift_round([1, 3, 5, -1, -3, -5, 2, -2], 1).tolist() == [1, 2, 3, 0, -1, -2, 1, -1]


def test_rshift_round_refuses_what_would_wrap_in_32_bits():
    with pytest.raises(OverflowError):
        fx.rshift_round([2**31 - 1], 1)  # plus the bias leaves int32
    with pytest.raises(ValueError):
        fx.rshift_round([1], 31)
    assert fx.rshift_round([2**31 - 2**29 - 1], 30).tolist() == [1]  # largest operand the bias allows


@given(bits=st.integers(2, 32), a=st.integers(-(2**40), 2**40))
def test_saturate_clamps_to_the_signed_range(bits, a):
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    assert int(fx.saturate(a, bits)) == min(max(a, lo), hi)


def test_saturation_extremes():
    assert fx.saturate([-129, -128, 127, 128], 8).tolist() == [-128, -128, 127, 127]
    assert fx.saturate([-(2**40), 2**40], 16).tolist() == [-32768, 32767]
    assert fx.quantize([0.99, -1.5, 100.0], 7, 8).tolist() == [127, -128, 127]


@given(m=st.floats(1e-6, 1e6), bits=st.sampled_from([4, 8, 16]))
def test_frac_bits_for_is_the_largest_that_fits(m, bits):
    f = fx.frac_bits_for(m, bits, max_frac=40)
    hi = 2 ** (bits - 1) - 1
    assert floor(m * 2.0**f + 0.5) <= hi
    assert f == 40 or floor(m * 2.0 ** (f + 1) + 0.5) > hi


@given(v=st.integers(-(2**15), 2**15 - 1))
def test_power_of_two_leak_is_exact_halving_rounded_half_up(v):
    m, k = fx.leak_parameters(0.5)
    assert (m, k) == (2**14, 15)
    assert int(fx.leak(v, m, k)) == floor(Fraction(v, 2) + Fraction(1, 2))


def test_leak_parameters_and_ranges():
    assert fx.leak_parameters(1.0) == (2**15, 15)
    assert fx.leak_parameters(0.0) == (0, 15)
    assert fx.leak_parameters(1 - 1 / 1.05, 8) == (12, 8)  # 0.0476 * 256 = 12.19
    with pytest.raises(ValueError):
        fx.leak_parameters(1.5)
    with pytest.raises(ValueError):
        fx.leak(10, 2**15 + 1, 15)
    with pytest.raises(OverflowError):
        fx.leak([2**20], 2**15, 15)


@given(shift=st.integers(0, fx.LEAK_SHIFT), data=st.data())
def test_reduced_leak_gives_the_same_membranes(shift, data):
    """Removing common factors of two from (m, 2^k) changes no leaked value of any 16-bit membrane (and of wide
    ones through the 64-bit form), and leaves a multiplier that fits a signed 16-bit operand."""
    mul = data.draw(st.one_of(st.integers(0, 1 << shift), st.sampled_from([0, 1 << shift, (1 << shift) >> 1])))
    m, k = fx.reduced_leak(mul, shift)
    assert 0 <= m < 1 << 15 and 0 <= k <= shift and (m == 0 or k == 0 or m % 2 == 1)
    v = np.arange(-(1 << 15), 1 << 15, 7)
    assert np.array_equal(fx.leak(v, mul, shift), fx.leak(v, m, k))
    wide = np.array([-(1 << 31), -12345678, -1, 0, 1, 98765432, (1 << 31) - 1])
    assert np.array_equal(fx.leak(wide, mul, shift, product_bits=64), fx.leak(wide, m, k, product_bits=64))
