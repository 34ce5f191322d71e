"""A run's test split through its generated C: the samples, host parity recorded in ``metrics.json``.

The proving itself is :mod:`codegen.verify` (host builds, firmware runs, the one comparison routine); this
module finds the dataset the run was trained on and records what was proven.
"""

from __future__ import annotations

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


def load_test_samples(run_dir: Path, net, data: str | None, data_root: str | None, limit: int | None,
                      progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The first ``limit`` test samples (counts, labels) of the dataset ``run_dir`` was trained on."""
    from pytrain.data.loader import load_data

    spec = data or run_data_spec(run_dir)
    if not spec:
        raise UserError("--data is required (the run does not record its dataset)")
    bundle = load_data(spec, bin_ms=net.bin_ms, data_root=data_root, progress=progress)
    if bundle.n_inputs != net.n_inputs or bundle.n_classes != net.n_classes:
        raise UserError(f"dataset {bundle.name} does not match the model's inputs or classes")
    x, y = bundle.test.x.numpy(), bundle.test.y.numpy()
    if limit is not None:
        if limit < 1:
            raise UserError("the sample count must be at least 1")
        x, y = x[:limit], y[:limit]
    return x, y


def run_host_parity(run: Path, data: str | None = None, data_root: str | None = None, prefix: str = "model",
                    limit: int | None = None, progress: bool = True) -> ParityResult:
    """Host parity of ``run``'s integer model on its test split; checks ``run/c`` is current if it exists."""
    path, net, plan, files = load_deployment(Path(run), prefix)
    x, y = load_test_samples(path.parent, net, data, data_root, limit, progress)
    result = host_parity(net, plan, files, x, y, progress=progress)
    metrics = runfolder.read_metrics(path.parent)
    if metrics or (path.parent / runfolder.METRICS_FILE).exists():
        metrics["c_acc"] = result.c_acc
        metrics["host_parity"] = {"n": result.n, "bit_exact": result.bit_exact, "c_acc": result.c_acc,
                                  "int_acc": result.ref_acc, "first_mismatch": result.first_mismatch,
                                  "model_sha256": plan.model_sha256}
        runfolder.write_metrics(path.parent, metrics)
    return result
