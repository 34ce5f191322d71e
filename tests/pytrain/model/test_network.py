"""The assembled network: parameter counts, fused vs reference loop, BatchNorm folding."""

import pytest
import torch

from pytrain.export.bnfold import fold_batchnorm, folded_linear
from codegen.integer.network import VARIANTS as RECURRENT_VARIANTS
from pytrain.model.network import DelRecSNN, count_parameters
from pytrain.model.presets import PRESETS


@pytest.mark.parametrize(
    "variant,recurrent,total",
    [("conv", 259, 108_311), ("dense", 65_792, 173_844), ("conv-nodelay", 3, 108_055), ("taps", 96, 108_148)],
)
def test_shd_preset_parameter_counts(variant, recurrent, total):
    counts = count_parameters(DelRecSNN(PRESETS["shd"].model.replace(recurrent=variant)))
    assert counts == {"params_total": total, "params_recurrent": recurrent}


def test_ssc_preset_parameter_counts():
    counts = count_parameters(DelRecSNN(PRESETS["ssc"].model))
    # three layers of (3 kernel weights + 256 delays); no BatchNorm
    assert counts["params_recurrent"] == 3 * 259
    assert counts["params_total"] == 36_096 + 2 * 65_792 + 8_995 + 3 * 259


def _run_both(model, x, y, seed=5):
    results = []
    for impl in ("reference", "fused"):
        for layer in model.layers:
            layer.impl = impl
        torch.manual_seed(seed)
        model.zero_grad()
        out = model(x)
        if model.training:
            model.loss(out, y).backward()
        grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
        results.append((out, grads))
    return results


@pytest.mark.parametrize("variant", RECURRENT_VARIANTS)
@pytest.mark.parametrize("reset,detach,surrogate", [("zero", True, "atan"), ("subtract", False, "triangle"), ("zero", False, "atan")])
@pytest.mark.parametrize("channels", [1, 2])
def test_fused_loop_matches_reference_loop(variant, reset, detach, surrogate, channels):
    """The hand-written BPTT of the fused loop gives the autograd reference's spikes and gradients."""
    torch.set_default_dtype(torch.float64)
    try:
        cfg = PRESETS["tiny"].model.replace(
            recurrent=variant, reset=reset, detach_reset=detach, surrogate=surrogate, channels=channels,
            threshold=0.5, rec_dropout=0.3, dropout=0.2, n_taps=3,
        )
        torch.manual_seed(1)
        model = DelRecSNN(cfg).train()
        model.set_sigma(1.3)
        x = (torch.rand(20, 3, 8) < 0.3).double() * 2
        y = torch.randint(0, 4, (3,))
        (ref, g_ref), (fus, g_fus) = _run_both(model, x, y)
        for a, b in zip(ref.spikes, fus.spikes):
            assert torch.equal(a, b)
        assert sum(float(s.detach().sum()) for s in ref.spikes) > 0
        assert set(g_ref) == set(g_fus)
        if cfg.learns_delays:
            assert any("delays" in k for k in g_ref)
        for k in g_ref:
            # float64 sums in a different order: equal to rounding error, not bit for bit
            torch.testing.assert_close(g_fus[k], g_ref[k], rtol=1e-9, atol=1e-12)
    finally:
        torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize("variant", RECURRENT_VARIANTS)
def test_fused_equals_reference_in_eval_mode_exactly(variant):
    cfg = PRESETS["tiny"].model.replace(recurrent=variant, threshold=0.5, n_taps=3)
    torch.manual_seed(2)
    model = DelRecSNN(cfg).eval()
    x = (torch.rand(30, 4, 8) < 0.3).float() * 2
    with torch.no_grad():
        (ref, _), (fus, _) = _run_both(model, x, None)
    assert all(torch.equal(a, b) for a, b in zip(ref.spikes, fus.spikes))
    assert torch.equal(ref.readout, fus.readout)


def test_batchnorm_folds_exactly_on_dyadic_values():
    """With power-of-two scales every operation is exact, so the fold must agree bit for bit."""
    lin = torch.nn.Linear(3, 2).double()
    bn = torch.nn.BatchNorm1d(2, eps=0.0).double().eval()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.5, -1.25, 2.0], [0.75, 0.125, -3.0]]))
        lin.bias.copy_(torch.tensor([0.25, -0.5]))
        bn.running_mean.copy_(torch.tensor([1.0, -2.0]))
        bn.running_var.copy_(torch.tensor([4.0, 0.25]))
        bn.weight.copy_(torch.tensor([1.5, -0.5]))
        bn.bias.copy_(torch.tensor([0.125, 1.0]))
    x = torch.tensor([[1.0, 2.0, -0.5], [0.0, -4.0, 8.0], [0.25, 0.5, 0.75]], dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(folded_linear(lin, bn)(x), bn(lin(x)))


def test_batchnorm_fold_of_a_trained_model_matches_linear_plus_bn():
    torch.manual_seed(0)
    model = DelRecSNN(PRESETS["tiny"].model).train()
    x = (torch.rand(10, 16, 8) < 0.4).float()
    for _ in range(3):
        model(x)  # populate running statistics
    model.eval()
    layer = model.layers[0]
    w, b = fold_batchnorm(layer.fc, layer.bn)
    xin = x.reshape(-1, 8).double()
    with torch.no_grad():
        expected = layer.bn.double()(layer.fc.double()(xin))
    torch.testing.assert_close(xin @ w.T + b, expected, rtol=1e-12, atol=1e-12)


def test_active_steps_and_the_active_mean_score():
    from pytrain.model.network import active_steps, readout_score

    x = torch.zeros(10, 3, 4)
    x[2:5, 0] = 4.0  # 3 loud steps
    x[6, 0] = 0.5  # below a quarter of the loudest: silence
    x[:, 1] = 1.0  # all steps equally active
    assert active_steps(x).tolist() == [3.0, 10.0, 10.0]  # an all-silent sample counts every step
    readout = torch.randn(10, 3, 5)
    mean = readout_score(readout, "mean_logits")
    active = readout_score(readout, "active_mean", active_steps(x))
    assert torch.allclose(active, readout.sum(0) / torch.tensor([3.0, 10.0, 10.0]).unsqueeze(1))
    # a positive scale per sample: the same argmax as the time-summed readout, the integer model's rule
    assert torch.equal(active.argmax(-1), readout.sum(0).argmax(-1)) and torch.equal(mean.argmax(-1), active.argmax(-1))
    with pytest.raises(ValueError):
        readout_score(readout, "active_mean")
