"""Fake-quant PyTorch model against the integer reference model: exact equality at every step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from codegen.integer import refmodel
from codegen.integer.modelfile import load_network, save_network
from codegen.integer.network import VARIANTS as RECURRENT_VARIANTS
from codegen.integer import fixedpoint as fx
from codegen.integer.fixedpoint import round_half_up_float
from codegen.verify.compare import compare
from pytrain.export.fakequant import FakeQuantSNN, calibrated
from pytrain.model.network import DelRecSNN
from pytrain.model.presets import PRESETS


def _random_model(variant: str, seed: int, n: int = 12, channels: int = 1, kernel: int = 3, reset: str = "zero",
                  max_delay: float = 6.0, tau: float = 2.0, readout: str = "leaky") -> DelRecSNN:
    torch.manual_seed(seed)
    cfg = PRESETS["tiny"].model.replace(
        n_inputs=5, n_classes=3, hidden=(n, n), recurrent=variant, channels=channels, kernel_size=kernel,
        reset=reset, tau=tau, readout=readout, n_taps=3, delay_init=("uniform", 0.0, max_delay), delay_max=max_delay,
    )
    model = DelRecSNN(cfg)
    with torch.no_grad():
        for layer in model.layers:  # non-trivial BatchNorm statistics to fold
            layer.bn.running_mean.uniform_(-0.2, 0.2)
            layer.bn.running_var.uniform_(0.5, 2.0)
            layer.bn.weight.uniform_(0.5, 1.5)
            layer.fc.weight.mul_(2.0)
            if layer.rec is not None:
                layer.rec.weight.mul_(3.0)
    return model.eval()


def _compare(model: DelRecSNN, bits: int, x: np.ndarray) -> None:
    """Every spike, readout value and score of the fake-quant model (float64, which must hold whole numbers:
    :func:`codegen.verify.compare.compare` refuses a fraction instead of truncating it) equals the reference."""
    fq = FakeQuantSNN(model, bits).eval()
    net = fq.to_int_network()
    with torch.no_grad():
        u, spikes = fq(torch.from_numpy(x).double().transpose(0, 1))
    ref = refmodel.run(net, x, keep_trace=True)
    expected = {f"layer {i} spikes": layer.spikes for i, layer in enumerate(ref.trace.layers)}
    expected.update({"readout": ref.trace.u, "scores": ref.scores})
    observed = {f"layer {i} spikes": s.transpose(0, 1).numpy() for i, s in enumerate(spikes)}
    observed.update({"readout": u.transpose(0, 1).numpy(), "scores": fq.scores(u).numpy()})
    result = compare(expected, observed)
    assert result.ok, result.first


@pytest.mark.parametrize("variant", RECURRENT_VARIANTS)
@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("bits", [4, 8, 16])
def test_fakequant_equals_integer_reference_for_every_variant(variant, reset, bits):
    model = _random_model(variant, seed=3, reset=reset)
    x = np.random.default_rng(0).integers(0, 4, size=(6, 40, 5))
    _compare(model, bits, x)


@settings(max_examples=25)
@given(
    variant=st.sampled_from(RECURRENT_VARIANTS), seed=st.integers(0, 10**6), n_per_channel=st.integers(3, 8),
    channels=st.sampled_from([1, 2]), kernel=st.sampled_from([1, 3, 5]), reset=st.sampled_from(["zero", "subtract"]),
    max_delay=st.sampled_from([0.0, 1.0, 7.0]), tau=st.sampled_from([1.05, 2.0, 4.0]),
    readout=st.sampled_from(["leaky", "linear"]), bits=st.sampled_from([4, 8]),
    inputs=st.sampled_from(["silent", "saturated", "random"]),
)
def test_fakequant_equals_integer_reference_on_generated_models(
    variant, seed, n_per_channel, channels, kernel, reset, max_delay, tau, readout, bits, inputs
):
    model = _random_model(variant, seed, n_per_channel * channels, channels, kernel, reset, max_delay, tau, readout)
    rng = np.random.default_rng(seed)
    x = {"silent": np.zeros((3, 30, 5), np.int64), "saturated": np.full((3, 30, 5), 255, np.int64),
         "random": rng.integers(0, 6, size=(3, 30, 5))}[inputs]
    _compare(model, bits, x)


def test_exported_file_round_trips_to_the_same_results(tmp_path):
    model = _random_model("conv", seed=5)
    net = FakeQuantSNN(model, 8).to_int_network(classes=("a", "b", "c"), meta={"preset": "tiny"})
    save_network(net, tmp_path / "m.int.npz")
    again = load_network(tmp_path / "m.int.npz")
    x = np.random.default_rng(1).integers(0, 3, size=(4, 25, 5))
    assert np.array_equal(refmodel.run(net, x).scores, refmodel.run(again, x).scores)


def test_calibration_measures_membrane_peaks():
    """The peaks are the largest |leak(v) + current| of each layer in float units, as the integer reference of
    the wide first-pass model computes them (no saturation in that range), and each layer's membrane scale is
    the finest 16-bit scale that holds twice its peak (never less than twice the threshold)."""
    model = _random_model("conv", seed=7)
    x = torch.from_numpy(np.random.default_rng(2).integers(0, 4, size=(8, 30, 5)))
    threshold = model.cfg.threshold
    wide = FakeQuantSNN(model, 8, peaks=[256.0 * threshold] * len(model.layers)).eval()
    peaks = wide.membrane_peaks(x)
    ref = refmodel.run(wide.to_int_network(), x.numpy().astype(np.int64), keep_trace=True)
    for i, layer in enumerate(ref.trace.layers):
        h = np.abs(layer.h)
        assert h.max() < 2**15 - 1  # nothing saturated: h is the unsaturated sum
        assert peaks[i] == h.max() / 2.0 ** wide.scales[i].v_frac
        assert peaks[i] > threshold  # the layers reach their threshold on this input: the peak means something
    fq = calibrated(model, 8, x)
    for i, scale in enumerate(fq.scales):
        assert scale.v_frac == fx.frac_bits_for(max(2.0 * peaks[i], 2.0 * threshold), 16)
        assert scale.weight_frac <= scale.v_frac
