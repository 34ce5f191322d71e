"""``delrec-edge report``: PNG figures of a run (spike rasters, delays, recurrent weights, accuracy, confusion, memory)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "report", help="draw a run's figures as PNG files",
        description=(
            "Draw the figures of RUN into a folder of PNGs: raster.png (input and hidden-layer spikes of one test "
            "sample), delays.png (learned delay histogram per recurrent layer), recurrent_kernel.png (recurrent "
            "weights), accuracy.png (float / fake-quant / integer / C test accuracy from metrics.json), "
            "confusion.png (test-split confusion matrix) and memory.png (per-layer flash and RAM of the generated "
            "C). Spikes and predictions come from the integer model (model.int.npz) when the run has one, else "
            "from the float model. A figure whose data the run does not hold yet is not drawn; the command says "
            "which and why. The folder is replaced as a whole, never left half-written."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("run", type=Path, help="run folder (model.pt and/or model.int.npz, metrics.json, c/)")
    p.add_argument("--out", type=Path, default=None, help="folder to write (default: RUN/report); it is replaced")
    p.add_argument("--sample", type=int, default=0, help="test sample (index) shown in raster.png")
    p.add_argument("--data", default=None, help="dataset (default: the one the run was trained on)")
    p.add_argument("--data-root", default=None, help="folder holding SHD/ and SSC/")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from pytrain.report.rundata import write_report

    r = write_report(args.run, args.out, sample=args.sample, progress=not args.no_progress, data=args.data,
                     data_root=args.data_root)
    print(f"wrote {len(r.files)} figure{'s' if len(r.files) != 1 else ''} to {r.out} in {r.seconds:.1f} s")
    for path in r.files:
        print(f"  {path}")
    for note in r.notes:
        print(f"note: {note}")
    return 0
