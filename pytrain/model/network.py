"""The Conv+DelRec network assembled from layers, its loss, prediction rule and parameter counts."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .layers import SpikingLayer, sequence_dropout_mask
from .neurons import beta_from_tau, readout_step


@dataclass
class ModelOutput:
    readout: torch.Tensor  # (T, B, K): readout membrane (leaky) or per-step logits (linear)
    spikes: list[torch.Tensor]  # per hidden layer, (T, B, N)

    def score(self, loss: str) -> torch.Tensor:
        """Per-sample class scores whose argmax is the prediction: (B, K)."""
        if loss == "sum_softmax":
            return self.readout.softmax(-1).sum(0)
        return self.readout.mean(0)


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
        h = x
        for layer in self.layers:
            s = layer(h, self.sigma)
            spikes.append(s)
            mask = sequence_dropout_mask(s[0], self.cfg.dropout, self.training)
            h = s if mask is None else s * mask
        t, b, _ = h.shape
        cur = self.fc_out(h.reshape(t * b, -1)).view(t, b, -1)
        if self.cfg.readout == "linear":
            return ModelOutput(cur, spikes)
        v = torch.zeros_like(cur[0])
        trace = []
        for x_t in cur.unbind(0):
            v = readout_step(x_t, v, self.readout_beta)
            trace.append(v)
        return ModelOutput(torch.stack(trace), spikes)

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
