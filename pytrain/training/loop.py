"""The training loop: optimisers, the sigma schedule, best-validation checkpointing, resume and DDP.

No model math lives here (see :mod:`pytrain.model`).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from codegen.common.accuracy import Accuracy
from codegen.common.atomic import check_writable
from codegen.common.errors import UserError
from pytrain import runfolder
from pytrain.data.augment import augment
from pytrain.data.loader import DataBundle, SpikeTensors, check_same_frontend, load_data
from pytrain.model import checkpoint as ckpt
from pytrain.model.config import TrainConfig
from pytrain.model.delays import sigma_for_epoch
from pytrain.model.network import DelRecSNN, ModelOutput, count_parameters
from pytrain.model.presets import get_preset

from . import distributed as ddp


@dataclass
class TrainOptions:
    preset: str
    data: str
    out: Path
    epochs: int | None = None
    seed: int = 0
    device: str = "cpu"
    resume: bool = False
    force: bool = False
    recurrent: str | None = None
    data_root: str | None = None
    progress: bool = True
    stop_after: int | None = None  # run at most this many epochs now; continue later with resume
    overrides: dict = field(default_factory=dict)  # TrainConfig fields (batch_size, lr, ...)
    model_overrides: dict = field(default_factory=dict)  # ModelConfig fields (loss, readout, ...)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda requested but no CUDA device is available")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}") from None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def batch_input(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """(B, T, C) uint8 counts -> (T, B, C) float on the device."""
    return x.to(device=device, dtype=torch.float32).transpose(0, 1).contiguous()


def batches_per_epoch(n_train: int, batch_size: int, world_size: int = 1) -> int:
    """Optimizer steps in one epoch (each rank takes an equal share of the shuffled training split)."""
    return max(1, math.ceil((n_train // world_size) / batch_size))


def planned_epochs(tc: TrainConfig, requested: int | None, n_batches: int) -> int:
    """Epochs of a run: ``requested`` (--epochs) if given, else enough for ``tc.steps`` optimizer steps
    (the schedule follows the dataset's size), else the preset's ``tc.epochs``."""
    if requested is not None:
        return requested
    if tc.steps is not None:
        if tc.steps < 1:
            raise UserError("--steps must be at least 1")
        return max(1, math.ceil(tc.steps / n_batches))
    return tc.epochs


def build_optimizers(model: DelRecSNN, tc: TrainConfig, epochs: int, n_batches: int = 1):
    """Weights: AdamW + OneCycle; delays: Adam + cosine, no weight decay. Both schedules advance once per
    optimizer step, over ``epochs * n_batches`` steps."""
    delay_ids = {id(p) for p in model.delay_parameters()}
    no_decay, decay = [], []
    for name, p in model.named_parameters():
        if id(p) in delay_ids:
            continue
        (no_decay if ".bn." in name else decay).append(p)
    weights = torch.optim.AdamW(
        [{"params": decay, "weight_decay": tc.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=tc.lr
    )
    total = epochs * n_batches
    sched_w = torch.optim.lr_scheduler.OneCycleLR(weights, max_lr=tc.lr, total_steps=max(total, 2))
    delays = sched_d = None
    if delay_ids:
        delays = torch.optim.Adam(model.delay_parameters(), lr=tc.lr_delay, weight_decay=0.0)
        sched_d = torch.optim.lr_scheduler.CosineAnnealingLR(delays, T_max=max(total, 1))
    return weights, sched_w, delays, sched_d


def rate_penalty(out: ModelOutput, tc: TrainConfig) -> torch.Tensor | float:
    if tc.rate_reg <= 0:
        return 0.0
    return tc.rate_reg * sum((s.mean() - tc.rate_target) ** 2 for s in out.spikes)


@torch.no_grad()
def evaluate(model: DelRecSNN, split: SpikeTensors, device: torch.device, batch_size: int = 256) -> dict:
    """Accuracy and spike rate in evaluation mode (sigma = 0, integer delays, no dropout)."""
    was_training = model.training
    model.eval()
    preds, rates = [], []
    for start in range(0, len(split), batch_size):
        x = batch_input(split.x[start : start + batch_size], device)
        out = model(x)
        preds.append(model.predict(out).cpu())
        rates.append(float(torch.stack([s.mean() for s in out.spikes]).mean()) * x.shape[1])
    model.train(was_training)
    pred = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.int64)
    accuracy = Accuracy.of(pred, split.y)
    return {
        "acc": accuracy.value,
        "correct": accuracy.correct,
        "n": accuracy.total,
        "accuracy": accuracy,
        "spike_rate": sum(rates) / max(len(split), 1),
        "pred": pred,
    }


def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The same shuffled order on every rank, different per epoch, independent of resume."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def train_one_epoch(
    model: DelRecSNN, net: nn.Module, data: SpikeTensors, tc: TrainConfig, opts: tuple, device: torch.device,
    ctx: ddp.Context, epoch: int, seed: int, bar=None,
) -> dict:
    opt_w, sched_w, opt_d, sched_d = opts
    model.train()
    order = _epoch_order(len(data), seed, epoch)
    # every rank gets the same number of equally sized batches, so DDP's all-reduces line up
    per_rank = len(order) // ctx.world_size
    order = order[ctx.rank * per_rank : (ctx.rank + 1) * per_rank] if ctx.distributed else order
    n_batches = max(1, math.ceil(len(order) / tc.batch_size))
    aug = torch.Generator().manual_seed(seed * 1_000_003 + epoch * 7919 + ctx.rank)
    spec = tc.augment_spec()
    tot_loss = tot_correct = tot_n = tot_rate = 0.0
    for i in range(n_batches):
        idx = order[i * tc.batch_size : (i + 1) * tc.batch_size]
        if len(idx) == 0:
            continue
        x = data.x[idx]
        x = batch_input(augment(x, spec, aug) if spec.active else x, device)
        y = data.y[idx].to(device)
        out = net(x)
        loss = model.loss(out, y) + rate_penalty(out, tc)
        opt_w.zero_grad(set_to_none=True)
        if opt_d is not None:
            opt_d.zero_grad(set_to_none=True)
        loss.backward()
        if tc.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        opt_w.step()
        sched_w.step()
        if opt_d is not None:
            opt_d.step()
            sched_d.step()
        model.clamp_delays_()
        with torch.no_grad():
            b = len(idx)
            tot_loss += float(loss) * b
            tot_correct += float((model.predict(out) == y).sum())
            tot_n += b
            tot_rate += float(torch.stack([s.mean() for s in out.spikes]).mean()) * b
        if bar is not None:
            bar.update(1)
            bar.set_postfix(
                loss=f"{tot_loss / tot_n:.3f}", acc=f"{tot_correct / tot_n:.3f}", rate=f"{tot_rate / tot_n:.3f}",
                refresh=False,
            )
    tot_loss, tot_correct, tot_n, tot_rate = ddp.all_reduce_sum(ctx, [tot_loss, tot_correct, tot_n, tot_rate])
    return {"loss": tot_loss / tot_n, "acc": tot_correct / tot_n, "spike_rate": tot_rate / tot_n}


def _check_out(opts: TrainOptions) -> None:
    out = Path(opts.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a directory")
    if opts.resume:
        if not (out / runfolder.RESUME_FILE).is_file():
            raise UserError(f"--resume: {out / runfolder.RESUME_FILE} does not exist")
    elif out.is_dir() and any(out.iterdir()) and not opts.force:
        raise UserError(f"{out} already exists and is not empty (use --resume to continue it or --force to replace it)")


def _data_info(data: DataBundle) -> dict:
    return {
        "name": data.name, "classes": list(data.classes), "n_inputs": data.n_inputs, "bin_ms": data.bin_ms,
        "n_steps": data.n_steps, "n_train": len(data.train), "n_val": len(data.val), "n_test": len(data.test),
        "val_split": data.val_split,
        "frontend_sha256": data.frontend_sha256,
    }


def train(opts: TrainOptions) -> dict:
    """Train a preset on a dataset into ``opts.out``; returns the metrics written to metrics.json."""
    preset = get_preset(opts.preset)
    device = pick_device(opts.device)
    ctx = ddp.setup(device)
    try:
        return _train(opts, preset, device, ctx)
    finally:
        ddp.teardown(ctx)


def _train(opts: TrainOptions, preset, device: torch.device, ctx: ddp.Context) -> dict:
    out = Path(opts.out)
    try:
        tc = preset.train.replace(**{k: v for k, v in opts.overrides.items() if v is not None})
    except (TypeError, ValueError) as exc:
        raise UserError(str(exc)) from None
    if opts.epochs is not None and (isinstance(opts.epochs, bool) or opts.epochs < 1):
        raise UserError("--epochs must be at least 1")
    if opts.stop_after is not None and opts.stop_after < 1:
        raise UserError("--stop-after must be at least 1")
    try:
        tc.augment_spec()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if ctx.is_main:
        _check_out(opts)
        check_writable(out, folder=True)
    seed_everything(opts.seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)

    data = load_data(
        opts.data, bin_ms=preset.model.bin_ms, data_root=opts.data_root, val_fraction=tc.val_fraction,
        seed=opts.seed, progress=opts.progress and ctx.is_main,
    )
    n_batches = batches_per_epoch(len(data.train), tc.batch_size, ctx.world_size)
    epochs = planned_epochs(tc, opts.epochs, n_batches)
    if opts.resume:
        epochs = _resume_epochs(out / runfolder.RESUME_FILE, opts.epochs)
    changes = {"n_inputs": data.n_inputs, "n_classes": data.n_classes}
    if opts.recurrent:
        changes["recurrent"] = opts.recurrent
    changes.update({k: v for k, v in opts.model_overrides.items() if v is not None})
    try:
        cfg = preset.model.replace(**changes)
    except (TypeError, ValueError) as exc:
        raise UserError(str(exc)) from None

    model = DelRecSNN(cfg).to(device)
    opt_set = build_optimizers(model, tc, epochs, n_batches)
    start_epoch, best, history, elapsed = 0, {"val_acc": -1.0, "epoch": -1}, [], 0.0
    if opts.resume:
        state = _load_resume(out / runfolder.RESUME_FILE, model, opt_set)
        check_same_frontend(data, state["info"].get("frontend_sha256"), f"--resume: {out}")
        start_epoch, best, history, elapsed = state["epoch"] + 1, state["best"], state["history"], state["seconds"]
    net: nn.Module = model
    if ctx.distributed:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[ctx.local_rank] if device.type == "cuda" else None)

    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        if not opts.resume:
            for stale in (runfolder.MODEL_FILE, runfolder.RESUME_FILE, runfolder.METRICS_FILE):
                (out / stale).unlink(missing_ok=True)
    data_spec = opts.data if opts.data.lower() in ("shd", "ssc") else str(Path(opts.data).resolve())
    info = {"preset": preset.name, "data": _data_info(data), "data_spec": data_spec, "seed": opts.seed,
            "world_size": ctx.world_size, "frontend_sha256": data.frontend_sha256}
    last_epoch = epochs if opts.stop_after is None else min(epochs, start_epoch + opts.stop_after)
    bar = None
    if opts.progress and ctx.is_main:
        from tqdm.auto import tqdm

        bar = tqdm(total=(last_epoch - start_epoch) * n_batches, unit="batch", dynamic_ncols=True)
    t0 = time.perf_counter()
    for epoch in range(start_epoch, last_epoch):
        sigma = sigma_for_epoch(epoch, epochs, tc.sigma_init, tc.sigma_decay)
        model.set_sigma(sigma)
        if bar is not None:
            bar.set_description(f"epoch {epoch + 1}/{epochs} sigma={sigma:.2f}")
        stats = train_one_epoch(model, net, data.train, tc, opt_set, device, ctx, epoch, opts.seed, bar)
        if tc.round_delays_each_epoch:
            model.round_delays_()
        ddp.sync_buffers(ctx, model)
        val = evaluate(model, data.val, device)
        history.append({"epoch": epoch, "sigma": sigma, "train_loss": stats["loss"], "train_acc": stats["acc"],
                        "train_spike_rate": stats["spike_rate"], "val_acc": val["acc"]})
        seconds = elapsed + time.perf_counter() - t0
        if val["acc"] >= best["val_acc"]:
            best = {"val_acc": val["acc"], "epoch": epoch}
            if ctx.is_main:
                ckpt.save_torch_atomic(out / runfolder.MODEL_FILE, ckpt.model_record(model, tc, {**info, "epoch": epoch, "val_acc": val["acc"]}))
        if ctx.is_main:
            _save_resume(out / runfolder.RESUME_FILE, model, opt_set, epoch, epochs, best, history, seconds, cfg, tc, info)
            if bar is not None:
                bar.write(f"epoch {epoch + 1}/{epochs}: loss {stats['loss']:.4f} train {stats['acc']:.3f} "
                          f"val {val['acc']:.3f} rate {stats['spike_rate']:.3f}")
    if bar is not None:
        bar.close()
    seconds = elapsed + time.perf_counter() - t0

    digests = ddp.gather_strings(ctx, ddp.parameter_digest(model))
    ddp.barrier(ctx)
    best_model, _ = ckpt.load_model(out / runfolder.MODEL_FILE)
    best_model.to(device)
    test = evaluate(best_model, data.test, device)
    # the un-augmented training clips: does the model fit what it was trained on?
    train_clean = evaluate(best_model, data.train, device)
    metrics = {
        "preset": preset.name,
        "complete": last_epoch == epochs,
        "recurrent": cfg.recurrent,
        "data": info["data"],
        "epochs": epochs,
        "epochs_done": last_epoch,
        "optimizer_steps": last_epoch * n_batches,
        "train_acc": train_clean["acc"],
        "train_correct": train_clean["correct"],
        "best_epoch": best["epoch"],
        "val_acc": best["val_acc"],
        "test_acc": test["acc"],
        "test_correct": test["correct"],
        "test_spike_rate": test["spike_rate"],
        "seconds": seconds,
        "seed": opts.seed,
        "world_size": ctx.world_size,
        "rank_parameter_digests": digests,
        **count_parameters(best_model),
        "history": history,
    }
    if ctx.is_main:
        runfolder.write_metrics(out, metrics)
    return metrics


def _resume_epochs(path: Path, requested: int | None) -> int:
    """A resumed run keeps its epoch count: the sigma and learning-rate schedules depend on it."""
    try:
        planned = int(torch.load(path, map_location="cpu", weights_only=True)["planned_epochs"])
    except Exception:
        raise UserError(f"--resume: {path} is not a usable checkpoint") from None
    if requested is not None and requested != planned:
        raise UserError(f"--resume: the run was planned for {planned} epochs; resume with --epochs {planned} or omit it")
    return planned


def _save_resume(path, model, opt_set, epoch, epochs, best, history, seconds, cfg, tc, info) -> None:
    opt_w, sched_w, opt_d, sched_d = opt_set
    state = {
        "format": ckpt.FORMAT + "-resume",
        "config": cfg.to_dict(),
        "train_config": tc.to_dict(),
        "info": info,
        "epoch": epoch,
        "planned_epochs": epochs,
        "best": best,
        "history": history,
        "seconds": seconds,
        "model": model.state_dict(),
        "opt_w": opt_w.state_dict(),
        "sched_w": sched_w.state_dict(),
        "opt_d": opt_d.state_dict() if opt_d is not None else None,
        "sched_d": sched_d.state_dict() if sched_d is not None else None,
        "torch_rng": torch.get_rng_state(),
    }
    ckpt.save_torch_atomic(path, state)


def _load_resume(path: Path, model: DelRecSNN, opt_set) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("config") != model.cfg.to_dict():
            raise UserError(f"--resume: {path} was trained with a different model configuration")
        opt_w, sched_w, opt_d, sched_d = opt_set
        model.load_state_dict(state["model"])
        opt_w.load_state_dict(state["opt_w"])
        sched_w.load_state_dict(state["sched_w"])
        if opt_d is not None:
            opt_d.load_state_dict(state["opt_d"])
            sched_d.load_state_dict(state["sched_d"])
        torch.set_rng_state(state["torch_rng"])
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"--resume: {path} is not a usable checkpoint ({type(exc).__name__})") from None
    return state
