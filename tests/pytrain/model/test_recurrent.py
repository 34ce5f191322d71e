"""Recurrent operators against their explicit forms (exact: integer-valued float64 data)."""

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from pytrain.model.fused import _Operator
from codegen.integer.refmodel import conv_matrix
from pytrain.model.recurrent import conv_recurrence, taps_recurrence


def conv_as_matrix(kernel: torch.Tensor, n: int) -> torch.Tensor:
    """The integer contract's matrix form of the conv (one definition), as a float64 tensor."""
    return torch.from_numpy(conv_matrix(kernel.numpy(), n).astype(np.float64))


def _ints(shape, lo=-3, hi=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(lo, hi + 1, shape, generator=g).double()


@given(c=st.sampled_from([1, 2, 4]), k=st.sampled_from([1, 3, 5, 7]), width=st.integers(3, 9), seed=st.integers(0, 10**6))
def test_conv_recurrence_equals_explicit_banded_matrix(c, k, width, seed):
    n = c * width
    kernel = _ints((c, c, k), seed=seed)
    z = _ints((5, n), 0, 2, seed=seed + 1)
    m = conv_as_matrix(kernel, n)
    assert torch.equal(conv_recurrence(z, kernel), z @ m.T)
    # the banded structure: neuron i only sees neurons within (K-1)/2 of it, in every channel block
    pad = (k - 1) // 2
    for i in range(n):
        for j in range(n):
            if abs(i % width - j % width) > pad:
                assert m[i, j] == 0


def test_conv_recurrence_by_hand_for_k3():
    kernel = torch.tensor([[[2.0, 3.0, 5.0]]])
    z = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    # out[i] = 2 z[i-1] + 3 z[i] + 5 z[i+1], zero padded
    assert conv_recurrence(z, kernel).tolist() == [[3.0, 2.0, 5.0, 3.0]]


@given(c=st.sampled_from([1, 2]), k=st.sampled_from([1, 3, 5]), d=st.integers(1, 4), width=st.integers(3, 6), seed=st.integers(0, 10**6))
def test_taps_recurrence_equals_its_explicit_form(c, k, d, width, seed):
    n = c * width
    kernels = _ints((d, c, c, k), seed=seed)
    window = _ints((d, 3, n), 0, 1, seed=seed + 1)  # window[l] = S(t - 1 - l)
    pad = (k - 1) // 2
    expected = torch.zeros(3, n, dtype=torch.float64)
    for lag in range(d):
        for b in range(3):
            for co in range(c):
                for i in range(width):
                    for ci in range(c):
                        for o in range(k):
                            j = i + o - pad
                            if 0 <= j < width:
                                expected[b, co * width + i] += kernels[lag, co, ci, o] * window[lag, b, ci * width + j]
    assert torch.equal(taps_recurrence(window, kernels), expected)


@given(variant=st.sampled_from(["conv", "dense", "taps"]), c=st.sampled_from([1, 2]), seed=st.integers(0, 10**6))
def test_fused_operators_equal_reference_operators_and_their_adjoints(variant, c, seed):
    n, b, k, d = 6 * c, 3, 3, 3
    z = _ints((n, b), 0, 1, seed=seed)
    g = _ints((n, b), seed=seed + 2)
    if variant == "dense":
        w = _ints((n, n), seed=seed + 1)
        op = _Operator("dense", w)
        assert torch.equal(op.apply(z), (z.t() @ w.t()).t())
        assert torch.equal(op.adjoint(g), w.t() @ g)
    elif variant == "conv":
        w = _ints((c, c, k), seed=seed + 1)
        op = _Operator("conv", w)
        m = conv_as_matrix(w, n)
        assert torch.equal(op.apply(z), conv_recurrence(z.t().contiguous(), w).t())
        assert torch.equal(op.adjoint(g), m.t() @ g)
    else:
        w = _ints((d, c, c, k), seed=seed + 1)
        op = _Operator("taps", w)
        window = _ints((d, n, b), 0, 1, seed=seed + 3)  # oldest first: S(t-D) .. S(t-1)
        ref = taps_recurrence(window.flip(0).transpose(1, 2).contiguous(), w).t()
        assert torch.equal(op.apply_taps(window), ref)
        # adjoint: <g, A window> == <A^T g, window>
        assert torch.equal((g * op.apply_taps(window)).sum(), (op.backward_taps(g, window, None) * window).sum())
