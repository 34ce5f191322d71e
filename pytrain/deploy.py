"""From the integer model file to C: write the generated folder, and prove the host build bit-exact.

``generate_c`` writes the C99 folder and its memory report; ``host_parity`` compiles the generated C on
the host and runs a dataset split through it and through the integer reference model, comparing every
membrane, spike, readout value and score at every step.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import staged_directory, write_json_atomic
from .errors import UserError

C_FOLDER = "c"
MEMORY_FILE = "memory.json"
INT_MODEL_FILE = "model.int.npz"


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


def load_int_model(path: Path):
    from codegen.modelfile import load_network

    try:
        return load_network(path)
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: {exc}") from None


def plan_and_render(net, prefix: str):
    from codegen.emit import generate

    try:
        return generate(net, prefix)
    except ValueError as exc:
        raise UserError(f"cannot generate C: {exc}") from None


@dataclass
class Generated:
    out: Path
    plan: object
    files: dict
    report: dict


def generate_c(model: Path, out: Path | None = None, prefix: str = "model", force: bool = False) -> Generated:
    """Write the C folder for ``model`` (a model file or a run folder) to ``out`` (default: next to it, ``c/``)."""
    from codegen.emit import write_folder
    from codegen.memory import memory_report

    path = find_int_model(model)
    net = load_int_model(path)
    plan, files = plan_and_render(net, prefix)
    out = Path(out) if out is not None else path.parent / C_FOLDER
    report = memory_report(plan, files)
    with staged_directory(out, force=force) as tmp:
        write_folder(files, tmp)
        write_json_atomic(tmp / MEMORY_FILE, report)
    return Generated(out, plan, files, report)


@dataclass
class ParityResult:
    n: int
    bit_exact: int
    c_acc: float
    ref_acc: float
    first_mismatch: str | None
    seconds: float


def _compare(trace, ref, b: int) -> str | None:
    """Where the host trace first differs from sample ``b`` of the reference trace, or ``None``."""
    for i, layer in enumerate(ref.layers):
        for name, c_vals in (("membrane", trace.v[i]), ("spikes", trace.spikes[i])):
            r_vals = layer.v[b] if name == "membrane" else layer.spikes[b]
            bad = np.argwhere(c_vals.astype(np.int64) != r_vals.astype(np.int64))
            if bad.size:
                return f"layer {i} {name} at step {bad[0][0]}, neuron {bad[0][1]}"
    for name, c_vals, r_vals in (("readout", trace.u, ref.u[b]), ("score", trace.score, ref.score[b])):
        bad = np.argwhere(c_vals.astype(np.int64) != r_vals)
        if bad.size:
            return f"{name} at step {bad[0][0]}, class {bad[0][1]}"
    return None


def host_parity(net, plan, files, x: np.ndarray, y: np.ndarray, progress: bool = True, batch: int = 64) -> ParityResult:
    """Run samples ``x`` (S, T, C) counts through the host-built C and the reference; compare everything."""
    from codegen import refmodel
    from codegen.hostbuild import build_host_model

    t0 = time.perf_counter()
    host = build_host_model(plan, files)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(x), unit="sample", desc="host parity", dynamic_ncols=True)
    exact = c_correct = ref_correct = 0
    first = None
    for start in range(0, len(x), batch):
        xb = np.asarray(x[start : start + batch])
        ref = refmodel.run(net, xb.astype(np.int64), keep_trace=True)
        for b in range(len(xb)):
            trace = host.trace(host.new_state(), xb[b])
            cls, scores = host.classify(xb[b])
            where = _compare(trace, ref.trace, b)
            if where is None and not np.array_equal(scores, ref.scores[b]):
                where = "final scores"
            if where is None:
                exact += 1
            elif first is None:
                first = f"sample {start + b}: {where}"
            c_correct += int(cls == int(y[start + b]))
            ref_correct += int(ref.predictions[b] == int(y[start + b]))
        if bar is not None:
            bar.update(len(xb))
    if bar is not None:
        bar.close()
    n = len(x)
    return ParityResult(n, exact, c_correct / max(n, 1), ref_correct / max(n, 1), first, time.perf_counter() - t0)


def load_deployment(run: Path, prefix: str = "model"):
    """(model file, network, plan, files) of ``run`` (a run folder, or its generated ``c/`` folder).

    The C is rendered from the model file; when ``run/c`` exists it must be exactly that rendering (its
    prefix is taken from its memory.json), so a hand-edited or stale folder is refused.
    """
    run = Path(run)
    if run.is_dir() and (run / MEMORY_FILE).is_file() and not (run / INT_MODEL_FILE).is_file():
        run = run.parent  # the generated folder itself was named
    path = find_int_model(run)
    net = load_int_model(path)
    folder = path.parent / C_FOLDER
    if folder.is_dir() and (folder / MEMORY_FILE).is_file():
        prefix = json.loads((folder / MEMORY_FILE).read_text()).get("prefix", prefix)
    plan, files = plan_and_render(net, prefix)
    if folder.is_dir():
        stale = [name for name, text in files.items()
                 if not (folder / name).is_file() or (folder / name).read_bytes() != text.encode("utf-8")]
        if stale:
            raise UserError(f"{folder} is not what 'delrec-edge codegen' writes for this model ({stale[0]} differs); "
                            "regenerate it")
    return path, net, plan, files


def load_test_samples(run_dir: Path, net, data: str | None, data_root: str | None, limit: int | None,
                 progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The first ``limit`` test samples (counts, labels) of the dataset ``run_dir`` was trained on."""
    from .data import load_data

    spec = data or _data_spec(run_dir)
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


def _data_spec(run: Path) -> str | None:
    from . import checkpoint as ckpt

    model_pt = run / ckpt.MODEL_FILE
    if not model_pt.is_file():
        return None
    return ckpt.load_record(model_pt).get("info", {}).get("data_spec")


def run_host_parity(run: Path, data: str | None = None, data_root: str | None = None, prefix: str = "model",
                    limit: int | None = None, progress: bool = True) -> ParityResult:
    """Host parity of ``run``'s integer model on its test split; checks ``run/c`` is current if it exists."""
    from . import checkpoint as ckpt

    path, net, plan, files = load_deployment(Path(run), prefix)
    x, y = load_test_samples(path.parent, net, data, data_root, limit, progress)
    result = host_parity(net, plan, files, x, y, progress=progress)
    metrics = ckpt.read_metrics(path.parent)
    if metrics or (path.parent / ckpt.METRICS_FILE).exists():
        metrics["c_acc"] = result.c_acc
        metrics["host_parity"] = {"n": result.n, "bit_exact": result.bit_exact, "c_acc": result.c_acc,
                                  "int_acc": result.ref_acc, "first_mismatch": result.first_mismatch,
                                  "model_sha256": plan.model_sha256}
        write_json_atomic(path.parent / ckpt.METRICS_FILE, metrics)
    return result
