"""On-the-fly augmentation of spike-count frames that changes the speaker, not only the recording.

Every transform works on a batch of frames ``x`` (B, T, C): spike counts per time bin (T) and tonotopic
front-end channel (C, low to high frequency), and draws one set of parameters per sample from a
``torch.Generator``, so a run is reproducible from its seed. The result stays whole counts in 0..255,
like the integer model's input:

* ``speed``: speaking rate, a time stretch by ``r`` in ``[1/(1+speed), 1+speed]`` (output bin ``t`` reads
  input bin ``floor(t / r)``);
* ``warp``: vocal-tract length, a warp of the frequency axis by ``a`` in ``[1-warp, 1+warp]`` (output
  channel ``k`` reads input channel ``round(k / a)``, as VTLP scales the spectrum; on the ERB-spaced
  channels it moves formants and pitch together);
* ``channel_shift``: a shift of the tonotopic axis by up to this many channels (pitch and formants);
* ``shift``: a time shift by up to this many bins (the word elsewhere in the window), zero fill;
* ``thin``: level, each spike kept with a probability in ``[1-thin, 1]`` (a quieter recording spikes less);
* ``noise``: background noise, Poisson spikes added at a mean count per bin and channel in ``[0, noise]``;
* ``mask``: a band of up to this many adjacent channels silenced (a missing band, as SpecAugment).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from codegen.integer.network import MAX_COUNT


@dataclass(frozen=True)
class AugmentSpec:
    speed: float = 0.0
    warp: float = 0.0
    channel_shift: int = 0
    shift: int = 0
    thin: float = 0.0
    noise: float = 0.0
    mask: int = 0

    def __post_init__(self) -> None:
        if min(self.speed, self.warp, self.thin, self.noise) < 0 or min(self.channel_shift, self.shift, self.mask) < 0:
            raise ValueError("augmentation strengths must be >= 0")
        if self.warp >= 1 or self.thin > 1:
            raise ValueError("warp must be below 1 and thin at most 1")

    @property
    def active(self) -> bool:
        return any((self.speed, self.warp, self.channel_shift, self.shift, self.thin, self.noise, self.mask))


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)


def _gather_along(x: torch.Tensor, src: torch.Tensor, dim: int) -> torch.Tensor:
    """``x`` (B, T, C) read at per-sample source indices ``src`` (B, L) along ``dim``; out of range reads 0."""
    size = x.shape[dim]
    valid = (src >= 0) & (src < size)
    index = src.clamp(0, size - 1)
    if dim == 1:
        out = torch.gather(x, 1, index.unsqueeze(2).expand(-1, -1, x.shape[2]))
        return out * valid.unsqueeze(2).to(x.dtype)
    out = torch.gather(x, 2, index.unsqueeze(1).expand(-1, x.shape[1], -1))
    return out * valid.unsqueeze(1).to(x.dtype)


def shift_channels(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each sample of ``x`` (B, T, C) along channels by a random integer in [-max_shift, max_shift]."""
    if max_shift <= 0:
        return x
    b, _, c = x.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (b,), generator=generator)
    src = torch.arange(c).unsqueeze(0) - shifts.unsqueeze(1)  # (B, C): output channel k reads k - shift
    return _gather_along(x, src, 2)


def augment(x: torch.Tensor, spec: AugmentSpec, generator: torch.Generator) -> torch.Tensor:
    """Augmented copy of ``x`` (B, T, C) counts (any dtype); float32 whole counts in 0..255.

    The transforms run in the order of the module docstring, each drawing its parameters for the whole
    batch before the next one, so the same generator state always gives the same batch.
    """
    b, t, c = x.shape
    out = x.to(torch.float32)
    if spec.speed > 0:
        log_r = _uniform(b, -math.log1p(spec.speed), math.log1p(spec.speed), generator)
        src = torch.floor(torch.arange(t, dtype=torch.float64).unsqueeze(0) / torch.exp(log_r).unsqueeze(1))
        out = _gather_along(out, src.to(torch.int64), 1)
    if spec.warp > 0:
        a = _uniform(b, 1 - spec.warp, 1 + spec.warp, generator)
        src = torch.floor(torch.arange(c, dtype=torch.float64).unsqueeze(0) / a.unsqueeze(1) + 0.5)
        out = _gather_along(out, src.to(torch.int64), 2)
    out = shift_channels(out, spec.channel_shift, generator)
    if spec.shift > 0:
        shifts = torch.randint(-spec.shift, spec.shift + 1, (b,), generator=generator)
        out = _gather_along(out, torch.arange(t).unsqueeze(0) - shifts.unsqueeze(1), 1)
    if spec.thin > 0:
        keep = _uniform(b, 1 - spec.thin, 1.0, generator).to(torch.float32)
        out = torch.binomial(out, keep.view(b, 1, 1).expand_as(out).contiguous(), generator=generator)
    if spec.noise > 0:
        rate = _uniform(b, 0.0, spec.noise, generator).to(torch.float32)
        out = out + torch.poisson(rate.view(b, 1, 1).expand_as(out).contiguous(), generator=generator)
    if spec.mask > 0:
        width = torch.randint(0, spec.mask + 1, (b,), generator=generator)
        start = torch.floor(torch.rand(b, generator=generator, dtype=torch.float64) * (c - width + 1)).to(torch.int64)
        k = torch.arange(c).unsqueeze(0)
        band = (k >= start.unsqueeze(1)) & (k < (start + width).unsqueeze(1))
        out = out * (~band).unsqueeze(1).to(out.dtype)
    return out.clamp_(0, MAX_COUNT)
