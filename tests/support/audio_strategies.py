"""Hypothesis strategies: int16 PCM that visits the corners of the integer front end, and ways to cut it in pieces.

Signals (:func:`pcm`): silence, full-scale square waves and sines (any frequency up to Nyquist, clipped at
+32767/-32768), linear chirps, white noise (Gaussian, clipped, or uniform over the whole int16 range), DC
(including both extremes), impulses (single samples at the extremes over silence), alternating extremes, and
concatenations of those. Lengths cover a partial first bin, exact bins and odd tails. A numpy generator seeded
by a drawn integer makes the samples, so shrinking the seed still gives valid audio.

Chunkings (:func:`chunkings`): piece sizes summing to the signal's length, with empty pieces, single samples,
exact hops and long runs.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

KINDS = ("silence", "square", "sine", "chirp", "noise", "full-noise", "dc", "impulses", "alternate", "mix")
LO, HI = -32768, 32767
SAMPLE_RATE = 16000


def _clip(x: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(x + 0.5), LO, HI).astype(np.int16)


def make_signal(kind: str, n: int, seed: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``n`` samples of ``kind`` (one of :data:`KINDS`), deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sample_rate
    amplitude = float(rng.choice([32767.0, 40000.0, 3000.0, 100.0, 5.0]))  # 40000: clipped at the extremes
    freq = float(rng.uniform(20.0, sample_rate / 2))
    if kind == "silence":
        return np.zeros(n, np.int16)
    if kind == "square":
        return _clip(np.where(np.sin(2 * np.pi * freq * t) >= 0, amplitude, -amplitude))
    if kind == "sine":
        return _clip(amplitude * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)))
    if kind == "chirp":
        f1 = float(rng.uniform(20.0, sample_rate / 2))
        phase = 2 * np.pi * (freq * t + (f1 - freq) * t * t / (2 * max(t[-1], 1e-9) if n else 1.0))
        return _clip(amplitude * np.sin(phase))
    if kind == "noise":
        return _clip(amplitude * rng.standard_normal(n))
    if kind == "full-noise":
        return rng.integers(LO, HI, size=n, endpoint=True).astype(np.int16)
    if kind == "dc":
        return np.full(n, int(rng.choice([HI, LO, 1000, -1, 12345])), np.int16)
    if kind == "impulses":
        x = np.zeros(n, np.int16)
        where = rng.choice(n, size=min(n, int(rng.integers(1, 8))), replace=False) if n else []
        x[where] = rng.choice([HI, LO], size=len(where))
        return x
    if kind == "alternate":
        return np.where(np.arange(n) % 2 == 0, HI, LO).astype(np.int16)
    # mix: a few pieces of the other kinds, one after the other
    cuts = np.sort(rng.integers(0, n + 1, size=3))
    bounds = [0, *cuts.tolist(), n]
    parts = [make_signal(str(rng.choice(KINDS[:-1])), b - a, int(rng.integers(2**31)), sample_rate)
             for a, b in zip(bounds[:-1], bounds[1:])]
    return np.concatenate(parts) if parts else np.zeros(0, np.int16)


@st.composite
def pcm(draw, max_bins: int = 40, hop: int = 160, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """int16 PCM of a drawn kind and length (0 .. max_bins hops plus an odd tail)."""
    kind = draw(st.sampled_from(KINDS))
    bins = draw(st.integers(0, max_bins))
    tail = draw(st.sampled_from([0, 0, 1, hop - 1, 37]))
    seed = draw(st.integers(0, 2**32 - 1))
    return make_signal(kind, bins * hop + tail, seed, sample_rate)


@st.composite
def chunkings(draw, n: int, hop: int = 160) -> list[int]:
    """Piece sizes (>= 0) that sum to ``n``: random cuts, with empty pieces, single samples and whole hops."""
    style = draw(st.sampled_from(["one", "hops", "random", "tiny", "random"]))
    if style == "one" or n == 0:
        return [n] if style != "tiny" else [0, n, 0]
    if style == "hops":
        sizes = [hop] * (n // hop)
        return sizes + [n - sum(sizes)]
    if style == "tiny":
        head = min(n, draw(st.integers(1, 5)))
        return [1] * head + [0] + [n - head]
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.integers(0, n + 1, size=int(rng.integers(1, 12))))
    bounds = [0, *cuts.tolist(), n]
    return [b - a for a, b in zip(bounds[:-1], bounds[1:])]
