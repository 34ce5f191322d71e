"""Spike datasets as fixed-length frame tensors: the one loading path for SHD, SSC and our own datasets.

Every dataset is read through ``tonic.datasets.SHD`` / ``tonic.datasets.SSC`` and binned with
``tonic.transforms.ToFrame``:

* ``"shd"`` / ``"ssc"``: the published files under the data root (``data_root``, else
  ``$DELREC_EDGE_DATA``, else ``~/.cache/delrec-edge/datasets``) as ``<root>/SHD/shd_{train,test}.h5``
  and ``<root>/SSC/ssc_{train,valid,test}.h5``, each next to its downloaded ``.h5.zip``;
* a path: a delrec-edge dataset folder (``dataset.json`` + the SHD layout, see spikefile.py).
  The words ``shd``/``ssc`` win over a folder of that name; write ``./shd`` for the folder.

Binning (no time warping, the network runs in real time)::

    bin_us  = bin_ms * 1000            (must be a whole number of microseconds)
    n_steps = ceil(duration_s * 1000 / bin_ms)      computed exactly on the decimal values
    t_us    = trunc(float64(time_s) * 1e6)          tonic's conversion of the float16 seconds
    step    = t_us // bin_us           spikes with t_us < 0 or step >= n_steps are dropped

so a clip covers ``n_steps`` whole bins from t = 0 (the last bin may reach past ``duration_s``).
Channels are then summed in adjacent groups (700 -> 140 in groups of 5 for SHD/SSC; our datasets
keep their channel count) and counts saturate at 255 to fit uint8 (a 5-channel group at 10 ms
holds at most about 50 spikes, so only very wide bins can saturate). :func:`frames_from_events`
is the same computation in plain numpy, the reference the tonic path is tested against.

Binned splits are cached as ``.npz`` under ``$DELREC_EDGE_CACHE`` (default
``~/.cache/delrec-edge/frames``); see :func:`pytrain.data.framecache.cache_key` for what invalidates an entry.

A split whose ``.h5`` exists without its ``.h5.zip`` is refused with the exact ``touch`` command
to run: tonic treats a missing zip as "not downloaded" and would fetch the dataset again, and the
loader never writes into the data folder on its own (it may be shared or read-only).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from codegen.common.errors import UserError
from codegen.integer.network import MAX_COUNT

from . import spikefile
from .framecache import BinnedSplit, cache_key, cache_path, cache_read, cache_write, one_line


HSD_CHANNELS = 700  # channels in the published SHD/SSC files
HSD_GROUP = 5  # SHD/SSC: 700 -> 140 inputs by summing groups of 5 adjacent channels
HSD_DURATION_S = 1.4  # default clip length for SHD/SSC (longest SHD digit is about 1.4 s)
DOWNLOAD_URL = "https://zenkelab.org/datasets/"


@dataclass
class SpikeTensors:
    """One split in memory."""

    x: torch.Tensor  # (S, T, C) uint8 spike counts per bin, saturated at 255; C after grouping
    y: torch.Tensor  # (S,) int64 labels
    speakers: np.ndarray  # (S,) int64 speaker ids

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass
class DataBundle:
    """Train/validation/test splits plus what a model needs to know about the input."""

    name: str  # "shd", "ssc" or the dataset's name
    train: SpikeTensors
    val: SpikeTensors
    test: SpikeTensors
    n_inputs: int  # channels after grouping
    n_classes: int
    classes: list[str]
    bin_ms: float
    n_steps: int
    duration_s: float
    val_split: str = "random"  # how validation was held out: "speaker", "random" or "file" (SSC)
    frontend: object = None  # the integer front end the dataset was encoded with (IntFrontEnd), if any
    frontend_sha256: str | None = None
    root: Path | None = None  # the dataset folder (None for SHD/SSC)


# ----------------------------------------------------------------------------- binning


def _decimal(value: float, what: str) -> Fraction:
    """The decimal value the user wrote (``5.6`` is 28/5, not the nearest double)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise UserError(f"{what} must be a positive number, got {value!r}")
    return Fraction(repr(v))


def bin_width_us(bin_ms: float) -> int:
    """Bin width in whole microseconds; tonic's event times are integer microseconds."""
    us = _decimal(bin_ms, "bin_ms") * 1000
    if us.denominator != 1:
        raise UserError(f"bin_ms={bin_ms} is not a whole number of microseconds")
    return int(us)


def steps_for(duration_s: float, bin_ms: float) -> int:
    """``ceil(duration_s * 1000 / bin_ms)`` in exact arithmetic (1.4 s / 5.6 ms is 250, not 251)."""
    return math.ceil(_decimal(duration_s, "duration_s") * 1000 / _decimal(bin_ms, "bin_ms"))


def _group_counts(counts: np.ndarray, group: int) -> np.ndarray:
    """(T, C) counts -> (T, C // group) uint8: sum adjacent channels, saturate at 255."""
    t, c = counts.shape
    summed = counts.reshape(t, c // group, group).sum(axis=2, dtype=np.int64)
    return np.minimum(summed, MAX_COUNT).astype(np.uint8)


def frames_from_events(
    times_s: np.ndarray, units: np.ndarray, n_channels: int, bin_ms: float, n_steps: int, group: int
) -> np.ndarray:
    """Reference binning in plain numpy: one sample's spikes -> (n_steps, n_channels // group) uint8.

    ``times_s`` in seconds (any float dtype, as stored), ``units`` channel ids in [0, n_channels).
    Spike times are converted exactly as tonic does (float64 seconds * 1e6, truncated to integer
    microseconds), so the tonic path must agree with this function bit for bit.
    """
    if n_channels % group:
        raise ValueError(f"{n_channels} channels do not split into groups of {group}")
    bin_us = bin_width_us(bin_ms)
    t_us = (np.asarray(times_s).astype(np.float64) * 1e6).astype(np.int64)
    units = np.asarray(units).astype(np.int64)
    if t_us.shape != units.shape or t_us.ndim != 1:
        raise ValueError(f"{t_us.size} spike times but {units.size} channel ids")
    if units.size and (units.min() < 0 or units.max() >= n_channels):
        raise ValueError(f"channel ids must lie in [0, {n_channels})")
    keep = (t_us >= 0) & (t_us < n_steps * bin_us)
    flat = (t_us[keep] // bin_us) * n_channels + units[keep]
    counts = np.bincount(flat, minlength=n_steps * n_channels).reshape(n_steps, n_channels)
    return _group_counts(counts, group)


def _frames_from_tonic_events(events: np.ndarray, to_frame, n_channels: int, n_steps: int, group: int) -> np.ndarray:
    """Bin one sample as returned by tonic's ``__getitem__`` (fields t [us], x, p) with ``ToFrame``."""
    if len(events) == 0:
        # ToFrame returns a single float frame of another shape for an empty recording.
        return np.zeros((n_steps, n_channels // group), dtype=np.uint8)
    t = events["t"]
    if np.any(t[1:] < t[:-1]):
        # ToFrame slices with searchsorted, which silently miscounts unsorted times.
        events = events[np.argsort(t, kind="stable")]
        t = events["t"]
    end_us = to_frame.end_time
    n_kept = int(np.searchsorted(t, end_us, side="left") - np.searchsorted(t, 0, side="left"))
    frames = to_frame(events)  # (T, 1, C) int16; ToFrame also sets events["p"] = 0 in place
    if frames.shape != (n_steps, 1, n_channels):
        raise RuntimeError(f"ToFrame returned {frames.shape}, expected {(n_steps, 1, n_channels)}")
    counts = frames[:, 0, :].astype(np.int64)
    # ToFrame counts in int16: more than 32767 spikes of one channel in one bin would wrap around.
    if int(counts.sum()) != n_kept or counts.min() < 0:
        raise OverflowError(f"more than 32767 spikes of one channel fall into one {to_frame.time_window} us bin")
    return _group_counts(counts, group)


# ----------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class BinnedSplitFile:
    name: str  # "train", "valid" or "test"
    h5: Path
    tonic_kwargs: tuple  # constructor arguments that select this split, as (key, value) pairs


@dataclass(frozen=True)
class _Source:
    name: str
    root: Path  # the tonic root (the folder that holds SHD/ or SSC/)
    tonic_class: str  # "SHD" or "SSC"
    n_channels: int
    group: int
    duration_s: float
    classes: tuple[str, ...] | None  # from dataset.json; None: read from the files
    splits: tuple[BinnedSplitFile, ...]
    published: bool  # SHD/SSC downloaded from zenkelab (changes the error messages)
    meta: object = None  # the dataset folder's DatasetMeta


def default_data_root() -> Path:
    return Path(os.environ.get("DELREC_EDGE_DATA") or "~/.cache/delrec-edge/datasets").expanduser()


def _hsd_source(kind: str, data_root: str | Path | None) -> _Source:
    root = Path(data_root).expanduser() if data_root is not None else default_data_root()
    root = root.absolute()
    if kind == "shd":
        folder = root / "SHD"
        splits = (
            BinnedSplitFile("train", folder / "shd_train.h5", (("train", True),)),
            BinnedSplitFile("test", folder / "shd_test.h5", (("train", False),)),
        )
    else:
        folder = root / "SSC"
        splits = tuple(BinnedSplitFile(s, folder / f"ssc_{s}.h5", (("split", s),)) for s in ("train", "valid", "test"))
    return _Source(kind, root, kind.upper(), HSD_CHANNELS, HSD_GROUP, HSD_DURATION_S, None, splits, True)


def _folder_source(path: Path) -> _Source:
    root = path.expanduser().absolute()
    meta = spikefile.read_meta(root)
    folder = root / spikefile.TONIC_FOLDER
    splits = (
        BinnedSplitFile("train", folder / spikefile.SPLIT_FILES["train"], (("train", True),)),
        BinnedSplitFile("test", folder / spikefile.SPLIT_FILES["test"], (("train", False),)),
    )
    return _Source(meta.name, root, "SHD", meta.n_channels, 1, meta.duration_s, tuple(meta.classes), splits, False,
                   meta)


def _source(spec: str, data_root: str | Path | None) -> _Source:
    key = str(spec).strip().lower()
    if key in ("shd", "ssc"):
        return _hsd_source(key, data_root)
    path = Path(spec)
    if not path.expanduser().exists():
        raise UserError(f"unknown dataset {spec!r}: expected shd, ssc or a delrec-edge dataset folder")
    return _folder_source(path)


def _check_files_present(src: _Source) -> None:
    """Refuse before tonic is constructed: tonic downloads whatever it does not find."""
    missing = [s.h5 for s in src.splits if not s.h5.is_file()]
    if missing:
        paths = ", ".join(str(p) for p in missing)
        if src.published:
            if (src.root / missing[0].name).is_file():
                raise UserError(
                    f"{src.root} holds the {src.tonic_class} files itself; set the data root to its parent folder "
                    f"(the one that contains {src.tonic_class}/)"
                )
            zips = ", ".join(p.name + ".zip" for p in missing)
            raise UserError(
                f"{src.name.upper()} not found: missing {paths}; download {zips} from {DOWNLOAD_URL} and unzip each "
                f"next to its zip in {missing[0].parent} (or set the data root / DELREC_EDGE_DATA to the folder holding "
                f"{src.tonic_class}/)"
            )
        raise UserError(f"{src.root}: missing {paths}")
    markers = [s.h5.parent / (s.h5.name + ".zip") for s in src.splits]
    absent = [m for m in markers if not m.is_file()]
    if absent:
        raise UserError(
            f"found the .h5 files but not {', '.join(str(m) for m in absent)}: tonic takes a missing zip for "
            f"'not downloaded' and would download again; keep the zip or create an empty one: touch "
            + " ".join(f"'{m}'" for m in absent)
        )


# ----------------------------------------------------------------------------- one split


def _bin_split(src: _Source, split: BinnedSplitFile, bin_us: int, n_steps: int, progress: bool) -> BinnedSplit:
    """Read one split through tonic and bin every sample."""
    import h5py
    import tonic
    from tqdm import tqdm

    path = split.h5
    to_frame = tonic.transforms.ToFrame(
        sensor_size=(src.n_channels, 1, 1),
        time_window=bin_us,
        start_time=0,
        end_time=n_steps * bin_us,
        include_incomplete=True,
    )
    try:
        # Our own read-only handle checks the layout and the row lengths, which tonic does not.
        with h5py.File(path, "r") as f:
            for key in ("spikes/times", "spikes/units", "labels", "extra/keys", "extra/speaker"):
                if key not in f:
                    raise UserError(f"{path}: not in the SHD/SSC layout (no '{key}')")
            times_ds, units_ds = f["spikes/times"], f["spikes/units"]
            n = len(f["labels"])
            if len(times_ds) != n or len(units_ds) != n or len(f["extra/speaker"]) != n:
                raise UserError(
                    f"{path}: {len(times_ds)} spike-time rows, {len(units_ds)} channel rows, {n} labels and "
                    f"{len(f['extra/speaker'])} speakers; these must be equal"
                )
            dataset = getattr(tonic.datasets, src.tonic_class)(str(src.root), **dict(split.tonic_kwargs))
            keys = [k.decode("utf-8") if isinstance(k, bytes) else str(k) for k in np.asarray(dataset.classes).ravel()]
            # Read here, not from tonic: tonic 1.7.0's SSC keeps them private (no ``speaker`` property).
            speakers = np.asarray(f["extra/speaker"][()]).astype(np.int64).ravel()
            x = np.zeros((n, n_steps, src.n_channels // src.group), dtype=np.uint8)
            y = np.zeros(n, dtype=np.int64)
            bar = tqdm(range(n), desc=f"binning {path.name}", unit="sample", disable=not progress, leave=False)
            for i in bar:
                n_units = len(units_ds[i])
                try:
                    events, target = dataset[i]
                except ValueError:
                    events = None  # tonic cannot pair the two rows; reported just below
                # Compare with our own read of the units: tonic silently broadcasts a row of one unit.
                if events is None or len(events) != n_units:
                    raise UserError(f"{path}: sample {i} has {len(times_ds[i])} spike times but {n_units} channel ids")
                if len(events) and int(events["x"].max()) >= src.n_channels:
                    raise UserError(
                        f"{path}: sample {i} has channel id {int(events['x'].max())}, "
                        f"but the dataset has {src.n_channels} channels"
                    )
                try:
                    x[i] = _frames_from_tonic_events(events, to_frame, src.n_channels, n_steps, src.group)
                except OverflowError as exc:
                    raise UserError(f"{path}: sample {i}: {exc}") from None
                y[i] = int(target)
    except (OSError, KeyError, ValueError, IndexError) as exc:
        raise UserError(f"{path}: cannot read the file ({one_line(exc)}); it may be corrupt or truncated") from None
    return BinnedSplit(x=x, y=y, speakers=speakers, keys=keys)


def _load_split(src: _Source, split: BinnedSplitFile, bin_us: int, n_steps: int, cache: bool, progress: bool) -> BinnedSplit:
    if not cache:
        return _bin_split(src, split, bin_us, n_steps, progress)
    key = cache_key(src, split, bin_us, n_steps)
    key_json = json.dumps(key, sort_keys=True)
    path = cache_path(src, split, key)
    hit = cache_read(path, key_json)
    if hit is not None:
        return hit
    fresh = _bin_split(src, split, bin_us, n_steps, progress)
    # A file rewritten while it was being read gives a mixture of both versions: never keep that.
    if json.dumps(cache_key(src, split, bin_us, n_steps), sort_keys=True) != key_json:
        raise UserError(f"{split.h5} changed while it was being read; run again")
    cache_write(path, key_json, fresh)
    return fresh


# ----------------------------------------------------------------------------- splits


def _val_count(n: int, val_fraction: float) -> int:
    frac = _decimal(val_fraction, "val_fraction")
    if frac >= 1:
        raise UserError(f"val_fraction must be below 1, got {val_fraction}")
    return min(max(1, math.floor(frac * n)), n - 1)


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, val) positions: a seeded random ``val_fraction`` (at least one sample) is held out."""
    if n < 2:
        raise UserError(f"a training split of {n} sample(s) cannot give up a validation sample")
    if int(seed) < 0:
        raise UserError(f"seed must be a non-negative integer, got {seed}")
    n_val = _val_count(n, val_fraction)
    perm = np.random.default_rng(int(seed)).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def speaker_split_indices(speakers: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, val) positions with every speaker wholly on one side.

    Speakers are taken in a seeded random order into validation until it holds at least ``val_fraction`` of
    the samples; one speaker at least goes to validation and two at least stay in training.
    """
    if int(seed) < 0:
        raise UserError(f"seed must be a non-negative integer, got {seed}")
    _val_count(max(len(speakers), 2), val_fraction)  # validates the fraction
    ids, counts = np.unique(np.asarray(speakers), return_counts=True)
    if ids.size < 3:
        raise UserError(f"a speaker-disjoint validation split needs at least 3 training speakers, found {ids.size}")
    order = np.random.default_rng(int(seed)).permutation(ids.size)
    chosen, total = [], 0
    for k in order[:-2]:
        if chosen and total >= float(val_fraction) * len(speakers):
            break
        chosen.append(ids[k])
        total += int(counts[k])
    is_val = np.isin(speakers, chosen)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def validation_split(
    train_speakers: np.ndarray, test_speakers: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, str]:
    """(train, val) positions in the training file and how they were drawn, "speaker" or "random".

    Whole speakers when the training and test files share no speaker and training has at least 3;
    a random ``val_fraction`` of the samples otherwise.
    """
    train_speakers = np.asarray(train_speakers)
    distinct = np.unique(train_speakers)
    if np.intersect1d(distinct, np.asarray(test_speakers)).size == 0 and distinct.size >= 3:
        return (*speaker_split_indices(train_speakers, val_fraction, seed), "speaker")
    return (*split_indices(len(train_speakers), val_fraction, seed), "random")


def _tensors(split: BinnedSplit, index: np.ndarray | None = None) -> SpikeTensors:
    x, y, speakers = split.x, split.y, split.speakers
    if index is not None:
        x, y, speakers = x[index], y[index], speakers[index]
    return SpikeTensors(
        x=torch.from_numpy(np.ascontiguousarray(x)),
        y=torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)),
        speakers=np.asarray(speakers, dtype=np.int64),
    )


def load_data(
    spec: str,
    *,
    bin_ms: float,
    duration_s: float | None = None,
    data_root: str | Path | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    cache: bool = True,
    progress: bool = True,
) -> DataBundle:
    """Load ``"shd"``, ``"ssc"`` or a dataset folder as fixed-length uint8 frame tensors.

    SSC's validation split is its own file (``val_fraction`` and ``seed`` are then unused). Otherwise a
    seeded ``val_fraction`` of the training file is held out: whole speakers when the dataset's train and
    test splits share no speaker and training has at least 3 (so the checkpoint is chosen on unheard
    voices, as the test measures them), random samples otherwise (SHD, ``data wav --split random``).
    """
    src = _source(spec, data_root)
    if duration_s is None:
        duration_s = src.duration_s
    bin_us = bin_width_us(bin_ms)
    n_steps = steps_for(duration_s, bin_ms)
    _check_files_present(src)
    frontend = spikefile.load_frontend(src.root, src.meta) if src.meta is not None else None
    if frontend is not None and abs(frontend.hop_ms - float(bin_ms)) > 1e-9:
        raise UserError(
            f"{src.root} was encoded by the integer front end with a {frontend.hop_ms:g} ms hop, but the network's "
            f"bin width is {float(bin_ms):g} ms: they must be equal (use a preset with {frontend.hop_ms:g} ms bins)")

    loaded = {s.name: (s, _load_split(src, s, bin_us, n_steps, cache, progress)) for s in src.splits}

    first_file, first = loaded["train"]
    classes = list(src.classes) if src.classes is not None else first.keys
    for split_file, split in loaded.values():
        if split.keys != classes:
            where = "dataset.json" if src.classes is not None else first_file.h5
            raise UserError(f"{split_file.h5}: class names (extra/keys) differ from those in {where}")
        if len(split.y) == 0:
            raise UserError(f"{split_file.h5}: the {split_file.name} split holds no samples")
        bad = (split.y < 0) | (split.y >= len(classes))
        if bad.any():
            raise UserError(
                f"{split_file.h5}: label {int(split.y[bad][0])} is outside the {len(classes)} classes"
            )

    val_split = "file"
    if "valid" in loaded:
        train, val = _tensors(first), _tensors(loaded["valid"][1])
    else:
        train_idx, val_idx, val_split = validation_split(first.speakers, loaded["test"][1].speakers, val_fraction, seed)
        train, val = _tensors(first, train_idx), _tensors(first, val_idx)

    return DataBundle(
        name=src.name,
        train=train,
        val=val,
        test=_tensors(loaded["test"][1]),
        n_inputs=src.n_channels // src.group,
        n_classes=len(classes),
        classes=classes,
        bin_ms=float(bin_ms),
        n_steps=n_steps,
        duration_s=float(duration_s),
        val_split=val_split,
        frontend=frontend,
        frontend_sha256=None if frontend is None else src.meta.front_end["sha256"],
        root=None if src.meta is None else src.root,
    )


def check_same_frontend(bundle: DataBundle, recorded: str | None, what: str) -> None:
    """Refuse (``UserError``) when the front end recorded for a model (``recorded``: the sha256 of its integer front
    end, None for none) is not the one the dataset was encoded with: the model would hear differently from how
    it was trained."""
    if recorded == bundle.frontend_sha256:
        return
    if bundle.frontend_sha256 is None:
        raise UserError(f"{what} was trained on spikes of the integer front end {recorded[:16]}..., but dataset "
                        f"{bundle.name} was not encoded by an integer front end")
    if recorded is None:
        raise UserError(f"dataset {bundle.name} was encoded by the integer front end {bundle.frontend_sha256[:16]}..., "
                        f"but {what} records no front end (it was trained on other data); train it on this dataset")
    raise UserError(f"{what} was trained with the front end {recorded[:16]}..., but dataset {bundle.name} was encoded "
                    f"with {bundle.frontend_sha256[:16]}...; they must be the same (rebuild the dataset or retrain)")
