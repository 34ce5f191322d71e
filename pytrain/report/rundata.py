"""``delrec-edge report``: gather what a run folder holds and write its figures (:mod:`.figures` draws them).

:func:`write_report` writes ``raster.png``, ``delays.png``, ``recurrent_kernel.png``, ``accuracy.png``,
``confusion.png`` and ``memory.png``. Spikes and predictions come from the integer model (re-run through the
reference model) when the run has one, else from the float model. A figure whose data the run does not hold
is not drawn: the reason is returned in ``notes`` instead, never a made-up value.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from codegen.common.accuracy import Accuracy
from codegen.common.atomic import check_writable, read_json_object
from codegen.common.errors import UserError
from pytrain import runfolder

from .figures import (
    DPI,
    accuracy_figure,
    confusion_figure,
    confusion_matrix,
    delay_histogram_figure,
    memory_figure,
    raster_figure,
    recurrent_kernel_figure,
)

RASTER = "raster.png"
DELAYS = "delays.png"
KERNEL = "recurrent_kernel.png"
ACCURACY = "accuracy.png"
CONFUSION = "confusion.png"
MEMORY = "memory.png"
REPORT_FILES = (RASTER, DELAYS, KERNEL, ACCURACY, CONFUSION, MEMORY)

# (label, metrics keys tried in order, how to get the value when it is missing)
STAGES = (
    ("float", ("float_acc", "test_acc"), "train the run"),
    ("fake-quant", ("fakequant_acc",), "run 'delrec-edge quantize'"),
    ("integer", ("int_acc",), "run 'delrec-edge quantize'"),
    ("C", ("c_acc",), "run 'delrec-edge codegen' and 'delrec-edge parity'"),
)


# ------------------------------------------------------------------------------------------ gathering


@dataclass
class Report:
    out: Path
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was not drawn, and why; other remarks
    seconds: float = 0.0
    figures: dict = field(default_factory=dict, repr=False)  # file name -> the Figure written to it


@dataclass
class _RunData:
    run: Path
    model: object | None  # DelRecSNN
    record: dict | None
    net: object | None  # IntNetwork
    metrics: dict
    bundle: object | None  # DataBundle
    bin_ms: float


def _check_out(run: Path, out: Path) -> None:
    """Refuse an ``out`` that the staged replacement would damage: the run itself, or a folder of other files."""
    r, o = run.resolve(), out.resolve()
    if o == r or o in r.parents:
        raise UserError(f"--out {out} would replace the run folder; choose a folder of its own")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a folder")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in REPORT_FILES)
        if foreign:
            raise UserError(f"{out} holds files that are not part of a report ({foreign[0]}, ...); "
                            "choose another --out")


def _load_run(run: Path, data: str | None, data_root: str | None, progress: bool, notes: list[str]) -> _RunData:
    from pytrain.deploy.cfolder import load_int_model
    from pytrain.model import checkpoint as ckpt

    if not run.exists():
        raise UserError(f"run folder {run} does not exist")
    if not run.is_dir():
        raise UserError(f"{run} is not a run folder")
    has_pt, has_int = (run / runfolder.MODEL_FILE).is_file(), (run / runfolder.INT_MODEL_FILE).is_file()
    if not has_pt and not has_int:
        raise UserError(f"{run} holds neither {runfolder.MODEL_FILE} nor {runfolder.INT_MODEL_FILE}; train a model first")
    model = record = net = None
    if has_pt:
        model, record = ckpt.load_model(run / runfolder.MODEL_FILE)
    if has_int:
        net = load_int_model(run / runfolder.INT_MODEL_FILE)
    metrics = runfolder.read_metrics(run)
    bin_ms = float(model.cfg.bin_ms if model is not None else net.bin_ms)
    n_inputs = model.cfg.n_inputs if model is not None else net.n_inputs
    n_classes = model.cfg.n_classes if model is not None else net.n_classes
    spec = data or ((record or {}).get("info", {}).get("data_spec"))
    bundle = None
    if not spec:
        notes.append(f"{RASTER}, {CONFUSION}: not drawn, the run does not record its dataset (pass --data)")
    else:
        from pytrain.data.loader import load_data

        seed = int((record or {}).get("info", {}).get("seed", 0))
        try:
            bundle = load_data(spec, bin_ms=bin_ms, data_root=data_root, seed=seed, progress=progress)
        except UserError as exc:
            if data:  # asked for explicitly: an error
                raise
            notes.append(f"{RASTER}, {CONFUSION}: not drawn, the run's dataset {spec} cannot be loaded ({exc})")
        if bundle is not None and (bundle.n_inputs != n_inputs or bundle.n_classes != n_classes):
            raise UserError(f"dataset {bundle.name} has {bundle.n_inputs} inputs and {bundle.n_classes} classes, "
                            f"the model expects {n_inputs} and {n_classes}")
    return _RunData(run, model, record, net, metrics, bundle, bin_ms)


def _hidden_spikes(rd: _RunData, x: np.ndarray) -> tuple[list[np.ndarray], int, str]:
    """Per-layer spikes (T, N) and the prediction of one sample ``x`` (T, C), from the integer model if present."""
    if rd.net is not None:
        from codegen.integer import refmodel

        res = refmodel.run(rd.net, x[None].astype(np.int64), keep_trace=True)
        return [layer.spikes[0] for layer in res.trace.layers], int(res.predictions[0]), "integer model"
    import torch

    with torch.no_grad():
        out = rd.model(torch.from_numpy(x).float().unsqueeze(1))
        pred = int(rd.model.predict(out)[0])
    return [s[:, 0, :].numpy().astype(np.uint8) for s in out.spikes], pred, "float model"


def _predictions(rd: _RunData, progress: bool, batch: int = 128) -> tuple[np.ndarray, str]:
    """Test-split predictions of the integer model (float model if the run has none)."""
    x = rd.bundle.test.x
    if rd.net is None:
        import torch

        from pytrain.training.loop import evaluate

        return evaluate(rd.model, rd.bundle.test, torch.device("cpu"))["pred"].numpy(), "float model"
    from codegen.integer import refmodel

    xs = x.numpy()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(xs), unit="sample", desc="integer model", dynamic_ncols=True)
    preds = []
    for start in range(0, len(xs), batch):
        chunk = xs[start : start + batch].astype(np.int64)
        preds.append(refmodel.run(rd.net, chunk).predictions)
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return np.concatenate(preds), "integer model"


def _recurrent_layers(rd: _RunData) -> list[dict]:
    """Per recurrent layer: name, variant, integer delays, weight (float units) and its unit label."""
    out = []
    if rd.net is not None:
        for i, layer in enumerate(rd.net.layers):
            rec = layer.recurrence
            if rec is None:
                continue
            out.append({
                "name": f"layer {i}", "variant": rec.variant, "delays": np.asarray(rec.delays, dtype=np.int64),
                "weight": np.asarray(rec.weight, dtype=np.float64) / 2.0**rec.frac,
                "unit": f"weight (int{rec.weight_bits} / 2^{rec.frac})",
            })
        return out
    from pytrain.model.delays import integer_delays

    for i, layer in enumerate(rd.model.layers):
        rec = layer.rec
        if rec is None:
            continue
        d = integer_delays(rec.delays).numpy() if rec.delays is not None else np.zeros(
            0 if rec.variant == "taps" else rec.n, dtype=np.int64)
        out.append({"name": f"layer {i}", "variant": rec.variant, "delays": d,
                    "weight": rec.weight.detach().double().numpy(), "unit": "weight (float)"})
    return out


def _accuracy_values(metrics: dict) -> tuple[dict, dict, str]:
    values, hints = {}, {}
    for label, keys, hint in STAGES:
        v = next((metrics[k] for k in keys if isinstance(metrics.get(k), (int, float))), None)
        values[label] = None if v is None else float(v)
        hints[label] = hint
    extra = []
    if "float_acc" not in metrics and values["float"] is not None:
        extra.append("float = test_acc of training")
    hp = metrics.get("host_parity")
    if isinstance(hp, dict) and "bit_exact" in hp and "n" in hp:
        extra.append(f"C bit-exact with the integer model on {hp['bit_exact']}/{hp['n']} test samples")
    return values, hints, "; ".join(extra)


def _memory(rd: _RunData, notes: list[str]) -> tuple[dict | None, str]:
    from codegen.generator.memory import memory_report
    from codegen.generator.plan import make_plan
    from codegen.integer.modelfile import network_digest

    memory_json = f"{runfolder.C_FOLDER}/{runfolder.MEMORY_FILE}"
    path = rd.run / runfolder.C_FOLDER / runfolder.MEMORY_FILE
    recorded = None
    if path.exists():
        try:
            recorded = read_json_object(path)
        except UserError as exc:
            notes.append(f"{exc}; ignored")
    if rd.net is None:
        if recorded is not None:
            return recorded, f"from {memory_json} (the run holds no model.int.npz to check it against)"
        notes.append(f"{MEMORY}: not drawn, the run has no integer model (run 'delrec-edge quantize')")
        return None, ""
    digest = network_digest(rd.net)
    if recorded is not None and recorded.get("model_sha256") == digest and "rows" in recorded:
        return recorded, f"from {memory_json}"
    try:
        report = memory_report(make_plan(rd.net))
    except ValueError as exc:
        notes.append(f"{MEMORY}: not drawn, no C can be planned for this model ({exc})")
        return None, ""
    why = "stale" if recorded is not None else "not generated"
    return report, f"computed from model.int.npz ({memory_json} {why}; code size not measured)"


def write_report(run: Path | str, out_dir: Path | str | None = None, sample: int = 0, progress: bool = True,
                 data: str | None = None, data_root: str | None = None) -> Report:
    """Draw every figure the run's files allow into ``out_dir`` (default ``RUN/report``), atomically.

    The folder is written through :func:`codegen.common.atomic.staged_directory`: it is replaced as a whole or
    not at all. Returns the written files and the notes on what was not drawn.
    """
    from codegen.common.atomic import staged_directory

    try:
        import matplotlib  # noqa: F401  (figures are plain Figure objects: PNGs render with Agg, no display)
    except ImportError:
        raise UserError("'report' needs matplotlib (pip install 'matplotlib>=3.7')") from None
    t0 = time.perf_counter()
    run = Path(run)
    out = Path(out_dir) if out_dir is not None else run / runfolder.REPORT_FOLDER
    if sample < 0:
        raise UserError(f"--sample must be 0 or more, got {sample}")
    if not run.exists():
        raise UserError(f"run folder {run} does not exist")
    _check_out(run, out)
    check_writable(out, folder=True)
    notes: list[str] = []
    rd = _load_run(run, data, data_root, progress, notes)
    figures: dict[str, object] = {}
    model_note = "" if rd.net is not None else " (the run has no model.int.npz)"

    if rd.bundle is not None:
        n_test = len(rd.bundle.test)
        if sample >= n_test:
            raise UserError(f"--sample {sample} is out of range: the test split has {n_test} samples (0..{n_test - 1})")
        if rd.model is None and rd.net is None:  # unreachable: _load_run requires one
            raise UserError(f"{run} holds no model")
        x = rd.bundle.test.x[sample].numpy()
        label = int(rd.bundle.test.y[sample])
        spikes, pred, source = _hidden_spikes(rd, x)
        classes = rd.bundle.classes
        title = (f"test sample {sample}: class '{classes[label]}', predicted '{classes[pred]}' "
                 f"({'correct' if pred == label else 'wrong'}) - {source}{model_note}")
        figures[RASTER] = raster_figure(x, [(f"layer {i}", s) for i, s in enumerate(spikes)], rd.bin_ms, title)

        preds, source = _predictions(rd, progress)
        y = rd.bundle.test.y.numpy()
        cm = confusion_matrix(y, preds, rd.bundle.n_classes)
        figures[CONFUSION] = confusion_figure(
            cm, classes, f"{source} on the {rd.bundle.name} test split ({n_test} samples){model_note}")
        now = Accuracy(int(np.trace(cm)), n_test)
        counts = rd.metrics.get("quantization", {}).get("accuracy", {}).get("int" if rd.net is not None else "float")
        if isinstance(counts, dict) and (counts.get("correct"), counts.get("total")) != (now.correct, now.total):
            notes.append(f"metrics.json records {counts.get('correct')}/{counts.get('total')} correct but the {source} "
                         f"now scores {now} on this test split (stale metrics?)")

    layers = _recurrent_layers(rd)
    if not layers:
        notes.append(f"{DELAYS}, {KERNEL}: not drawn, the model has no recurrent layer")
    else:
        delay_max = rd.model.cfg.delay_max if rd.model is not None else None
        src = "integer model" if rd.net is not None else "float model, rounded half up"
        figures[DELAYS] = delay_histogram_figure([(r["name"], r["delays"]) for r in layers], rd.bin_ms, delay_max,
                                                 f"learned axonal delays ({src})")
        figures[KERNEL] = recurrent_kernel_figure(
            layers, f"recurrent weights ({'integer model, in float units' if rd.net is not None else 'float model'})")

    values, hints, extra = _accuracy_values(rd.metrics)
    if all(v is None for v in values.values()):
        notes.append(f"{ACCURACY}: not drawn, the run records no accuracy (no metrics.json or no accuracy in it)")
    else:
        figures[ACCURACY] = accuracy_figure(values, hints, extra)
        missing = [k for k, v in values.items() if v is None]
        if missing:
            notes.append(f"{ACCURACY}: no {', '.join(missing)} accuracy recorded")

    report, source = _memory(rd, notes)
    if report is not None:
        figures[MEMORY] = memory_figure(report, source)

    result = Report(out=out, notes=notes, figures=figures)
    with staged_directory(out, force=True) as tmp:
        for name in REPORT_FILES:
            if name in figures:
                figures[name].savefig(tmp / name, dpi=DPI, format="png")
    result.files = [out / name for name in REPORT_FILES if name in figures]
    result.seconds = time.perf_counter() - t0
    return result
