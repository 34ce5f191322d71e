"""The one comparison routine: exact, integral, and precise about where a difference is."""

import numpy as np
import pytest

from codegen.verify.compare import Comparison, compare, integers


def _trace(seed=0):
    rng = np.random.default_rng(seed)
    return {"layer 0 membrane": rng.integers(-100, 100, (3, 4, 5)), "class": np.array([1, 0, 2]),
            "hash": np.array([2**64 - 1, 2**63, 5], dtype=np.uint64)}


AXES = {"layer 0 membrane": ("step", "neuron")}


def test_equal_values_are_exact_whatever_their_dtype():
    exp = _trace()
    obs = {"layer 0 membrane": exp["layer 0 membrane"].astype(np.float64), "class": exp["class"].astype(np.int32),
           "hash": exp["hash"].copy()}
    assert compare(exp, obs, AXES) == Comparison(3, 3, None)


def test_the_first_difference_is_named_with_its_axes():
    exp = _trace()
    obs = {k: v.copy() for k, v in exp.items()}
    obs["layer 0 membrane"][1, 2, 3] += 1
    obs["class"][2] = 7
    result = compare(exp, obs, AXES, first_sample=10)
    want = exp["layer 0 membrane"][1, 2, 3]
    assert result.exact == 1 and not result.ok
    assert result.first == f"sample 11: layer 0 membrane at step 2, neuron 3 ({want + 1}, reference {want})"


def test_a_per_sample_scalar_and_a_64_bit_hash_are_compared_exactly():
    exp = _trace()
    obs = {k: v.copy() for k, v in exp.items()}
    obs["hash"][0] = np.uint64(2**64 - 2)  # differs only in the lowest bit of a value above 2**53
    result = compare(exp, obs, AXES)
    assert result.exact == 2 and result.first == "sample 0: hash (0xfffffffffffffffe, reference 0xffffffffffffffff)"


def test_a_fractional_value_is_refused_never_truncated_into_a_match():
    exp = _trace()
    obs = {k: v.astype(np.float64) if k != "hash" else v for k, v in exp.items()}
    obs["class"][0] += 0.25  # int64 truncation would turn 1.25 back into 1
    with pytest.raises(ValueError, match="fractional value 1.25"):
        compare(exp, obs, AXES)
    with pytest.raises(ValueError, match="non-finite"):
        integers(np.array([1.0, np.nan]), "x")


def test_a_missing_field_or_another_shape_is_a_broken_harness():
    exp = _trace()
    with pytest.raises(ValueError, match="lack the field 'class'"):
        compare(exp, {k: v for k, v in exp.items() if k != "class"})
    obs = dict(exp, **{"layer 0 membrane": exp["layer 0 membrane"][:, :3]})
    with pytest.raises(ValueError, match="observed shape"):
        compare(exp, obs)


def test_comparisons_of_consecutive_batches_add_up():
    a, b = Comparison(4, 4, None), Comparison(3, 1, "sample 5: class (1, reference 2)")
    assert a + b == Comparison(7, 5, "sample 5: class (1, reference 2)")
    assert (b + Comparison(2, 1, "sample 8: x")).first == b.first
