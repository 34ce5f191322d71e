"""The hard offline benchmark: spoken English digits that behave like real recordings, as an audio corpus.

Where the easy dataset (synth.py) is clean synthetic speech, this corpus puts every utterance through what
a cheap device in a real room does to it, with the field's libraries:

1. espeak-ng speaks the digit with the speaker's voice variant and accent; the speaker has its own base
   speaking rate and pitch, and every utterance varies both around them;
2. room reverberation (pyroomacoustics: a shoebox room of random size and RT60, random source and
   microphone positions), for most utterances;
3. the utterance is placed at a random time in a fixed 2 s window (random leading and trailing silence);
4. noise over the whole window at 0..20 dB SNR relative to the speech: white, pink (audiomentations'
   coloured-noise generator) or babble (other voices saying other words);
5. a cheap microphone or telephone line (audiomentations): a random 7-band EQ, a high-pass at 100..400 Hz
   and a low-pass at 2.8..3.8 kHz; then resampled to 8 kHz (soxr, through librosa);
6. a level from quiet (peak -40 dBFS) to clipping (peak up to +6 dBFS before the converter clips it),
   stored as 16-bit PCM FLAC (soundfile).

A "speaker" is one espeak-ng voice variant; folds are disjoint groups of speakers (leave-voices-out), listed
in ``corpus.json``. Files are named ``<label>_<speaker>_<n>.flac``, so ``delrec-edge data wav`` reads the
folder directly (``--fold K`` takes the test speakers of fold K from the manifest). ``clips.csv`` lists what
was done to every clip. Everything follows from the seed: the same seed gives the same files.

Synthetic speech stays easier than real speech, however it is degraded: accuracies on this corpus are a
benchmark of robustness to recording conditions and unheard voices, never a real-speech result.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from codegen.common.errors import UserError

from .synth import ENGLISH_ACCENTS, ENGLISH_WORDS, _uniform_int, espeak_version, synthesize, trim_silence

GENERATOR = __name__  # recorded in corpus.json
CORPUS_FORMAT = "delrec-edge-corpus"
CORPUS_VERSION = 1
MANIFEST_FILE = "corpus.json"
CLIPS_FILE = "clips.csv"
AUDIO_SUFFIX = ".flac"
WORK_RATE = 16000  # rate of the acoustic simulation (room, noise, microphone) before the 8 kHz converter
ESPEAK_RATE = 22050
# Speakers: espeak-ng voice variants that sound human (no whisper, croak or robots); id = index here.
SPEAKER_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "Alex", "Andy", "Annie", "adam", "aunty", "belinda", "linda",
    "steph", "david", "edward", "john", "max", "paul", "rob", "robert", "travis", "victor", "norbert",
    "quincy", "shelby", "zac", "grandma", "grandpa", "benjamin", "caleb",
)  # fmt: skip
# Babble: other voices saying other words, mixed from several talkers.
BABBLE_VARIANTS = ("f2", "m3", "klatt5", "klatt6", "Lee", "Mike", "iven", "anika", "Jacky", "michel")
BABBLE_WORDS = (
    "hello", "table", "water", "morning", "yellow", "coffee", "window", "garden", "people", "music", "paper",
    "river", "doctor", "station", "market", "purple", "kitchen", "summer", "letter", "camera", "listen", "open",
)  # fmt: skip
NOISE_KINDS = ("white", "pink", "babble")
PINK_DECAY_DB = -3.01  # dB per octave (audiomentations' convention)
BABBLE_TALKERS = (3, 6)


@dataclass(frozen=True)
class HardOptions:
    """What to generate; recorded in corpus.json so a build can be repeated exactly."""

    seed: int = 0
    speakers: int = 32  # the first N of SPEAKER_VARIANTS
    per_speaker: int = 10  # utterances per (digit, speaker)
    folds: int = 4  # disjoint groups of test speakers
    sample_rate: int = 8000  # the recording's rate
    duration_s: float = 2.0
    speed_wpm: tuple[float, float] = (120.0, 200.0)  # speaker base rate (espeak-ng -s), uniform
    speed_jitter: float = 0.15  # per utterance: base * (1 +- jitter)
    pitch: tuple[float, float] = (20.0, 80.0)  # speaker base pitch (espeak-ng -p), uniform
    pitch_jitter: float = 12.0  # per utterance: base +- jitter
    reverb_p: float = 0.8
    rt60_s: tuple[float, float] = (0.15, 0.8)
    snr_db: tuple[float, float] = (0.0, 20.0)
    highpass_hz: tuple[float, float] = (100.0, 400.0)
    lowpass_hz: tuple[float, float] = (2800.0, 3800.0)
    eq_db: float = 6.0  # 7-band EQ gains in +-eq_db
    peak_dbfs: tuple[float, float] = (-40.0, 6.0)  # level before the converter; above 0 it clips
    babble_tracks: int = 32  # babble recordings made once per corpus; each clip takes one at a random offset

    def validate(self) -> None:
        if not 2 <= self.speakers <= len(SPEAKER_VARIANTS):
            raise UserError(f"--speakers must be between 2 and {len(SPEAKER_VARIANTS)}, got {self.speakers}")
        if not 2 <= self.folds <= self.speakers // 2:
            raise UserError(f"--folds must be between 2 and half the speakers ({self.speakers // 2}), got {self.folds}")
        if self.per_speaker < 1:
            raise UserError("--per-speaker must be at least 1")
        if self.sample_rate not in (8000, 16000):
            raise UserError(f"--sample-rate must be 8000 or 16000, got {self.sample_rate}")
        if not 0.5 <= self.duration_s <= 2.0:
            raise UserError("--duration must be between 0.5 and 2 s")
        if self.babble_tracks < 1:
            raise UserError("babble_tracks must be at least 1")


@dataclass(frozen=True)
class Speaker:
    """A voice: an espeak-ng variant with its own accent, base speaking rate and base pitch."""

    name: str
    accent: str
    speed_wpm: float
    pitch: float


@dataclass(frozen=True)
class Clip:
    label: int
    speaker: int
    repetition: int

    def file_name(self, speakers: Sequence[Speaker]) -> str:
        return f"{ENGLISH_WORDS[self.label]}_{speakers[self.speaker].name}_{self.repetition}{AUDIO_SUFFIX}"


def make_speakers(options: HardOptions) -> list[Speaker]:
    """The speakers, each drawn from its own seeded stream (a speaker does not depend on the others)."""
    out = []
    for i, name in enumerate(SPEAKER_VARIANTS[: options.speakers]):
        rng = np.random.default_rng(np.random.SeedSequence([options.seed, 1, i]))
        accent = ENGLISH_ACCENTS[int(rng.integers(len(ENGLISH_ACCENTS)))]
        out.append(Speaker(name, accent, float(rng.uniform(*options.speed_wpm)), float(rng.uniform(*options.pitch))))
    return out


def make_folds(options: HardOptions) -> list[list[str]]:
    """Speakers in a seeded random order, cut into ``folds`` groups of (nearly) equal size."""
    names = list(SPEAKER_VARIANTS[: options.speakers])
    order = np.random.default_rng(np.random.SeedSequence([options.seed, 2])).permutation(len(names))
    return [sorted((names[i] for i in part), key=names.index) for part in np.array_split(order, options.folds)]


def clip_grid(options: HardOptions) -> list[Clip]:
    return [
        Clip(label, speaker, rep)
        for speaker in range(options.speakers)
        for label in range(len(ENGLISH_WORDS))
        for rep in range(options.per_speaker)
    ]


# ----------------------------------------------------------------------------------------------- signals


def speak(espeak: Sequence[str], word: str, voice: str, speed: int, pitch: int, amplitude: int) -> np.ndarray:
    """One word from espeak-ng, trimmed, at WORK_RATE (float64)."""
    import librosa

    x = synthesize(espeak, word, voice, speed, pitch, amplitude).astype(np.float64)
    return trim_silence(librosa.resample(x, orig_sr=ESPEAK_RATE, target_sr=WORK_RATE))


def room_impulse_response(rng: np.random.Generator, rt60: float) -> np.ndarray:
    """Impulse response of a random shoebox room with reverberation time ``rt60`` (image source method)."""
    import pyroomacoustics as pra

    dims = rng.uniform([3.0, 3.0, 2.4], [9.0, 7.0, 3.6])
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=WORK_RATE, materials=pra.Material(absorption), max_order=min(int(max_order), 20))
    room.add_source(rng.uniform([0.5, 0.5, 1.0], dims - 0.5))
    room.add_microphone(rng.uniform([0.5, 0.5, 0.8], dims - 0.5))
    room.compute_rir()
    return np.asarray(room.rir[0][0], dtype=np.float64)


def mix_at_snr(signal_rms: float, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``noise`` scaled so that ``signal_rms / rms(noise)`` is ``snr_db`` (audiomentations' definition)."""
    from audiomentations.core.utils import calculate_desired_noise_rms, calculate_rms

    noise_rms = float(calculate_rms(noise.astype(np.float32)))
    return noise * (calculate_desired_noise_rms(signal_rms, snr_db) / noise_rms) if noise_rms > 0 else noise


def babble_bank(espeak: Sequence[str], options: HardOptions, n_samples: int) -> np.ndarray:
    """``babble_tracks`` recordings of several talkers saying BABBLE_WORDS at once, each normalised to RMS 1."""
    bank = np.zeros((options.babble_tracks, n_samples))
    for k in range(options.babble_tracks):
        rng = np.random.default_rng(np.random.SeedSequence([options.seed, 3, k]))
        for _ in range(int(rng.integers(BABBLE_TALKERS[0], BABBLE_TALKERS[1] + 1))):
            variant = BABBLE_VARIANTS[int(rng.integers(len(BABBLE_VARIANTS)))]
            accent = ENGLISH_ACCENTS[int(rng.integers(len(ENGLISH_ACCENTS)))]
            at = int(rng.integers(0, n_samples // 4))
            while at < n_samples:
                word = BABBLE_WORDS[int(rng.integers(len(BABBLE_WORDS)))]
                w = speak(espeak, word, f"{accent}+{variant}", _uniform_int(rng, (130, 200)),
                          _uniform_int(rng, (20, 80)), 100)
                w = w[: n_samples - at]
                bank[k, at : at + w.size] += w * 10 ** (rng.uniform(-6, 0) / 20)
                at += w.size + int(rng.integers(0, WORK_RATE // 5))
        rms = math.sqrt(float(np.mean(bank[k] ** 2)))
        if rms > 0:
            bank[k] /= rms
    return bank


def render_clip(espeak: Sequence[str], clip: Clip, speakers: Sequence[Speaker], options: HardOptions,
                babble: np.ndarray) -> tuple[np.ndarray, dict]:
    """One recording as int16 at ``options.sample_rate`` and the record of what was done to it."""
    import random

    import audiomentations as am
    import librosa
    from audiomentations.augmentations.add_color_noise import generate_decaying_white_noise
    from audiomentations.core.utils import calculate_rms

    seq = np.random.SeedSequence([options.seed, 4, clip.speaker, clip.label, clip.repetition])
    rng = np.random.default_rng(seq)
    # audiomentations draws from the global generators: seed both from this clip's stream
    random.seed(int(seq.generate_state(1)[0]))
    np.random.seed(int(seq.generate_state(2)[1]))

    spk = speakers[clip.speaker]
    # The order of the draws is part of the corpus's definition: append new draws at the end only.
    speed = _uniform_int(rng, (spk.speed_wpm * (1 - options.speed_jitter), spk.speed_wpm * (1 + options.speed_jitter)))
    pitch = int(np.clip(_uniform_int(rng, (spk.pitch - options.pitch_jitter, spk.pitch + options.pitch_jitter)), 0, 99))
    amplitude = _uniform_int(rng, (80, 150))
    reverb = bool(rng.uniform() < options.reverb_p)
    rt60 = float(rng.uniform(*options.rt60_s))
    onset_fraction = float(rng.uniform())
    noise_kind = NOISE_KINDS[int(rng.integers(len(NOISE_KINDS)))]
    snr_db = float(rng.uniform(*options.snr_db))
    babble_track, babble_shift = int(rng.integers(babble.shape[0])), int(rng.integers(babble.shape[1]))
    peak_dbfs = float(rng.uniform(*options.peak_dbfs))

    speech = speak(espeak, ENGLISH_WORDS[clip.label], f"{spk.accent}+{spk.name}", speed, pitch, amplitude)
    speech_rms = float(calculate_rms(speech.astype(np.float32)))
    if reverb:
        wet = np.convolve(speech, room_impulse_response(rng, rt60))
        speech = wet * (speech_rms / max(float(calculate_rms(wet.astype(np.float32))), 1e-12))

    n_work = int(math.floor(options.duration_s * WORK_RATE + 0.5))
    speech = speech[:n_work]
    onset = int(math.floor(onset_fraction * (n_work - speech.size + 1)))
    window = np.zeros(n_work)
    window[onset : onset + speech.size] = speech
    if noise_kind == "babble":
        noise = np.roll(babble[babble_track], babble_shift)
    else:
        beta = 0.0 if noise_kind == "white" else PINK_DECAY_DB
        noise = generate_decaying_white_noise(n_work, beta, WORK_RATE, n_fft=256).astype(np.float64)
    mixed = (window + mix_at_snr(speech_rms, noise, snr_db)).astype(np.float32)

    device = am.Compose([
        am.SevenBandParametricEQ(min_gain_db=-options.eq_db, max_gain_db=options.eq_db, p=1.0),
        am.HighPassFilter(min_cutoff_freq=options.highpass_hz[0], max_cutoff_freq=options.highpass_hz[1], p=1.0),
        am.LowPassFilter(min_cutoff_freq=options.lowpass_hz[0], max_cutoff_freq=options.lowpass_hz[1], p=1.0),
    ])  # fmt: skip
    recorded = device(samples=mixed, sample_rate=WORK_RATE).astype(np.float64)
    recorded = librosa.resample(recorded, orig_sr=WORK_RATE, target_sr=options.sample_rate)
    peak = float(np.max(np.abs(recorded)))
    if peak > 0:
        recorded *= 10 ** (peak_dbfs / 20) / peak
    pcm = np.floor(np.clip(recorded, -1.0, 32767 / 32768) * 32768 + 0.5).astype(np.int16)
    record = {
        "speed_wpm": speed, "pitch": pitch, "amplitude": amplitude, "rt60_s": round(rt60, 3) if reverb else None,
        "onset_s": round(onset / WORK_RATE, 4), "speech_s": round(speech.size / WORK_RATE, 4), "noise": noise_kind,
        "snr_db": round(snr_db, 2), "peak_dbfs": round(peak_dbfs, 2),
        "clipped": int(np.count_nonzero(np.abs(recorded) >= 1.0)),
    }
    return pcm, record


Task = tuple[Sequence[str], Sequence[Clip], Sequence[Speaker], HardOptions, np.ndarray, Path]


def render_task(task: Task) -> list[dict]:
    """Worker: render a few clips and write them; returns their records."""
    import soundfile

    espeak, clips, speakers, options, babble, folder = task
    records = []
    for clip in clips:
        pcm, record = render_clip(espeak, clip, speakers, options, babble)
        name = clip.file_name(speakers)
        buffer = io.BytesIO()
        soundfile.write(buffer, pcm, options.sample_rate, format="FLAC", subtype="PCM_16")
        (folder / name).write_bytes(buffer.getvalue())
        records.append({"file": name, "label": ENGLISH_WORDS[clip.label], "speaker": speakers[clip.speaker].name,
                        "take": clip.repetition, **record})
    return records


def _chunks(items: Sequence[Clip], size: int) -> Iterator[Sequence[Clip]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def build_hard_corpus(out: Path, options: HardOptions = HardOptions(), *, jobs: int | None = None,
                      force: bool = False) -> dict:
    """Generate the corpus into ``out`` (written through a staged directory); returns the manifest."""
    from tqdm import tqdm

    from codegen.common.atomic import staged_directory, write_json_atomic
    from codegen.common.version import __version__

    from .synth import deterministic_flags, find_espeak

    options.validate()
    espeak = find_espeak()
    espeak_cmd = [espeak, *deterministic_flags(espeak)]
    jobs = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
    speakers = make_speakers(options)
    grid = clip_grid(options)
    with staged_directory(Path(out), force=force) as staging:
        with tqdm(total=len(grid) + options.babble_tracks, unit="clip", desc="hard corpus", disable=None) as bar:
            babble = babble_bank(espeak_cmd, options, int(math.floor(options.duration_s * WORK_RATE + 0.5)))
            bar.update(options.babble_tracks)
            tasks = [(espeak_cmd, chunk, speakers, options, babble, staging) for chunk in _chunks(grid, 16)]
            records: list[dict] = []
            if jobs == 1:
                for task in tasks:
                    records += render_task(task)
                    bar.update(len(task[1]))
            else:
                import multiprocessing

                with multiprocessing.Pool(jobs) as pool:
                    for done in pool.imap(render_task, tasks):
                        records += done
                        bar.update(len(done))
        with open(staging / CLIPS_FILE, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
        manifest = {
            "format": CORPUS_FORMAT,
            "version": CORPUS_VERSION,
            "name": "espeak-digits-hard",
            "sample_rate": options.sample_rate,
            "duration_s": options.duration_s,
            "classes": list(ENGLISH_WORDS),
            "speakers": {s.name: dataclasses.asdict(s) for s in speakers},
            "folds": make_folds(options),
            "clips": len(records),
            "source": {"generator": GENERATOR, "version": __version__, "espeak_ng": espeak_version(espeak),
                       "espeak_flags": espeak_cmd[1:], "options": dataclasses.asdict(options)},
        }
        write_json_atomic(staging / MANIFEST_FILE, manifest)
    return manifest


def read_manifest(root: Path) -> dict | None:
    """``corpus.json`` of a corpus folder, or None when the folder has none; UserError when it is malformed."""
    path = Path(root) / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON: {exc}") from None
    folds = obj.get("folds") if isinstance(obj, dict) else None
    if obj.get("format") != CORPUS_FORMAT or not isinstance(folds, list) or not all(
        isinstance(f, list) and f and all(isinstance(s, str) for s in f) for f in folds
    ):
        raise UserError(f"{path} is not a delrec-edge corpus manifest (format {CORPUS_FORMAT}, a list of folds)")
    return obj


def fold_test_speakers(root: Path, fold: int) -> list[str]:
    """The test speakers of fold ``fold`` from the corpus manifest in ``root``."""
    manifest = read_manifest(root)
    if manifest is None:
        raise UserError(f"--fold needs {Path(root) / MANIFEST_FILE} (a corpus built by 'delrec-edge data hard')")
    folds = manifest["folds"]
    if not 0 <= fold < len(folds):
        raise UserError(f"--fold must be between 0 and {len(folds) - 1} for {root}, got {fold}")
    return list(folds[fold])
