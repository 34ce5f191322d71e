"""Spike dataset from a user's folder of audio files (WAV, FLAC or OGG/Vorbis).

Two layouts are accepted::

    A) ROOT/<class>/*.wav                       one sub-folder per class (files anywhere below it)
    B) ROOT/<label>_<speaker>_<n>.wav           one flat folder, class and speaker in the name

(``.flac``, ``.ogg`` and ``.oga`` likewise). In layout A a file whose name follows pattern B takes its
speaker from the name (its class is still the folder); any other file counts as a speaker of its own.
The front end (the integer one unless the float one is asked for) follows the recordings' sample rate
(:func:`pytrain.data.encoding.encoder_for_rate` of the lowest rate among the files). Every clip is encoded
with it and the dataset is written in the SHD layout (spikefile.py), with the test split's int16 PCM,
through a staged directory. A corpus with a manifest of folds (``data hard``) can be
split by fold: the fold's speakers are the test split.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from codegen.common.errors import UserError

from .encoding import KINDS, Encoder

GENERATOR = __name__  # recorded in dataset.json
# label, speaker and take number: the label may contain underscores, the speaker may not.
NAME_PATTERN = re.compile(r"^(?P<label>.+)_(?P<speaker>[^_]+)_(?P<n>\d+)$")
DURATION_GRANULE_MS = 10  # dataset duration is the longest clip rounded up to this
ENCODE_BATCH = 16  # clips encoded together
UINT16_LIMIT = 65536


@dataclass(frozen=True)
class WavFile:
    path: Path
    label: str
    speaker: str


def is_wav(path: Path) -> bool:
    """Any audio file the reader decodes (the name is historical: FLAC and OGG count too)."""
    from .audiofile import is_audio_file

    return is_audio_file(path)


def _visible_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan_class_folders(root: Path, class_dirs: Sequence[Path]) -> list[WavFile]:
    """Layout A: the class is the folder; the speaker comes from a pattern-B name, else from the file."""
    files = []
    for class_dir in class_dirs:
        wavs = sorted(p for p in class_dir.rglob("*") if is_wav(p))
        if not wavs:
            raise UserError(f"class folder {class_dir} contains no audio files (.wav, .flac, .ogg)")
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
            raise UserError(f"{path}: file name does not match <label>_<speaker>_<n>{path.suffix} (e.g. yes_alice_3.wav)")
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
            f"{root} mixes class sub-folders with audio files at the top level ({top_wavs[0].name}); use one layout"
        )
    if class_dirs:
        return scan_class_folders(root, class_dirs)
    if not top_wavs:
        raise UserError(f"no audio files (.wav, .flac, .ogg) found in {root}")
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


def encode_files(files: Sequence[WavFile], encoder: Encoder, max_samples: int):
    """Load (truncating to ``max_samples``) and encode every file.

    Returns per file the events (int32 steps, uint16 channels), the original length in samples, the int16
    PCM the integer front end heard (None for the float one), and the list of files that were truncated.
    """
    from tqdm import tqdm

    from .audiofile import load_audio

    spikes: list[tuple[np.ndarray, np.ndarray]] = []
    pcm: list[np.ndarray | None] = []
    lengths: list[int] = []
    truncated: list[Path] = []
    with tqdm(total=len(files), unit="file", desc="encode", disable=None) as bar:
        for start in range(0, len(files), ENCODE_BATCH):
            clips = []
            for f in files[start : start + ENCODE_BATCH]:
                audio = load_audio(f.path, encoder.sample_rate)
                lengths.append(audio.size)
                if audio.size > max_samples:
                    truncated.append(f.path)
                clips.append(audio[:max_samples])
            events, heard = encoder.encode(clips)
            spikes.extend(events)
            pcm.extend(heard)
            bar.update(len(clips))
    return spikes, lengths, pcm, truncated


def choose_front_end(files: Sequence[WavFile], kind: str = KINDS[0],
                     settings: dict | None = None) -> tuple[Encoder, list[int]]:
    """The front end of ``kind`` for these recordings (from the lowest native sample rate, then ``settings``) and
    the rates found."""
    from .audiofile import check_sample_rate, native_sample_rate
    from .encoding import encoder_for_rate

    native = {f.path: native_sample_rate(f.path) for f in files}
    encoder = encoder_for_rate(min(native.values()), kind, settings)
    for path, rate in native.items():  # every file refused here, before any encoding, if it cannot be converted
        check_sample_rate(rate, encoder.sample_rate, str(path))
    return encoder, sorted(set(native.values()))


def split_mask(files: Sequence[WavFile], split: str, test_fraction: float, seed: int, root: Path,
              fold: int | None) -> np.ndarray:
    """Boolean "is test" per file: by speaker, at random, or the speakers of one fold of the corpus manifest."""
    if fold is not None:
        from .hardset import fold_test_speakers

        wanted = set(fold_test_speakers(root, fold))
        absent = wanted - {f.speaker for f in files}
        if absent:
            raise UserError(f"fold {fold} names speaker(s) {', '.join(sorted(absent))} that have no files in {root}")
        is_test = np.array([f.speaker in wanted for f in files])
    else:
        if split not in ("speaker", "random"):
            raise UserError(f"unknown split {split!r}: use 'speaker' or 'random'")
        if not 0 < test_fraction < 1:
            raise UserError(f"--test-fraction must be between 0 and 1, got {test_fraction}")
        rng = np.random.default_rng(seed)
        is_test = (split_by_speaker if split == "speaker" else split_random)(files, test_fraction, rng)
    if is_test.all() or not is_test.any():
        raise UserError(f"too few files ({len(files)}) to make both a train and a test split")
    return is_test


def _warn_missing_classes(files: Sequence[WavFile], classes: Sequence[str], is_test: np.ndarray) -> None:
    for name, members in (("train", ~is_test), ("test", is_test)):
        missing = set(classes) - {f.label for f, m in zip(files, members) if m}
        if missing:
            names = ", ".join(sorted(missing, key=natural_key))
            print(f"warning: the {name} split has no samples of class(es) {names}", file=sys.stderr)


@dataclass
class EncodedFolder:
    """A scanned and encoded folder: what every split of it is written from."""

    root: Path
    files: list[WavFile]
    classes: list[str]
    speakers: list[str]
    encoder: Encoder
    spikes: list
    pcm: list  # int16 PCM per file (integer front end) or None per file
    duration_s: float
    truncated: int


def scan_and_encode(root: Path, encoder: Encoder | None = None, *, kind: str = KINDS[0],
                    settings: dict | None = None, announce: bool = True) -> EncodedFolder:
    """Scan ``root``, choose the front end of ``kind`` from the recordings' rate unless ``encoder`` is given,
    encode every file."""
    from .spikefile import MAX_DURATION_S

    root = Path(root)
    files = scan(root)
    classes = sorted({f.label for f in files}, key=natural_key)
    speakers = sorted({f.speaker for f in files}, key=natural_key)
    if max(len(classes), len(speakers)) > UINT16_LIMIT:
        raise UserError(f"more than {UINT16_LIMIT} classes or speakers: the SHD layout stores their ids as uint16")
    if encoder is None:
        encoder, rates = choose_front_end(files, kind, settings)
        if announce:
            found = ", ".join(f"{r} Hz" for r in rates)
            print(f"recordings at {found}; {encoder.summary()}")
    max_samples = int(math.floor(MAX_DURATION_S * encoder.sample_rate + 0.5))
    spikes, lengths, pcm, truncated = encode_files(files, encoder, max_samples)
    if truncated:
        n, example = len(truncated), truncated[0]
        print(f"warning: {n} clip(s) longer than {MAX_DURATION_S:g} s truncated (e.g. {example})", file=sys.stderr)
    duration_s = clip_duration_s(max(lengths), encoder.sample_rate, MAX_DURATION_S)
    return EncodedFolder(root, list(files), classes, speakers, encoder, spikes, pcm, duration_s, len(truncated))


def write_encoded(enc: EncodedFolder, out: Path, is_test: np.ndarray, split_info: dict, *, force: bool) -> dict[str, int]:
    """Write one train/test split of an encoded folder as a dataset at ``out``; returns the counts."""
    from codegen.common.atomic import staged_directory
    from codegen.common.version import __version__

    from .spikefile import FRONTEND_FILE, DatasetMeta, SpikeSplit, spike_time_for_step, write_dataset

    _warn_missing_classes(enc.files, enc.classes, is_test)
    with staged_directory(Path(out), force=force) as staging:
        label_of = {c: i for i, c in enumerate(enc.classes)}
        speaker_of = {s: i for i, s in enumerate(enc.speakers)}
        splits = {}
        for name, members in (("train", ~is_test), ("test", is_test)):
            chosen = np.flatnonzero(members)
            splits[name] = SpikeSplit(
                times=[spike_time_for_step(enc.spikes[i][0], enc.encoder.step_s).astype(np.float16) for i in chosen],
                units=[enc.spikes[i][1] for i in chosen],
                labels=np.array([label_of[enc.files[i].label] for i in chosen], dtype=np.int64),
                speakers=np.array([speaker_of[enc.files[i].speaker] for i in chosen], dtype=np.int64),
            )
        counts = {name: len(s) for name, s in splits.items()}
        frontend = enc.encoder.frontend
        audio = {}
        if frontend is not None:
            audio["test"] = ([enc.pcm[i] for i in np.flatnonzero(is_test)], splits["test"].labels, enc.encoder.sample_rate)
        meta = DatasetMeta(
            name=enc.root.resolve().name or "wav",
            n_channels=enc.encoder.n_channels,
            classes=enc.classes,
            duration_s=enc.duration_s,
            speakers={str(i): s for i, s in enumerate(enc.speakers)},
            source={
                "generator": GENERATOR,
                "version": __version__,
                "root": str(enc.root.resolve()),
                **split_info,
                "truncated_files": enc.truncated,
                "counts": counts,
            },
            front_end=enc.encoder.describe(FRONTEND_FILE if frontend is not None else None),
        )
        write_dataset(staging, meta, splits, frontend=frontend, audio=audio)
    return counts


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(f"{out} already exists and is not empty (use --force to replace it)")


def build_wav_dataset(
    root: Path,
    out: Path,
    *,
    split: str = "speaker",
    test_fraction: float = 0.2,
    seed: int = 0,
    force: bool = False,
    encoder: Encoder | None = None,
    kind: str = KINDS[0],
    settings: dict | None = None,
    fold: int | None = None,
) -> dict[str, int]:
    """Encode an audio folder into a spike dataset at ``out``; returns the sample count per split.

    ``encoder`` None chooses the front end of ``kind`` (default: the integer one) from the recordings'
    sample rate, with ``settings`` (integer front-end fields) applied; ``fold`` takes the test speakers
    from the corpus manifest (``split`` and ``test_fraction`` are then unused).
    """
    root, out = Path(root), Path(out)
    files = scan(root)
    is_test = split_mask(files, split, test_fraction, seed, root, fold)  # validated before any encoding
    _check_out(out, force)
    enc = scan_and_encode(root, encoder, kind=kind, settings=settings)
    info = {"split": "fold", "fold": fold} if fold is not None else {
        "split": split, "test_fraction": test_fraction, "seed": seed}
    return write_encoded(enc, out, is_test, info, force=force)


def build_wav_folds(root: Path, out: Path, *, force: bool = False, encoder: Encoder | None = None,
                    kind: str = KINDS[0], settings: dict | None = None) -> dict[int, dict]:
    """Encode a corpus once and write one dataset per fold of its manifest, ``out/fold<K>``."""
    from .hardset import read_manifest

    root, out = Path(root), Path(out)
    manifest = read_manifest(root)
    if manifest is None:
        raise UserError(f"--fold all needs {root}/corpus.json (a corpus built by 'delrec-edge data hard')")
    _check_out(out, force)
    files = scan(root)
    masks = [split_mask(files, "speaker", 0.5, 0, root, k) for k in range(len(manifest["folds"]))]
    enc = scan_and_encode(root, encoder, kind=kind, settings=settings)
    out.mkdir(parents=True, exist_ok=True)
    return {k: write_encoded(enc, out / f"fold{k}", mask, {"split": "fold", "fold": k}, force=True)
            for k, mask in enumerate(masks)}
