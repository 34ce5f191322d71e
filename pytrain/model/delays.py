r"""Learned axonal delays (DelRec): one real delay :math:`d_j \ge 0` per presynaptic neuron.

A spike of neuron :math:`j` emitted at step :math:`t` reaches its targets at step :math:`t + 1 + d_j`.
In training the delay is continuous and spread over neighbouring integer lags by a triangle of
half-width :math:`s = 1 + \sigma`:

.. math::

    h_j(k) = \frac{\max(0,\ s - |k - 1 - d_j|)}{s^2}, \qquad k = 1, 2, \dots

so the delayed presynaptic signal is :math:`z_j(t) = \sum_{k \ge 1} h_j(k)\, S_j(t - k)`. With
:math:`\sigma = 0` this is linear interpolation between lags :math:`1+\lfloor d\rfloor` and
:math:`1+\lceil d\rceil`; with an integer :math:`d` it is exactly one lag. :math:`\partial h/\partial d`
is the triangle's slope :math:`\pm 1/s^2`, which is what lets delays learn.

Only lags inside the triangle are gathered (:math:`2\lceil s\rceil` of them), never the whole buffer.
:math:`\sigma` follows a per-epoch schedule and is 0 for evaluation and export, where delays are
rounded half up to integers.
"""

from __future__ import annotations

import math

import torch

from codegen.integer.fixedpoint import round_half_up_float


def sigma_for_epoch(epoch: int, epochs: int, sigma_init: float = 10.0, sigma_decay: float = 0.95) -> float:
    """Per-epoch schedule :math:`\\sigma_e = \\sigma_0 (\\delta^{100/E})^e` (epoch ``e`` is 0-based)."""
    return float(sigma_init * (sigma_decay ** (100.0 / max(epochs, 1))) ** epoch)


def integer_delays(d: torch.Tensor) -> torch.Tensor:
    """Delays as deployed: clamped at 0 and rounded half up (the project's one rule), as int64."""
    return round_half_up_float(d.detach().clamp(min=0)).to(torch.int64)


def history_length(max_delay: float, sigma: float) -> int:
    r"""Largest lag :func:`triangle_taps` can ask for: :math:`\lfloor 1 + \max d \rfloor + \lceil 1 + \sigma \rceil`.

    At deployment (:math:`\sigma = 0`, integer delays) only lag :math:`1 + d_j` is read, so the
    circular buffer there needs ``max_delay + 2`` slots (the lags plus the slot being written).
    """
    return int(math.floor(1.0 + max_delay)) + int(math.ceil(1.0 + sigma))


def triangle_taps(delays: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Lags and weights of the interpolation triangle for every presynaptic neuron.

    Returns ``lags`` (M, N) int64 and ``weights`` (M, N) with ``M = 2 * ceil(1 + sigma)``: the
    integer lags ``k`` with ``|k - 1 - d| < s``, all ``>= 1``. Lags outside the triangle or below 1
    get weight 0. ``weights`` carries the gradient with respect to ``delays``.
    """
    s = 1.0 + sigma
    m = int(math.ceil(s))
    centre = 1.0 + delays
    base = torch.floor(centre.detach()).to(torch.int64)
    offsets = torch.arange(-m + 1, m + 1, device=delays.device).unsqueeze(1)
    lags = base.unsqueeze(0) + offsets
    weights = torch.clamp(s - (lags.to(delays.dtype) - centre).abs(), min=0) / (s * s)
    weights = torch.where(lags >= 1, weights, torch.zeros_like(weights))
    return lags.clamp(min=1), weights


class SpikeHistory:
    """The last ``length`` spike vectors of one layer, newest first, for delayed reads.

    ``window()`` returns a ``(length, B, N)`` tensor whose row ``k - 1`` holds :math:`S(t-k)`;
    rows before the start of the sequence are zero. Autograd flows through the stored spikes.
    """

    def __init__(self, length: int, like: torch.Tensor):
        self.length = length
        zero = torch.zeros_like(like)
        self._rows: list[torch.Tensor] = [zero] * length

    def push(self, spikes: torch.Tensor) -> None:
        self._rows.insert(0, spikes)
        del self._rows[self.length :]

    def window(self, length: int | None = None) -> torch.Tensor:
        return torch.stack(self._rows[: length or self.length])

    def lag(self, k: int) -> torch.Tensor:
        """:math:`S(t-k)` for one lag ``k >= 1``."""
        return self._rows[k - 1]


def read_delayed(history: SpikeHistory, lags: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """:math:`z_j(t) = \\sum_m w_{mj} S_j(t - k_{mj})` for a batch: ``(B, N)``.

    ``lags``/``weights`` are (M, N) from :func:`triangle_taps`, or (1, N) with unit weights for
    integer delays.
    """
    max_lag = int(lags.max())
    win = history.window(max_lag)  # (L, B, N)
    idx = (lags - 1).unsqueeze(1).expand(-1, win.shape[1], -1)
    taps = torch.gather(win, 0, idx)  # (M, B, N)
    return (taps * weights.unsqueeze(1)).sum(0)


def read_integer_delayed(history: SpikeHistory, lags: torch.Tensor) -> torch.Tensor:
    """:math:`z_j(t) = S_j(t - k_j)` for integer lags ``k_j = 1 + d_j`` (shape (N,)): one gather."""
    max_lag = int(lags.max())
    win = history.window(max_lag)
    idx = (lags - 1).view(1, 1, -1).expand(1, win.shape[1], -1)
    return torch.gather(win, 0, idx).squeeze(0)
