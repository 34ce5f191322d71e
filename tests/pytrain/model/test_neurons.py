"""LIF step function and surrogate gradients."""

import math

import pytest
import torch

from pytrain.model.neurons import LIFParams, beta_from_tau, lif_sequence, lif_step, readout_sequence, spike


def test_lif_trajectory_matches_hand_computed_values_reset_to_zero():
    p = LIFParams(beta=0.5, threshold=1.0, reset="zero")
    x = torch.tensor([0.6, 0.6, 0.6, 0.0, 1.2, 0.25]).view(6, 1, 1)
    v = torch.zeros(1, 1)
    vs, ss = [], []
    for t in range(6):
        s, v = lif_step(x[t], v, p)
        vs.append(float(v))
        ss.append(float(s))
    # h: 0.6, 0.9, 1.05 (fires, v=0), 0.0, 1.2 (fires, v=0), 0.25
    assert ss == [0.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    assert vs == pytest.approx([0.6, 0.9, 0.0, 0.0, 0.0, 0.25], abs=1e-7)


def test_lif_trajectory_reset_by_subtraction():
    p = LIFParams(beta=0.5, threshold=1.0, reset="subtract")
    x = torch.tensor([0.6, 0.6, 0.6, 0.0, 1.2]).view(5, 1, 1)
    s = lif_sequence(x, p).flatten().tolist()
    # h: 0.6, 0.9, 1.05 -> v = 0.05, h = 0.025, h = 1.2125 -> v = 0.2125
    assert s == [0.0, 0.0, 1.0, 0.0, 1.0]


def test_threshold_is_inclusive():
    p = LIFParams(beta=0.0, threshold=1.0)
    s, v = lif_step(torch.tensor([1.0, 0.999]), torch.zeros(2), p)
    assert s.tolist() == [1.0, 0.0]
    assert v.tolist()[0] == 0.0


def test_beta_from_tau():
    assert beta_from_tau(2.0) == 0.5
    assert beta_from_tau(1.05) == pytest.approx(0.047619, abs=1e-6)
    with pytest.raises(ValueError):
        beta_from_tau(0.5)


@pytest.mark.parametrize("surrogate,scale", [("atan", 5.0), ("triangle", 1.0)])
def test_surrogate_gradients(surrogate, scale):
    u = torch.tensor([-2.0, -0.5, 0.0, 0.3], requires_grad=True)
    spike(u, surrogate, scale).sum().backward()
    if surrogate == "atan":
        expected = [(scale / 2) / (1 + (math.pi / 2 * scale * x) ** 2) for x in u.tolist()]
    else:
        expected = [max(0.0, scale - abs(x)) / scale**2 for x in u.tolist()]
    assert u.grad.tolist() == pytest.approx(expected)


def test_leaky_readout_integrates_without_spiking():
    x = torch.tensor([1.0, 0.0, 2.0]).view(3, 1, 1)
    assert readout_sequence(x, 0.5).flatten().tolist() == [1.0, 0.5, 2.25]
