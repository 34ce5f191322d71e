"""Named model presets with their training recipes.

* ``shd``: the published SHD network: 140 -> Linear+BN -> LIF 256 -> Linear+BN -> recurrent LIF 256
  -> Linear 20 -> leaky readout, 10 ms bins, tau 1.05, hard reset, ATan(5), loss on the time-summed softmax.
* ``ssc``: three recurrent layers of 256, 35 classes, 250 bins of 5.6 ms, no BatchNorm, tau 2, reset by
  subtraction, triangle surrogate, linear readout, loss on time-summed logits.
* ``edge``: sized for a Cortex-M4 wearable: 32 front-end channels -> 64 -> recurrent 64 -> 20, leak 1/2
  (a shift in fixed point), loss on the time-summed readout per active input step (integer-friendly argmax,
  not diluted by padded silence), a budget of optimizer steps rather than epochs, augmentation that changes
  the speaker (pytrain.data.augment).
* ``edge-m``, ``edge-l``: the edge recipe with 128 + recurrent 128 and 192 + recurrent 192 neurons, the
  capacities between ``edge`` and ``shd`` (README: RAM, flash and instructions per step of each).
* ``tiny``: a few neurons, for tests.

A preset's input width and class count follow the dataset when they differ, so every preset trains on
every dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

from codegen.common.errors import UserError

from .config import ModelConfig, TrainConfig


@dataclass(frozen=True)
class Preset:
    name: str
    model: ModelConfig
    train: TrainConfig
    description: str


EDGE_MODEL = ModelConfig(
    n_inputs=32, n_classes=20, hidden=(64, 64), recurrent_layers=(False, True),
    n_taps=16, tau=2.0, readout="leaky", readout_tau=2.0, loss="active_mean",
    dropout=0.1, rec_dropout=0.1, delay_init=("uniform", 0.0, 15.0), delay_max=30.0, bin_ms=10.0,
)
EDGE_TRAIN = TrainConfig(
    epochs=40, steps=2200, batch_size=64, lr=2e-3, lr_delay=5e-2, channel_shift=2,
    aug_speed=0.1, aug_warp=0.06, aug_shift=10, aug_thin=0.3, aug_noise=0.05, aug_mask=3,
)

PRESETS: dict[str, Preset] = {
    "shd": Preset(
        "shd",
        ModelConfig(
            n_inputs=140, n_classes=20, hidden=(256, 256), recurrent_layers=(False, True),
            n_taps=32, tau=1.05, threshold=1.0, reset="zero", surrogate="atan", surrogate_scale=5.0,
            readout="leaky", readout_tau=1.05, loss="sum_softmax", dropout=0.4, rec_dropout=0.2,
            delay_init=("uniform", 10.0, 30.0), bin_ms=10.0,
        ),
        TrainConfig(epochs=150, batch_size=32, lr=5e-3, lr_delay=5e-2),
        "published SHD network, one conv-delay recurrent layer of 256",
    ),
    "ssc": Preset(
        "ssc",
        ModelConfig(
            n_inputs=140, n_classes=35, hidden=(256, 256, 256), recurrent_layers=(True, True, True),
            n_taps=32, batchnorm=False, tau=2.0, reset="subtract", detach_reset=False, surrogate="triangle",
            surrogate_scale=1.0, readout="linear", loss="mean_logits", dropout=0.1, rec_dropout=0.3,
            delay_init=("halfnormal", 12.0), bin_ms=5.6,
        ),
        TrainConfig(epochs=100, batch_size=128, lr=1e-3, lr_delay=5e-2),
        "published SSC network, three conv-delay recurrent layers of 256",
    ),
    "edge": Preset("edge", EDGE_MODEL, EDGE_TRAIN, "Cortex-M4 wearable: 32 channels, 64 + recurrent 64 neurons"),
    "edge-m": Preset("edge-m", EDGE_MODEL.replace(hidden=(128, 128)), EDGE_TRAIN,
                     "the edge recipe with 128 + recurrent 128 neurons"),
    "edge-l": Preset("edge-l", EDGE_MODEL.replace(hidden=(192, 192)), EDGE_TRAIN,
                     "the edge recipe with 192 + recurrent 192 neurons"),
    "tiny": Preset(
        "tiny",
        ModelConfig(
            n_inputs=8, n_classes=4, hidden=(16, 16), recurrent_layers=(False, True),
            n_taps=4, tau=2.0, dropout=0.0, rec_dropout=0.0, delay_init=("uniform", 0.0, 4.0),
            delay_max=8.0, bin_ms=10.0,
        ),
        TrainConfig(epochs=2, batch_size=8),
        "a few neurons, for tests",
    ),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise UserError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None
