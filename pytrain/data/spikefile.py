"""Spike datasets on disk: the SHD HDF5 layout inside a folder that ``tonic`` reads directly.

A delrec-edge dataset folder looks like a tonic root for SHD, plus one metadata file::

    DIR/
      dataset.json            # format, channel count, class names, clip duration, provenance
      SHD/shd_train.h5        # SHD HDF5 layout (below)
      SHD/shd_train.h5.zip    # empty marker: tells tonic the split is present (never opened)
      SHD/shd_test.h5
      SHD/shd_test.h5.zip

so that ``tonic.datasets.SHD(DIR, train=...)`` is the one loader for the real SHD files, the
synthetic spoken digits and datasets built from WAV folders. Only ``sensor_size`` differs.

HDF5 layout (as in the published SHD/SSC files)::

    spikes/times   (N,) vlen float16   spike times in seconds, one ragged row per sample
    spikes/units   (N,) vlen uint16    channel ids, same length as the row of times
    labels         (N,) uint16         class id
    extra/keys     (n_classes,) bytes  class names (UTF-8)
    extra/speaker  (N,) uint16         speaker id
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from codegen.common.errors import UserError

FORMAT_NAME = "delrec-edge-spikes"
FORMAT_VERSION = 1
METADATA_FILE = "dataset.json"
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


def write_dataset(out: Path, meta: DatasetMeta, splits: dict[str, SpikeSplit]) -> None:
    """Write a complete dataset folder (``out`` should be a staged directory, see atomic.py)."""
    from codegen.common.atomic import write_json_atomic

    missing = set(SPLIT_FILES) - set(splits)
    if missing:
        raise ValueError(f"missing splits: {sorted(missing)}")
    for name, split in splits.items():
        h5 = out / TONIC_FOLDER / SPLIT_FILES[name]
        write_split_h5(h5, split, meta.classes)
        (h5.parent / (h5.name + ".zip")).touch()
    write_json_atomic(out / METADATA_FILE, meta.to_json())


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
    if obj.get("version") != FORMAT_VERSION:
        raise UserError(f"{path}: unsupported dataset format version {obj.get('version')!r} (this version reads {FORMAT_VERSION})")
    try:
        meta = DatasetMeta(
            name=str(obj["name"]),
            n_channels=int(obj["n_channels"]),
            classes=[str(c) for c in obj["classes"]],
            duration_s=float(obj["duration_s"]),
            speakers={str(k): str(v) for k, v in obj.get("speakers", {}).items()},
            source=dict(obj.get("source", {})),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: missing or malformed field {exc}") from None
    if meta.n_channels < 1 or not meta.classes or not (0 < meta.duration_s <= 60):
        raise UserError(f"{path}: n_channels, classes or duration_s out of range")
    for split, fname in SPLIT_FILES.items():
        if not (root / TONIC_FOLDER / fname).is_file():
            raise UserError(f"{root}: the {split} split is missing ({TONIC_FOLDER}/{fname})")
    return meta
