r"""Fused time loop of one LIF layer with its delayed recurrence, with hand-written backpropagation through time.

Same mathematics as the step-by-step autograd loop in :mod:`pytrain.model.layers` (the reference path, kept
beside it and tested against it), but without a per-step autograd graph:

* the spike history is one preallocated buffer ``S`` of shape (L + T, B, N); a delayed read gathers only
  the ``M`` lags inside the interpolation triangle (``M = 2`` at sigma = 0, 1 for integer delays), never
  the whole buffer;
* backward walks time in reverse and scatters :math:`\partial L/\partial S` into the same layout, so the
  cost per step is O(M B N) plus the recurrent operator, not O(L B N);
* the recurrent weight gradient is one batched product over all steps at the end.

Backward of one step (``u = h - threshold``, :math:`\sigma'` the surrogate derivative):

.. math::

    g_h = g_{v_t}\,\partial v_t/\partial h_t + (g_{s_t} + g_{v_t}\,\partial v_t/\partial s_t)\,\sigma'(u_t),\qquad
    g_{v_{t-1}} = \beta g_h,\qquad g_{x_t} = g_h,\qquad g_{I_t} = m \odot g_h

(:math:`\partial v/\partial s = 0` when the reset is detached).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .neurons import LIFParams, surrogate_derivative


@dataclass(frozen=True)
class LoopSpec:
    """Static description of the loop (not differentiated)."""

    lif: LIFParams
    variant: str | None  # None (no recurrence), "conv", "dense", "conv-nodelay", "taps"
    history: int  # rows of history kept before t = 0 (largest lag)


# -- recurrent operators in the neuron-major (N, B) layout of the fused loop ---------------------
# Everything in the loop is (N, B): a shift along neurons is then a slice of whole contiguous rows.


def _shift_add(out: torch.Tensor, z: torch.Tensor, k: float, shift: int) -> None:
    """``out[i] += k * z[i + shift]`` where ``i + shift`` is inside ``z`` (zero padding elsewhere)."""
    n = z.shape[0]
    if shift >= 0:
        out[: n - shift].add_(z[shift:], alpha=k)
    else:
        out[-shift:].add_(z[: n + shift], alpha=k)


def _conv_nb(z: torch.Tensor, kernel: list, channels: int) -> torch.Tensor:
    """Same-padded cross-correlation along neurons of ``z`` (N, B); ``kernel`` is a nested (C, C, K) list."""
    n = z.shape[0]
    width = n // channels
    k = len(kernel[0][0])
    pad = (k - 1) // 2
    if channels == 1:
        # centre tap first: it covers every neuron, so no zero fill is needed
        taps = kernel[0][0]
        out = torch.mul(z, taps[pad])
        for o in range(k):
            if o != pad:
                _shift_add(out, z, taps[o], o - pad)
        return out
    out = torch.zeros_like(z)
    zc = z.view(channels, width, -1)
    oc = out.view(channels, width, -1)
    for co in range(channels):
        for ci in range(channels):
            for o in range(k):
                _shift_add(oc[co], zc[ci], kernel[co][ci][o], o - pad)
    return out


def _flip_kernel(kernel: list) -> list:
    """Adjoint kernel of a same-padded odd cross-correlation: channels swapped, taps reversed."""
    c = len(kernel)
    return [[list(reversed(kernel[co][ci])) for co in range(c)] for ci in range(c)]


class _Operator:
    """The recurrent operator of one variant, in the (N, B) layout, with its adjoint."""

    def __init__(self, variant: str, weight: torch.Tensor):
        self.variant = variant
        self.weight = weight
        if variant in ("conv", "conv-nodelay"):
            self.kernel = weight.detach().tolist()  # python floats: one scalar op per tap
            self.kernel_t = _flip_kernel(self.kernel)
            self.channels = weight.shape[0]
        elif variant == "taps":
            # Lags reversed once (row 0 <-> lag D) so that the window is a plain slice of the
            # history, oldest first, and per-tap mixing matrices built once, not per step.
            taps = weight.detach().flip(0)  # (D, C, C, K)
            d, c, _, k = taps.shape
            self.taps_shape = (d, c, k)
            self.mix = [taps[:, :, :, o].permute(1, 0, 2).reshape(c, d * c) for o in range(k)]
            self.mix_t = [taps[:, :, :, o].permute(0, 2, 1).reshape(d * c, c) for o in range(k)]

    def apply(self, z: torch.Tensor) -> torch.Tensor:
        if self.variant == "dense":
            return self.weight @ z
        return _conv_nb(z, self.kernel, self.channels)

    def adjoint(self, g: torch.Tensor) -> torch.Tensor:
        if self.variant == "dense":
            return self.weight.t() @ g
        return _conv_nb(g, self.kernel_t, self.channels)

    def apply_taps(self, window: torch.Tensor) -> torch.Tensor:
        """:math:`\\sum_d \\kappa_d * S(t-d)` for ``window`` (D, N, B) holding S(t-D)..S(t-1), oldest first."""
        d, c, k = self.taps_shape
        _, n, b = window.shape
        width = n // c
        pad = (k - 1) // 2
        out = torch.zeros(n, b, dtype=window.dtype, device=window.device)
        wc = window.reshape(d * c, width * b)
        oc = out.view(c, width, b)
        for o in range(k):
            # contract lags and input channels at once: (C_out, D*C_in) @ (D*C_in, width*B)
            mixed = (self.mix[o] @ wc).view(c, width, b)
            for co in range(c):
                _shift_add(oc[co], mixed[co], 1.0, o - pad)
        return out

    def backward_taps(self, g: torch.Tensor, window: torch.Tensor, g_mix: torch.Tensor | None) -> torch.Tensor:
        """Gradient of :meth:`apply_taps` with respect to its window, (D, N, B) oldest lag first.

        Also accumulates the gradient of the mixing matrices into ``g_mix`` (K, C_out, D*C_in) when given.
        """
        d, c, k = self.taps_shape
        n, b = g.shape
        width = n // c
        pad = (k - 1) // 2
        out = torch.zeros(d * c, width * b, dtype=g.dtype, device=g.device)
        gc = g.view(c, width, b)
        wc = window.reshape(d * c, width * b)
        for o in range(k):
            shifted = torch.zeros_like(gc)  # the transpose of the shift applied in the forward pass
            for co in range(c):
                _shift_add(shifted[co], gc[co], 1.0, -(o - pad))
            shifted = shifted.view(c, width * b)
            out.addmm_(self.mix_t[o], shifted)  # (D*C_in, C_out) @ (C_out, width*B)
            if g_mix is not None:
                g_mix[o].addmm_(shifted, wc.t())  # (C_out, width*B) @ (width*B, D*C_in)
        return out.view(d, n, b)

    def kernel_grad_from_mix(self, g_mix: torch.Tensor) -> torch.Tensor:
        """(K, C_out, D*C_in) mixing-matrix gradient -> (D, C, C, K) kernel gradient, lags in the original order."""
        d, c, k = self.taps_shape
        return g_mix.view(k, c, d, c).permute(2, 1, 3, 0).flip(0).contiguous()


class _FusedLIF(torch.autograd.Function):
    # Layout: the loop runs neuron-major, (N, B) per step. The spike history is (L + T, N, B): one
    # delayed read is an index_select of M*N contiguous rows of B values (``gather`` along time is
    # ~15x slower) and a shift along neurons is a slice of whole rows.

    @staticmethod
    def forward(ctx, cur, weight, tap_weights, lags, mask, spec: LoopSpec):  # type: ignore[override]
        p = spec.lif
        t_len, b, n = cur.shape
        hist = spec.history
        cur_nb = cur.transpose(1, 2).contiguous()
        mask_nb = mask.t().contiguous() if mask is not None else None
        op = _Operator(spec.variant, weight) if spec.variant is not None else None
        spikes = cur.new_zeros(hist + t_len, n, b)
        rows = spikes.view(-1, b)
        h_all = torch.empty_like(cur_nb)
        z_all = torch.empty_like(cur_nb) if spec.variant not in (None, "taps") else None
        flat0 = _flat_rows(hist, lags, n)
        v = torch.zeros_like(cur_nb[0])
        for t in range(t_len):
            h = torch.add(cur_nb[t], v, alpha=p.beta, out=h_all[t])
            if spec.variant == "taps":
                i_rec = op.apply_taps(spikes[hist + t - weight.shape[0] : hist + t])
            elif spec.variant is not None:
                taps = rows.index_select(0, flat0 + t * n).view(-1, n, b)
                z = z_all[t]
                if tap_weights is None:  # one lag per neuron with weight 1 (integer delays)
                    z.copy_(taps[0])
                else:
                    torch.sum(taps.mul_(tap_weights.unsqueeze(-1)), 0, out=z)
                i_rec = op.apply(z)
            if spec.variant is not None:
                h.add_(i_rec if mask_nb is None else i_rec.mul_(mask_nb))
            fired = h >= p.threshold
            spikes[hist + t] = fired
            v = h.masked_fill(fired, 0.0) if p.reset == "zero" else h - spikes[hist + t] * p.threshold
        ctx.spec = spec
        ctx.save_for_backward(spikes, h_all, z_all, weight, tap_weights, lags, mask_nb)
        return spikes[hist:].transpose(1, 2).contiguous()

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        spikes, h_all, z_all, weight, tap_weights, lags, mask_nb = ctx.saved_tensors
        spec: LoopSpec = ctx.spec
        p = spec.lif
        hist = spec.history
        t_len, b, n = grad_out.shape
        op = _Operator(spec.variant, weight) if spec.variant is not None else None
        rows = spikes.view(-1, b)
        g_spikes = grad_out.new_zeros(hist + t_len, n, b)
        g_spikes[hist:] = grad_out.transpose(1, 2)
        g_rows = g_spikes.view(-1, b)
        g_cur = torch.empty_like(h_all)
        recurrent = spec.variant is not None
        # without a dropout mask the gradient of the recurrent current is g_h itself: share storage
        g_rec_all = (g_cur if mask_nb is None else torch.empty_like(h_all)) if recurrent else None
        g_tap = torch.zeros_like(tap_weights) if tap_weights is not None and tap_weights.requires_grad else None
        flat0 = _flat_rows(hist, lags, n)
        # surrogate derivative for all steps at once (one op instead of T)
        sg_all = surrogate_derivative(h_all - p.threshold, p.surrogate, p.surrogate_scale)
        # dv_t/dh_t and dv_t/ds_t for all steps at once, for the same reason
        if p.reset == "zero":
            dv_dh_all = 1.0 - spikes[hist:]
            dv_ds_all = -h_all
        g_mix = None
        if spec.variant == "taps" and weight.requires_grad:
            d, c, k = op.taps_shape
            g_mix = h_all.new_zeros(k, c, d * c)
        g_v = torch.zeros_like(h_all[0])
        for t in range(t_len - 1, -1, -1):
            g_s = g_spikes[hist + t]
            if p.reset == "zero":
                dv_dh = dv_dh_all[t]
                dv_ds = dv_ds_all[t]
            else:
                dv_dh = 1.0
                dv_ds = -p.threshold
            if p.detach_reset:
                g_h = torch.addcmul(g_v * dv_dh, g_s, sg_all[t], out=g_cur[t])
            else:
                g_h = torch.addcmul(g_v * dv_dh, g_s + g_v * dv_ds, sg_all[t], out=g_cur[t])
            g_v = g_h * p.beta
            if not recurrent:
                continue
            g_i = g_rec_all[t]
            if mask_nb is not None:
                torch.mul(g_h, mask_nb, out=g_i)
            if spec.variant == "taps":
                d = weight.shape[0]
                g_spikes[hist + t - d : hist + t] += op.backward_taps(g_i, spikes[hist + t - d : hist + t], g_mix)
                continue
            g_z = op.adjoint(g_i)  # (N, B)
            flat = flat0 + t * n
            if tap_weights is None:
                g_rows.index_add_(0, flat, g_z)
            else:
                g_rows.index_add_(0, flat, (tap_weights.unsqueeze(-1) * g_z.unsqueeze(0)).reshape(-1, b))
            if g_tap is not None:
                taps = rows.index_select(0, flat).view(-1, n, b)
                g_tap += (taps * g_z.unsqueeze(0)).sum(-1)
        g_weight = None
        if g_mix is not None:
            g_weight = op.kernel_grad_from_mix(g_mix)
        elif recurrent and weight.requires_grad:
            g_weight = _weight_grad(spec, weight, z_all, g_rec_all, t_len)
        return g_cur.transpose(1, 2), g_weight, g_tap, None, None, None


def _weight_grad(spec: LoopSpec, weight, z_all, g_rec_all, t_len: int) -> torch.Tensor:
    """conv/dense weight gradient summed over all steps, as a few batched products on the (T, N, B) layout."""
    if spec.variant == "dense":
        # dW = sum_t g_t z_t^T: one (N, T*B) @ (T*B, N) product
        n = z_all.shape[1]
        return g_rec_all.permute(1, 0, 2).reshape(n, -1) @ z_all.permute(1, 0, 2).reshape(n, -1).t()
    c, _, k = weight.shape
    _, n, b = z_all.shape
    width = n // c
    pad = (k - 1) // 2
    g = g_rec_all.view(t_len, c, width, b)
    z = z_all.view(t_len, c, width, b)
    grad = torch.empty_like(weight)
    for o in range(k):
        shift = o - pad  # out[i] reads z[i + shift]
        lo, hi = max(0, -shift), min(width, width - shift)
        gs, zs = g[:, :, lo:hi], z[:, :, lo + shift : hi + shift]
        for co in range(c):
            for ci in range(c):
                grad[co, ci, o] = (gs[:, co] * zs[:, ci]).sum()
    return grad


def _flat_rows(hist: int, lags: torch.Tensor | None, n: int) -> torch.Tensor | None:
    """Row of S_j(t - lag) in the flattened (L + T) * N history at t = 0; add ``t * n`` per step."""
    if lags is None:
        return None
    return ((hist - lags) * n + torch.arange(n, device=lags.device)).reshape(-1)


def fused_lif_layer(
    cur: torch.Tensor,
    spec: LoopSpec,
    weight: torch.Tensor | None = None,
    tap_weights: torch.Tensor | None = None,
    lags: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Spikes (T, B, N) of a LIF layer driven by ``cur`` (T, B, N), with the recurrence of ``spec``.

    For ``conv``/``dense``/``conv-nodelay`` the delayed read is given by ``lags`` (M, N) and
    ``tap_weights`` (M, N) (see :func:`pytrain.model.delays.triangle_taps`), or ``tap_weights=None`` for
    exactly one lag per neuron with weight 1; ``spec.history`` must be at least ``lags.max()``
    (or D for ``taps``).
    """
    return _FusedLIF.apply(cur, weight, tap_weights, lags, mask, spec)
