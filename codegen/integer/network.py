r"""The integer network: what a quantized model *is*, independent of PyTorch and of C.

Scales follow :mod:`codegen.integer.fixedpoint`: a tensor with ``frac`` fraction bits holds
:math:`q \approx r\,2^{\mathrm{frac}}`. Per hidden layer ``l`` with membrane fraction bits :math:`f_v`
(the finest scale of the layer's weight tensors, so every rescale below is an exact left shift), one
time step computes, for every neuron ``i``::

    acc_ff[i]  = sum_j W[i, j] * x[j]                    int32; x = input counts (0..255) or spikes (0/1)
    z[j]       = S_j(t - 1 - d_j)                        delayed own spikes from the ring buffer (0/1)
    acc_rec[i] = (recurrent operator applied to z)[i]    int32; conv / dense / taps (see :func:`codegen.integer.refmodel.conv_recurrence`)
    I[i]       = (acc_ff[i] << ff_shift) + (acc_rec[i] << rec_shift) + bias[i]          int32
    h[i]       = sat_state( leak(v[i], leak_mul, leak_shift) + I[i] )                  state_bits (16)
    s[i]       = 1 if h[i] >= threshold else 0
    v[i]       = 0 (reset "zero") or h[i] - threshold (reset "subtract") if s[i] else h[i]

``ff_shift = f_v - f_W`` and ``rec_shift = f_v - f_R`` are >= 0; ``bias`` and ``threshold`` are stored at
scale :math:`2^{f_v}`. Every partial sum of ``I`` and ``leak(v) + I`` must fit int32 (the static overflow
analysis in :mod:`codegen.integer.overflow` proves it from the weights; the reference model raises if not);
the membrane is then saturated to ``state_bits``. The ``taps`` variant reads lags 1..D, each with its own kernel, instead of ``z``.
Layer ``l`` at step ``t`` consumes the spikes of layer ``l-1`` at the same step ``t``.

The readout integrates without spiking, on a 32-bit state::

    acc[k]   = sum_j W_out[k, j] * s_last[j]                                         int32
    in[k]    = (acc[k] << out_shift) + bias_out[k]                                   int32
    u[k]     = sat32( leak(u[k]) + in[k] )        leak product and the sum formed in 64 bits
    score[k] = sat64( score[k] + u[k] )                                              int64, over the sample

and the predicted class is the first index of the largest ``score``. Every state starts at zero.

A network may carry the integer audio front end it was trained with (:mod:`codegen.integer.frontend`, spec
version 2 on): int16 PCM in, the counts above out, one bin per hop. Its channels are the network's inputs and
its hop equals ``bin_ms``; a network without one (trained on spike data such as SHD) takes counts only.

This module holds the data and the spec's constants only; the invariants are checked by
:mod:`codegen.integer.validate`, the arithmetic lives in :mod:`codegen.integer.refmodel`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .frontend import IntFrontEnd

SPEC_VERSION = 2  # bump whenever the arithmetic above changes (2: the integer audio front end)
VARIANTS = ("conv", "dense", "conv-nodelay", "taps")  # the recurrent variants, everywhere in this order
RESETS = ("zero", "subtract")  # the membrane resets after a spike
MAX_COUNT = 255  # input spike counts per channel and step are 0..MAX_COUNT (uint8)
SCORE_BITS = 64  # the class score, summed over a sample


@dataclass(frozen=True, eq=False)
class IntRecurrence:
    """The delayed recurrent connection of one layer.

    ``weight``: (C, C, K) for conv / conv-nodelay, (N, N) for dense, (D, C, C, K) for taps.
    ``delays``: (N,) int >= 0 for conv / dense, all zero for conv-nodelay, empty for taps.
    """

    variant: str
    weight: np.ndarray
    frac: int
    delays: np.ndarray
    weight_bits: int = 8

    @property
    def max_delay(self) -> int:
        return int(self.delays.max()) if self.delays.size else 0


@dataclass(frozen=True, eq=False)
class IntLayer:
    """One LIF layer: feed-forward weights (BatchNorm folded), optional recurrence, neuron constants."""

    weight: np.ndarray  # (N, N_in) integer
    weight_frac: int
    bias: np.ndarray  # (N,) at the membrane scale
    v_frac: int
    threshold: int
    leak_mul: int
    leak_shift: int
    reset: str
    recurrence: IntRecurrence | None = None
    weight_bits: int = 8
    state_bits: int = 16

    @property
    def n(self) -> int:
        return int(self.weight.shape[0])

    @property
    def n_in(self) -> int:
        return int(self.weight.shape[1])

    @property
    def ff_shift(self) -> int:
        return self.v_frac - self.weight_frac

    @property
    def rec_shift(self) -> int:
        assert self.recurrence is not None
        return self.v_frac - self.recurrence.frac


@dataclass(frozen=True, eq=False)
class IntReadout:
    weight: np.ndarray  # (K, N_last) integer
    weight_frac: int
    bias: np.ndarray  # (K,) at the readout scale
    v_frac: int
    leak_mul: int
    leak_shift: int
    weight_bits: int = 8

    @property
    def out_shift(self) -> int:
        return self.v_frac - self.weight_frac


@dataclass(frozen=True, eq=False)
class IntNetwork:
    n_inputs: int
    layers: tuple[IntLayer, ...]
    readout: IntReadout
    bin_ms: float
    classes: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)  # preset, provenance (source checkpoint hash), ...
    spec_version: int = SPEC_VERSION
    frontend: IntFrontEnd | None = None  # the audio front end the network hears through, if any

    @property
    def n_classes(self) -> int:
        return int(self.readout.weight.shape[0])
