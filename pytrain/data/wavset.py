"""Spike dataset from a user's folder of WAV files.

Two layouts are accepted::

    A) ROOT/<class>/*.wav                       one sub-folder per class (WAVs anywhere below it)
    B) ROOT/<label>_<speaker>_<n>.wav           one flat folder, class and speaker in the name

In layout A a file whose name follows pattern B takes its speaker from the name (its class is still
the folder); any other file counts as a speaker of its own. Every clip is encoded with the audio front
end and the dataset is written in the SHD layout (spikefile.py), through a staged directory.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from codegen.common.errors import UserError

from .frontend import FrontEndConfig

GENERATOR = __name__  # recorded in dataset.json
# label, speaker and take number: the label may contain underscores, the speaker may not.
NAME_PATTERN = re.compile(r"^(?P<label>.+)_(?P<speaker>[^_]+)_(?P<n>\d+)$")
DURATION_GRANULE_MS = 10  # dataset duration is the longest clip rounded up to this
ENCODE_BATCH = 16
UINT16_LIMIT = 65536  # clips encoded together (see frontend.encode_batch)


@dataclass(frozen=True)
class WavFile:
    path: Path
    label: str
    speaker: str


def is_wav(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".wav" and not path.name.startswith(".")


def _visible_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan_class_folders(root: Path, class_dirs: Sequence[Path]) -> list[WavFile]:
    """Layout A: the class is the folder; the speaker comes from a pattern-B name, else from the file."""
    files = []
    for class_dir in class_dirs:
        wavs = sorted(p for p in class_dir.rglob("*") if is_wav(p))
        if not wavs:
            raise UserError(f"class folder {class_dir} contains no .wav files")
        for path in wavs:
            match = NAME_PATTERN.match(path.stem)
            speaker = match["speaker"] if match else str(path.relative_to(root))
            files.append(WavFile(path, class_dir.name, speaker))
    return files


def scan_flat_folder(wavs: Sequence[Path]) -> list[WavFile]:
    """Layout B: class and speaker from names ``<label>_<speaker>_<n>.wav``."""
    files = []
    for path in wavs:
        match = NAME_PATTERN.match(path.stem)
        if not match:
            raise UserError(f"{path}: file name does not match <label>_<speaker>_<n>.wav (e.g. yes_alice_3.wav)")
        files.append(WavFile(path, match["label"], match["speaker"]))
    return files


def scan(root: Path) -> list[WavFile]:
    """Find the WAV files and their class and speaker; UserError for anything that does not fit a layout."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"WAV folder {root} does not exist")
    class_dirs = _visible_dirs(root)
    top_wavs = sorted(p for p in root.iterdir() if is_wav(p))
    if class_dirs and top_wavs:
        raise UserError(
            f"{root} mixes class sub-folders with WAV files at the top level ({top_wavs[0].name}); use one layout"
        )
    if class_dirs:
        return scan_class_folders(root, class_dirs)
    if not top_wavs:
        raise UserError(f"no .wav files found in {root}")
    return scan_flat_folder(top_wavs)


def natural_key(name: str) -> tuple:
    """Sort key putting "2" before "10" while still ordering words alphabetically."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part)


def split_by_speaker(files: Sequence[WavFile], test_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean "is test" per file, every speaker wholly in one split.

    Speakers are taken in random order into the test split until it holds at least ``test_fraction`` of
    the files; one speaker at least goes to each split.
    """
    speakers = sorted({f.speaker for f in files}, key=natural_key)
    if len(speakers) < 2:
        raise UserError(
            f"--split speaker needs at least 2 speakers, found {len(speakers)} ({speakers[0]}); use --split random"
        )
    counts = {s: 0 for s in speakers}
    for f in files:
        counts[f.speaker] += 1
    order = [speakers[i] for i in rng.permutation(len(speakers))]
    test_speakers: set[str] = set()
    n_test = 0
    for speaker in order[:-1]:  # the last one always stays in train
        if n_test >= test_fraction * len(files) and test_speakers:
            break
        test_speakers.add(speaker)
        n_test += counts[speaker]
    return np.array([f.speaker in test_speakers for f in files])


def split_random(files: Sequence[WavFile], test_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean "is test" per file, stratified: each class gives floor(n * fraction + 0.5) files to test.

    A class with at least 2 files keeps at least one in each split.
    """
    is_test = np.zeros(len(files), dtype=bool)
    by_class: dict[str, list[int]] = {}
    for i, f in enumerate(files):
        by_class.setdefault(f.label, []).append(i)
    for indices in by_class.values():
        n = len(indices)
        n_test = int(math.floor(n * test_fraction + 0.5))
        if n >= 2:
            n_test = min(max(n_test, 1), n - 1)
        else:
            n_test = 0
        chosen = rng.permutation(n)[:n_test]
        is_test[[indices[j] for j in chosen]] = True
    return is_test


def clip_duration_s(n_samples: int, sample_rate: int, max_duration_s: float) -> float:
    """Duration of ``n_samples`` rounded up to a whole number of 10 ms, at most ``max_duration_s``."""
    granules = -(-n_samples * 1000 // (sample_rate * DURATION_GRANULE_MS))  # ceiling, in integers
    max_ms = int(math.floor(max_duration_s * 1000 + 0.5))
    return min(granules * DURATION_GRANULE_MS, max_ms) / 1000


def encode_files(files: Sequence[WavFile], cfg: FrontEndConfig, max_samples: int) -> tuple[list, list[int], list[Path]]:
    """Load (truncating to ``max_samples``) and encode every file.

    Returns per file the spikes (int32 steps, uint16 channels), the original length in samples, and
    the list of files that were truncated.
    """
    from tqdm import tqdm

    from .audiofile import load_audio
    from .frontend import encode_batch

    spikes: list[tuple[np.ndarray, np.ndarray]] = []
    lengths: list[int] = []
    truncated: list[Path] = []
    with tqdm(total=len(files), unit="file", desc="encode", disable=None) as bar:
        for start in range(0, len(files), ENCODE_BATCH):
            clips = []
            for f in files[start : start + ENCODE_BATCH]:
                audio = load_audio(f.path, cfg.sample_rate)
                lengths.append(audio.size)
                if audio.size > max_samples:
                    truncated.append(f.path)
                clips.append(audio[:max_samples])
            for steps, channels in encode_batch(clips, cfg):
                spikes.append((steps.astype(np.int32), channels.astype(np.uint16)))
            bar.update(len(clips))
    return spikes, lengths, truncated


def build_wav_dataset(
    root: Path,
    out: Path,
    *,
    split: str = "speaker",
    test_fraction: float = 0.2,
    seed: int = 0,
    force: bool = False,
    cfg: FrontEndConfig = FrontEndConfig(),
) -> dict[str, int]:
    """Encode a WAV folder into a spike dataset at ``out``; returns the sample count per split."""
    from codegen.common.atomic import staged_directory
    from codegen.common.version import __version__

    from .spikefile import MAX_DURATION_S, DatasetMeta, SpikeSplit, spike_time_for_step, write_dataset

    if split not in ("speaker", "random"):
        raise UserError(f"unknown split {split!r}: use 'speaker' or 'random'")
    if not 0 < test_fraction < 1:
        raise UserError(f"--test-fraction must be between 0 and 1, got {test_fraction}")
    root = Path(root)
    files = scan(root)
    classes = sorted({f.label for f in files}, key=natural_key)
    speakers = sorted({f.speaker for f in files}, key=natural_key)
    if max(len(classes), len(speakers)) > UINT16_LIMIT:
        raise UserError(f"more than {UINT16_LIMIT} classes or speakers: the SHD layout stores their ids as uint16")
    rng = np.random.default_rng(seed)
    is_test = (split_by_speaker if split == "speaker" else split_random)(files, test_fraction, rng)
    if is_test.all() or not is_test.any():
        raise UserError(f"too few files ({len(files)}) to make both a train and a test split")
    for name, members in (("train", ~is_test), ("test", is_test)):
        missing = set(classes) - {f.label for f, m in zip(files, members) if m}
        if missing:
            names = ", ".join(sorted(missing, key=natural_key))
            print(f"warning: the {name} split has no samples of class(es) {names}", file=sys.stderr)

    max_samples = int(math.floor(MAX_DURATION_S * cfg.sample_rate + 0.5))
    with staged_directory(Path(out), force=force) as staging:
        spikes, lengths, truncated = encode_files(files, cfg, max_samples)
        if truncated:
            n, example = len(truncated), truncated[0]
            print(f"warning: {n} clip(s) longer than {MAX_DURATION_S:g} s truncated (e.g. {example})", file=sys.stderr)
        duration_s = clip_duration_s(max(lengths), cfg.sample_rate, MAX_DURATION_S)

        label_of = {c: i for i, c in enumerate(classes)}
        speaker_of = {s: i for i, s in enumerate(speakers)}
        splits = {}
        for name, members in (("train", ~is_test), ("test", is_test)):
            chosen = np.flatnonzero(members)
            splits[name] = SpikeSplit(
                times=[spike_time_for_step(spikes[i][0], cfg.step_s).astype(np.float16) for i in chosen],
                units=[spikes[i][1] for i in chosen],
                labels=np.array([label_of[files[i].label] for i in chosen], dtype=np.int64),
                speakers=np.array([speaker_of[files[i].speaker] for i in chosen], dtype=np.int64),
            )
        counts = {name: len(s) for name, s in splits.items()}
        meta = DatasetMeta(
            name=root.resolve().name or "wav",
            n_channels=cfg.n_channels,
            classes=classes,
            duration_s=duration_s,
            speakers={str(i): s for i, s in enumerate(speakers)},
            source={
                "generator": GENERATOR,
                "version": __version__,
                "root": str(root.resolve()),
                "split": split,
                "test_fraction": test_fraction,
                "seed": seed,
                "front_end": dataclasses.asdict(cfg),
                "truncated_files": len(truncated),
                "counts": counts,
            },
        )
        write_dataset(staging, meta, splits)
    return counts
