"""Spike-frame augmentation: each transform does what it says, stays whole counts in 0..255, reproducibly."""

from __future__ import annotations

import pytest
import torch

from pytrain.data.augment import AugmentSpec, augment, shift_channels


def frames(b=6, t=40, c=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 4, (b, t, c), generator=g, dtype=torch.uint8)


def run(x, seed=1, **spec):
    return augment(x, AugmentSpec(**spec), torch.Generator().manual_seed(seed))


def whole_counts(y):
    assert y.dtype == torch.float32 and torch.equal(y, y.round()) and y.min() >= 0 and y.max() <= 255


def test_off_is_identity_and_same_seed_same_batch():
    x = frames()
    assert not AugmentSpec().active and torch.equal(run(x), x.float())
    full = dict(speed=0.2, warp=0.1, channel_shift=2, shift=5, thin=0.3, noise=0.2, mask=3)
    assert AugmentSpec(**full).active
    a, b, other = run(x, 5, **full), run(x, 5, **full), run(x, 6, **full)
    whole_counts(a)
    assert torch.equal(a, b) and not torch.equal(a, other)


def test_time_shift_and_speed_move_along_time():
    x = torch.zeros(1, 20, 3)
    x[0, 5] = 1
    y = run(x, shift=4)
    moved = int(y[0].sum(1).nonzero()[0])
    assert abs(moved - 5) <= 4 and y.sum() == 3
    z = run(torch.ones(8, 50, 2), speed=0.5)  # stretched or compressed: a slower sample ends in zero fill
    whole_counts(z)
    assert set(z.sum((1, 2)).tolist()) != {100.0}


def test_warp_and_shift_move_along_channels():
    x = torch.zeros(4, 2, 10)
    x[:, :, 6] = 1
    y = run(x, warp=0.3)
    for row in y[:, 0]:  # nearest-neighbour warp: the peak moves by at most 30 %, or drops out when compressed
        assert set(row.nonzero().flatten().tolist()) <= {4, 5, 6, 7, 8} and row.sum() <= 2
    s = shift_channels(x, 2, torch.Generator().manual_seed(0))
    assert all(abs(int(p) - 6) <= 2 for p in s[:, 0].argmax(1))


def test_thin_noise_and_mask():
    x = torch.full((4, 30, 8), 10, dtype=torch.uint8)
    thinned = run(x, thin=0.5)
    assert thinned.sum() < x.sum() and torch.all(thinned <= 10)
    noisy = run(torch.zeros(4, 30, 8), noise=1.0)
    whole_counts(noisy)
    assert noisy.sum() > 0
    masked = run(x, mask=3)
    silent = (masked.sum(1) == 0).sum(1)  # silenced channels per sample
    assert torch.all(silent <= 3) and silent.sum() > 0
    assert torch.equal(run(torch.full((1, 2, 2), 250), noise=50.0).clamp(max=255), run(torch.full((1, 2, 2), 250), noise=50.0))


def test_bad_strengths():
    for bad in (dict(speed=-1), dict(warp=1.0), dict(thin=1.5), dict(mask=-2)):
        with pytest.raises(ValueError):
            AugmentSpec(**bad)
