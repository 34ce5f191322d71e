"""``delrec-edge eval``: re-evaluate a run's checkpoint on a dataset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "eval", help="re-evaluate a trained run",
        description="Evaluate RUN/model.pt (integer delays, sigma = 0) on a dataset's test split (and validation split).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("run", type=Path, help="run folder (or a model.pt file)")
    p.add_argument("--data", default=None, help="'shd', 'ssc' or a dataset folder (default: the one the run was trained on, if it was a folder)")
    p.add_argument("--data-root", default=None, help="folder holding SHD/ and SSC/")
    p.add_argument("--split", choices=("test", "val", "train"), default="test", help="which split to evaluate")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from codegen.common.errors import UserError
    from pytrain.data.loader import load_data
    from pytrain.model.checkpoint import load_model
    from pytrain.runfolder import find_model_file
    from pytrain.training.loop import evaluate, pick_device

    path = find_model_file(args.run)
    model, rec = load_model(path)
    info = rec.get("info", {})
    data_spec = args.data or info.get("data_spec")
    if not data_spec:
        raise UserError("--data is required (the run does not record a dataset folder)")
    data = load_data(data_spec, bin_ms=model.cfg.bin_ms, data_root=args.data_root, seed=int(info.get("seed", 0)), progress=False)
    if data.n_inputs != model.cfg.n_inputs or data.n_classes != model.cfg.n_classes:
        raise UserError(
            f"dataset {data.name} has {data.n_inputs} inputs and {data.n_classes} classes, "
            f"the model expects {model.cfg.n_inputs} and {model.cfg.n_classes}"
        )
    device = pick_device(args.device)
    model.to(device)
    res = evaluate(model, getattr(data, args.split), device)
    out = {"split": args.split, "acc": res["acc"], "correct": res["correct"], "n": res["n"], "spike_rate": res["spike_rate"], "data": data.name}
    if args.json:
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        print(f"{args.split} accuracy {res['acc']:.4f} ({res['correct']}/{res['n']}) on {data.name}, spike rate {res['spike_rate']:.4f}")
    return 0
