"""The cache of binned splits: one ``.npz`` per dataset file and binning, checked against the file's state.

Entries live under ``$DELREC_EDGE_CACHE`` (default ``~/.cache/delrec-edge/frames``). A failed write only
costs the next load its speed; an entry made for another key is never served.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LOADER_VERSION = 1  # bump when the binning or the cache content changes: old entries then stop matching


@dataclass
class BinnedSplit:
    x: np.ndarray  # (S, T, C) uint8
    y: np.ndarray  # (S,) int64
    speakers: np.ndarray  # (S,) int64
    keys: list[str]  # class names stored in the file


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when it has none)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__



def cache_dir() -> Path:
    return Path(os.environ.get("DELREC_EDGE_CACHE") or "~/.cache/delrec-edge/frames").expanduser()


def cache_key(src, split, bin_us: int, n_steps: int) -> dict:
    """Everything the binned arrays depend on; ``src`` and ``split`` describe the dataset and its file (loader).

    The file is identified by its resolved path, size, mtime, ctime and inode: rewriting it in place,
    replacing it, or restoring an old mtime (``touch -d``, ``cp -p``) all change the ctime, which
    user tools cannot set. Hashing the content would be exact too, but costs seconds per gigabyte
    on every load.
    """
    st = split.h5.stat()
    return {
        "loader": LOADER_VERSION,
        "tonic": importlib.metadata.version("tonic"),  # ToFrame's behaviour is part of the result
        "file": str(split.h5.resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "inode": st.st_ino,
        "reader": [src.tonic_class, [list(kv) for kv in split.tonic_kwargs]],
        "n_channels": src.n_channels,
        "group": src.group,
        "bin_us": bin_us,
        "n_steps": n_steps,
    }


def cache_path(src, split, key: dict) -> Path:
    """One slot per file and binning; the file's state is checked against the full key inside.

    A rewritten file therefore replaces its old entry instead of piling up new ones.
    """
    slot = {k: key[k] for k in ("loader", "file", "reader", "n_channels", "group", "bin_us", "n_steps")}
    digest = hashlib.sha256(json.dumps(slot, sort_keys=True).encode()).hexdigest()[:24]
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in src.name)[:40]
    return cache_dir() / f"{safe}-{split.name}-{digest}.npz"


def cache_read(path: Path, key_json: str) -> BinnedSplit | None:
    """The cached split, or None when absent, unreadable or made for another key."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key_json:
                return None
            hit = BinnedSplit(x=z["x"], y=z["y"], speakers=z["speakers"], keys=[str(k) for k in z["keys"]])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if hit.x.dtype != np.uint8 or hit.x.ndim != 3 or not (len(hit.x) == len(hit.y) == len(hit.speakers)):
        return None
    return hit


def cache_write(path: Path, key_json: str, split: BinnedSplit) -> None:
    """Write atomically (temporary file + rename); a failure only costs the next load its speed."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            # Uncompressed: compressing SHD's 160 MB of frames takes longer than binning it.
            np.savez(fh, key=np.array(key_json), x=split.x, y=split.y, speakers=split.speakers, keys=np.array(split.keys))
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        warnings.warn(f"could not write the frame cache {path}: {one_line(exc)}", stacklevel=3)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
