r"""Recurrent connection operators applied to the delayed presynaptic spikes :math:`z(t)` of shape (B, N).

Because each delay belongs to a *presynaptic* neuron, every variant is a linear map of :math:`z(t)`:

* ``conv`` (Conv+DelRec): a 1-D cross-correlation along the neuron index with ``C`` channels
  (neurons laid out channel-major as ``(C, N/C)``), odd kernel ``K``, zero "same" padding, no bias:

  .. math:: I_{c,i}(t) = \sum_{c'} \sum_{o=0}^{K-1} \kappa_{c,c',o}\, z_{c', i + o - (K-1)/2}(t)

  written as ``K`` shifted multiply-adds instead of ``conv1d`` (PyTorch's 1-channel CPU conv1d is
  about 30x slower for this shape).
* ``dense`` (DelRec): :math:`I(t) = W z(t)` with an N x N matrix.
* ``taps``: D fixed lags, each with its own kernel: :math:`I(t) = \sum_{d=1}^{D} \kappa_d * S(t-d)`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def conv_recurrence(z: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Same-padded cross-correlation of ``z`` (B, N) along neurons with ``kernel`` (C, C, K)."""
    c, _, k = kernel.shape
    b, n = z.shape
    width = n // c
    pad = (k - 1) // 2
    zp = F.pad(z.view(b, c, width), (pad, pad))
    if c == 1:
        out = kernel[0, 0, 0] * zp[:, 0, 0:width]
        for o in range(1, k):
            out = out + kernel[0, 0, o] * zp[:, 0, o : o + width]
        return out
    out = torch.einsum("kc,bcn->bkn", kernel[:, :, 0], zp[:, :, 0:width])
    for o in range(1, k):
        out = out + torch.einsum("kc,bcn->bkn", kernel[:, :, o], zp[:, :, o : o + width])
    return out.reshape(b, n)


def taps_recurrence(window: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """:math:`\\sum_d \\kappa_d * S(t-d)` for ``window`` (D, B, N) holding S(t-1)..S(t-D), ``kernels`` (D, C, C, K)."""
    d, c, _, k = kernels.shape
    _, b, n = window.shape
    width = n // c
    pad = (k - 1) // 2
    wp = F.pad(window.reshape(d, b, c, width), (pad, pad))
    out = torch.einsum("dkc,dbcn->bkn", kernels[..., 0], wp[..., 0:width])
    for o in range(1, k):
        out = out + torch.einsum("dkc,dbcn->bkn", kernels[..., o], wp[..., o : o + width])
    return out.reshape(b, n)


def dense_recurrence(z: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """:math:`W z` for ``z`` (B, N), ``weight`` (N_post, N_pre)."""
    return z @ weight.t()
