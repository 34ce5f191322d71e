r"""The integer audio front end: what it *is* (its configuration and every integer coefficient), how it is
designed from its configuration, and its invariants.

int16 PCM in, uint8 spike counts per channel and time bin out. One bin per hop (10 ms by default, equal
to the network's bin width); every value below is an integer and every rescale is a rounded shift
(:func:`codegen.integer.fixedpoint.rshift_round`, round half up). The arithmetic itself is defined by
:mod:`codegen.integer.frontend_ref`; the static overflow analysis is :mod:`codegen.integer.frontend_bounds`.

Per bin ``b`` (the samples ``b*H .. b*H + H - 1`` of the stream, ``H = hop``)::

    frame   x[n], n = 0..N-1    the last N samples at the end of the bin (zeros before the stream began)
    window  y[n] = rshift(x[n] * w[n], 15)                    w: Hann, Q15 (0..32767)
    pack    z[m] = y[2m] + i y[2m+1], m = 0..M-1 (M = N/2), stored in bit-reversed order
    FFT     M-point radix-2 decimation in time, log2(M) stages; a butterfly with twiddle
            (c, s) = Q14 cos/sin of 2 pi k / N (k a multiple of N/(2h) at half-size h) computes
                tr = rshift(c*br + s*bi, 14)     ti = rshift(c*bi - s*br, 14)
                a' = rshift(a + t, sh)           b' = rshift(a - t, sh)       sh = fft_shifts[stage] (0 or 1)
    split   for k = 0..M:  Z1 = Z[k mod M], Z2 = Z[(M - k) mod M]
                Ar = Z1r + Z2r   Ai = Z1i - Z2i   Br = Z1r - Z2r   Bi = Z1i + Z2i
                tr = rshift(c_k*Bi - s_k*Br, 14)       ti = rshift(-c_k*Br - s_k*Bi, 14)
                Xr = rshift(Ar + tr, 1)                Xi = rshift(Ai + ti, 1)
            (X is the N-point DFT of y, scaled by 2^-(sum of fft_shifts) / 2 * ... exactly as computed)
    power   P[k] = Xr^2 + Xi^2                                           uint32
    bank    E[c] = sum_k g[c, k] * P[k]                                   uint64
            bin k adds weight[k] * P[k] to channel chan[k] and (2^12 - weight[k]) * P[k] to chan[k] - 1
            (each only where that channel exists): triangles on the mel scale, peak 2^12
    log     L[c] = log2(E[c]) in Q(log_frac): 0 for E = 0, else with e = floor(log2 E) (count leading
            zeros), i = the T bits after the leading one, r = the next R bits:
                L = e * 2^F + tab[i] + rshift((tab[i+1] - tab[i]) * r, R)      tab[i] = rnd(2^F log2(1 + i/2^T))
    pool    with pool_bins = 2, the level of a channel is that of its energy over this bin's frame and the
            previous one, log2(E + E_prev), by a log-add table (lp[c]: the previous bin's L, 0 after a reset):
                Lp = max(L, lp) + add[min(|L - lp| >> 1, A - 1)]      add[j] = rnd(2^F log2(1 + 2^(-2j/2^F)))
            (A entries, the last one 0; no table term when L or lp is 0, the log of no energy), then lp[c] = L. It smooths each channel over 26 ms of audio, not 16,
            without a longer frame (the ring, the FFT and their cost stay). With pool_bins = 1, Lp = L.
    gain    two causal level trackers in Q(log_frac + floor_frac), one per channel (the noise floor q[c]) and
            one per stream (the peak p, which follows the loudest channel), both updated by the same rule
                track(t, x; up, down):  d = x * 2^G - t;  t += rshift(d, up) if d > 0 else rshift(d, down)
            the floor rises slowly and falls at once (floor_rise_shift, floor_fall_shift), the peak rises at
            once and falls slowly (0, peak_fall_shift). With the trackers as they were before this bin:
                level[c] = max(max(rshift(q[c], G), floor_min) + offset, rshift(p, G) - depth)
                f[c]     = clamp(Lp[c] - level[c], 0, threshold - 1)           the encoder's input
            then q[c] = track(q[c], Lp[c]) and p = track(p, max_c Lp[c]). A channel fires when it stands out
            of its own recent quiet level (a stationary background drops out) and is within ``depth`` of the
            loudest recent sound (the gain of the microphone and the loudness of the speaker drop out); no
            whole-clip normalisation, nothing looks ahead.
    LIF     per channel, ``substeps`` times per bin with the constant input f (membrane v, int32; r counts
            the refractory sub-steps left):
                if r > 0:  r -= 1;  v = v - rshift(v, leak_shift)
                else:      v = v - rshift(v, leak_shift) + f
                           if v >= threshold:  v -= threshold; count += 1; r = refractory
            (leak_shift 0 means no leak) and the bin's output is the count, 0..ceil(substeps / (refractory + 1)).

State, all explicit (:class:`codegen.integer.frontend_ref.State`): the ring of the last N samples and its
write position, the number of samples of the current bin so far, and per channel the previous bin's L (lp),
the floor q, the membrane v, the refractory counter r and the last bin's counts, and the peak p. Feeding a stream in any chunking gives the
same state and the same counts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from .fixedpoint import int_range, round_half_up

WINDOW_BITS = 15  # Q15 window
TWIDDLE_BITS = 14  # Q14 cos/sin: 1.0 is exact, so the trivial twiddles are exact
FILTER_BITS = 12  # filterbank weights, 2^12 = 1.0
SPLIT_SHIFT = 1  # the real-FFT split halves its outputs
LOG_TABLE_BITS = 5  # tab has 2^5 + 1 entries
LOG_INTERP_BITS = 8  # bits of linear interpolation between table entries
LOGADD_STEP_BITS = 1  # the log-add table is indexed by |L - lp| >> 1
POOL_BINS = (1, 2)  # bins whose frame energies make one level: this one alone, or with the previous one
POOL_MAX_LOG_FRAC = 7  # pooling keeps its table in bytes: 2^log_frac <= 128
MAX_COUNT_PER_BIN = 255  # counts are uint8
DB_PER_LOG2 = 10.0 * math.log10(2.0)  # dB of power per unit of log2(power)
FFT_SIZES = (64, 128, 256, 512, 1024)
MIN_EDGE_HZ = 1.0


def hz_to_mel(f_hz):
    """HTK mel scale: 2595 log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f_hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel):
    return 700.0 * (np.power(10.0, np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def db_to_log_units(db: float, log_frac: int) -> int:
    """A power ratio in dB as a difference of L values (log2 power in Q(log_frac)), rounded half up."""
    return int(round_half_up(db / DB_PER_LOG2 * (1 << log_frac)))


@dataclass(frozen=True)
class FrontEndConfig:
    """Design parameters of the integer front end (hashable, JSON-friendly); :func:`design` turns them into
    an :class:`IntFrontEnd`.

    Levels are in dB relative to the full-scale reference: the channel energy of a full-scale sine centred on
    an FFT bin at the peak of a channel's triangle (:func:`full_scale_level`).
    """

    sample_rate: int = 16000  # Hz of the int16 PCM input
    n_channels: int = 32  # filterbank channels = network inputs
    f_low: float = 100.0  # Hz, lower band edge of the lowest channel
    f_high: float = 7600.0  # Hz, upper band edge of the highest channel (at most Nyquist)
    hop_ms: float = 10.0  # one output bin per hop; must equal the network's bin width
    fft_size: int = 0  # FFT length N = frame length in samples; 0: the power of two nearest 16 ms
    log_frac: int = 6  # fraction bits of log2(power): 1/64 of 3.01 dB
    floor_frac: int = 8  # extra fraction bits of the noise floor
    floor_rise_shift: int = 7  # the floor rises towards a louder channel by 1/2^k per bin (2^k bins ~ 1.3 s)
    floor_fall_shift: int = 0  # and falls towards a quieter one by 1/2^k per bin (0: at once)
    floor_min_db: float = -75.0  # the floor never goes below this level
    offset_db: float = 15.0  # a channel fires only this far above its floor
    peak_fall_shift: int = 7  # the peak falls towards a quieter bin by 1/2^k per bin (it rises at once)
    depth_db: float = 30.0  # and a channel fires only within this many dB of the peak
    range_db: float = 30.0  # the encoder saturates this far above its level (sets the threshold)
    substeps: int = 10  # encoder sub-steps per bin
    refractory: int = 1  # sub-steps after a spike during which the encoder neither integrates nor fires
    leak_shift: int = 0  # encoder leak v -= v >> k per sub-step; 0: no leak
    pool_bins: int = 2  # levels from the energy of this bin's frame (1) or of this and the previous one (2)

    def __post_init__(self) -> None:
        if isinstance(self.sample_rate, bool) or not isinstance(self.sample_rate, int) or not 4000 <= self.sample_rate <= 96000:
            raise ValueError(f"sample_rate must be an integer in 4000..96000 Hz, got {self.sample_rate!r}")
        if not isinstance(self.n_channels, int) or not 1 <= self.n_channels <= 256:
            raise ValueError(f"n_channels must be in 1..256, got {self.n_channels!r}")
        nyquist = self.sample_rate / 2
        if not MIN_EDGE_HZ <= self.f_low < self.f_high <= nyquist:
            raise ValueError(f"need {MIN_EDGE_HZ:g} <= f_low < f_high <= Nyquist ({nyquist:g} Hz), got {self.f_low:g}..{self.f_high:g}")
        hop = self.sample_rate * self.hop_ms / 1000
        if hop < 1 or abs(hop - round(hop)) > 1e-9:
            raise ValueError(f"hop_ms={self.hop_ms} is not a whole number of samples at {self.sample_rate} Hz")
        if self.fft_size and self.fft_size not in FFT_SIZES:
            raise ValueError(f"fft_size must be 0 (automatic) or one of {', '.join(map(str, FFT_SIZES))}, got {self.fft_size}")
        for name, lo, hi in (("log_frac", 0, 8), ("floor_frac", 0, 12), ("floor_rise_shift", 0, 16),
                             ("floor_fall_shift", 0, 16), ("peak_fall_shift", 0, 16), ("substeps", 1, 255), ("refractory", 0, 255),
                             ("leak_shift", 0, 16)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
        if isinstance(self.pool_bins, bool) or self.pool_bins not in POOL_BINS:
            raise ValueError(f"pool_bins must be one of {', '.join(map(str, POOL_BINS))}, got {self.pool_bins!r}")
        if self.pool_bins == 2 and isinstance(self.log_frac, int) and self.log_frac > POOL_MAX_LOG_FRAC:
            raise ValueError(f"pool_bins 2 needs log_frac <= {POOL_MAX_LOG_FRAC} (its table holds bytes), got {self.log_frac}")
        if self.range_db <= 0 or self.offset_db < 0 or self.depth_db <= 0:
            raise ValueError("range_db and depth_db must be positive, offset_db not negative")

    @property
    def hop(self) -> int:
        """Samples per bin (160 at 16 kHz and 10 ms)."""
        return int(round(self.sample_rate * self.hop_ms / 1000))

    @property
    def frame(self) -> int:
        """The FFT length N: ``fft_size``, or the power of two nearest 16 ms (256 at 16 kHz, 128 at 8 kHz)."""
        if self.fft_size:
            return self.fft_size
        return 1 << max(6, round(math.log2(self.sample_rate * 0.016)))

    def replace(self, **changes) -> "FrontEndConfig":
        return FrontEndConfig(**{**asdict(self), **changes})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FrontEndConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown front-end setting(s) {', '.join(sorted(unknown))}")
        return cls(**d)


@dataclass(frozen=True, eq=False)
class IntFrontEnd:
    """The designed front end: every integer the arithmetic of the module docstring uses.

    Arrays: ``window`` (N,) 0..32767; ``cos``/``sin`` (M + 1,) Q14 of 2 pi k / N for k = 0..M;
    ``chan`` (M + 1,) -1..C (the channel whose rising edge holds bin k; -1 for a bin outside the bank);
    ``weight`` (M + 1,) 0..2^12; ``log_table`` (2^T + 1,) Q(log_frac); ``logadd_table`` (A,) Q(log_frac),
    empty unless ``pool_bins`` is 2.
    """

    sample_rate: int
    hop: int
    n_channels: int
    window: np.ndarray
    cos: np.ndarray
    sin: np.ndarray
    fft_shifts: tuple[int, ...]  # per FFT stage, 0 or 1
    chan: np.ndarray
    weight: np.ndarray
    log_frac: int
    log_table: np.ndarray
    floor_frac: int
    floor_rise_shift: int
    floor_fall_shift: int
    floor_init: int  # Q(log_frac + floor_frac), the floor after a reset
    floor_min: int  # Q(log_frac)
    offset: int  # Q(log_frac)
    peak_fall_shift: int
    depth: int  # Q(log_frac)
    threshold: int  # encoder threshold; the input is clamped to 0..threshold - 1
    substeps: int
    refractory: int
    leak_shift: int
    pool_bins: int = 1
    logadd_table: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    config: dict = field(default_factory=dict)  # the FrontEndConfig it was designed from (information)

    @property
    def frame(self) -> int:
        return int(self.window.shape[0])

    @property
    def half(self) -> int:
        """M = N / 2: the length of the complex FFT."""
        return self.frame // 2

    @property
    def stages(self) -> int:
        return int(self.half).bit_length() - 1

    @property
    def hop_ms(self) -> float:
        return self.hop * 1000 / self.sample_rate

    @property
    def max_count(self) -> int:
        """The most spikes one channel can emit in one bin."""
        return -(-self.substeps // (self.refractory + 1))


# -------------------------------------------------------------------------------------------- design


def mel_points(cfg: FrontEndConfig) -> np.ndarray:
    """``n_channels + 2`` frequencies (Hz) equally spaced on the mel scale from f_low to f_high: channel c is
    the triangle on points c, c + 1, c + 2."""
    return mel_to_hz(np.linspace(hz_to_mel(cfg.f_low), hz_to_mel(cfg.f_high), cfg.n_channels + 2))


def filterbank_tables(cfg: FrontEndConfig, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(chan, weight) for bins k = 0..N/2 (see :class:`IntFrontEnd`); ``ValueError`` if a channel gets no bin."""
    m = n // 2
    points = mel_points(cfg)
    freqs = np.arange(m + 1) * cfg.sample_rate / n
    chan = np.full(m + 1, -1, dtype=np.int64)
    weight = np.zeros(m + 1, dtype=np.int64)
    for k, f in enumerate(freqs):
        j = int(np.searchsorted(points, f, side="right")) - 1  # points[j] <= f < points[j + 1]
        if j < 0 or j > cfg.n_channels:
            continue
        chan[k] = j
        weight[k] = int(round_half_up((f - points[j]) / (points[j + 1] - points[j]) * (1 << FILTER_BITS)))
    dense = filterbank_matrix(chan, weight, cfg.n_channels)
    empty = np.flatnonzero(dense.sum(axis=1) == 0)
    if empty.size:
        c = int(empty[0])
        raise ValueError(
            f"front end: channel {c} ({points[c]:.0f}..{points[c + 2]:.0f} Hz) contains no FFT bin of "
            f"{cfg.sample_rate / n:.1f} Hz; raise f_low, use fewer channels or a longer fft_size")
    return chan, weight


def filterbank_matrix(chan: np.ndarray, weight: np.ndarray, n_channels: int) -> np.ndarray:
    """The (C, M + 1) int64 weight matrix that ``chan``/``weight`` describe."""
    chan = np.asarray(chan, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.int64)
    k = np.arange(chan.size)
    g = np.zeros((n_channels, chan.size), dtype=np.int64)
    up = (chan >= 0) & (chan < n_channels)
    np.add.at(g, (chan[up], k[up]), weight[up])
    down = (chan >= 1) & (chan <= n_channels)
    np.add.at(g, (chan[down] - 1, k[down]), (1 << FILTER_BITS) - weight[down])
    return g


def log_table(log_frac: int) -> np.ndarray:
    """``rnd(2^F log2(1 + i / 2^T))`` for i = 0..2^T."""
    i = np.arange((1 << LOG_TABLE_BITS) + 1)
    return round_half_up(np.log2(1.0 + i / (1 << LOG_TABLE_BITS)) * (1 << log_frac))


def logadd_table(log_frac: int) -> np.ndarray:
    """``rnd(2^F log2(1 + 2^(-2j / 2^F)))`` for j = 0, 1, ... up to and including the first 0: the amount
    ``log2(2^a + 2^b)`` exceeds ``max(a, b)`` for ``|a - b| >> 1 == j`` (in Q(log_frac))."""
    values = []
    j = 0
    while not values or values[-1] != 0:
        d = (j << LOGADD_STEP_BITS) / (1 << log_frac)
        values.append(int(round_half_up(math.log2(1.0 + 2.0 ** -d) * (1 << log_frac))))
        j += 1
    return np.asarray(values, dtype=np.int64)


def full_scale_level(log_frac: int) -> int:
    """L (Q(log_frac)) of the full-scale reference: a full-scale sine on a bin at a triangle's peak gives
    |X| = 32767 / 2 after the scaled FFT, so P = (32767 / 2)^2 and E = P * 2^12."""
    power = (32767 / 2) ** 2 * (1 << FILTER_BITS)
    return int(round_half_up(math.log2(power) * (1 << log_frac)))


def design(cfg: FrontEndConfig) -> IntFrontEnd:
    """Every integer coefficient of the front end described by ``cfg`` (float design, rounded half up)."""
    n = cfg.frame
    if n < cfg.hop:
        raise ValueError(f"front end: the frame ({n} samples) is shorter than the hop ({cfg.hop}); use a longer fft_size")
    m = n // 2
    i = np.arange(n)
    window = round_half_up(32767 * 0.5 * (1.0 - np.cos(2 * np.pi * i / n)))  # periodic Hann
    k = np.arange(m + 1)
    cos = round_half_up(np.cos(2 * np.pi * k / n) * (1 << TWIDDLE_BITS))
    sin = round_half_up(np.sin(2 * np.pi * k / n) * (1 << TWIDDLE_BITS))
    chan, weight = filterbank_tables(cfg, n)
    f = cfg.log_frac
    full = full_scale_level(f)
    threshold = db_to_log_units(cfg.range_db, f)
    if threshold < 2:
        raise ValueError("front end: range_db is too small for log_frac (the threshold must be at least 2)")
    return IntFrontEnd(
        sample_rate=cfg.sample_rate, hop=cfg.hop, n_channels=cfg.n_channels,
        window=window.astype(np.int16), cos=cos.astype(np.int16), sin=sin.astype(np.int16),
        fft_shifts=(1,) * (m.bit_length() - 1), chan=chan.astype(np.int16), weight=weight.astype(np.int16),
        log_frac=f, log_table=log_table(f).astype(np.int16), floor_frac=cfg.floor_frac,
        floor_rise_shift=cfg.floor_rise_shift, floor_fall_shift=cfg.floor_fall_shift,
        floor_init=full << cfg.floor_frac, floor_min=max(0, full + db_to_log_units(cfg.floor_min_db, f)),
        offset=db_to_log_units(cfg.offset_db, f), peak_fall_shift=cfg.peak_fall_shift,
        depth=db_to_log_units(cfg.depth_db, f), threshold=threshold, substeps=cfg.substeps,
        refractory=cfg.refractory, leak_shift=cfg.leak_shift, pool_bins=cfg.pool_bins,
        logadd_table=(logadd_table(f) if cfg.pool_bins == 2 else np.zeros(0, np.int64)).astype(np.int16),
        config=cfg.to_dict(),
    )


# ---------------------------------------------------------------------------------------- validation


SCALARS = ("sample_rate", "hop", "n_channels", "log_frac", "floor_frac", "floor_rise_shift", "floor_fall_shift",
           "floor_init", "floor_min", "offset", "peak_fall_shift", "depth", "threshold", "substeps", "refractory", "leak_shift",
           "pool_bins")
ARRAYS = ("window", "cos", "sin", "chan", "weight", "log_table", "logadd_table")


def _int(value, what: str, lo: int, hi: int) -> None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"frontend.{what} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"frontend.{what} = {value} is outside {lo}..{hi}")


def _array(a, what: str, shape: tuple[int, ...], lo: int, hi: int) -> None:
    if not isinstance(a, np.ndarray) or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"frontend.{what} must be an integer numpy array")
    if a.shape != shape:
        raise ValueError(f"frontend.{what} has shape {a.shape}, expected {shape}")
    if a.size and (int(a.min()) < lo or int(a.max()) > hi):
        raise ValueError(f"frontend.{what} has values in {int(a.min())}..{int(a.max())}, outside {lo}..{hi}")


def validate_frontend(fe: IntFrontEnd) -> None:
    """Every invariant the arithmetic relies on; ``ValueError`` naming the first broken one.

    (Whether a valid front end can overflow a register is the static analysis' question:
    :func:`codegen.integer.frontend_bounds.check`.)
    """
    if not isinstance(fe, IntFrontEnd):
        raise ValueError("frontend must be an IntFrontEnd")
    _int(fe.sample_rate, "sample_rate", 4000, 96000)
    _int(fe.n_channels, "n_channels", 1, 256)
    if not isinstance(fe.window, np.ndarray) or fe.window.ndim != 1 or fe.window.shape[0] not in FFT_SIZES:
        raise ValueError(f"frontend.window must be 1-D with a length in {', '.join(map(str, FFT_SIZES))}")
    n, m = fe.frame, fe.half
    _int(fe.hop, "hop", 1, n)
    _array(fe.window, "window", (n,), 0, 32767)
    _array(fe.cos, "cos", (m + 1,), -(1 << TWIDDLE_BITS), 1 << TWIDDLE_BITS)
    _array(fe.sin, "sin", (m + 1,), -(1 << TWIDDLE_BITS), 1 << TWIDDLE_BITS)
    if not isinstance(fe.fft_shifts, tuple) or len(fe.fft_shifts) != fe.stages:
        raise ValueError(f"frontend.fft_shifts must be a tuple of {fe.stages} stage shifts")
    for s, v in enumerate(fe.fft_shifts):
        _int(v, f"fft_shifts[{s}]", 0, 1)
    _array(fe.chan, "chan", (m + 1,), -1, fe.n_channels)
    _array(fe.weight, "weight", (m + 1,), 0, 1 << FILTER_BITS)
    _int(fe.log_frac, "log_frac", 0, 8)
    _array(fe.log_table, "log_table", ((1 << LOG_TABLE_BITS) + 1,), 0, 1 << fe.log_frac)
    if np.any(np.diff(fe.log_table.astype(np.int64)) < 0):
        raise ValueError("frontend.log_table must not decrease")
    _int(fe.floor_frac, "floor_frac", 0, 12)
    _int(fe.floor_rise_shift, "floor_rise_shift", 0, 16)
    _int(fe.floor_fall_shift, "floor_fall_shift", 0, 16)
    log_max = 64 << fe.log_frac
    _int(fe.floor_init, "floor_init", 0, log_max << fe.floor_frac)
    _int(fe.floor_min, "floor_min", 0, log_max)
    _int(fe.offset, "offset", 0, log_max)
    _int(fe.peak_fall_shift, "peak_fall_shift", 0, 16)
    _int(fe.depth, "depth", 1, log_max)
    _int(fe.threshold, "threshold", 2, int_range(16)[1])
    _int(fe.substeps, "substeps", 1, 255)
    _int(fe.refractory, "refractory", 0, 255)
    _int(fe.leak_shift, "leak_shift", 0, 16)
    _int(fe.pool_bins, "pool_bins", min(POOL_BINS), max(POOL_BINS))
    if fe.pool_bins == 2:
        table = fe.logadd_table
        if fe.log_frac > POOL_MAX_LOG_FRAC:
            raise ValueError(f"frontend: pool_bins 2 needs log_frac <= {POOL_MAX_LOG_FRAC}, got {fe.log_frac}")
        if not isinstance(table, np.ndarray) or table.ndim != 1 or not 1 <= table.shape[0] <= 1 << 12:
            raise ValueError("frontend.logadd_table must be 1-D with 1..4096 entries")
        _array(table, "logadd_table", table.shape, 0, 1 << fe.log_frac)
        if int(table[-1]) != 0 or np.any(np.diff(table.astype(np.int64)) > 0):
            raise ValueError("frontend.logadd_table must not increase and must end with 0")
    else:
        _array(fe.logadd_table, "logadd_table", (0,), 0, 0)
    if fe.max_count > MAX_COUNT_PER_BIN:
        raise ValueError(f"frontend: up to {fe.max_count} spikes per bin do not fit a uint8 count")
    if not isinstance(fe.config, dict):
        raise ValueError("frontend.config must be a dict")
    dense = filterbank_matrix(fe.chan, fe.weight, fe.n_channels)
    empty = np.flatnonzero(dense.sum(axis=1) == 0)
    if empty.size:
        raise ValueError(f"frontend: channel {int(empty[0])} receives no FFT bin")
