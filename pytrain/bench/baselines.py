"""Non-spiking baselines on the same clips and splits as the SNN, so every SNN number has a reference beside it.

* ``logmel_mlp``: a float MLP on log-mel features of the audio (8 kHz: 40 mel bands, 25 ms windows, 10 ms
  hop; silence trimmed with librosa, per-utterance mean removed per band, resampled to 40 frames), one
  hidden layer of 256 (scikit-learn), the epoch chosen on the validation speakers. Needs the audio.
* ``spike_logreg``: logistic regression on the spike counts the SNN reads (the time axis summed into 20
  equal bins, log1p, standardised), its regularisation chosen on the validation split. Needs only the
  spike dataset.

Both use the SNN's own train / validation / test split (``pytrain.data.loader``: speaker-disjoint
validation, drawn with the run's seed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

LOGMEL_BANDS = 40
LOGMEL_FRAMES = 40
LOGMEL_TRIM_DB = 30.0
MLP_HIDDEN = 256
MLP_EPOCHS = 60
LOGREG_BINS = 20
LOGREG_C = (0.01, 0.1, 1.0)


@dataclass
class Split:
    """Row positions of the train, validation and test clips."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def logmel_features(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Fixed-size log-mel features of one clip: (LOGMEL_BANDS * LOGMEL_FRAMES,) float32."""
    import librosa

    win, hop = int(0.025 * sample_rate), int(0.010 * sample_rate)
    y = np.asarray(audio, dtype=np.float32)
    trimmed, _ = librosa.effects.trim(y, top_db=LOGMEL_TRIM_DB, frame_length=win, hop_length=hop)
    if trimmed.size < win:
        trimmed = y
    mel = librosa.feature.melspectrogram(y=trimmed, sr=sample_rate, n_fft=win, hop_length=hop, win_length=win,
                                         n_mels=LOGMEL_BANDS, fmin=50.0, fmax=sample_rate / 2, center=True)
    logmel = np.log(mel + 1e-8)
    logmel -= logmel.mean(axis=1, keepdims=True)  # per-utterance mean removal
    src = np.linspace(0, logmel.shape[1] - 1, LOGMEL_FRAMES)
    fixed = np.stack([np.interp(src, np.arange(logmel.shape[1]), band) for band in logmel])
    return fixed.astype(np.float32).ravel()


def corpus_logmel(paths: Sequence[Path], sample_rate: int) -> np.ndarray:
    """Log-mel features of every file, (n_files, dims), loaded at ``sample_rate``."""
    from tqdm import tqdm

    from pytrain.data.audiofile import load_audio

    return np.stack([logmel_features(load_audio(p, sample_rate), sample_rate)
                     for p in tqdm(paths, desc="log-mel", unit="clip", disable=None, leave=False)])


def _standardise(features: np.ndarray, split: Split) -> np.ndarray:
    mean = features[split.train].mean(axis=0)
    std = features[split.train].std(axis=0) + 1e-6
    return (features - mean) / std


def _accuracy(pred: np.ndarray, y: np.ndarray) -> dict:
    correct = int((pred == y).sum())
    return {"acc": correct / max(len(y), 1), "correct": correct, "n": int(len(y))}


def logmel_mlp(features: np.ndarray, labels: np.ndarray, split: Split, seed: int) -> dict:
    """Train the MLP on ``split.train``, keep the epoch best on ``split.val``, score ``split.test``."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    x = _standardise(features, split)
    classes = np.unique(labels)
    mlp = MLPClassifier(hidden_layer_sizes=(MLP_HIDDEN,), alpha=1e-2, batch_size=64, learning_rate_init=1e-3,
                        random_state=seed)
    order_rng = np.random.default_rng(seed)
    best = (-1.0, None, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)  # "batch_size clipped" on the last, shorter chunk
        for epoch in range(MLP_EPOCHS):
            order = order_rng.permutation(split.train)
            for start in range(0, order.size, 64):
                chunk = order[start : start + 64]
                mlp.partial_fit(x[chunk], labels[chunk], classes=classes)
            val = float((mlp.predict(x[split.val]) == labels[split.val]).mean())
            if val > best[0]:
                best = (val, ([w.copy() for w in mlp.coefs_], [b.copy() for b in mlp.intercepts_]), epoch)
    mlp.coefs_, mlp.intercepts_ = best[1]
    return {**_accuracy(mlp.predict(x[split.test]), labels[split.test]), "val_acc": best[0], "best_epoch": best[2],
            "train_acc": float((mlp.predict(x[split.train]) == labels[split.train]).mean())}


def count_features(frames: np.ndarray, bins: int = LOGREG_BINS) -> np.ndarray:
    """(S, T, C) spike counts -> (S, bins * C): counts summed over ``bins`` equal stretches of time, log1p."""
    s, t, c = frames.shape
    edges = np.linspace(0, t, bins + 1).round().astype(int)
    summed = np.stack([frames[:, a:b].sum(axis=1, dtype=np.int64) for a, b in zip(edges[:-1], edges[1:])], axis=1)
    return np.log1p(summed.reshape(s, bins * c).astype(np.float64))


def spike_logreg(features: np.ndarray, labels: np.ndarray, split: Split) -> dict:
    """Logistic regression on count features; the inverse regularisation C chosen on ``split.val``."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    x = _standardise(features, split)
    best = (-1.0, None, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for c in LOGREG_C:
            model = LogisticRegression(C=c, max_iter=2000).fit(x[split.train], labels[split.train])
            val = float((model.predict(x[split.val]) == labels[split.val]).mean())
            if val > best[0]:
                best = (val, model, c)
    model = best[1]
    return {**_accuracy(model.predict(x[split.test]), labels[split.test]), "val_acc": best[0], "C": best[2],
            "train_acc": float((model.predict(x[split.train]) == labels[split.train]).mean())}
