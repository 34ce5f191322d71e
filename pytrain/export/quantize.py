"""Post-training quantization, optional quantization-aware fine-tuning, and export of the integer model.

``quantize_run`` reads ``RUN/model.pt``, builds the fake-quantized network (scales from the weights and
from calibration inputs), optionally fine-tunes it with QAT, proves the integer model equal to it on the test
split, then writes ``RUN/model.int.npz`` and adds ``float_acc``, ``fakequant_acc`` and ``int_acc`` (counts in
``quantization.accuracy``, all on the same test split) to ``RUN/metrics.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from codegen.common.errors import UserError
from codegen.verify.compare import compare
from pytrain import runfolder
from pytrain.data.loader import SpikeTensors, check_same_frontend, load_data
from pytrain.model import checkpoint as ckpt
from pytrain.model.network import active_steps, readout_score
from pytrain.training.loop import evaluate, seed_everything

from .fakequant import FakeQuantSNN, calibrated, per_layer_bits


@dataclass
class QuantizeOptions:
    run: Path
    out: Path | None = None  # run folder to write (default: ``run`` itself)
    data: str | None = None
    data_root: str | None = None
    weight_bits: int | tuple[int, ...] = 8  # one width, or one per hidden layer plus the readout
    qat_epochs: int = 0
    calib: int = 256
    lr: float = 1e-4
    batch_size: int = 64
    seed: int = 0
    progress: bool = True


def qat_loss(fq: FakeQuantSNN, u: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The float model's loss on the readout in float units (``u / 2^u_frac``); ``x`` is the input (T, B, C)."""
    logits = u / 2.0**fq.u_frac
    n_active = active_steps(x) if fq.cfg.loss == "active_mean" else None
    return F.cross_entropy(readout_score(logits, fq.cfg.loss, n_active), y)


@torch.no_grad()
def fakequant_traces(fq: FakeQuantSNN, split: SpikeTensors, batch_size: int = 256):
    """Per-step spikes of every layer (B, T, N) and readout values (B, T, K), and the scores (B, K).

    Float64, as the fake-quant model computes them: :func:`compare_with_reference` checks that they are whole
    numbers before it compares them (a cast here could truncate a fractional value into a match)."""
    fq.eval()
    spikes, readout = [], []
    for start in range(0, len(split), batch_size):
        u, s = fq(split.x[start : start + batch_size].double().transpose(0, 1))
        spikes.append([layer.transpose(0, 1) for layer in s])
        readout.append(u.transpose(0, 1))
    per_layer = [torch.cat([b[i] for b in spikes]) for i in range(len(fq.scales))]
    u_all = torch.cat(readout)
    return per_layer, u_all, u_all.sum(1)


def compare_with_reference(fq_spikes, fq_u, trace):
    """:func:`codegen.verify.compare.compare` of every spike of every layer at every step and every readout value
    of the fake-quant model (float64 tensors, which must hold whole numbers) with the reference trace."""
    axes = {f"layer {i} spikes": ("step", "neuron") for i in range(len(fq_spikes))} | {"readout": ("step", "class")}
    expected = {f"layer {i} spikes": layer.spikes for i, layer in enumerate(trace.layers)} | {"readout": trace.u}
    observed = {f"layer {i} spikes": s.numpy() for i, s in enumerate(fq_spikes)} | {"readout": fq_u.numpy()}
    return compare(expected, observed, axes)


def fine_tune(fq: FakeQuantSNN, data: SpikeTensors, opts: QuantizeOptions) -> list[dict]:
    """Quantization-aware training: AdamW on the float parameters through the integer forward pass."""
    opt = torch.optim.AdamW([p for p in fq.parameters() if p.requires_grad], lr=opts.lr, weight_decay=0.0)
    history = []
    bar = None
    n_batches = math.ceil(len(data) / opts.batch_size)
    if opts.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=opts.qat_epochs * n_batches, unit="batch", desc="QAT", dynamic_ncols=True)
    for epoch in range(opts.qat_epochs):
        fq.train()
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(opts.seed * 7919 + epoch))
        total = correct = 0.0
        for i in range(n_batches):
            idx = order[i * opts.batch_size : (i + 1) * opts.batch_size]
            y = data.y[idx]
            x = data.x[idx].double().transpose(0, 1)
            u, _ = fq(x)
            loss = qat_loss(fq, u, y, x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            correct += float((fq.scores(u.detach()).argmax(-1) == y).sum())
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}", refresh=False)
        history.append({"epoch": epoch, "loss": total / len(data), "train_acc": correct / len(data)})
    if bar is not None:
        bar.close()
    fq.eval()
    return history


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _check_options(opts: QuantizeOptions) -> None:
    if opts.qat_epochs < 0 or opts.calib < 0:
        raise UserError("--qat-epochs and --calib must not be negative")
    if not (math.isfinite(opts.lr) and opts.lr > 0):
        raise UserError(f"--lr must be a positive finite number, got {opts.lr}")
    if opts.batch_size < 1:
        raise UserError("the QAT batch size must be at least 1")


def stale_c_note(run: Path, digest: str) -> str | None:
    """A note when ``RUN/c`` holds C generated from another model than the one with ``digest``."""
    from codegen.common.atomic import read_json_object

    memory = run / runfolder.C_FOLDER / runfolder.MEMORY_FILE
    if not memory.exists():
        return None
    try:
        recorded = read_json_object(memory).get("model_sha256")
    except UserError:
        recorded = None
    if recorded == digest:
        return None
    return f"{run / runfolder.C_FOLDER} was generated from another model: run 'delrec-edge codegen {run} --force'"


def quantize_run(opts: QuantizeOptions) -> dict:
    """Quantize a run: every input is read and checked first, the integer model must equal the fake-quant model
    on every spike and readout value of the test split, and only then ``model.int.npz`` and ``metrics.json``
    are written, together (:func:`codegen.common.atomic.write_files_atomic`). Any failure writes nothing and
    leaves the previous model in place."""
    from codegen.common.accuracy import Accuracy
    from codegen.common.atomic import check_writable, json_bytes, write_files_atomic
    from codegen.integer import overflow, refmodel
    from codegen.integer.modelfile import network_bytes, network_digest
    from codegen.integer.validate import validate_network

    _check_options(opts)
    model_path = runfolder.find_model_file(opts.run)
    model, rec = ckpt.load_model(model_path)
    source = model_path.parent
    run = Path(opts.out) if opts.out is not None else source
    try:
        per_layer_bits(model, opts.weight_bits)
    except ValueError as exc:
        raise UserError(f"--weight-bits: {exc}") from None
    info = rec.get("info", {})
    spec = opts.data or info.get("data_spec")
    if not spec:
        raise UserError("--data is required (the run does not record its dataset)")
    # every input read (and refused) before the work and before anything is written
    metrics = runfolder.read_metrics(run if (run / runfolder.METRICS_FILE).exists() else source)
    check_writable(run / runfolder.INT_MODEL_FILE)
    seed_everything(opts.seed)
    data = load_data(spec, bin_ms=model.cfg.bin_ms, data_root=opts.data_root, seed=int(info.get("seed", 0)),
                     progress=opts.progress)
    if data.n_inputs != model.cfg.n_inputs or data.n_classes != model.cfg.n_classes:
        raise UserError(f"dataset {data.name} has {data.n_inputs} inputs and {data.n_classes} classes, "
                        f"the model expects {model.cfg.n_inputs} and {model.cfg.n_classes}")
    check_same_frontend(data, info.get("frontend_sha256"), str(model_path))
    if data.frontend is not None:
        from codegen.integer import frontend_bounds

        try:
            frontend_bounds.check(data.frontend)
        except ValueError as exc:
            raise UserError(f"cannot export: {exc}") from None
    t0 = time.perf_counter()
    float_acc = evaluate(model, data.test, torch.device("cpu"))["accuracy"]
    fq = calibrated(model, opts.weight_bits, data.train.x[: opts.calib])
    history = fine_tune(fq, data.train, opts) if opts.qat_epochs else []
    fq_spikes, fq_u, fq_scores = fakequant_traces(fq, data.test)
    fakequant_acc = Accuracy.of(fq_scores.argmax(-1), data.test.y)

    net = dataclasses.replace(fq.to_int_network(
        classes=data.classes,
        meta={"preset": info.get("preset", ""), "source_checkpoint_sha256": _file_sha256(model_path),
              "weight_bits": list(fq.bits), "qat_epochs": opts.qat_epochs, "calib": opts.calib},
    ), frontend=data.frontend)  # the model hears through the front end its dataset was encoded with
    try:
        validate_network(net)
        overflow.check(net, max_steps=data.n_steps)
    except ValueError as exc:
        raise UserError(f"cannot export: {exc}") from None
    result = refmodel.run(net, data.test.x.numpy().astype(np.int64), keep_trace=True)
    int_acc = Accuracy.of(result.predictions, data.test.y)
    # the scores are the readout summed over time, so equal readouts at every step imply equal scores
    parity = compare_with_reference(fq_spikes, fq_u, result.trace)
    if not parity.ok:
        raise UserError(f"the integer model differs from the fake-quant model on {parity.n - parity.exact} of "
                        f"{parity.n} test samples (first: {parity.first}); nothing was written")
    quant = {
        "float_acc": float_acc.value,
        "fakequant_acc": fakequant_acc.value,
        "int_acc": int_acc.value,
        "accuracy": {"float": float_acc.as_dict(), "fakequant": fakequant_acc.as_dict(), "int": int_acc.as_dict()},
        "weight_bits": list(fq.bits),
        "qat_epochs": opts.qat_epochs,
        "calib": opts.calib,
        "fakequant_int_bit_exact": parity.exact,
        "n_test": len(data.test),
        "model_sha256": network_digest(net),
        "quantize_seconds": time.perf_counter() - t0,
        "qat_history": history,
    }
    metrics.update({k: quant[k] for k in ("float_acc", "fakequant_acc", "int_acc")})
    metrics["quantization"] = quant
    for stale in ("c_acc", "host_parity"):  # they describe the C of the previous model
        metrics.pop(stale, None)
    outputs = {run / runfolder.INT_MODEL_FILE: network_bytes(net), run / runfolder.METRICS_FILE: json_bytes(metrics)}
    if run != source and not (run / runfolder.MODEL_FILE).exists():
        outputs[run / runfolder.MODEL_FILE] = model_path.read_bytes()
    write_files_atomic(outputs)
    quant["notes"] = [note for note in [stale_c_note(run, quant["model_sha256"])] if note]
    return quant
