"""Training-step benchmark of the recurrent variants (a script that prints a table, not a test)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from pytrain.model.config import VARIANTS
from pytrain.model.network import DelRecSNN
from pytrain.model.presets import get_preset

from .repeats import Repeats


@dataclass
class StepTiming(Repeats):
    variant: str
    impl: str
    sigma: float
    times: list[float]  # seconds of each timed training step, in order

    @property
    def steps_per_s(self) -> float:
        return 1.0 / self.median


def time_training_step(
    preset: str, variant: str, impl: str, sigma: float, batch: int, steps: int, repeats: int, density: float = 0.05, seed: int = 0
) -> StepTiming:
    """Wall times of ``repeats`` steps of forward + backward + AdamW on random spike-count input (after one
    untimed warm-up step)."""
    torch.manual_seed(seed)
    cfg = get_preset(preset).model.replace(recurrent=variant)
    model = DelRecSNN(cfg)
    for layer in model.layers:
        layer.impl = impl
    model.train()
    model.set_sigma(sigma)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = (torch.rand(steps, batch, cfg.n_inputs) < density).float()
    y = torch.randint(0, cfg.n_classes, (batch,))
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        out = model(x)
        loss = model.loss(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:  # the first step warms up allocators and caches
            times.append(time.perf_counter() - t0)
    return StepTiming(variant, impl, sigma, times)


def run_training_benchmark(
    preset: str = "shd", variants=VARIANTS, impls=("fused",), sigmas=(0.06,), batch: int = 32, steps: int = 100,
    repeats: int = 5,
) -> list[StepTiming]:
    rows = []
    for sigma in sigmas:
        for impl in impls:
            for variant in variants:
                rows.append(time_training_step(preset, variant, impl, sigma, batch, steps, repeats))
    return rows
