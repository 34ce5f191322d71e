"""The float model file ``RUN/model.pt`` (state dict + configuration): save and load.

``model.pt`` holds only tensors and plain Python values, so it loads with
``torch.load(..., weights_only=True)`` and never unpickles arbitrary objects.
``RUN/checkpoint.pt`` additionally holds optimiser, scheduler and RNG state for ``--resume``.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from codegen.common.atomic import write_bytes_atomic
from codegen.common.errors import UserError

from .config import ModelConfig, TrainConfig
from .network import DelRecSNN

FORMAT = "delrec-edge-model"
VERSION = 1


def save_torch_atomic(path: Path, obj: dict) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes_atomic(path, buf.getvalue())


def model_record(model: DelRecSNN, train_cfg: TrainConfig, info: dict) -> dict:
    """Everything needed to rebuild and describe the model; plain values and tensors only."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "config": model.cfg.to_dict(),
        "train_config": train_cfg.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "info": info,
    }


def load_record(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    try:
        rec = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; all mean the same to the user
        raise UserError(f"{path} is not a readable delrec-edge model file ({type(exc).__name__})") from None
    if not isinstance(rec, dict) or rec.get("format") != FORMAT:
        raise UserError(f"{path} is not a delrec-edge model file")
    if rec.get("version") != VERSION:
        raise UserError(f"{path}: unsupported model file version {rec.get('version')!r}")
    return rec


def check_model(model: DelRecSNN, where: str) -> None:
    """Refuse a model no later stage can use: a non-finite parameter or statistic, or a delay outside
    ``0..MAX_DELAY`` (the largest a delay ring can hold) or above the configured clamp."""
    from codegen.integer.validate import MAX_DELAY

    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise UserError(f"{where}: {name} holds NaN or infinite values")
    limit = MAX_DELAY if model.cfg.delay_max is None else min(MAX_DELAY, model.cfg.delay_max)
    for i, delays in enumerate(model.delay_parameters()):
        low, high = float(delays.detach().min()), float(delays.detach().max())
        if low < 0 or high > limit:
            raise UserError(f"{where}: the delays of recurrent layer {i} span {low:g}..{high:g} steps, outside "
                            f"0..{limit:g}")


def load_model(path: Path) -> tuple[DelRecSNN, dict]:
    """Rebuild the model from ``model.pt`` and check it (:func:`check_model`); returns (model in eval mode,
    record)."""
    rec = load_record(path)
    try:
        cfg = ModelConfig.from_dict(rec["config"])
        model = DelRecSNN(cfg)
        model.load_state_dict(rec["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise UserError(f"{path}: model file does not match its configuration ({str(exc).splitlines()[0]})") from None
    check_model(model, str(path))
    model.eval()
    return model, rec
