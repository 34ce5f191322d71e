"""Axonal delays: interpolation triangle, arrival times and the gradient with respect to d."""

import pytest
import torch

from pytrain.model import delays as dl
from pytrain.model.config import ModelConfig
from pytrain.model.fused import LoopSpec, fused_lif_layer
from pytrain.model.layers import SpikingLayer
from pytrain.model.neurons import LIFParams


def test_sigma_schedule_follows_the_published_formula():
    assert dl.sigma_for_epoch(0, 150) == 10.0
    assert dl.sigma_for_epoch(149, 150) == pytest.approx(10 * 0.95 ** (100 / 150 * 149))
    assert dl.sigma_for_epoch(149, 150) == pytest.approx(0.061, abs=1e-3)


def test_integer_delays_round_half_up_never_half_to_even():
    d = torch.tensor([0.5, 1.5, 2.5, 2.49, 0.0, -0.7, 3.5])
    assert dl.integer_delays(d).tolist() == [1, 2, 3, 2, 0, 0, 4]


def test_triangle_is_linear_interpolation_at_sigma_zero():
    lags, w = dl.triangle_taps(torch.tensor([2.25, 0.0, 5.0]), sigma=0.0)
    dense = torch.zeros(3, 10)
    for m in range(lags.shape[0]):
        for j in range(3):
            dense[j, lags[m, j]] += w[m, j]
    assert dense[0, 3] == 0.75 and dense[0, 4] == 0.25
    assert dense[1, 1] == 1.0 and dense[1].sum() == 1.0
    assert dense[2, 6] == 1.0 and dense[2].sum() == 1.0


def test_triangle_never_uses_lag_zero_and_has_unit_area_for_wide_sigma():
    lags, w = dl.triangle_taps(torch.tensor([0.3]), sigma=4.0)
    assert int(lags.min()) >= 1
    assert float(w[lags[:, 0] >= 1].sum()) <= 1.0
    lags, w = dl.triangle_taps(torch.tensor([20.0]), sigma=4.0)
    assert float(w.sum()) == pytest.approx(1.0)


def _echo_layer(delays, impl, training):
    cfg = ModelConfig(n_inputs=4, n_classes=2, hidden=(4,), recurrent_layers=(True,), tau=1.0,
                      threshold=1.0, dropout=0.0, rec_dropout=0.0, batchnorm=False)
    layer = SpikingLayer(4, 4, True, cfg)
    with torch.no_grad():
        layer.rec.weight.copy_(torch.tensor([[[0.0, 1.0, 0.0]]]))  # identity kernel
        layer.rec.delays.copy_(torch.tensor(delays))
    layer.impl = impl
    layer.train(training)
    return layer


@pytest.mark.parametrize("impl", ["fused", "reference"])
@pytest.mark.parametrize("training", [True, False])
def test_spike_at_t_arrives_at_exactly_t_plus_1_plus_d(impl, training):
    delays = [0.0, 1.0, 2.0, 5.0]
    layer = _echo_layer(delays, impl, training)
    cur = torch.zeros(20, 1, 4)
    cur[3] = 1.0  # every neuron fires once at t = 3 from its input
    with torch.no_grad():
        s = layer._run_fused(cur, 0.0) if impl == "fused" else layer._run_recurrent(cur, 0.0)
    for j, d in enumerate(delays):
        times = torch.nonzero(s[:, 0, j]).flatten().tolist()
        # the echo of the spike at t = 3 arrives at 3 + 1 + d and fires again (beta = 0, weight 1)
        assert times[:2] == [3, 3 + 1 + int(d)]


@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_delay_gradient_is_nonzero_with_the_correct_sign(impl):
    # One neuron fires at t = 0; its echo should fire at t = 6 (lag 6, delay 5). The loss rewards a
    # spike at t = 6, so with d = 3.4 gradient descent must increase d (dL/dd < 0); with d = 7.4 decrease it.
    for d0, sign in ((3.4, -1.0), (7.4, 1.0)):
        cfg = ModelConfig(n_inputs=1, n_classes=2, hidden=(1,), recurrent_layers=(True,), tau=1.0,
                          threshold=1.0, dropout=0.0, rec_dropout=0.0, batchnorm=False)
        layer = SpikingLayer(1, 1, True, cfg)
        with torch.no_grad():
            layer.rec.weight.copy_(torch.tensor([[[0.0, 0.5, 0.0]]]))
            layer.rec.delays.copy_(torch.tensor([d0]))
        layer.impl = impl
        layer.train()
        cur = torch.zeros(10, 1, 1)
        cur[0] = 1.0
        cur[6] = 0.6  # with the echo (0.5 * triangle weight) it is close to threshold
        s = layer._run_fused(cur, 3.0) if impl == "fused" else layer._run_recurrent(cur, 3.0)
        loss = -s[6].sum()
        loss.backward()
        g = float(layer.rec.delays.grad)
        assert g != 0.0
        assert (g > 0) == (sign > 0)


def test_fused_read_with_sigma_zero_and_integer_delay_is_one_lag():
    p = LIFParams(beta=0.0, threshold=0.5)
    lags, w = dl.triangle_taps(torch.tensor([2.0]), 0.0)
    cur = torch.zeros(8, 1, 1)
    cur[1] = 1.0
    s = fused_lif_layer(cur, LoopSpec(p, "conv", int(lags.max())), torch.tensor([[[0.0, 1.0, 0.0]]]), w, lags)
    assert torch.nonzero(s.flatten()).flatten().tolist()[:2] == [1, 4]
