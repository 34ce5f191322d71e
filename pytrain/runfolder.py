"""What a run folder holds, named once; and ``metrics.json``, read and written in one place.

A run folder, as the commands fill it::

    RUN/model.pt           the float model (``train``; best validation accuracy)
    RUN/checkpoint.pt      optimiser, scheduler and RNG state for ``train --resume``
    RUN/metrics.json       what every stage measured (train, quantize, parity)
    RUN/model.int.npz      the integer model file (``quantize``)
    RUN/c/                 the generated C folder (``codegen``), with c/memory.json
    RUN/firmware/          firmware work folders (``firmware build|run``)
    RUN/report/            the figures (``report``)

No torch here: every layer of the training side may import it.
"""

from __future__ import annotations

from pathlib import Path

from codegen.common.atomic import read_json_object, write_json_atomic
from codegen.common.errors import UserError

MODEL_FILE = "model.pt"
RESUME_FILE = "checkpoint.pt"
METRICS_FILE = "metrics.json"
INT_MODEL_FILE = "model.int.npz"
C_FOLDER = "c"
MEMORY_FILE = "memory.json"  # inside C_FOLDER
FIRMWARE_FOLDER = "firmware"
REPORT_FOLDER = "report"


def find_model_file(run: Path) -> Path:
    """``run`` itself if it is a file, else ``run/model.pt``; ``UserError`` if missing."""
    run = Path(run)
    if run.is_file():
        return run
    if not run.is_dir():
        raise UserError(f"run folder {run} does not exist")
    path = run / MODEL_FILE
    if not path.is_file():
        raise UserError(f"{run} holds no {MODEL_FILE}; train one with 'delrec-edge train'")
    return path


def find_int_model(path: Path) -> Path:
    """``path`` itself if it is a file, else ``path/model.int.npz``; ``UserError`` if missing."""
    path = Path(path)
    if path.is_dir():
        path = path / INT_MODEL_FILE
        if not path.is_file():
            raise UserError(f"{path.parent} holds no {INT_MODEL_FILE}; run 'delrec-edge quantize' first")
    elif not path.is_file():
        raise UserError(f"{path} does not exist")
    return path


def read_metrics(run: Path) -> dict:
    """The run's ``metrics.json`` as a dict (empty when there is none); ``UserError`` when it is not a readable
    JSON object (a list, ``null``, not UTF-8, a directory)."""
    path = Path(run) / METRICS_FILE
    if not path.exists():
        return {}
    return read_json_object(path)


def write_metrics(run: Path, metrics: dict) -> None:
    """Replace the run's ``metrics.json`` atomically."""
    write_json_atomic(Path(run) / METRICS_FILE, metrics)
