"""``delrec-edge quantize``: calibrate, optionally fine-tune with QAT, and write the integer model file."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "quantize", help="quantize a trained run into the integer model file",
        description=(
            "Post-training calibration, then optional quantization-aware fine-tuning. Writes RUN/model.int.npz "
            "and adds float_acc, fakequant_acc and int_acc (same test split) to RUN/metrics.json."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("run", type=Path, help="run folder written by 'delrec-edge train'")
    p.add_argument("--data", default=None, help="dataset (default: the one the run was trained on)")
    p.add_argument("--data-root", default=None, help="folder holding SHD/ and SSC/")
    p.add_argument("--out", type=Path, default=None, help="run folder to write (default: RUN itself)")
    p.add_argument("--weight-bits", default="8",
                   help="weight width (4, 8 or 16) of every layer, or a comma list: one per hidden layer, then the readout")
    p.add_argument("--calib", type=int, default=256, help="training samples used to calibrate membrane scales")
    p.add_argument("--qat-epochs", type=int, default=0, help="epochs of quantization-aware fine-tuning")
    p.add_argument("--lr", type=float, default=1e-4, help="QAT learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def _bits(text: str):
    from codegen.common.errors import UserError

    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--weight-bits: expected integers, got {text!r}") from None
    return values[0] if len(values) == 1 else values


def run(args) -> int:
    from codegen.common.accuracy import Accuracy
    from pytrain.export.quantize import QuantizeOptions, quantize_run

    q = quantize_run(QuantizeOptions(
        run=args.run, out=args.out, data=args.data, data_root=args.data_root, weight_bits=_bits(args.weight_bits),
        qat_epochs=args.qat_epochs, calib=args.calib, lr=args.lr, seed=args.seed, progress=not args.no_progress,
    ))
    acc = {k: Accuracy.from_dict(v) for k, v in q["accuracy"].items()}
    bits = q["weight_bits"]
    label = f"int{bits[0]}" if len(set(bits)) == 1 else "int" + "/".join(map(str, bits))
    print(f"{'model':<22}{'test accuracy':>22}")
    for name, key in (("float", "float"), ("fake-quant " + label, "fakequant"), ("integer reference", "int")):
        print(f"{name:<22}{str(acc[key]):>22}")
    out = args.out or args.run
    print(f"fake-quant == integer reference (every spike, every step, every readout value): bit-exact on "
          f"{q['fakequant_int_bit_exact']}/{q['n_test']} samples; wrote {out / 'model.int.npz'}")
    for note in q.get("notes", []):
        print(f"note: {note}")
    return 0
