"""Tiny SHD/SSC files in the published HDF5 layout, so that ``tonic`` reads them offline.

tonic decides that a split is present when ``<root>/<SHD|SSC>/<split>.h5.zip`` is a file (it is
never opened or hashed) and at least one ``.h5`` lies in that folder. Every split is written
with its own empty ``.zip`` marker, so no constructor ever falls back to a download.

Layout written (as in the released files)::

    spikes/times            (N,) vlen float16   seconds, sorted within a row
    spikes/units            (N,) vlen uint16    channel ids 0..699
    labels                  (N,) uint16
    extra/keys              (n_classes,) bytes  UTF-8 class names
    extra/speaker           (N,) uint16
    extra/meta_info/gender, age, body_height    per-speaker metadata (tonic never reads it)

Speaker ids are the sample positions (0..N-1) unless given, so tests can tell samples apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

N_CHANNELS = 700

SHD_CLASSES = (
    "zero one two three four five six seven eight nine "
    "null eins zwei drei vier fünf sechs sieben acht neun"
).split()

SSC_CLASSES = (
    "backward bed bird cat dog down eight five follow forward four go happy house learn left marvin "
    "nine no off on one right seven sheila six stop three tree two up visual wow yes zero"
).split()


def write_hsd_h5(
    path: str | Path,
    times: Sequence[np.ndarray],
    units: Sequence[np.ndarray],
    labels: Sequence[int],
    classes: Sequence[str],
    speakers: Sequence[int] | None = None,
) -> Path:
    """Write one split exactly as given (no sorting, no checks: tests also write broken rows)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(labels)
    if speakers is None:
        speakers = np.arange(n)
    with h5py.File(path, "w") as f:
        t = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.float16))
        u = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.uint16))
        for i in range(n):
            t[i] = np.asarray(times[i], dtype=np.float64).astype(np.float16)
            u[i] = np.asarray(units[i]).astype(np.uint16)
        f["labels"] = np.asarray(labels).astype(np.uint16)
        f["extra/keys"] = np.array([c.encode("utf-8") for c in classes])
        f["extra/speaker"] = np.asarray(speakers).astype(np.uint16)
        f["extra/meta_info/gender"] = np.array([b"female", b"male"])
        f["extra/meta_info/age"] = np.array([25, 31], dtype=np.uint16)
        f["extra/meta_info/body_height"] = np.array([168, 181], dtype=np.uint16)
    return path


def random_rows(
    rng: np.random.Generator, n: int, *, n_channels: int = N_CHANNELS, duration_s: float = 1.5, max_spikes: int = 400
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``n`` random sorted spike rows; a few spikes fall past 1.4 s so that clipping is exercised."""
    times, units = [], []
    for _ in range(n):
        k = int(rng.integers(20, max_spikes))
        times.append(np.sort(rng.uniform(0.0, duration_s, k)))
        units.append(rng.integers(0, n_channels, k))
    return times, units


def write_random_split(path: Path, n: int, classes: Sequence[str], seed: int, **rows_kw) -> Path:
    rng = np.random.default_rng(seed)
    times, units = random_rows(rng, n, **rows_kw)
    labels = rng.integers(0, len(classes), n)
    return write_hsd_h5(path, times, units, labels, classes)


def touch_marker(h5: Path) -> None:
    """The empty ``<split>.h5.zip`` that tells tonic the split has been downloaded."""
    (h5.parent / (h5.name + ".zip")).touch()


def make_shd_root(root: str | Path, n: int = 6, seed: int = 0, **rows_kw) -> Path:
    """``root/SHD/shd_{train,test}.h5`` with their markers; returns ``root``."""
    root = Path(root)
    for i, split in enumerate(("shd_train", "shd_test")):
        h5 = write_random_split(root / "SHD" / f"{split}.h5", n, SHD_CLASSES, seed + 1000 * i, **rows_kw)
        touch_marker(h5)
    return root


def make_ssc_root(root: str | Path, n: int = 6, seed: int = 0, **rows_kw) -> Path:
    """``root/SSC/ssc_{train,valid,test}.h5`` with their markers; returns ``root``."""
    root = Path(root)
    for i, split in enumerate(("ssc_train", "ssc_valid", "ssc_test")):
        h5 = write_random_split(root / "SSC" / f"{split}.h5", n, SSC_CLASSES, seed + 1000 * i, **rows_kw)
        touch_marker(h5)
    return root
