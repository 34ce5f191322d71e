"""The one comparison of an implementation with the integer reference, used by ``quantize`` (fake-quant model),
``parity`` (host C) and ``firmware run`` (target C).

Both sides are named arrays with the samples on axis 0: per-step traces such as ``layer 0 membrane``
(S, T, N), per-sample results such as ``class`` (S,), ``scores`` (S, K) or a state hash (S,). The expected
side (the reference) names the fields; the observed side must hold the same fields with the same shapes.
Every value must be an integer: a float is accepted only when it is whole (the fake-quant model computes in
float64), and a fractional or non-finite value is an error, never truncated into a match. Values are then
compared exactly.

A sample is exact when every field agrees in every element. For the first sample that does not, the result
names the first field and element that differ, in the order the fields were given, with the field's axes::

    sample 3: layer 0 membrane at step 5, neuron 2 (12, reference 13)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class Comparison:
    """``exact`` of ``n`` samples equal in every field; ``first``: where the first other sample differs."""

    n: int
    exact: int
    first: str | None = None

    @property
    def ok(self) -> bool:
        return self.exact == self.n

    def __add__(self, other: "Comparison") -> "Comparison":
        """Two comparisons of consecutive sample ranges as one (the first difference of the earlier range wins)."""
        return Comparison(self.n + other.n, self.exact + other.exact, self.first or other.first)


def integers(values, what: str) -> np.ndarray:
    """``values`` as an integer array (bool becomes 0/1); ``ValueError`` for a fractional, non-finite or
    non-numeric value, so that no comparison can pass by truncation."""
    a = np.asarray(values)
    if a.dtype.kind == "b":
        return a.astype(np.int64)
    if a.dtype.kind in "iu":
        return a
    if a.dtype.kind != "f":
        raise ValueError(f"{what}: expected integers, got dtype {a.dtype}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what}: holds a non-finite value")
    whole = np.floor(a)
    if not np.array_equal(a, whole):
        bad = np.argwhere(a != whole)[0]
        raise ValueError(f"{what}: holds the fractional value {float(a[tuple(bad)])!r} at {tuple(int(i) for i in bad)}")
    if a.size and float(np.max(np.abs(a))) >= 2.0**63:
        raise ValueError(f"{what}: holds a value outside int64")
    return a.astype(np.int64)


def _equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise exact equality of two integer arrays of any signedness (uint64 hashes included)."""
    if a.dtype.kind != b.dtype.kind and max(a.dtype.itemsize, b.dtype.itemsize) == 8:
        return np.equal(a.astype(object), b.astype(object)).astype(bool)  # no float detour for 64-bit values
    return a == b


def _where(axes: Sequence[str], index: tuple[int, ...]) -> str:
    if not index:
        return ""
    names = list(axes) + [f"axis {i}" for i in range(len(axes), len(index))]
    return " at " + ", ".join(f"{name} {i}" for name, i in zip(names, index))


def compare(expected: Mapping[str, object], observed: Mapping[str, object],
            axes: Mapping[str, Sequence[str]] | None = None, first_sample: int = 0) -> Comparison:
    """Compare ``observed`` with ``expected`` field by field (see the module docstring).

    ``axes`` names the axes after the sample axis per field (``("step", "neuron")``); ``first_sample`` is the
    index of sample 0 in messages, for a batch that is part of a larger set. A field missing from ``observed``
    or of another shape is a ``ValueError`` (a broken harness, not a mismatch).
    """
    axes = axes or {}
    exp = {name: integers(v, f"reference {name}") for name, v in expected.items()}
    obs = {}
    for name in exp:
        if name not in observed:
            raise ValueError(f"observed values lack the field {name!r}")
        obs[name] = integers(observed[name], name)
        if obs[name].shape != exp[name].shape:
            raise ValueError(f"{name}: observed shape {obs[name].shape}, reference {exp[name].shape}")
    shapes = {a.shape[0] if a.ndim else None for a in exp.values()}
    if len(shapes) != 1 or None in shapes:
        raise ValueError(f"every field needs the same sample axis 0, got shapes {[a.shape for a in exp.values()]}")
    (n,) = shapes
    same = np.ones(n, dtype=bool)
    for name in exp:
        same &= _equal(obs[name], exp[name]).reshape(n, -1).all(axis=1)
    first = None
    bad = np.flatnonzero(~same)
    if bad.size:
        s = int(bad[0])
        for name in exp:
            eq = np.asarray(_equal(obs[name][s], exp[name][s]))
            if eq.all():
                continue
            index = tuple(int(i) for i in np.argwhere(~eq)[0]) if eq.ndim else ()
            got, want = obs[name][s][index], exp[name][s][index]
            first = (f"sample {first_sample + s}: {name}{_where(axes.get(name, ()), index)} "
                     f"({_show(got)}, reference {_show(want)})")
            break
    return Comparison(n, int(same.sum()), first)


def _show(value) -> str:
    v = int(value)
    return f"{v:#018x}" if np.asarray(value).dtype == np.uint64 and v >= 1 << 32 else str(v)
