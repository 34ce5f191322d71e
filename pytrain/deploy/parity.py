"""A run's test split through its generated C: the samples, host parity recorded in ``metrics.json``.

The proving itself is :mod:`codegen.verify` (host builds, firmware runs, the one comparison routine); this
module finds the dataset the run was trained on and records what was proven.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codegen.common.errors import UserError
from codegen.verify.hostparity import ParityResult, host_parity
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


def run_host_parity(run: Path, data: str | None = None, data_root: str | None = None, prefix: str = "model",
                    limit: int | None = None, progress: bool = True) -> ParityResult:
    """Host parity of ``run``'s integer model on its test split; checks ``run/c`` is current if it exists.

    A check of the whole split sets ``c_acc`` and ``host_parity`` in ``metrics.json``; a partial one
    (``limit`` below the split's size) is recorded apart, as ``host_parity_partial`` with the samples it
    covered, and never replaces a full check.
    """
    path, net, plan, files = load_deployment(Path(run), prefix)
    metrics = runfolder.read_metrics(path.parent)  # refused before the work if unreadable
    if metrics or (path.parent / runfolder.METRICS_FILE).exists():
        from codegen.common.atomic import check_writable

        check_writable(path.parent / runfolder.METRICS_FILE)
    samples = load_test_samples(path.parent, net, data, data_root, limit, progress)
    result = host_parity(net, plan, files, samples.x, samples.y, progress=progress)
    if metrics or (path.parent / runfolder.METRICS_FILE).exists():
        record = {"n": result.n, "of": samples.total, "bit_exact": result.bit_exact, "c": result.c.as_dict(),
                  "int": result.ref.as_dict(), "first_mismatch": result.first_mismatch,
                  "model_sha256": plan.model_sha256}
        if result.n == samples.total:
            metrics["c_acc"] = result.c_acc
            metrics["host_parity"] = record
        else:
            metrics["host_parity_partial"] = record
        runfolder.write_metrics(path.parent, metrics)
    return result
