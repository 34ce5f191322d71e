"""Layer modules: they own parameters and the time loop; the math lives in neurons/delays/recurrent."""

from __future__ import annotations

import math

import torch
from torch import nn

from codegen.integer.fixedpoint import round_half_up_float

from . import delays as dl
from .config import ModelConfig
from .fused import LoopSpec, fused_lif_layer
from .neurons import LIFParams, beta_from_tau, lif_step
from .recurrent import conv_recurrence, dense_recurrence, taps_recurrence

IMPLEMENTATIONS = ("fused", "reference")


def sequence_dropout_mask(like: torch.Tensor, p: float, training: bool) -> torch.Tensor | None:
    """Inverted-dropout mask of shape ``like`` (B, N), drawn once per sequence and kept for every step."""
    if not training or p <= 0:
        return None
    return torch.bernoulli(torch.full_like(like, 1.0 - p)) / (1.0 - p)


class DelayedRecurrence(nn.Module):
    """The recurrent connection of one layer: delays (if learned) and the recurrent weights.

    ``conv``/``dense`` learn one delay per presynaptic neuron; ``conv-nodelay`` reads the previous
    step only (delay 0); ``taps`` reads lags 1..D, each with its own kernel.
    """

    def __init__(self, n: int, cfg: ModelConfig):
        super().__init__()
        self.variant = cfg.recurrent
        self.n = n
        self.delay_max = cfg.delay_max
        c, k = cfg.channels, cfg.kernel_size
        if self.variant == "dense":
            self.weight = nn.Parameter(torch.empty(n, n))
            nn.init.orthogonal_(self.weight, gain=1.0)
        elif self.variant == "taps":
            self.n_taps = cfg.n_taps
            self.weight = nn.Parameter(torch.empty(cfg.n_taps, c, c, k))
            bound = 1.0 / math.sqrt(c * k * cfg.n_taps)
            nn.init.uniform_(self.weight, -bound, bound)
        else:
            self.weight = nn.Parameter(torch.empty(c, c, k))
            # kaiming_uniform_(a=sqrt(5)) on a (C, C, K) kernel is U(-1/sqrt(C*K), 1/sqrt(C*K))
            bound = 1.0 / math.sqrt(c * k)
            nn.init.uniform_(self.weight, -bound, bound)
        if cfg.learns_delays:
            self.delays = nn.Parameter(self._init_delays(n, cfg.delay_init))
        else:
            self.register_parameter("delays", None)

    def _init_delays(self, n: int, spec: tuple) -> torch.Tensor:
        kind = spec[0]
        if kind == "uniform":
            d = torch.empty(n).uniform_(float(spec[1]), float(spec[2]))
        elif kind == "halfnormal":
            d = torch.randn(n).abs() * float(spec[1])
        else:
            raise ValueError(f"unknown delay init {spec!r}")
        if self.delay_max is not None:
            d = d.clamp(max=self.delay_max)
        return d

    def history_length(self, sigma: float, integer: bool) -> int:
        if self.variant == "taps":
            return self.n_taps
        if self.delays is None:
            return 1
        max_d = float(self.delays.detach().clamp(min=0).max())
        if integer:
            return 1 + int(round_half_up_float(torch.tensor(max_d)))
        return dl.history_length(max_d, sigma)

    def apply_weights(self, z: torch.Tensor) -> torch.Tensor:
        if self.variant == "dense":
            return dense_recurrence(z, self.weight)
        return conv_recurrence(z, self.weight)

    def clamp_delays_(self) -> None:
        if self.delays is not None:
            with torch.no_grad():
                self.delays.clamp_(min=0.0, max=self.delay_max)

    def round_delays_(self) -> None:
        if self.delays is not None:
            with torch.no_grad():
                self.delays.copy_(round_half_up_float(self.delays.clamp(min=0.0)))


class SpikingLayer(nn.Module):
    """``Linear (+BN) -> LIF``, optionally with the delayed recurrent connection."""

    def __init__(self, n_in: int, n: int, recurrent: bool, cfg: ModelConfig):
        super().__init__()
        self.fc = nn.Linear(n_in, n, bias=cfg.bias)
        nn.init.kaiming_uniform_(self.fc.weight, nonlinearity="relu")
        self.bn = nn.BatchNorm1d(n) if cfg.batchnorm else None
        self.rec = DelayedRecurrence(n, cfg) if recurrent else None
        self.lif = LIFParams(
            beta=beta_from_tau(cfg.tau), threshold=cfg.threshold, reset=cfg.reset,
            detach_reset=cfg.detach_reset, surrogate=cfg.surrogate, surrogate_scale=cfg.surrogate_scale,
        )
        self.rec_dropout = cfg.rec_dropout
        # "fused": one custom autograd op per layer (fast); "reference": the obvious per-step
        # autograd loop below, kept as the definition the fused op is tested against.
        self.impl = "fused"

    def feedforward(self, x: torch.Tensor) -> torch.Tensor:
        """``(T, B, n_in) -> (T, B, n)``: one matrix product for the whole sequence."""
        t, b, _ = x.shape
        cur = self.fc(x.reshape(t * b, -1))
        if self.bn is not None:
            cur = self.bn(cur)  # statistics over time steps and batch
        return cur.view(t, b, -1)

    def forward(self, x: torch.Tensor, sigma: float = 0.0) -> torch.Tensor:
        cur = self.feedforward(x)
        if self.impl == "fused":
            return self._run_fused(cur, sigma)
        if self.rec is None:
            return self._run_plain(cur)
        return self._run_recurrent(cur, sigma)

    def delayed_read(self, sigma: float) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Lags (M, N) and their weights (M, N) of the delayed read, as used by this layer now.

        Weights are ``None`` when every neuron reads exactly one lag with weight 1.

        Training interpolates over the triangle (sigma = 0 is linear interpolation, so delays keep a
        gradient); evaluation reads exactly lag ``1 + round_half_up(d)``.
        """
        rec = self.rec
        assert rec is not None and rec.variant != "taps"
        if rec.delays is None:
            lags = torch.ones(1, rec.n, dtype=torch.int64, device=rec.weight.device)
        elif not self.training:
            lags = (1 + dl.integer_delays(rec.delays)).unsqueeze(0)
        else:
            return dl.triangle_taps(rec.delays, sigma)
        return lags, None

    def _run_fused(self, cur: torch.Tensor, sigma: float) -> torch.Tensor:
        rec = self.rec
        if rec is None:
            return fused_lif_layer(cur, LoopSpec(self.lif, None, 0))
        mask = sequence_dropout_mask(cur[0], self.rec_dropout, self.training)
        if rec.variant == "taps":
            spec = LoopSpec(self.lif, "taps", rec.n_taps)
            return fused_lif_layer(cur, spec, rec.weight, mask=mask)
        lags, weights = self.delayed_read(sigma)
        spec = LoopSpec(self.lif, rec.variant, int(lags.max()))
        return fused_lif_layer(cur, spec, rec.weight, weights, lags, mask)

    def _run_plain(self, cur: torch.Tensor) -> torch.Tensor:
        v = torch.zeros_like(cur[0])
        out = []
        # unbind once: indexing cur[t] per step would make backward allocate T full-size gradients
        for x_t in cur.unbind(0):
            s, v = lif_step(x_t, v, self.lif)
            out.append(s)
        return torch.stack(out)

    def _run_recurrent(self, cur: torch.Tensor, sigma: float) -> torch.Tensor:
        rec = self.rec
        assert rec is not None
        # Evaluation and export use sigma = 0 and delays rounded half up: exactly one lag per neuron.
        # Training always interpolates (sigma = 0 is linear interpolation), so delays keep a gradient.
        integer = not self.training
        v = torch.zeros_like(cur[0])
        history = dl.SpikeHistory(rec.history_length(sigma, integer), cur[0])
        mask = sequence_dropout_mask(cur[0], self.rec_dropout, self.training)
        if rec.delays is not None:
            if integer:
                lags = 1 + dl.integer_delays(rec.delays)
            else:
                lags, weights = dl.triangle_taps(rec.delays, sigma)
        out = []
        for x_t in cur.unbind(0):
            if rec.variant == "taps":
                i_rec = taps_recurrence(history.window(), rec.weight)
            else:
                if rec.delays is None:
                    z = history.lag(1)
                elif integer:
                    z = dl.read_integer_delayed(history, lags)
                else:
                    z = dl.read_delayed(history, lags, weights)
                i_rec = rec.apply_weights(z)
            if mask is not None:
                i_rec = i_rec * mask
            s, v = lif_step(x_t + i_rec, v, self.lif)
            history.push(s)
            out.append(s)
        return torch.stack(out)
