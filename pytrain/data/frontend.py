"""The float audio front end: 16 kHz audio -> spike trains on a 1 ms grid, one spike train per frequency channel.

Kept for comparison only (``data synth|wav --front-end float``, ``bench-frontend``, ``bench-probe``): its
whole-clip RMS normalisation and float filters run nowhere but here. Datasets are built with the integer front
end (:mod:`codegen.integer.frontend`), which the generated C reproduces bit for bit.

The chain is causal and works sample by sample, so a fixed-point port (CMSIS-DSP biquads, a shift-based
envelope, an integer LIF) can reproduce it step for step. Per channel ``c``::

    x[n]  --band-pass (2 biquads)-->  y_c[n]
          --half-wave rectify-->      r_c[n] = max(y_c[n], 0)
          --1-pole low-pass-->        e_c[n] = a * e_c[n-1] + (1 - a) * r_c[n]
          --decimate (1 per step)-->  e_c[k] = e_c[(k + 1) * H - 1]        H = samples per step
          --compress-->               f_c[k] = log1p(G * e_c[k])
          --LIF + subtractive reset-> s_c[k] in {0, 1}

The only whole-clip operation is the optional RMS normalisation in :func:`encode`, a documented
pre-step (as in the SHD conversion); :func:`process_chunk` never looks ahead and carries all state
in :class:`FrontEndState`, so feeding a clip in chunks gives exactly the spikes of one call.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np


@dataclass(frozen=True)
class FrontEndConfig:
    """Parameters of the front end (hashable: filter designs are cached per config)."""

    sample_rate: int = 16000
    n_channels: int = 32
    f_low: float = 100.0  # centre frequency of the lowest channel, Hz
    f_high: float = 7000.0  # centre frequency of the highest channel, Hz
    q: float = 4.0  # centre frequency / bandwidth of every band-pass
    env_tau_ms: float = 5.0  # time constant of the envelope low-pass
    step_ms: float = 1.0  # output time step (one spike at most per channel and step)
    lif_tau_ms: float = 20.0  # membrane time constant of the spike encoder
    # threshold and compress_gain set the spike density: with 2.0 and 10 background noise stays almost
    # silent (about 2.5 % of steps spike on the synthetic digits, against 20 % with 0.5 and 50), which
    # made the digits of held-out voices far more separable (logistic regression 0.99 against 0.78)
    threshold: float = 2.0  # LIF firing threshold (subtracted on a spike)
    refractory_steps: int = 1  # steps after a spike during which input is ignored and no spike fires
    normalize_rms: float | None = 0.3  # per-clip RMS target before filtering; None disables it
    compress_gain: float = 10.0  # G in f = log1p(G * envelope)

    def __post_init__(self) -> None:
        nyquist = self.sample_rate / 2
        if self.sample_rate <= 0 or self.n_channels < 1:
            raise ValueError("sample_rate and n_channels must be positive")
        if not 0 < self.f_low < self.f_high < UPPER_EDGE_FRACTION * nyquist:
            limit = UPPER_EDGE_FRACTION * nyquist
            raise ValueError(f"need 0 < f_low < f_high < {UPPER_EDGE_FRACTION} * Nyquist ({limit:g} Hz)")
        if self.q <= 0.5:
            raise ValueError("q must be above 0.5 (the band would reach 0 Hz)")
        if self.env_tau_ms <= 0 or self.lif_tau_ms <= 0 or self.threshold <= 0 or self.compress_gain <= 0:
            raise ValueError("time constants, threshold and compress_gain must be positive")
        if self.refractory_steps < 0:
            raise ValueError("refractory_steps must be >= 0")
        if self.normalize_rms is not None and self.normalize_rms <= 0:
            raise ValueError("normalize_rms must be positive or None")
        hop = self.sample_rate * self.step_ms / 1000
        if hop < 1 or abs(hop - int(hop + 0.5)) > 1e-9:
            raise ValueError(f"step_ms={self.step_ms} is not a whole number of samples at {self.sample_rate} Hz")

    @property
    def samples_per_step(self) -> int:
        """H: audio samples per output step (16 at 16 kHz and 1 ms)."""
        return int(math.floor(self.sample_rate * self.step_ms / 1000 + 0.5))

    @property
    def step_s(self) -> float:
        return self.step_ms / 1000


# Band edges are clipped below Nyquist: a Butterworth design needs edges strictly inside (0, fs/2).
UPPER_EDGE_FRACTION = 0.98


FRONT_END_RATES = (8000, 16000)  # rates the front end runs at: a whole number of samples per 1 ms step
# The highest channel's upper band edge stays below this share of the recording's Nyquist frequency, so that
# no channel listens above what an anti-aliased recording holds (a telephone-band 8 kHz file: 100..3370 Hz).
RECORDED_BAND_FRACTION = 0.95


def front_end_for_rate(native_rate: int, base: FrontEndConfig = FrontEndConfig()) -> FrontEndConfig:
    """The front end for recordings made at ``native_rate`` Hz: ``base`` with the rate and band edited.

    The front end runs at 16 kHz when the recordings reach it, else at 8 kHz (recordings between are
    resampled down: nothing above 4 kHz is kept then). Its channels keep ``base``'s count and spacing
    and end where the recording's content ends: the top channel's centre stays ``base.f_high`` when its
    whole band ``[f - f/2q, f + f/2q]`` lies below the Nyquist frequency of both the recording and the
    front end (16 kHz recordings keep the 7 kHz default), else it is the highest centre whose band stays
    below ``RECORDED_BAND_FRACTION`` of that Nyquist frequency, rounded down to 10 Hz.
    """
    if native_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {native_rate}")
    rate = max((r for r in FRONT_END_RATES if r <= native_rate), default=FRONT_END_RATES[0])
    nyquist = min(native_rate, rate) / 2
    widening = 1 + 1 / (2 * base.q)
    f_high = base.f_high
    if base.f_high * widening >= nyquist:
        f_high = math.floor(RECORDED_BAND_FRACTION * nyquist / widening / 10) * 10
    return dataclasses.replace(base, sample_rate=rate, f_high=float(f_high))


def describe(cfg: FrontEndConfig) -> str:
    """One line naming the front end's rate, channels and band, as ``data wav`` prints it."""
    return (
        f"front end: {cfg.sample_rate} Hz, {cfg.n_channels} channels, centres {cfg.f_low:g}..{cfg.f_high:g} Hz "
        f"(ERB-spaced, Q {cfg.q:g}), {cfg.step_ms:g} ms steps"
    )


class FrontEndState(NamedTuple):
    """Everything the front end remembers between chunks (all per channel)."""

    filter_state: np.ndarray  # (n_channels, n_sections, 2) biquad delay lines (scipy sosfilt layout)
    envelope: np.ndarray  # (n_channels,) last envelope sample e_c[n-1]
    membrane: np.ndarray  # (n_channels,) LIF membrane v_c
    refractory: np.ndarray  # (n_channels,) int: steps of refractoriness left


# ---------------------------------------------------------------------------------------------
# Filter design


def hz_to_erb_rate(f_hz: np.ndarray) -> np.ndarray:
    """ERB-rate scale (Glasberg & Moore 1990): E(f) = 21.4 * log10(1 + 0.00437 f)."""
    return 21.4 * np.log10(1.0 + 0.00437 * np.asarray(f_hz, dtype=np.float64))


def erb_rate_to_hz(e: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hz_to_erb_rate`: f = (10^(E / 21.4) - 1) / 0.00437."""
    return (np.power(10.0, np.asarray(e, dtype=np.float64) / 21.4) - 1.0) / 0.00437


def centre_frequencies(cfg: FrontEndConfig) -> np.ndarray:
    """``n_channels`` centre frequencies equally spaced on the ERB-rate scale from f_low to f_high."""
    if cfg.n_channels == 1:
        return np.array([cfg.f_low])
    e = np.linspace(hz_to_erb_rate(cfg.f_low), hz_to_erb_rate(cfg.f_high), cfg.n_channels)
    return erb_rate_to_hz(e)


def band_edges(cfg: FrontEndConfig) -> np.ndarray:
    """(n_channels, 2) pass-band edges [f - f/(2q), f + f/(2q)], the upper edge clipped at 0.98 * Nyquist."""
    fc = centre_frequencies(cfg)
    half_width = fc / (2 * cfg.q)
    upper = np.minimum(fc + half_width, UPPER_EDGE_FRACTION * cfg.sample_rate / 2)
    return np.stack([fc - half_width, upper], axis=1)


@functools.lru_cache(maxsize=16)
def design_filterbank(cfg: FrontEndConfig) -> np.ndarray:
    """Second-order sections of every channel, shape (n_channels, 2, 6), rows [b0, b1, b2, 1, a1, a2].

    Each channel is a Butterworth band-pass designed at order 2, which doubles to a 4th-order band-pass:
    two biquads ``y[n] = b0 x[n] + b1 x[n-1] + b2 x[n-2] - a1 y[n-1] - a2 y[n-2]`` in cascade.
    The result is cached per config and must not be modified.
    """
    from scipy.signal import butter

    sos = np.stack([butter(2, edges, btype="bandpass", fs=cfg.sample_rate, output="sos") for edges in band_edges(cfg)])
    sos.setflags(write=False)
    return sos


def envelope_coefficient(cfg: FrontEndConfig) -> float:
    """a = exp(-1 / (fs * tau_env)): the pole of the envelope low-pass."""
    return math.exp(-1.0 / (cfg.sample_rate * cfg.env_tau_ms / 1000))


def membrane_decay(cfg: FrontEndConfig) -> float:
    """beta = exp(-step / tau_mem): the LIF leak per output step."""
    return math.exp(-cfg.step_ms / cfg.lif_tau_ms)


# ---------------------------------------------------------------------------------------------
# Signal path (pure functions: input and state in, output and new state out)


def normalize_rms(audio: np.ndarray, target: float) -> np.ndarray:
    """Scale the clip so that sqrt(mean(x^2)) == target; an all-zero clip is returned unchanged.

    This is the one non-causal step (it sees the whole clip); streaming users apply a fixed gain instead.
    """
    x = np.asarray(audio, dtype=np.float64)
    rms = math.sqrt(float(np.mean(x * x))) if x.size else 0.0
    return x if rms == 0.0 else x * (target / rms)


def bandpass_bank(
    audio: np.ndarray, sos_bank: np.ndarray, state: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Filter a signal (or a batch of signals) through every channel's biquad cascade.

    audio: (..., n) samples (time last); sos_bank: (n_channels, n_sections, 6);
    state: (n_channels, n_sections, ..., 2) delay lines, None for "at rest".
    Returns y (n_channels, ..., n) and the final state. Direct form II transposed, as scipy's sosfilt.
    """
    from scipy.signal import sosfilt

    x = np.asarray(audio, dtype=np.float64)
    sos_bank = np.array(sos_bank)  # sosfilt needs writable coefficients; the cached design is read-only
    n_channels, n_sections = sos_bank.shape[:2]
    if state is None:
        state = np.zeros((n_channels, n_sections) + x.shape[:-1] + (2,))
    y = np.empty((n_channels,) + x.shape)
    if x.shape[-1] == 0:
        return y, np.array(state)
    new_state = np.empty_like(state)
    # One call per channel filters the whole batch: scipy's per-call overhead is paid once per channel.
    for c in range(n_channels):
        y[c], new_state[c] = sosfilt(sos_bank[c], x, axis=-1, zi=state[c])
    return y, new_state


def rectify(y: np.ndarray) -> np.ndarray:
    """Half-wave rectification r = max(y, 0), in place."""
    return np.maximum(y, 0.0, out=y)


def envelope(rectified: np.ndarray, a: float, previous: np.ndarray) -> np.ndarray:
    """1-pole low-pass along the last (time) axis: e[n] = a * e[n-1] + (1 - a) * r[n], e[-1] = ``previous``.

    rectified: (..., n); previous: (...). Returns e, same shape as ``rectified``.
    """
    from scipy.signal import lfilter

    if rectified.shape[-1] == 0:
        return np.array(rectified)
    # lfilter's transposed direct form keeps z = a * e[n-1] as its state.
    e, _ = lfilter([1.0 - a], [1.0, -a], rectified, axis=-1, zi=(a * np.asarray(previous))[..., None])
    return e


def decimate_to_steps(e: np.ndarray, samples_per_step: int) -> np.ndarray:
    """Keep the last envelope sample of each step: e_k = e[(k + 1) * H - 1]; a partial last step is dropped.

    e: (n_channels, ..., n). Returns (..., n_steps, n_channels), time-major like the spike raster.
    """
    n_steps = e.shape[-1] // samples_per_step
    kept = e[..., samples_per_step - 1 : n_steps * samples_per_step : samples_per_step]
    return np.ascontiguousarray(np.moveaxis(kept, 0, -1))


def compress(e: np.ndarray, gain: float) -> np.ndarray:
    """Logarithmic compression f = log1p(G * e) (e >= 0, so f >= 0)."""
    return np.log1p(gain * e)


def lif_encode(
    features: np.ndarray,
    beta: float,
    threshold: float,
    refractory_steps: int,
    membrane: np.ndarray,
    refractory: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leaky integrate-and-fire encoder with subtractive reset, one neuron per lane (channel).

    For every step k and lane c (features f: (n_steps, n_lanes)), with R = ``refractory_steps``::

        if r_c > 0:  v_c = beta * v_c;          s_c[k] = 0;  r_c = r_c - 1
        else:        v_c = beta * v_c + f_c[k]
                     s_c[k] = (v_c >= threshold)
                     if s_c[k]: v_c = v_c - threshold;  r_c = R

    Lanes are independent, so several clips can be encoded in one pass by stacking their channels.
    Returns the spike raster (n_steps, n_lanes) bool, the final membrane and refractory counters.
    """
    n_steps, n_lanes = features.shape
    v = np.array(membrane, dtype=np.float64)
    # r counts down past zero while a neuron is active ("r <= 0" means "not refractory"): one clamp
    # less per step. Constants are arrays because array-array ufuncs are cheaper than array-scalar
    # ones on small vectors, and this loop over steps is the hot spot of the whole front end.
    r = np.array(refractory, dtype=np.float64)
    beta_v = np.full(n_lanes, beta)
    threshold_v = np.full(n_lanes, float(threshold))
    ones = np.ones(n_lanes)
    zeros = np.zeros(n_lanes)
    spikes = np.zeros((n_steps, n_lanes), dtype=bool)
    active = np.empty(n_lanes, dtype=bool)
    scratch = np.empty(n_lanes)
    for k in range(n_steps):
        np.less_equal(r, zeros, out=active)
        v *= beta_v
        np.multiply(features[k], active, out=scratch)
        v += scratch
        fired = spikes[k]
        np.greater_equal(v, threshold_v, out=fired)
        fired &= active
        np.multiply(fired, threshold_v, out=scratch)
        v -= scratch
        r -= ones
        np.copyto(r, refractory_steps, where=fired)
    return spikes, v, np.maximum(r, 0).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Whole chain


def initial_state(cfg: FrontEndConfig) -> FrontEndState:
    """State before the first sample: everything at rest."""
    n_sections = design_filterbank(cfg).shape[1]
    return FrontEndState(
        filter_state=np.zeros((cfg.n_channels, n_sections, 2)),
        envelope=np.zeros(cfg.n_channels),
        membrane=np.zeros(cfg.n_channels),
        refractory=np.zeros(cfg.n_channels, dtype=np.int64),
    )


def _check_mono(x: np.ndarray) -> None:
    if x.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {x.shape}")


def features_chunk(audio: np.ndarray, cfg: FrontEndConfig, state: FrontEndState) -> tuple[np.ndarray, FrontEndState]:
    """Band-pass, rectify, envelope, decimate and compress a chunk whose length is a multiple of H.

    Returns the encoder input (n_steps, n_channels) and the state with updated filter and envelope parts.
    """
    x = np.asarray(audio, dtype=np.float64)
    _check_mono(x)
    _check_whole_steps(x.shape[-1], cfg)
    y, filter_state = bandpass_bank(x, design_filterbank(cfg), state.filter_state)
    e = envelope(rectify(y), envelope_coefficient(cfg), state.envelope)
    features = compress(decimate_to_steps(e, cfg.samples_per_step), cfg.compress_gain)
    last_envelope = e[:, -1].copy() if e.shape[1] else state.envelope
    return features, state._replace(filter_state=filter_state, envelope=last_envelope)


def process_chunk(audio: np.ndarray, cfg: FrontEndConfig, state: FrontEndState) -> tuple[np.ndarray, FrontEndState]:
    """Run a chunk of (already normalised) audio through the whole chain; length a multiple of H.

    Returns the spike raster (n_steps, n_channels) bool and the state to pass with the next chunk.
    """
    features, state = features_chunk(audio, cfg, state)
    spikes, membrane, refractory = lif_encode(
        features, membrane_decay(cfg), cfg.threshold, cfg.refractory_steps, state.membrane, state.refractory
    )
    return spikes, state._replace(membrane=membrane, refractory=refractory)


def _check_whole_steps(n_samples: int, cfg: FrontEndConfig) -> None:
    if n_samples % cfg.samples_per_step:
        raise ValueError(f"chunk length {n_samples} is not a multiple of {cfg.samples_per_step} samples")


def _prepare_clip(audio: np.ndarray, cfg: FrontEndConfig) -> np.ndarray:
    """The whole-clip pre-step: float64, RMS-normalised when configured, partial last step dropped."""
    x = np.asarray(audio, dtype=np.float64)
    _check_mono(x)
    if cfg.normalize_rms is not None:
        x = normalize_rms(x, cfg.normalize_rms)
    return x[: x.size - x.size % cfg.samples_per_step]


def batch_features(clips: Sequence[np.ndarray], cfg: FrontEndConfig) -> tuple[np.ndarray, list[int]]:
    """Encoder input of whole clips from rest, (n_clips, max_steps, n_channels), and each clip's step count.

    Shorter clips are padded with silence at the end; being causal, the chain's output for their own
    steps does not depend on it.
    """
    prepared = [_prepare_clip(clip, cfg) for clip in clips]
    lengths = [x.size // cfg.samples_per_step for x in prepared]
    audio = np.zeros((len(prepared), max(lengths, default=0) * cfg.samples_per_step))
    for i, x in enumerate(prepared):
        audio[i, : x.size] = x
    y, _ = bandpass_bank(audio, design_filterbank(cfg))
    e = envelope(rectify(y), envelope_coefficient(cfg), np.zeros(y.shape[:-1]))
    return compress(decimate_to_steps(e, cfg.samples_per_step), cfg.compress_gain), lengths


def encode_counts(audio: np.ndarray, cfg: FrontEndConfig = FrontEndConfig()) -> np.ndarray:
    """Spike raster of a whole clip, (n_steps, n_channels) uint8 with n_steps = len(audio) // H.

    The clip is RMS-normalised first when ``cfg.normalize_rms`` is set; a partial last step is dropped.
    """
    spikes, _ = process_chunk(_prepare_clip(audio, cfg), cfg, initial_state(cfg))
    return spikes.astype(np.uint8)


def raster_to_events(raster: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(step indices, channel ids) of the non-zero entries, int64, sorted by step then channel."""
    steps, channels = np.nonzero(raster)
    return steps.astype(np.int64), channels.astype(np.int64)


def encode(audio: np.ndarray, cfg: FrontEndConfig = FrontEndConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Spikes of a whole clip as (step indices, channel ids), both int64, sorted by step then channel.

    A spike in step k belongs to the interval [k, k + 1) * step_ms; see spikefile.spike_time_for_step.
    """
    return raster_to_events(encode_counts(audio, cfg))


def encode_batch(
    clips: Sequence[np.ndarray], cfg: FrontEndConfig = FrontEndConfig()
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[encode(clip, cfg) for clip in clips]``, computed for all clips at once (same result).

    Dataset builders use it: scipy's per-call overhead and the encoder's loop over steps cost about the
    same for one clip as for a batch, so batching makes encoding several times faster per clip.
    """
    if len(clips) == 0:
        return []
    features, lengths = batch_features(clips, cfg)
    n_clips, n_steps, n_channels = features.shape
    lanes = features.transpose(1, 0, 2).reshape(n_steps, n_clips * n_channels)
    rest = np.zeros(lanes.shape[1])
    spikes, _, _ = lif_encode(lanes, membrane_decay(cfg), cfg.threshold, cfg.refractory_steps, rest, rest)
    spikes = spikes.reshape(n_steps, n_clips, n_channels)
    return [raster_to_events(spikes[:length, i]) for i, length in enumerate(lengths)]
