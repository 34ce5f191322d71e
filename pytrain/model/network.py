"""The Conv+DelRec network assembled from layers, its loss, prediction rule and parameter counts."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .layers import SpikingLayer, sequence_dropout_mask
from .neurons import beta_from_tau, readout_step


ACTIVE_FRACTION = 0.25  # a step is active when its input count reaches this share of the sample's busiest step


def active_steps(x: torch.Tensor) -> torch.Tensor:
    """Active steps per sample of an input ``x`` (T, B, C) of spike counts, at least 1: shape (B,).

    Step t of a sample is active when its total input count reaches ACTIVE_FRACTION of the sample's
    largest total: the steps with speech, whatever the padding, the level or the front end. The loss
    ``active_mean`` divides the time-summed readout by it; the prediction (argmax of the sum) never uses it,
    so the integer model and the C need no such rule.
    """
    total = x.sum(-1)
    active = total >= ACTIVE_FRACTION * total.amax(0, keepdim=True)
    return active.sum(0).clamp_(min=1).to(x.dtype)


def readout_score(readout: torch.Tensor, loss: str, n_active: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample class scores (B, K) of a readout (T, B, K) under ``loss``; their argmax is the prediction.

    ``mean_logits`` and ``active_mean`` are the time-summed readout scaled by a positive number per
    sample (1/T, 1/active steps), so both predict exactly what the integer model's summed score predicts.
    """
    if loss == "sum_softmax":
        return readout.softmax(-1).sum(0)
    if loss == "active_mean":
        if n_active is None:
            raise ValueError("the active_mean loss needs the active steps of every sample")
        return readout.sum(0) / n_active.unsqueeze(-1)
    return readout.mean(0)


@dataclass
class ModelOutput:
    readout: torch.Tensor  # (T, B, K): readout membrane (leaky) or per-step logits (linear)
    spikes: list[torch.Tensor]  # per hidden layer, (T, B, N)
    n_active: torch.Tensor | None = None  # (B,) active input steps (see active_steps)

    def score(self, loss: str) -> torch.Tensor:
        """Per-sample class scores whose argmax is the prediction: (B, K)."""
        return readout_score(self.readout, loss, self.n_active)


class DelRecSNN(nn.Module):
    """``inputs -> [Linear (+BN) -> LIF (+ delayed recurrence)] x L -> Linear -> readout``.

    Input is a ``(T, B, n_inputs)`` float tensor of spike counts per time bin.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        layers = []
        n_in = cfg.n_inputs
        for n, rec in zip(cfg.hidden, cfg.recurrent_layers):
            layers.append(SpikingLayer(n_in, n, rec, cfg))
            n_in = n
        self.layers = nn.ModuleList(layers)
        self.fc_out = nn.Linear(n_in, cfg.n_classes, bias=cfg.bias)
        nn.init.kaiming_uniform_(self.fc_out.weight, nonlinearity="relu")
        self.readout_beta = beta_from_tau(cfg.readout_tau) if cfg.readout == "leaky" else 0.0
        self.sigma = 0.0  # set per epoch by the trainer; not part of the state dict

    def set_sigma(self, sigma: float) -> None:
        self.sigma = float(sigma)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        spikes = []
        n_active = active_steps(x) if self.cfg.loss == "active_mean" else None
        h = x
        for layer in self.layers:
            s = layer(h, self.sigma)
            spikes.append(s)
            mask = sequence_dropout_mask(s[0], self.cfg.dropout, self.training)
            h = s if mask is None else s * mask
        t, b, _ = h.shape
        cur = self.fc_out(h.reshape(t * b, -1)).view(t, b, -1)
        if self.cfg.readout == "linear":
            return ModelOutput(cur, spikes, n_active)
        v = torch.zeros_like(cur[0])
        trace = []
        for x_t in cur.unbind(0):
            v = readout_step(x_t, v, self.readout_beta)
            trace.append(v)
        return ModelOutput(torch.stack(trace), spikes, n_active)

    # -- training helpers -------------------------------------------------------------------
    def loss(self, out: ModelOutput, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out.score(self.cfg.loss), target)

    def predict(self, out: ModelOutput) -> torch.Tensor:
        return out.score(self.cfg.loss).argmax(-1)

    def recurrences(self):
        return [layer.rec for layer in self.layers if layer.rec is not None]

    def delay_parameters(self) -> list[nn.Parameter]:
        return [r.delays for r in self.recurrences() if r.delays is not None]

    def clamp_delays_(self) -> None:
        for r in self.recurrences():
            r.clamp_delays_()

    def round_delays_(self) -> None:
        for r in self.recurrences():
            r.round_delays_()


def count_parameters(model: DelRecSNN) -> dict[str, int]:
    """Trainable parameters, counted as the paper does: recurrent = recurrent weights + delays.

    BatchNorm running statistics are buffers, not parameters, and are not counted.
    """
    total = sum(p.numel() for p in model.parameters())
    recurrent = sum(p.numel() for r in model.recurrences() for p in r.parameters())
    return {"params_total": total, "params_recurrent": recurrent}
