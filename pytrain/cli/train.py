"""``delrec-edge train``: train a preset on a dataset into a run folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from codegen.integer.network import VARIANTS
from pytrain.model.config import LOSSES, READOUTS


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train a model (keeps the best-validation checkpoint)",
        description=(
            "Train a preset on a dataset. Writes RUN/model.pt (best validation accuracy), RUN/metrics.json "
            "and RUN/checkpoint.pt (for --resume). Under torchrun the run is data-parallel (DDP)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--preset", default="edge", help="preset name (shd, ssc, edge, edge-m, edge-l, tiny)")
    p.add_argument("--data", required=True, help="'shd', 'ssc' or a dataset folder built by 'delrec-edge data'")
    p.add_argument("--data-root", default=None, help="folder holding SHD/ and SSC/ (default $DELREC_EDGE_DATA or ~/.cache/delrec-edge/datasets)")
    p.add_argument("--out", required=True, type=Path, help="run folder to write")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs (default: as many as the preset's optimizer steps need on this dataset)")
    p.add_argument("--steps", type=int, default=None,
                   help="optimizer steps of the run (default: the preset's); the epoch count follows the dataset size")
    p.add_argument("--recurrent", choices=VARIANTS, default=None, help="recurrent variant (default: the preset's)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size per process (default: the preset's)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate of the weights")
    p.add_argument("--lr-delay", type=float, default=None, help="learning rate of the delays")
    p.add_argument("--grad-clip", type=float, default=None, help="clip the gradient norm to this value")
    p.add_argument("--rate-reg", type=float, default=None, help="weight of the firing-rate penalty")
    p.add_argument("--rate-target", type=float, default=None, help="target firing rate per step")
    p.add_argument("--channel-shift", type=int, default=None, help="augmentation: random channel shift of up to this many channels")
    p.add_argument("--no-augment", action="store_true",
                   help="train on the clips as they are (no speed, warp, shift, level, noise or band augmentation)")
    p.add_argument("--loss", choices=LOSSES, default=None, help="loss on the readout (default: the preset's)")
    p.add_argument("--readout", choices=READOUTS, default=None, help="readout kind (default: the preset's)")
    p.add_argument("--seed", type=int, default=0, help="random seed (runs are deterministic on CPU)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--resume", action="store_true", help="continue RUN from its last checkpoint")
    p.add_argument("--stop-after", type=int, default=None, help="run at most this many epochs now (continue later with --resume)")
    p.add_argument("--force", action="store_true", help="replace an existing run folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from pytrain.training.loop import TrainOptions, train

    opts = TrainOptions(
        preset=args.preset, data=args.data, out=args.out, epochs=args.epochs, seed=args.seed, device=args.device,
        resume=args.resume, force=args.force, recurrent=args.recurrent, data_root=args.data_root,
        progress=not args.no_progress, stop_after=args.stop_after,
        overrides={"batch_size": args.batch_size, "lr": args.lr, "lr_delay": args.lr_delay, "grad_clip": args.grad_clip,
                   "rate_reg": args.rate_reg, "rate_target": args.rate_target,
                   "channel_shift": args.channel_shift, "steps": args.steps,
                   **({"channel_shift": 0, **{f"aug_{k}": 0 for k in ("speed", "warp", "shift", "thin", "noise", "mask")}}
                      if args.no_augment else {})},
        model_overrides={"loss": args.loss, "readout": args.readout},
    )
    m = train(opts)
    if m.get("world_size", 1) == 1 or _is_main():
        print(f"test accuracy {m['test_acc']:.4f} ({m['test_correct']}/{m['data']['n_test']}), best val {m['val_acc']:.4f} "
              f"at epoch {m['best_epoch'] + 1}, {m['seconds']:.1f} s; wrote {args.out}")
    return 0


def _is_main() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"
