"""The offline default dataset: spoken digits synthesised with espeak-ng, English and German, as spikes.

20 classes in SHD's label order (0-9 English "zero".."nine", 10-19 German "null".."neun"). A "speaker"
is an espeak-ng voice variant (m1..m7, f1..f5); each utterance draws its own speed, pitch, amplitude
and (for English) accent, then is augmented with a random gain, onset inside the clip window and
additive white noise at a random SNR. Train and test use disjoint variants, so the test split measures
generalisation to unheard voices. Clips are encoded by the integer front end (the one the generated C runs)
unless the float one is asked for; the test split's int16 PCM is kept too, for audio parity checks.

Synthetic speech is far easier than real speech: accuracies on this set say nothing about SHD.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from codegen.common.errors import UserError

from .encoding import Encoder, make_encoder

GENERATOR = __name__  # recorded in dataset.json
ENGLISH_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
GERMAN_WORDS = ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun")
CLASSES = ENGLISH_WORDS + GERMAN_WORDS  # SHD label order
# speaker id = index in this tuple: append new voices at the end only
VOICE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
                  "m8", "klatt", "klatt2", "klatt3", "Alex", "Andy", "Annie", "adam", "aunty", "belinda", "linda", "steph",
                  "david", "edward")
DEFAULT_TEST_VOICES = ("m7", "f5")
ENGLISH_ACCENTS = (
    "en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc",
)  # fmt: skip
GERMAN_VOICE = "de"  # espeak-ng has a single German accent
ESPEAK_SAMPLE_RATE = 22050
TRIM_LEVEL = 0.01  # |x| above this counts as speech when trimming espeak's leading/trailing silence
CLIPS_PER_TASK = 16  # clips synthesised and encoded together by one worker


@dataclass(frozen=True)
class SynthOptions:
    """What to synthesise; recorded in dataset.json so a build can be repeated exactly."""

    seed: int = 0
    per_voice: int = 8  # utterances per (word, voice)
    voices: tuple[str, ...] = VOICE_VARIANTS
    test_voices: tuple[str, ...] = DEFAULT_TEST_VOICES
    duration_s: float = 1.0  # fixed clip window; longer utterances are truncated
    speed_wpm: tuple[float, float] = (130.0, 210.0)  # espeak-ng -s, uniform
    pitch: tuple[float, float] = (20.0, 80.0)  # espeak-ng -p, uniform
    amplitude: tuple[float, float] = (60.0, 160.0)  # espeak-ng -a, uniform
    gain_db: tuple[float, float] = (-12.0, 0.0)  # uniform in dB, applied before the noise
    snr_db: tuple[float, float] = (20.0, 50.0)  # white noise relative to the utterance's power

    def validate(self) -> None:
        unknown = [v for v in self.voices if v not in VOICE_VARIANTS]
        if unknown:
            raise UserError(f"unknown voice(s) {', '.join(unknown)}; choose from {', '.join(VOICE_VARIANTS)}")
        outside = [v for v in self.test_voices if v not in self.voices]
        if outside:
            listed = ", ".join(outside)
            raise UserError(f"test voice(s) {listed} not among the selected voices: adjust --voices or --test-voices")
        if not self.test_voices:
            raise UserError("at least one test voice is needed")
        if set(self.voices) <= set(self.test_voices):
            raise UserError("every selected voice is a test voice: keep at least one voice for training")
        if self.per_voice < 1:
            raise UserError("--per-voice must be at least 1")


@dataclass(frozen=True)
class Utterance:
    """One sample of the grid: which word, which voice, which repetition."""

    label: int
    speaker: int  # index into VOICE_VARIANTS (stable whatever subset is built)
    repetition: int


def find_espeak() -> str:
    """Path of the espeak-ng binary, or a UserError telling how to install it."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise UserError("espeak-ng not found: install it with 'apt-get install -y espeak-ng'")
    return path


def deterministic_flags(espeak: str) -> list[str]:
    """``["-D"]`` where espeak-ng has it (1.52 and later), else ``[]``.

    From 1.52 on, espeak-ng seeds its noise generator from the clock unless run with -D, so the same
    arguments no longer give the same samples. Older versions are deterministic and reject -D.
    """
    probe = subprocess.run([espeak, "-D", "-q", "a"], capture_output=True, check=False)
    return ["-D"] if probe.returncode == 0 and b"invalid option" not in probe.stderr else []


def espeak_version(espeak: str) -> str:
    result = subprocess.run([espeak, "--version"], capture_output=True, check=False)
    return result.stdout.decode("utf-8", "replace").strip().splitlines()[0] if result.stdout else "unknown"


def utterance_grid(options: SynthOptions) -> list[Utterance]:
    """All samples, voice by voice (in VOICE_VARIANTS order), then word, then repetition."""
    return [
        Utterance(label, VOICE_VARIANTS.index(voice), rep)
        for voice in VOICE_VARIANTS
        if voice in options.voices
        for label in range(len(CLASSES))
        for rep in range(options.per_voice)
    ]


def utterance_rng(seed: int, utt: Utterance) -> np.random.Generator:
    """Random stream of one sample, derived from the master seed and the sample's grid position.

    Keyed by position rather than by list index, so a sample is identical in a subset build.
    """
    return np.random.default_rng(np.random.SeedSequence([seed, utt.speaker, utt.label, utt.repetition]))


def synthesize(espeak: Sequence[str], word: str, voice: str, speed: int, pitch: int, amplitude: int) -> np.ndarray:
    """Speak ``word`` with espeak-ng (``espeak``: binary and fixed flags); float32 samples at 22050 Hz."""
    from scipy.io import wavfile

    cmd = [*espeak, "-b", "1", "-v", voice, "-s", str(speed), "-p", str(pitch), "-a", str(amplitude), "--stdout"]
    # The text goes as UTF-8 bytes whatever the locale: "fünf" spelt any other way is mispronounced.
    result = subprocess.run(cmd + [word.encode("utf-8")], capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        reason = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UserError(f"espeak-ng failed for {word!r} with voice {voice}: {reason[0] if reason else 'no output'}")
    with warnings.catch_warnings():
        # Streamed output carries a placeholder length in its header; scipy warns, then reads all samples.
        warnings.simplefilter("ignore", wavfile.WavFileWarning)
        sr, samples = wavfile.read(io.BytesIO(result.stdout))
    if sr != ESPEAK_SAMPLE_RATE:
        raise UserError(f"espeak-ng produced {sr} Hz audio, expected {ESPEAK_SAMPLE_RATE} Hz")
    return samples.astype(np.float32) / 32768.0


def trim_silence(x: np.ndarray, level: float = TRIM_LEVEL) -> np.ndarray:
    """Drop leading and trailing samples with |x| <= level (all of x if nothing exceeds it)."""
    loud = np.flatnonzero(np.abs(x) > level)
    return x[loud[0] : loud[-1] + 1] if loud.size else x


def _uniform_int(rng: np.random.Generator, low_high: tuple[float, float]) -> int:
    return int(math.floor(rng.uniform(*low_high) + 0.5))


def render_utterance(espeak: Sequence[str], utt: Utterance, options: SynthOptions, sample_rate: int) -> np.ndarray:
    """Synthesise one sample and place it, augmented, in the fixed clip window (float64, ``sample_rate``)."""
    from .audiofile import resample

    rng = utterance_rng(options.seed, utt)
    # The order of the draws is part of the dataset's definition: append new draws at the end only.
    accent = ENGLISH_ACCENTS[int(rng.integers(len(ENGLISH_ACCENTS)))]
    speed = _uniform_int(rng, options.speed_wpm)
    pitch = _uniform_int(rng, options.pitch)
    amplitude = _uniform_int(rng, options.amplitude)
    gain = 10.0 ** (rng.uniform(*options.gain_db) / 20)
    snr_db = rng.uniform(*options.snr_db)
    onset_fraction = rng.uniform()

    language_voice = accent if utt.label < len(ENGLISH_WORDS) else GERMAN_VOICE
    voice = f"{language_voice}+{VOICE_VARIANTS[utt.speaker]}"
    speech = synthesize(espeak, CLASSES[utt.label], voice, speed, pitch, amplitude)
    speech = trim_silence(resample(speech.astype(np.float64), ESPEAK_SAMPLE_RATE, sample_rate)) * gain

    n_clip = int(math.floor(options.duration_s * sample_rate + 0.5))
    speech = speech[:n_clip]
    onset = int(math.floor(onset_fraction * (n_clip - speech.size + 1)))
    clip = np.zeros(n_clip)
    clip[onset : onset + speech.size] = speech
    signal_power = float(np.mean(speech * speech)) if speech.size else 0.0
    noise_rms = math.sqrt(signal_power / 10.0 ** (snr_db / 10))
    clip += noise_rms * rng.standard_normal(n_clip)
    return clip


Task = tuple[Sequence[str], Sequence[Utterance], SynthOptions, Encoder, frozenset]
Encoded = tuple[tuple[np.ndarray, np.ndarray], np.ndarray | None]  # (events, the test clip's int16 PCM or None)


def render_task(task: Task) -> list[Encoded]:
    """Worker: synthesise and encode a few utterances; keeps the PCM of test-voice utterances only."""
    espeak, utterances, options, encoder, test_speakers = task
    clips = [render_utterance(espeak, utt, options, encoder.sample_rate) for utt in utterances]
    events, pcm = encoder.encode(clips)
    return [(e, p if utt.speaker in test_speakers else None) for e, p, utt in zip(events, pcm, utterances)]


def _chunks(items: Sequence[Utterance], size: int) -> Iterator[Sequence[Utterance]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def render_all(
    espeak: Sequence[str], grid: Sequence[Utterance], options: SynthOptions, encoder: Encoder, jobs: int,
    test_speakers: frozenset = frozenset(),
) -> list[Encoded]:
    """Events (and test PCM) of every utterance in grid order, computed by ``jobs`` worker processes."""
    from tqdm import tqdm

    tasks = [(espeak, chunk, options, encoder, test_speakers) for chunk in _chunks(grid, CLIPS_PER_TASK)]
    results: list[Encoded] = []
    with tqdm(total=len(grid), unit="clip", desc="synth", disable=None) as bar:
        if jobs <= 1:
            outputs: Iterator = map(render_task, tasks)
            for out in outputs:
                results.extend(out)
                bar.update(len(out))
        else:
            import multiprocessing

            with multiprocessing.Pool(jobs) as pool:
                for out in pool.imap(render_task, tasks):
                    results.extend(out)
                    bar.update(len(out))
    return results


def build_synth_dataset(
    out: Path,
    options: SynthOptions = SynthOptions(),
    encoder: Encoder | None = None,
    *,
    jobs: int | None = None,
    force: bool = False,
) -> dict[str, int]:
    """Synthesise, encode (default: the integer front end) and write the dataset to ``out``; returns the sample
    count per split."""
    from codegen.common.atomic import staged_directory
    from codegen.common.version import __version__

    from .spikefile import FRONTEND_FILE, MAX_DURATION_S, DatasetMeta, SpikeSplit, spike_time_for_step, write_dataset

    encoder = encoder if encoder is not None else make_encoder()

    options.validate()
    if not 0 < options.duration_s <= MAX_DURATION_S:
        raise UserError(f"clip duration must be in (0, {MAX_DURATION_S}] s")
    espeak = find_espeak()
    espeak_cmd = [espeak, *deterministic_flags(espeak)]
    jobs = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
    grid = utterance_grid(options)
    test_speakers = {VOICE_VARIANTS.index(v) for v in options.test_voices}

    with staged_directory(Path(out), force=force) as staging:
        encoded = render_all(espeak_cmd, grid, options, encoder, jobs, frozenset(test_speakers))
        splits = {}
        for name, wanted in (("train", False), ("test", True)):
            chosen = [i for i, utt in enumerate(grid) if (utt.speaker in test_speakers) == wanted]
            splits[name] = SpikeSplit(
                # float16 like the file: write_split_h5 casts to float16 anyway, this only saves memory.
                times=[spike_time_for_step(encoded[i][0][0], encoder.step_s).astype(np.float16) for i in chosen],
                units=[encoded[i][0][1] for i in chosen],
                labels=np.array([grid[i].label for i in chosen], dtype=np.int64),
                speakers=np.array([grid[i].speaker for i in chosen], dtype=np.int64),
            )
        counts = {name: len(split) for name, split in splits.items()}
        audio = {}
        if encoder.frontend is not None:
            test = [i for i, utt in enumerate(grid) if utt.speaker in test_speakers]
            audio["test"] = ([encoded[i][1] for i in test], splits["test"].labels, encoder.sample_rate)
        meta = DatasetMeta(
            name="espeak-digits",
            n_channels=encoder.n_channels,
            classes=list(CLASSES),
            duration_s=options.duration_s,
            speakers={str(VOICE_VARIANTS.index(v)): f"espeak-ng variant {v}" for v in options.voices},
            source={
                "generator": GENERATOR,
                "version": __version__,
                "espeak_ng": espeak_version(espeak),
                "espeak_flags": espeak_cmd[1:],
                "seed": options.seed,
                "options": dataclasses.asdict(options),
                "english_accents": list(ENGLISH_ACCENTS),
                "german_voice": GERMAN_VOICE,
                "counts": counts,
            },
            front_end=encoder.describe(FRONTEND_FILE if encoder.frontend is not None else None),
        )
        write_dataset(staging, meta, splits, frontend=encoder.frontend, audio=audio)
    return counts
