"""Audio clips -> the spike events a dataset stores, through the dataset's front end.

The integer front end (:mod:`codegen.integer.frontend`, the one a device runs) is the default: each clip
becomes int16 PCM (:func:`codegen.integer.frontend_ref.to_pcm16`, rounded half up and saturated), then counts
per bin, then one event per count at the bin's centre. The float front end (:mod:`pytrain.data.frontend`) is
kept for comparison only: 1 ms spike events from a whole-clip RMS-normalised biquad bank, which no device
reproduces.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from codegen.common.errors import UserError
from codegen.integer.frontend import FrontEndConfig, IntFrontEnd, design

from . import frontend as float_frontend

KINDS = ("integer", "float")  # --front-end choices; the first is the default

Events = tuple[np.ndarray, np.ndarray]  # (int32 step indices, uint16 channel ids), sorted by step


@dataclass(frozen=True)
class Encoder:
    """One front end, ready to encode clips (picklable, for worker processes)."""

    kind: str
    config: object  # FrontEndConfig (integer) or pytrain.data.frontend.FrontEndConfig (float)
    frontend: IntFrontEnd | None = None  # the designed integer front end

    @property
    def sample_rate(self) -> int:
        return int(self.config.sample_rate)

    @property
    def n_channels(self) -> int:
        return int(self.config.n_channels)

    @property
    def step_s(self) -> float:
        """Seconds per step of the event indices (the integer front end's hop, the float one's 1 ms)."""
        return self.frontend.hop / self.frontend.sample_rate if self.frontend is not None else self.config.step_s

    def encode(self, clips: Sequence[np.ndarray]) -> tuple[list[Events], list[np.ndarray | None]]:
        """Events of every clip (float audio in [-1, 1] at ``sample_rate``) and, for the integer front end, the
        int16 PCM it heard (None for the float one)."""
        if self.frontend is None:
            events = float_frontend.encode_batch(list(clips), self.config)
            return [(s.astype(np.int32), c.astype(np.uint16)) for s, c in events], [None] * len(events)
        from codegen.integer.frontend_ref import encode_clips, to_pcm16

        pcm = [to_pcm16(c) for c in clips]
        return [counts_to_events(c) for c in encode_clips(self.frontend, pcm)], pcm

    def summary(self) -> str:
        """One line naming the front end's kind, rate, channels and band, as ``data wav`` prints it."""
        if self.frontend is None:
            return f"float {float_frontend.describe(self.config)}"
        c = self.config
        return (f"integer front end: {c.sample_rate} Hz, {c.n_channels} mel channels, {c.f_low:g}..{c.f_high:g} Hz, "
                f"{self.frontend.frame}-point FFT every {c.hop_ms:g} ms")

    def describe(self, file: str | None = None) -> dict:
        """The ``front_end`` entry of ``dataset.json``."""
        out = {"kind": self.kind, "config": dataclasses.asdict(self.config)}
        if self.frontend is not None:
            from codegen.integer.modelfile import frontend_digest
            from codegen.integer.network import SPEC_VERSION

            out.update(file=file, sha256=frontend_digest(self.frontend), spec_version=SPEC_VERSION,
                       hop_ms=self.frontend.hop_ms)
        return out


def counts_to_events(counts: np.ndarray) -> Events:
    """(T, C) counts -> one event per count: (step indices, channel ids), sorted by step then channel."""
    steps, channels = np.nonzero(counts)
    reps = counts[steps, channels].astype(np.int64)
    return np.repeat(steps, reps).astype(np.int32), np.repeat(channels, reps).astype(np.uint16)


def parse_settings(items: Sequence[str] | None, kind: str = KINDS[0]) -> dict:
    """``KEY=VALUE`` strings (``--front-end-set``) as integer front-end settings, typed as the fields of
    :class:`codegen.integer.frontend.FrontEndConfig`; ``UserError`` for an unknown key, a bad value or a
    setting given to the float front end."""
    if not items:
        return {}
    if kind != "integer":
        raise UserError("--front-end-set applies to the integer front end only")
    types = {f.name: f.type for f in dataclasses.fields(FrontEndConfig)}
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in types:
            raise UserError(f"--front-end-set {item!r}: expected KEY=VALUE with KEY one of {', '.join(types)}")
        try:
            out[key] = int(value) if types[key] in (int, "int") else float(value)
        except ValueError:
            raise UserError(f"--front-end-set {item!r}: {value!r} is not a {types[key]}") from None
    try:
        FrontEndConfig().replace(**out)
    except ValueError as exc:
        raise UserError(f"--front-end-set: {exc}") from None
    return out


def encoder_for_rate(native_rate: int, kind: str = KINDS[0], settings: dict | None = None) -> Encoder:
    """The front end of ``kind`` for recordings made at ``native_rate`` Hz.

    Both run at 16 kHz when the recordings reach it, else at 8 kHz (``float_frontend.FRONT_END_RATES``;
    recordings between are resampled down). The float one follows
    :func:`pytrain.data.frontend.front_end_for_rate`; the integer one keeps its defaults at 16 kHz and
    otherwise ends its top channel at ``RECORDED_BAND_FRACTION`` of the Nyquist frequency of the recording
    and of the front end, rounded down to 10 Hz (3,800 Hz at 8 kHz). ``settings`` (:func:`parse_settings`)
    are applied last.
    """
    settings = settings or {}
    if kind == "float":
        if settings:
            raise UserError("--front-end-set applies to the integer front end only")
        try:
            return make_encoder(kind, float_frontend.front_end_for_rate(native_rate))
        except ValueError as exc:
            raise UserError(str(exc)) from None
    if native_rate <= 0:
        raise UserError(f"sample rate must be positive, got {native_rate}")
    rates = float_frontend.FRONT_END_RATES
    rate = max((r for r in rates if r <= native_rate), default=rates[0])
    base = FrontEndConfig()
    if not (rate == base.sample_rate and native_rate >= rate):
        nyquist = min(native_rate, rate) / 2
        f_high = min(base.f_high, math.floor(float_frontend.RECORDED_BAND_FRACTION * nyquist / 10) * 10)
        base = base.replace(sample_rate=rate, f_high=float(f_high))
    try:
        config = base.replace(**settings)
    except ValueError as exc:
        raise UserError(f"--front-end-set: {exc}") from None
    return make_encoder(kind, config)


def make_encoder(kind: str = KINDS[0], config=None) -> Encoder:
    """An encoder of ``kind`` ("integer" or "float") with ``config`` (default: that front end's defaults)."""
    if kind == "integer":
        cfg = config if config is not None else FrontEndConfig()
        try:
            return Encoder(kind, cfg, design(cfg))
        except ValueError as exc:
            raise UserError(str(exc)) from None
    if kind == "float":
        return Encoder(kind, config if config is not None else float_frontend.FrontEndConfig())
    raise UserError(f"unknown front end {kind!r}; choose from {', '.join(KINDS)}")
