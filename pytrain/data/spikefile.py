"""Spike datasets on disk: the SHD HDF5 layout inside a folder that ``tonic`` reads directly.

A delrec-edge dataset folder looks like a tonic root for SHD, plus one metadata file::

    DIR/
      dataset.json            # format, channel count, class names, clip duration, front end, provenance
      SHD/shd_train.h5        # SHD HDF5 layout (below)
      SHD/shd_train.h5.zip    # empty marker: tells tonic the split is present (never opened)
      SHD/shd_test.h5
      SHD/shd_test.h5.zip
      frontend.int.npz        # datasets encoded by the integer front end: the front end itself
      audio/test.h5           # ... and the int16 PCM of the test split, clip by clip (below)

so that ``tonic.datasets.SHD(DIR, train=...)`` is the one loader for the real SHD files, the
synthetic spoken digits and datasets built from WAV folders. Only ``sensor_size`` differs.

HDF5 layout (as in the published SHD/SSC files)::

    spikes/times   (N,) vlen float16   spike times in seconds, one ragged row per sample
    spikes/units   (N,) vlen uint16    channel ids, same length as the row of times
    labels         (N,) uint16         class id
    extra/keys     (n_classes,) bytes  class names (UTF-8)
    extra/speaker  (N,) uint16         speaker id

The integer front end emits spike *counts* per bin: each count becomes that many events at the bin's
centre, so binning at the front end's hop gives the counts back exactly. ``dataset.json`` describes the
front end under ``front_end``: ``{"kind": "integer", "file": "frontend.int.npz", "sha256": ..., "config":
...}`` (the sha256 of the file's bytes, :func:`codegen.integer.modelfile.frontend_digest`) or ``{"kind":
"float", "config": ...}`` for the float front end (kept for comparison; such a dataset cannot be heard
from audio on a device). The test audio file holds::

    pcm            (total,) int16      every clip's samples, one after the other
    offsets        (N + 1,) int64      clip i is pcm[offsets[i]:offsets[i + 1]]
    labels         (N,) int64          class id, as in the split file
    attribute sample_rate              Hz
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from codegen.common.errors import UserError

FORMAT_NAME = "delrec-edge-spikes"
FORMAT_VERSION = 2  # 2: the front end and the test audio (version 1 folders, which have neither, still read)
READS_VERSIONS = (1, 2)
METADATA_FILE = "dataset.json"
FRONTEND_FILE = "frontend.int.npz"
AUDIO_FILES = {"test": "audio/test.h5"}
SPLIT_FILES = {"train": "shd_train.h5", "test": "shd_test.h5"}
TONIC_FOLDER = "SHD"

# Spike times are stored as float16 seconds, like SHD. A spike produced in the 1 ms step k is
# written at (k + 0.5) ms: the float16 rounding error (at most 0.49 ms below 2 s) then never moves
# a spike out of its millisecond, so binning at any multiple of 1 ms is exact.
MAX_DURATION_S = 2.0


@dataclass
class SpikeSplit:
    """One split in memory: ragged spike rows plus labels and speakers."""

    times: list[np.ndarray]  # float seconds per sample
    units: list[np.ndarray]  # channel ids per sample
    labels: np.ndarray  # (N,) int
    speakers: np.ndarray  # (N,) int

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class DatasetMeta:
    """Content of ``dataset.json``."""

    name: str
    n_channels: int
    classes: list[str]
    duration_s: float
    speakers: dict[str, str] = field(default_factory=dict)  # id -> description
    source: dict = field(default_factory=dict)  # provenance: generator, options, counts
    front_end: dict | None = None  # how the spikes were made (see the module docstring); None: unknown
    audio: dict = field(default_factory=dict)  # split -> file of its int16 PCM, relative to the folder

    @property
    def integer_front_end(self) -> bool:
        return bool(self.front_end) and self.front_end.get("kind") == "integer"

    def to_json(self) -> dict:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "name": self.name,
            "n_channels": self.n_channels,
            "classes": list(self.classes),
            "duration_s": self.duration_s,
            "speakers": dict(self.speakers),
            "source": self.source,
            "front_end": self.front_end,
            "audio": dict(self.audio),
        }


def spike_time_for_step(step: np.ndarray, step_s: float) -> np.ndarray:
    """Centre of each integer time step, in seconds (see the note on float16 above)."""
    return (np.asarray(step, dtype=np.float64) + 0.5) * step_s


def write_split_h5(path: Path, split: SpikeSplit, classes: Sequence[str]) -> None:
    """Write one split in the SHD HDF5 layout."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(split)
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.float16))
        units = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.uint16))
        for i in range(n):
            t = np.asarray(split.times[i], dtype=np.float64)
            u = np.asarray(split.units[i])
            if t.shape != u.shape:
                raise ValueError(f"sample {i}: {t.size} times but {u.size} units")
            order = np.argsort(t, kind="stable")
            times[i] = t[order].astype(np.float16)
            units[i] = u[order].astype(np.uint16)
        f["labels"] = np.asarray(split.labels).astype(np.uint16)
        f["extra/keys"] = np.array([c.encode("utf-8") for c in classes])
        f["extra/speaker"] = np.asarray(split.speakers).astype(np.uint16)


def write_audio_h5(path: Path, clips: Sequence[np.ndarray], labels: np.ndarray, sample_rate: int) -> None:
    """Write int16 clips (see the module docstring), compressed."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    lengths = np.array([len(c) for c in clips], dtype=np.int64)
    with h5py.File(path, "w") as f:
        pcm = np.concatenate([np.asarray(c, dtype=np.int16) for c in clips]) if clips else np.zeros(0, np.int16)
        f.create_dataset("pcm", data=pcm, compression="gzip", compression_opts=4, chunks=True if pcm.size else None)
        f["offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        f["labels"] = np.asarray(labels, dtype=np.int64)
        f.attrs["sample_rate"] = int(sample_rate)


def read_audio(root: Path, meta: DatasetMeta, split: str = "test") -> tuple[list[np.ndarray], np.ndarray, int]:
    """(clips as int16 arrays, labels, sample rate) of a split's stored audio; ``UserError`` if there is none."""
    import h5py

    name = meta.audio.get(split)
    if not name:
        raise UserError(f"{root} keeps no audio of its {split} split (datasets built from audio by this "
                        "version keep the test split's; rebuild it with 'delrec-edge data synth' or 'data wav')")
    path = Path(root) / name
    try:
        with h5py.File(path, "r") as f:
            pcm = np.asarray(f["pcm"][()], dtype=np.int16)
            offsets = np.asarray(f["offsets"][()], dtype=np.int64)
            labels = np.asarray(f["labels"][()], dtype=np.int64)
            rate = int(f.attrs["sample_rate"])
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"{path}: cannot read the audio ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if offsets.ndim != 1 or offsets.size != labels.size + 1 or offsets[0] != 0 or offsets[-1] != pcm.size \
            or np.any(np.diff(offsets) < 0):
        raise UserError(f"{path}: the clip offsets do not match the samples")
    return [pcm[offsets[i] : offsets[i + 1]] for i in range(labels.size)], labels, rate


def write_dataset(out: Path, meta: DatasetMeta, splits: dict[str, SpikeSplit], frontend=None,
                  audio: dict[str, tuple[Sequence[np.ndarray], np.ndarray, int]] | None = None) -> None:
    """Write a complete dataset folder (``out`` should be a staged directory, see atomic.py).

    ``frontend``: the integer front end the spikes were made with (written to ``frontend.int.npz``);
    ``audio``: split -> (int16 clips, labels, sample rate) to keep (the test split's).
    """
    from codegen.common.atomic import write_json_atomic

    missing = set(SPLIT_FILES) - set(splits)
    if missing:
        raise ValueError(f"missing splits: {sorted(missing)}")
    for name, split in splits.items():
        h5 = out / TONIC_FOLDER / SPLIT_FILES[name]
        write_split_h5(h5, split, meta.classes)
        (h5.parent / (h5.name + ".zip")).touch()
    if frontend is not None:
        from codegen.integer.modelfile import save_frontend

        save_frontend(frontend, out / FRONTEND_FILE)
    for name, (clips, labels, rate) in (audio or {}).items():
        write_audio_h5(out / AUDIO_FILES[name], clips, labels, rate)
        meta.audio[name] = AUDIO_FILES[name]
    write_json_atomic(out / METADATA_FILE, meta.to_json())


def load_frontend(root: Path, meta: DatasetMeta):
    """The integer front end of a dataset folder, checked against the digest in ``dataset.json``; None when the
    dataset was not made by the integer front end."""
    if not meta.integer_front_end:
        return None
    from codegen.integer.modelfile import frontend_digest, load_frontend as load_file

    path = Path(root) / str(meta.front_end.get("file", FRONTEND_FILE))
    fe = load_file(path)
    if frontend_digest(fe) != meta.front_end.get("sha256"):
        raise UserError(f"{path} is not the front end {METADATA_FILE} records (sha256 differs); rebuild the dataset")
    return fe


def read_meta(root: Path) -> DatasetMeta:
    """Read and validate ``dataset.json``; raise :class:`UserError` on anything wrong."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"dataset folder {root} does not exist")
    path = root / METADATA_FILE
    if not path.is_file():
        raise UserError(f"{root} is not a delrec-edge dataset (no {METADATA_FILE}); build one with 'delrec-edge data synth' or 'data wav'")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT_NAME:
        raise UserError(f"{path} is not a delrec-edge dataset description")
    if obj.get("version") not in READS_VERSIONS or isinstance(obj.get("version"), bool):
        raise UserError(f"{path}: unsupported dataset format version {obj.get('version')!r} "
                        f"(this version reads {', '.join(map(str, READS_VERSIONS))})")
    try:
        meta = DatasetMeta(
            name=str(obj["name"]),
            n_channels=int(obj["n_channels"]),
            classes=[str(c) for c in obj["classes"]],
            duration_s=float(obj["duration_s"]),
            speakers={str(k): str(v) for k, v in obj.get("speakers", {}).items()},
            source=dict(obj.get("source", {})),
            front_end=None if obj.get("front_end") is None else dict(obj["front_end"]),
            audio={str(k): str(v) for k, v in (obj.get("audio") or {}).items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: missing or malformed field {exc}") from None
    if meta.n_channels < 1 or not meta.classes or not (0 < meta.duration_s <= 60):
        raise UserError(f"{path}: n_channels, classes or duration_s out of range")
    for split, fname in SPLIT_FILES.items():
        if not (root / TONIC_FOLDER / fname).is_file():
            raise UserError(f"{root}: the {split} split is missing ({TONIC_FOLDER}/{fname})")
    return meta
