r"""Fake-quantized network: the float model trained and evaluated with the integer arithmetic.

:class:`FakeQuantSNN` keeps float parameters (BatchNorm folded) and, on every forward pass, rounds them to
their integer grid and runs the exact integer step of :mod:`codegen.integer.network` on integer-valued float64
tensors, so in evaluation mode it produces the same spikes and readout integers as the integer reference
model (:mod:`codegen.integer.refmodel`), bit for bit. In training the roundings pass gradients straight through (STE) and the spike uses
the float model's surrogate, so quantization-aware training optimises the model that is deployed.

Scales (fraction bits) are chosen once, from the float weights, when the model is built
(:func:`plan_scales`), and stay fixed during QAT; :meth:`FakeQuantSNN.to_int_network` exports the current
integer parameters.

Rounding is the project's one rule (round half up, :func:`codegen.integer.fixedpoint.round_half_up_float`);
``torch.round`` is never used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from codegen.integer import fixedpoint as fx
from codegen.integer.network import IntLayer, IntNetwork, IntReadout, IntRecurrence
from pytrain.model.delays import integer_delays
from pytrain.model.network import DelRecSNN
from pytrain.model.neurons import spike
from pytrain.model.recurrent import conv_recurrence, dense_recurrence, taps_recurrence

from .bnfold import fold_batchnorm

STATE_BITS = 16
# The membrane scale leaves room for this many thresholds on either side before h saturates.
MEMBRANE_HEADROOM = 16.0
READOUT_EXTRA_BITS = 8  # readout state finer than its weights: the leak then rounds less


def ste(exact: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Value of ``exact``, gradient of ``x`` (straight-through estimator)."""
    return x + (exact - x).detach()


def quantize_ste(w: torch.Tensor, frac: int, bits: int) -> torch.Tensor:
    """Integer-valued ``sat(rnd(w * 2^frac))`` with a straight-through gradient (scaled by 2^frac)."""
    lo, hi = fx.int_range(bits)
    scaled = w * 2.0**frac
    return ste(torch.clamp(fx.round_half_up_float(scaled), lo, hi), scaled)


def leak_ste(v: torch.Tensor, mul: int, shift: int) -> torch.Tensor:
    """``rshift_round(v * mul, shift)`` on integer-valued tensors, gradient ``mul / 2^shift``."""
    scaled = v * (mul / 2.0**shift)
    exact = fx.rshift_round_values(v * mul, shift)
    return ste(exact, scaled)


def saturate_ste(x: torch.Tensor, bits: int) -> torch.Tensor:
    lo, hi = fx.int_range(bits)
    return torch.clamp(x, lo, hi)


def per_layer_bits(model: DelRecSNN, weight_bits) -> tuple[int, ...]:
    """Weight widths for every hidden layer (its recurrent weights included) and then the readout.

    ``weight_bits`` is one width for all, or a sequence with one width per hidden layer plus the readout.
    """
    n = len(model.layers) + 1
    bits = (int(weight_bits),) * n if isinstance(weight_bits, int) else tuple(int(b) for b in weight_bits)
    if len(bits) != n:
        raise ValueError(f"expected {n} weight widths ({n - 1} layers and the readout), got {len(bits)}")
    if any(b not in (4, 8, 16) for b in bits):
        raise ValueError(f"weight widths must be 4, 8 or 16, got {bits}")
    return bits


def calibrated(model: DelRecSNN, weight_bits, calibration: torch.Tensor | None) -> "FakeQuantSNN":
    """Post-training quantization: scales from the weights, membrane scales from calibration inputs."""
    if calibration is None or calibration.shape[0] == 0:
        return FakeQuantSNN(model, weight_bits)
    # a first pass with a wide membrane range measures the peaks without clipping them
    wide = FakeQuantSNN(model, weight_bits, peaks=[256.0 * model.cfg.threshold] * len(model.layers)).eval()
    return FakeQuantSNN(model, weight_bits, peaks=wide.membrane_peaks(calibration))


@dataclass(frozen=True)
class LayerScales:
    weight_frac: int
    rec_frac: int | None
    v_frac: int


def _max_abs(t: torch.Tensor) -> float:
    return float(t.detach().abs().max()) if t.numel() else 0.0


def plan_scales(
    model: DelRecSNN, weight_bits=8, peaks: list[float] | None = None
) -> tuple[list[LayerScales], tuple[int, int]]:
    """Fraction bits per layer: each weight tensor as fine as its int range allows (never finer than the
    membrane), the membrane as fine as 16 bits allow while holding twice the largest membrane seen in
    calibration (``peaks``, float units), or ``MEMBRANE_HEADROOM`` thresholds without calibration."""
    bits = per_layer_bits(model, weight_bits)
    scales = []
    for i, layer in enumerate(model.layers):
        reach = MEMBRANE_HEADROOM * model.cfg.threshold if peaks is None else max(2.0 * peaks[i], 2.0 * model.cfg.threshold)
        cap = fx.frac_bits_for(reach, STATE_BITS)
        w, _ = fold_batchnorm(layer.fc, layer.bn)
        f_w = fx.frac_bits_for(_max_abs(w), bits[i])
        f_r = fx.frac_bits_for(_max_abs(layer.rec.weight), bits[i]) if layer.rec is not None else None
        # the membrane as fine as its range allows: weights join it by exact left shifts
        f_v = cap
        scales.append(LayerScales(min(f_w, f_v), None if f_r is None else min(f_r, f_v), f_v))
    f_out = fx.frac_bits_for(_max_abs(model.fc_out.weight), bits[-1])
    return scales, (f_out, f_out + READOUT_EXTRA_BITS)


class FakeQuantSNN(nn.Module):
    """The integer network of a trained :class:`DelRecSNN`, as a differentiable PyTorch module."""

    def __init__(self, model: DelRecSNN, weight_bits=8, peaks: list[float] | None = None):
        super().__init__()
        self.cfg = model.cfg
        self.bits = per_layer_bits(model, weight_bits)  # hidden layers, then the readout
        self.scales, (self.out_frac, self.u_frac) = plan_scales(model, weight_bits, peaks)
        self.peaks: list[float] | None = None  # largest |h| per layer (float units) seen while recording
        self.ff_w = nn.ParameterList()
        self.ff_b = nn.ParameterList()
        self.rec_w = nn.ParameterList()
        self.delays: list[torch.Tensor | None] = []
        self.variants: list[str | None] = []
        for layer in model.layers:
            w, b = fold_batchnorm(layer.fc, layer.bn)
            self.ff_w.append(nn.Parameter(w.clone()))
            self.ff_b.append(nn.Parameter(b.clone()))
            rec = layer.rec
            self.variants.append(None if rec is None else rec.variant)
            if rec is None:
                self.rec_w.append(nn.Parameter(torch.zeros(0, dtype=torch.float64), requires_grad=False))
                self.delays.append(None)
                continue
            self.rec_w.append(nn.Parameter(rec.weight.detach().double().clone()))
            if rec.variant in ("conv", "dense"):
                self.delays.append(integer_delays(rec.delays))
            elif rec.variant == "conv-nodelay":
                self.delays.append(torch.zeros(rec.n, dtype=torch.int64))
            else:
                self.delays.append(None)
        self.out_w = nn.Parameter(model.fc_out.weight.detach().double().clone())
        bias = model.fc_out.bias if model.fc_out.bias is not None else torch.zeros(model.cfg.n_classes)
        self.out_b = nn.Parameter(bias.detach().double().clone())
        self.lif = [layer.lif for layer in model.layers]
        self.leaks = [fx.leak_parameters(p.beta) for p in self.lif]
        self.readout_leak = fx.leak_parameters(model.readout_beta) if model.cfg.readout == "leaky" else (0, fx.LEAK_SHIFT)

    # -- integer parameters --------------------------------------------------------------------
    def int_params(self, i: int) -> dict:
        s = self.scales[i]
        bits = self.bits[i]
        out = {
            "w": quantize_ste(self.ff_w[i], s.weight_frac, bits),
            "b": quantize_ste(self.ff_b[i], s.v_frac, 32),
            "threshold": int(fx.round_half_up(self.lif[i].threshold * 2.0**s.v_frac)),
        }
        if self.variants[i] is not None:
            out["r"] = quantize_ste(self.rec_w[i], s.rec_frac, bits)
        return out

    def readout_params(self) -> dict:
        return {
            "w": quantize_ste(self.out_w, self.out_frac, self.bits[-1]),
            "b": quantize_ste(self.out_b, self.u_frac, 32),
        }

    # -- forward --------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``x`` (T, B, n_inputs) spike counts -> (readout u per step (T, B, K), spikes per layer)."""
        h_in = x.double()
        spikes = []
        for i in range(len(self.scales)):
            s = self._layer(i, h_in)
            spikes.append(s)
            h_in = s
        return self._readout(h_in), spikes

    def _layer(self, i: int, x: torch.Tensor) -> torch.Tensor:
        sc, p, lif = self.scales[i], self.int_params(i), self.lif[i]
        mul, shift = self.leaks[i]
        t_len, b, _ = x.shape
        acc_ff = (x.reshape(t_len * b, -1) @ p["w"].t()).view(t_len, b, -1)
        cur = acc_ff * 2.0 ** (sc.v_frac - sc.weight_frac) + p["b"]
        variant = self.variants[i]
        n = cur.shape[-1]
        history: list[torch.Tensor] = []
        v = torch.zeros(b, n, dtype=torch.float64)
        out = []
        for t in range(t_len):
            total = cur[t]
            if variant is not None:
                total = total + self._recurrent(i, variant, p["r"], history, b, n) * 2.0 ** (sc.v_frac - sc.rec_frac)
            h_raw = leak_ste(v, mul, shift) + total
            if self.peaks is not None:
                self.peaks[i] = max(self.peaks[i], float(h_raw.detach().abs().max()) / 2.0**sc.v_frac)
            h = saturate_ste(h_raw, STATE_BITS)
            s = spike((h - p["threshold"]) / 2.0**sc.v_frac, lif.surrogate, lif.surrogate_scale)
            r = s.detach() if lif.detach_reset else s
            v = h * (1.0 - r) if lif.reset == "zero" else h - r * p["threshold"]
            history.append(s)
            out.append(s)
        return torch.stack(out)

    def _recurrent(self, i, variant, r, history, b, n) -> torch.Tensor:
        """Recurrent accumulator from the integer-delayed own spikes (lags 1 + d_j, or 1..D for taps)."""
        depth = r.shape[0] if variant == "taps" else 1 + int(self.delays[i].max())
        past = history[::-1][:depth]  # past[k - 1] = S(t - k)
        zero = torch.zeros(b, n, dtype=torch.float64)
        window = torch.stack(past + [zero] * (depth - len(past)))  # (depth, B, N)
        if variant == "taps":
            return taps_recurrence(window, r)
        idx = self.delays[i].view(1, 1, -1).expand(1, b, -1)  # lag 1 + d is row d
        z = torch.gather(window, 0, idx).squeeze(0)
        return dense_recurrence(z, r) if variant == "dense" else conv_recurrence(z, r)

    def _readout(self, x: torch.Tensor) -> torch.Tensor:
        p = self.readout_params()
        mul, shift = self.readout_leak
        t_len, b, _ = x.shape
        acc = (x.reshape(t_len * b, -1) @ p["w"].t()).view(t_len, b, -1)
        cur = acc * 2.0 ** (self.u_frac - self.out_frac) + p["b"]
        u = torch.zeros_like(cur[0])
        trace = []
        for t in range(t_len):
            u = saturate_ste(leak_ste(u, mul, shift) + cur[t], 32)
            trace.append(u)
        return torch.stack(trace)

    @torch.no_grad()
    def membrane_peaks(self, x: torch.Tensor, batch_size: int = 256) -> list[float]:
        """Largest |h| per layer in float units over calibration inputs ``x`` (S, T, C)."""
        self.peaks = [0.0] * len(self.scales)
        for start in range(0, x.shape[0], batch_size):
            self(x[start : start + batch_size].double().transpose(0, 1))
        peaks, self.peaks = self.peaks, None
        return peaks

    def scores(self, u: torch.Tensor) -> torch.Tensor:
        """Integer class scores (B, K): the readout summed over the sample."""
        return u.sum(0)

    # -- export ---------------------------------------------------------------------------------
    @torch.no_grad()
    def to_int_network(self, classes=(), meta: dict | None = None) -> IntNetwork:
        def ints(t: torch.Tensor, dtype) -> np.ndarray:
            return t.detach().cpu().numpy().astype(dtype)

        def wdtype(bits: int):
            return np.int8 if bits <= 8 else np.int16

        layers = []
        for i, sc in enumerate(self.scales):
            p = self.int_params(i)
            mul, shift = self.leaks[i]
            rec = None
            if self.variants[i] is not None:
                delays = self.delays[i]
                rec = IntRecurrence(
                    variant=self.variants[i], weight=ints(p["r"], wdtype(self.bits[i])), frac=sc.rec_frac,
                    delays=np.zeros(0, np.int64) if delays is None else delays.numpy().astype(np.int64),
                    weight_bits=self.bits[i],
                )
            layers.append(IntLayer(
                weight=ints(p["w"], wdtype(self.bits[i])), weight_frac=sc.weight_frac, bias=ints(p["b"], np.int64),
                v_frac=sc.v_frac, threshold=p["threshold"], leak_mul=mul, leak_shift=shift,
                reset=self.lif[i].reset, recurrence=rec, weight_bits=self.bits[i], state_bits=STATE_BITS,
            ))
        p = self.readout_params()
        mul, shift = self.readout_leak
        readout = IntReadout(
            weight=ints(p["w"], wdtype(self.bits[-1])), weight_frac=self.out_frac, bias=ints(p["b"], np.int64),
            v_frac=self.u_frac, leak_mul=mul, leak_shift=shift, weight_bits=self.bits[-1],
        )
        return IntNetwork(
            n_inputs=self.cfg.n_inputs, layers=tuple(layers), readout=readout, bin_ms=self.cfg.bin_ms,
            classes=tuple(classes), meta=dict(meta or {}),
        )
