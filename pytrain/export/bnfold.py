r"""Fold an evaluation-mode BatchNorm into the Linear layer before it (for export and quantization).

.. math::

    \mathrm{BN}(Wx + b) = \gamma \frac{Wx + b - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta
    = \underbrace{(g \odot W)}_{W'} x + \underbrace{g \odot (b - \mu) + \beta}_{b'},
    \qquad g = \frac{\gamma}{\sqrt{\sigma^2 + \epsilon}}

(:math:`g` scales the rows of :math:`W`). The fold is computed in float64.
"""

from __future__ import annotations

import torch
from torch import nn


def fold_batchnorm(linear: nn.Linear, bn: nn.BatchNorm1d | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Folded ``(W', b')`` in float64; ``bn=None`` returns the Linear's own weight and bias."""
    w = linear.weight.detach().double()
    b = linear.bias.detach().double() if linear.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    if bn is None:
        return w.clone(), b.clone()
    gamma = bn.weight.detach().double() if bn.affine else torch.ones_like(b)
    beta = bn.bias.detach().double() if bn.affine else torch.zeros_like(b)
    g = gamma / torch.sqrt(bn.running_var.detach().double() + bn.eps)
    return w * g.unsqueeze(1), g * (b - bn.running_mean.detach().double()) + beta


def folded_linear(linear: nn.Linear, bn: nn.BatchNorm1d | None) -> nn.Linear:
    """A float64 ``nn.Linear`` equal to ``bn(linear(x))`` in evaluation mode."""
    w, b = fold_batchnorm(linear, bn)
    out = nn.Linear(w.shape[1], w.shape[0], bias=True).double()
    with torch.no_grad():
        out.weight.copy_(w)
        out.bias.copy_(b)
    return out
