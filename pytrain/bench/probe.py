"""A linear probe of the audio front ends: how much of the words each representation keeps.

The same synthetic clips (the offline dataset's recipe, :mod:`pytrain.data.synth`; training and held-out voices
disjoint) are encoded by the integer front end (counts per 10 ms bin; also without its two-bin pooling), the
float front end (1 ms spikes, counted per 10 ms bin) and a float log-mel spectrogram (librosa, same 10 ms hop,
32 mel bands over the same range, 25 ms window). Each is pooled over time into equal segments (summed counts,
mean log power) and a logistic regression (scikit-learn, standardised features) is fitted on the training
voices and scored on the held-out ones. A
benchmark that prints a table, not a test: a linear probe is a lower bound on what a network can extract.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ProbeRow:
    front_end: str
    segments: int
    features: int
    n_train: int
    n_test: int
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.n_test, 1)


def synthesize(per_voice: int, seed: int, jobs: int, sample_rate: int = 16000):
    """(clips float (N, samples), labels, is_test) of the offline dataset's grid with ``per_voice`` utterances."""
    from pytrain.data import synth

    options = synth.SynthOptions(seed=seed, per_voice=per_voice)
    options.validate()
    espeak = synth.find_espeak()
    cmd = [espeak, *synth.deterministic_flags(espeak)]
    grid = synth.utterance_grid(options)
    tasks = [(cmd, utt, options, sample_rate) for utt in grid]
    if jobs > 1:
        import multiprocessing

        with multiprocessing.Pool(jobs) as pool:
            clips = pool.starmap(synth.render_utterance, tasks, chunksize=16)
    else:
        clips = [synth.render_utterance(*t) for t in tasks]
    test_ids = {synth.VOICE_VARIANTS.index(v) for v in options.test_voices}
    labels = np.array([u.label for u in grid], dtype=np.int64)
    is_test = np.array([u.speaker in test_ids for u in grid])
    return np.stack(clips), labels, is_test


def integer_counts(clips: np.ndarray, **config) -> np.ndarray:
    """(N, T, 32) counts of the integer front end (the default configuration, changed by ``config``)."""
    from codegen.integer.frontend import FrontEndConfig, design
    from codegen.integer.frontend_ref import encode_clips, to_pcm16

    fe = design(FrontEndConfig(**config))
    out = []
    for start in range(0, len(clips), 32):
        out += encode_clips(fe, [to_pcm16(c) for c in clips[start : start + 32]])
    return np.stack(out)


def float_counts(clips: np.ndarray, bin_ms: int = 10) -> np.ndarray:
    """(N, T, 32) spike counts of the float front end per ``bin_ms`` bin."""
    from pytrain.data.frontend import FrontEndConfig, encode_batch

    cfg = FrontEndConfig()
    per_bin = int(round(bin_ms / cfg.step_ms))
    n_steps = clips.shape[1] // cfg.samples_per_step
    counts = np.zeros((len(clips), n_steps, cfg.n_channels))
    for start in range(0, len(clips), 32):
        for i, (steps, channels) in enumerate(encode_batch(list(clips[start : start + 32]), cfg)):
            np.add.at(counts[start + i], (steps, channels), 1)
    t = n_steps // per_bin
    return counts[:, : t * per_bin].reshape(len(clips), t, per_bin, cfg.n_channels).sum(axis=2)


def log_mel(clips: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """(N, T, 32) log mel power: 25 ms window, 10 ms hop, 32 bands from 100 to 7600 Hz (librosa)."""
    import librosa

    out = []
    for clip in clips:
        mel = librosa.feature.melspectrogram(y=np.asarray(clip, np.float32), sr=sample_rate, n_fft=400,
                                             hop_length=sample_rate // 100, n_mels=32, fmin=100.0, fmax=7600.0,
                                             center=False)
        out.append(np.log(mel + 1e-6).T)
    return np.stack(out)


def pooled(features: np.ndarray, segments: int) -> np.ndarray:
    """(N, T, C) -> (N, segments * C): each of ``segments`` equal stretches of time averaged (the tail dropped)."""
    n, t, c = features.shape
    length = t // segments
    return features[:, : length * segments].reshape(n, segments, length, c).mean(axis=2).reshape(n, -1)


def fit_and_score(x: np.ndarray, labels: np.ndarray, is_test: np.ndarray) -> int:
    """Correct predictions on the test rows of a standardised logistic regression fitted on the others."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; the iteration budget is fixed
        clf.fit(x[~is_test], labels[~is_test])
    return int(np.sum(clf.predict(x[is_test]) == labels[is_test]))


def probe_front_ends(per_voice: int = 4, segments: tuple[int, ...] = (10, 1), seed: int = 0,
                     jobs: int = 1) -> list[ProbeRow]:
    """The probe table: every front end at every pooling."""
    clips, labels, is_test = synthesize(per_voice, seed, jobs)
    representations = {"integer front end (counts)": integer_counts(clips),
                       "integer front end, unpooled (counts)": integer_counts(clips, pool_bins=1),
                       "float front end (counts)": float_counts(clips), "float log-mel (librosa)": log_mel(clips)}
    rows = []
    for name, feats in representations.items():
        for s in segments:
            x = pooled(feats.astype(np.float64), s)
            rows.append(ProbeRow(name, s, x.shape[1], int((~is_test).sum()), int(is_test.sum()),
                                 fit_and_score(x, labels, is_test)))
    return rows
