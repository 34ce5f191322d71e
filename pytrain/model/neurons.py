r"""Spiking neurons as pure step functions over explicit state (no hidden module state).

Leaky integrate-and-fire (LIF), discrete time, ``decay_input=False`` form:

.. math::

    h_t = \beta\, v_{t-1} + x_t, \qquad s_t = \Theta(h_t - \vartheta), \qquad
    v_t = \begin{cases} h_t\,(1 - s_t) & \text{reset to zero} \\ h_t - s_t\,\vartheta & \text{reset by subtraction} \end{cases}

with leak factor :math:`\beta = 1 - 1/\tau` (``tau`` in time steps) and :math:`\Theta(u) = 1` for
:math:`u \ge 0`. The same inequality (``h >= threshold``) is used by the integer model and the C.

The non-spiking leaky readout is the same charge equation without fire and reset:
:math:`v_t = \beta_r\, v_{t-1} + x_t`.

Surrogate gradients replace :math:`\Theta'` in the backward pass:

* ATan (``alpha``): :math:`\partial s/\partial u = (\alpha/2) / (1 + (\tfrac{\pi}{2}\alpha u)^2)`
* Triangle (``gamma``): :math:`\partial s/\partial u = \max(0, \gamma - |u|) / \gamma^2`
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch


def surrogate_derivative(u: torch.Tensor, surrogate: str, scale: float) -> torch.Tensor:
    """:math:`\\partial s/\\partial u` used in the backward pass (formulas in the module docstring)."""
    if surrogate == "atan":
        return (scale / 2) / (1 + (math.pi / 2 * scale * u) ** 2)
    return torch.clamp(scale - u.abs(), min=0) / (scale * scale)


class _SurrogateSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: torch.Tensor, surrogate: str, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(u)
        ctx.surrogate, ctx.scale = surrogate, scale
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (u,) = ctx.saved_tensors
        return grad * surrogate_derivative(u, ctx.surrogate, ctx.scale), None, None


def spike(u: torch.Tensor, surrogate: str, scale: float) -> torch.Tensor:
    """Heaviside step :math:`\\Theta(u)` (1 where ``u >= 0``) with the named surrogate gradient."""
    return _SurrogateSpike.apply(u, surrogate, scale)


class LIFParams(NamedTuple):
    """Parameters of a LIF population (shared by all its neurons)."""

    beta: float = 0.5  # leak factor, 1 - 1/tau
    threshold: float = 1.0
    reset: str = "zero"  # "zero" or "subtract"
    detach_reset: bool = True  # no gradient through the reset path
    surrogate: str = "atan"
    surrogate_scale: float = 5.0  # alpha for atan, gamma for triangle


def beta_from_tau(tau: float) -> float:
    """Leak factor of the ``decay_input=False`` LIF: :math:`\\beta = 1 - 1/\\tau`."""
    if tau < 1:
        raise ValueError(f"tau must be >= 1 time step, got {tau}")
    return 1.0 - 1.0 / tau


def lif_step(x: torch.Tensor, v: torch.Tensor, p: LIFParams) -> tuple[torch.Tensor, torch.Tensor]:
    """One LIF step: returns ``(spikes, new membrane)`` for input current ``x`` and membrane ``v``."""
    h = p.beta * v + x
    s = spike(h - p.threshold, p.surrogate, p.surrogate_scale)
    r = s.detach() if p.detach_reset else s
    if p.reset == "zero":
        v_new = h * (1.0 - r)
    else:
        v_new = h - r * p.threshold
    return s, v_new


def readout_step(x: torch.Tensor, v: torch.Tensor, beta: float) -> torch.Tensor:
    """One step of the non-spiking leaky readout: :math:`v_t = \\beta v_{t-1} + x_t`."""
    return beta * v + x


def lif_sequence(x: torch.Tensor, p: LIFParams) -> torch.Tensor:
    """Run :func:`lif_step` over a ``(T, B, N)`` input sequence from a zero state; returns spikes."""
    v = torch.zeros_like(x[0])
    out = []
    for x_t in x.unbind(0):
        s, v = lif_step(x_t, v, p)
        out.append(s)
    return torch.stack(out)


def readout_sequence(x: torch.Tensor, beta: float) -> torch.Tensor:
    """Run the leaky readout over ``(T, B, K)`` from zero; returns the membrane trace."""
    v = torch.zeros_like(x[0])
    out = []
    for x_t in x.unbind(0):
        v = readout_step(x_t, v, beta)
        out.append(v)
    return torch.stack(out)
