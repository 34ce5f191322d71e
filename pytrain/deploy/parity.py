"""A run's test split through its generated C: the samples, host parity recorded in ``metrics.json``.

The proving itself is :mod:`codegen.verify` (host builds, firmware runs, the one comparison routine); this
module finds the dataset the run was trained on and records what was proven.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codegen.common.errors import UserError
from codegen.verify.hostparity import ParityResult, host_audio_parity, host_parity
from pytrain import runfolder

from .cfolder import load_deployment


def run_data_spec(run: Path) -> str | None:
    """The dataset ``run`` was trained on, as recorded in its ``model.pt`` (``None`` when unknown)."""
    from pytrain.model import checkpoint as ckpt

    model_pt = Path(run) / runfolder.MODEL_FILE
    if not model_pt.is_file():
        return None
    return ckpt.load_record(model_pt).get("info", {}).get("data_spec")


@dataclass
class SplitSamples:
    x: np.ndarray  # (S, T, C) counts of the first S test samples
    y: np.ndarray  # (S,) labels
    total: int  # samples in the whole test split (S < total when limited)


def load_test_samples(run_dir: Path, net, data: str | None, data_root: str | None, limit: int | None,
                      progress: bool = False) -> SplitSamples:
    """The first ``limit`` test samples (all without a limit) of the dataset ``run_dir`` was trained on."""
    from pytrain.data.loader import load_data

    if limit is not None and limit < 1:
        raise UserError("the sample count must be at least 1")
    spec = data or run_data_spec(run_dir)
    if not spec:
        raise UserError("--data is required (the run does not record its dataset)")
    bundle = load_data(spec, bin_ms=net.bin_ms, data_root=data_root, progress=progress)
    if bundle.n_inputs != net.n_inputs or bundle.n_classes != net.n_classes:
        raise UserError(f"dataset {bundle.name} has {bundle.n_inputs} inputs and {bundle.n_classes} classes, "
                        f"the model expects {net.n_inputs} and {net.n_classes}")
    x, y = bundle.test.x.numpy(), bundle.test.y.numpy()
    return SplitSamples(x[:limit], y[:limit], len(y))


def load_test_audio(run_dir: Path, net, data: str | None, limit: int | None) -> tuple[list[np.ndarray], np.ndarray, int]:
    """The first ``limit`` int16 test clips (and labels, and how many the split has) of the dataset ``run_dir`` was trained on, checked to be
    heard by the model's own front end; ``UserError`` when the model has no front end or the dataset no audio."""
    from codegen.integer.modelfile import frontend_digest
    from pytrain.data import spikefile

    if net.frontend is None:
        raise UserError("the model has no audio front end (it was trained on spike data): it cannot hear audio")
    spec = data or run_data_spec(run_dir)
    if not spec or spec.lower() in ("shd", "ssc"):
        raise UserError("--data must name a dataset folder built from audio (the run does not record one)")
    root = Path(spec)
    meta = spikefile.read_meta(root)
    fe = spikefile.load_frontend(root, meta)
    if fe is None or frontend_digest(fe) != frontend_digest(net.frontend):
        raise UserError(f"{root} was not encoded by the model's front end; its audio would be heard differently")
    clips, labels, rate = spikefile.read_audio(root, meta, "test")
    if rate != net.frontend.sample_rate:
        raise UserError(f"{root}: the test audio is at {rate} Hz, the front end takes {net.frontend.sample_rate} Hz")
    if limit is not None:
        if limit < 1:
            raise UserError("the sample count must be at least 1")
    total = len(clips)
    if limit is not None:
        clips, labels = clips[:limit], labels[:limit]
    return clips, labels, total


def has_test_audio(run_dir: Path, net, data: str | None) -> bool:
    """True when the model has a front end and its dataset keeps test audio (audio parity can run)."""
    from pytrain.data import spikefile

    spec = data or run_data_spec(run_dir)
    if net.frontend is None or not spec or spec.lower() in ("shd", "ssc"):
        return False
    root = Path(spec)
    return (root / spikefile.METADATA_FILE).is_file() and bool(spikefile.read_meta(root).audio.get("test"))


def _check_metrics_writable(run_dir: Path) -> None:
    """Refuse an unreadable or unwritable ``metrics.json`` before the work, not after it."""
    metrics = runfolder.read_metrics(run_dir)
    if metrics or (run_dir / runfolder.METRICS_FILE).exists():
        from codegen.common.atomic import check_writable

        check_writable(run_dir / runfolder.METRICS_FILE)


def _record(run_dir: Path, key: str, result: ParityResult, plan, total: int) -> None:
    """Record a check in ``metrics.json`` (when the run has one): under ``key`` when it covered all ``total``
    samples (the host-parity check then also sets ``c_acc``), else under ``key_partial``, never replacing a full
    check."""
    metrics = runfolder.read_metrics(run_dir)
    if not (metrics or (run_dir / runfolder.METRICS_FILE).exists()):
        return
    record = {"n": result.n, "of": total, "bit_exact": result.bit_exact, "c": result.c.as_dict(),
              "int": result.ref.as_dict(), "first_mismatch": result.first_mismatch, "model_sha256": plan.model_sha256}
    if result.n == total:
        if key == "host_parity":
            metrics["c_acc"] = result.c_acc
        metrics[key] = record
    else:
        metrics[f"{key}_partial"] = record
    runfolder.write_metrics(run_dir, metrics)


def run_host_parity(run: Path, data: str | None = None, data_root: str | None = None, prefix: str = "model",
                    limit: int | None = None, progress: bool = True) -> ParityResult:
    """Host parity of ``run``'s integer model on its test split; checks ``run/c`` is current if it exists.

    A check of the whole split sets ``c_acc`` and ``host_parity`` in ``metrics.json``; a partial one
    (``limit`` below the split's size) is recorded apart, as ``host_parity_partial`` with the samples it
    covered, and never replaces a full check.
    """
    path, net, plan, files = load_deployment(Path(run), prefix)
    _check_metrics_writable(path.parent)
    samples = load_test_samples(path.parent, net, data, data_root, limit, progress)
    result = host_parity(net, plan, files, samples.x, samples.y, progress=progress)
    _record(path.parent, "host_parity", result, plan, samples.total)
    return result


def run_host_audio_parity(run: Path, data: str | None = None, prefix: str = "model", limit: int | None = None,
                          progress: bool = True) -> ParityResult:
    """Audio -> class on the host: the test split's clips through the generated C and the Python integer pipeline.

    Recorded as ``host_parity_audio`` (``host_parity_audio_partial`` for fewer clips than the split has)."""
    path, net, plan, files = load_deployment(Path(run), prefix)
    _check_metrics_writable(path.parent)
    clips, labels, total = load_test_audio(path.parent, net, data, limit)
    result = host_audio_parity(net, plan, files, clips, labels, progress=progress)
    _record(path.parent, "host_parity_audio", result, plan, total)
    return result
