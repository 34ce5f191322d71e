"""A tiny dataset built from audio by the integer front end, in the delrec-edge folder layout: WAV files of
chirped tone bursts over quiet noise (class = which band and which direction), encoded with ``data wav``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.io import wavfile

BANDS = ((300.0, 700.0), (700.0, 300.0), (1500.0, 3000.0), (3000.0, 1500.0))
SPEAKERS = ("ann", "ben", "cy", "dot")


def burst_clip(label: int, seed: int, seconds: float = 0.5, sr: int = 16000) -> np.ndarray:
    """int16: quiet noise, then a 250 ms chirp across class ``label``'s band starting at a random onset."""
    rng = np.random.default_rng(seed)
    n = int(sr * seconds)
    x = 0.003 * rng.standard_normal(n)
    f0, f1 = BANDS[label % len(BANDS)]
    onset = int(rng.integers(int(0.05 * sr), n - int(0.25 * sr)))
    t = np.arange(int(0.25 * sr)) / sr
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * 0.25))
    x[onset : onset + t.size] += float(rng.uniform(0.05, 0.5)) * np.sin(phase) * np.hanning(t.size)
    return np.clip(np.floor(x * 32768 + 0.5), -32768, 32767).astype(np.int16)


def make_wav_folder(root: Path, per_speaker: int = 3, n_classes: int = 4) -> Path:
    """``root/<label>_<speaker>_<n>.wav`` for every class, speaker and take."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for label in range(n_classes):
        for j, speaker in enumerate(SPEAKERS):
            for take in range(per_speaker):
                wavfile.write(root / f"c{label}_{speaker}_{take}.wav", 16000,
                              burst_clip(label, seed=label * 1000 + j * 10 + take))
    return root


def make_audio_dataset(out: Path, per_speaker: int = 3, n_classes: int = 4) -> Path:
    """The WAV folder next to ``out``, encoded by the integer front end into the dataset ``out``."""
    from pytrain.data.wavset import build_wav_dataset

    wavs = make_wav_folder(Path(out).parent / (Path(out).name + "-wav"), per_speaker, n_classes)
    build_wav_dataset(wavs, Path(out), split="speaker", test_fraction=0.25, seed=0, force=True)
    return Path(out)
