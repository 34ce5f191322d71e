"""Model and training configuration: plain dataclasses of primitives.

They are stored inside checkpoints as dicts, so a checkpoint loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

from codegen.integer.network import RESETS, VARIANTS  # one home: the integer contract

READOUTS = ("leaky", "linear")
# mean_logits: CE of the readout averaged over all steps; active_mean: CE of the readout summed over all steps
# and divided by the sample's active steps (see network.active_steps), so a word padded with long silence
# is not scored with smaller logits. Both predict the argmax of the time-summed readout (the integer rule).
LOSSES = ("sum_softmax", "mean_logits", "active_mean")
SURROGATES = ("atan", "triangle")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture: ``n_inputs -> [Linear (+BN) -> LIF] x layers -> Linear -> readout``.

    ``recurrent_layers[i]`` says whether hidden layer ``i`` has the delayed recurrent connection.
    """

    n_inputs: int
    n_classes: int
    hidden: tuple[int, ...]
    recurrent_layers: tuple[bool, ...]
    recurrent: str = "conv"
    kernel_size: int = 3
    channels: int = 1
    n_taps: int = 16  # lags of the ``taps`` variant
    batchnorm: bool = True
    bias: bool = True
    tau: float = 2.0  # LIF time constant in steps; beta = 1 - 1/tau
    threshold: float = 1.0
    reset: str = "zero"
    detach_reset: bool = True
    surrogate: str = "atan"
    surrogate_scale: float = 5.0
    readout: str = "leaky"
    readout_tau: float = 2.0
    loss: str = "mean_logits"
    dropout: float = 0.1
    rec_dropout: float = 0.1
    delay_init: tuple = ("uniform", 0.0, 10.0)  # ("uniform", lo, hi) or ("halfnormal", scale)
    delay_max: float | None = None  # optional upper clamp (sizes the deployed buffer)
    bin_ms: float = 10.0

    def __post_init__(self) -> None:
        if len(self.hidden) != len(self.recurrent_layers):
            raise ValueError("hidden and recurrent_layers must have the same length")
        if self.recurrent not in VARIANTS:
            raise ValueError(f"unknown recurrent variant {self.recurrent!r}; choose from {', '.join(VARIANTS)}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {self.kernel_size}")
        if self.channels < 1 or any(h % self.channels for h, r in zip(self.hidden, self.recurrent_layers) if r):
            raise ValueError(f"every recurrent layer size must be divisible by channels={self.channels}")
        if self.readout not in READOUTS or self.loss not in LOSSES:
            raise ValueError("unknown readout or loss")
        if self.reset not in RESETS or self.surrogate not in SURROGATES:
            raise ValueError("unknown reset or surrogate")

    @property
    def learns_delays(self) -> bool:
        return self.recurrent in ("conv", "dense")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        d["recurrent_layers"] = list(self.recurrent_layers)
        d["delay_init"] = list(self.delay_init)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        for key in ("hidden", "recurrent_layers", "delay_init"):
            if key in kw:
                kw[key] = tuple(kw[key])
        return cls(**kw)

    def replace(self, **changes) -> "ModelConfig":
        return replace(self, **changes)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation recipe (model.md section 5), scaled per preset."""

    epochs: int = 20  # used when ``steps`` is None
    # optimizer steps of a run: the epoch count follows the dataset, ceil(steps / batches per epoch)
    steps: int | None = None
    batch_size: int = 64
    lr: float = 5e-3  # weights: AdamW + OneCycle over the optimizer steps
    weight_decay: float = 1e-5  # not applied to BatchNorm parameters or delays
    lr_delay: float = 5e-2  # delays: own Adam group, cosine annealing, no weight decay
    sigma_init: float = 10.0
    sigma_decay: float = 0.95
    round_delays_each_epoch: bool = True  # as the published recipe: delays re-enter training as integers
    grad_clip: float | None = None  # clip gradient norm
    rate_reg: float = 0.0  # weight of the firing-rate penalty sum_l (rate_l - rate_target)^2
    rate_target: float = 0.05
    val_fraction: float = 0.1
    # augmentation: shift every training sample by a random whole number of input channels in
    # [-n, n] (zero fill), which imitates other voices' formants and pitch on a tonotopic input
    channel_shift: int = 0
    # on-the-fly augmentation that changes the speaker (see pytrain.training.augment); 0 = off
    aug_speed: float = 0.0
    aug_warp: float = 0.0
    aug_shift: int = 0
    aug_thin: float = 0.0
    aug_noise: float = 0.0
    aug_mask: int = 0
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse a recipe no optimiser can run: ``ValueError`` naming the field (and its command-line option)."""
        options = {"epochs", "steps", "batch_size", "lr", "lr_delay", "grad_clip", "rate_reg", "rate_target",
                   "channel_shift"}

        def label(name: str) -> str:
            return f"{name} (--{name.replace('_', '-')})" if name in options else name

        def number(name: str, low: float, *, strict: bool = False, high: float | None = None,
                   optional: bool = False) -> None:
            value = getattr(self, name)
            if value is None and optional:
                return
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            ok = ok and (value > low if strict else value >= low) and (high is None or value <= high)
            if not ok:
                bound = f"{'above' if strict else 'at least'} {low:g}" + ("" if high is None else f" and at most {high:g}")
                raise ValueError(f"{label(name)} must be a finite number {bound}, got {value!r}")

        def whole(name: str, low: int, optional: bool = False) -> None:
            value = getattr(self, name)
            if value is None and optional:
                return
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{label(name)} must be a whole number of at least {low}, got {value!r}")

        whole("epochs", 1)
        whole("steps", 1, optional=True)
        whole("batch_size", 1)
        for name in ("channel_shift", "aug_shift", "aug_mask"):
            whole(name, 0)
        number("lr", 0.0, strict=True)
        number("lr_delay", 0.0)
        number("weight_decay", 0.0)
        number("grad_clip", 0.0, strict=True, optional=True)
        number("rate_reg", 0.0)
        number("rate_target", 0.0, high=1.0)
        number("sigma_init", 0.0)
        number("sigma_decay", 0.0, strict=True, high=1.0)
        number("val_fraction", 0.0, strict=True, high=0.9)
        for name in ("aug_speed", "aug_noise"):
            number(name, 0.0)
        number("aug_warp", 0.0, high=0.99)
        number("aug_thin", 0.0, high=1.0)

    def augment_spec(self):
        from pytrain.data.augment import AugmentSpec

        return AugmentSpec(speed=self.aug_speed, warp=self.aug_warp, channel_shift=self.channel_shift,
                           shift=self.aug_shift, thin=self.aug_thin, noise=self.aug_noise, mask=self.aug_mask)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def replace(self, **changes) -> "TrainConfig":
        return replace(self, **changes)
