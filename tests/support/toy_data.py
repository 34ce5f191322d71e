"""A tiny, learnable spike dataset in the delrec-edge folder layout (class = which channels fire when)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from codegen.common.atomic import staged_directory
from pytrain.data.spikefile import DatasetMeta, SpikeSplit, spike_time_for_step, write_dataset


def make_toy_dataset(out: Path, n_classes: int = 4, n_channels: int = 8, per_class: int = 24, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    splits = {}
    for split_id, split in enumerate(("train", "test")):
        times, units, labels, speakers = [], [], [], []
        for c in range(n_classes):
            for _ in range(per_class if split == "train" else per_class // 2):
                steps = list(rng.integers(0, 400, 30)) + list(c * 100 + rng.integers(0, 100, 40))
                chans = list(rng.integers(0, n_channels, 30)) + list((2 * c + rng.integers(0, 2, 40)) % n_channels)
                times.append(spike_time_for_step(np.array(steps), 1e-3))
                units.append(np.array(chans))
                labels.append(c)
                speakers.append(split_id)
        splits[split] = SpikeSplit(times, units, np.array(labels), np.array(speakers))
    meta = DatasetMeta(name="toy", n_channels=n_channels, classes=[f"class{i}" for i in range(n_classes)], duration_s=0.4)
    with staged_directory(Path(out), force=True) as tmp:
        write_dataset(tmp, meta, splits)
    return Path(out)
