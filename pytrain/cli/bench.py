"""``delrec-edge bench-train``: training-step speed of every recurrent variant, side by side."""

from __future__ import annotations

import argparse
from pathlib import Path

from codegen.integer.network import VARIANTS

from .firmware import opt_level


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def register(sub) -> None:
    p = sub.add_parser(
        "bench-train", help="benchmark one training step per recurrent variant",
        description=(
            "Time one training step (forward, backward, optimiser) of a preset for every recurrent variant on random "
            "5%%-density spike input, and print a table. 'fused' is the shipped implementation, 'reference' the "
            "step-by-step autograd loop it is tested against."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--preset", default="shd")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=100, help="time steps T per sample")
    p.add_argument("--repeats", type=int, default=7, help="timed steps per row (min / median / max reported)")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--impl", default="fused", help="comma list of fused,reference")
    p.add_argument("--sigma", default="0.06,10", help="comma list of sigma values (train-time delay spread)")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    p.set_defaults(func=run)

    q = sub.add_parser(
        "bench-infer", help="benchmark inference per sample: PyTorch float vs integer reference vs generated C",
        description=(
            "Time the classification of the same test samples, one at a time, by the trained float model "
            "(PyTorch eager, batch 1), the integer reference model and the generated C built on the host, "
            "and print a table with the speed-ups of the C."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    q.add_argument("runs", nargs="+", help="run folders holding model.pt and model.int.npz")
    q.add_argument("--samples", type=int, default=16, help="test samples timed per engine")
    q.add_argument("--repeats", type=int, default=5, help="timed rounds (the fastest is reported)")
    q.add_argument("--threads", type=int, default=1, help="torch intra-op threads (the C runs on one core)")
    q.add_argument("--optimize", default="-O3", type=opt_level, metavar="{O0,O1,O2,O3,Os}",
                   help="optimization level of the host C build")
    q.add_argument("--native", action="store_true",
                   help="build the C with -march=native (this host's vector extensions, e.g. AVX2)")
    q.add_argument("--data", default=None, help="dataset (default: the one each run was trained on)")
    q.add_argument("--data-root", default=None, help="folder holding SHD/ and SSC/")
    q.add_argument("--json", default=None, help="also write the rows to this JSON file")
    q.set_defaults(func=run_infer)

    d = sub.add_parser(
        "bench-density", help="instructions per step on emulated cores at several input densities, beside dense int8",
        description=(
            "Run a network of the SHD shape (140 -> 256 -> recurrent 256 -> 20, random integer weights) as generated "
            "C on emulated Cortex-M cores at several input spike densities (bit-exact against the integer reference) "
            "and print instructions per step beside a dense int8 evaluation of the same layers and the 760,814 "
            "instructions per step another SNN code generator needs for this network on a Cortex-M4."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d.add_argument("--densities", default="2,5,10,20,50", help="input densities in percent (comma list)")
    d.add_argument("--targets", default="cortex-m4,cortex-m55", help="firmware targets (comma list)")
    d.add_argument("--samples", type=int, default=2, help="random input samples per density")
    d.add_argument("--steps", type=int, default=100, help="time steps per sample")
    d.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    d.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    d.set_defaults(func=run_density)

    b = sub.add_parser(
        "bench", help="the benchmark suite: every recurrent variant through the whole chain, side by side",
        description=(
            "Train each recurrent variant with the same budget, quantize it, generate C, check host parity, time "
            "PyTorch float / integer reference / host C per sample, and run the firmware on emulated Cortex-M "
            "cores; print markdown tables and write JSON."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    b.add_argument("--preset", default="edge")
    b.add_argument("--data", required=True, help="dataset folder, or shd / ssc")
    b.add_argument("--out", type=Path, required=True, help="folder for the runs (one sub-folder per variant)")
    b.add_argument("--epochs", type=int, default=None, help="training epochs per variant (default: the preset's)")
    b.add_argument("--variants", default=",".join(VARIANTS))
    b.add_argument("--targets", default="cortex-m4,cortex-m55", help="firmware targets (comma list)")
    b.add_argument("--samples", type=int, default=4, help="test samples run on each firmware target")
    b.add_argument("--timing-samples", type=int, default=8, help="test samples timed per engine on the host")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--json", type=Path, required=True, help="write the results to this JSON file")
    b.add_argument("--markdown", type=Path, default=None, help="also write the tables to this markdown file")
    b.add_argument("--no-progress", action="store_true")
    b.set_defaults(func=run_suite)

    a = sub.add_parser(
        "bench-accuracy", help="accuracy table: SNN float and int8 beside the baselines, over folds and seeds",
        description=(
            "Train and quantize the SNN with each preset's defaults on every fold and seed, run the baselines (a float "
            "log-mel MLP on the audio and logistic regression on the spike counts) on the same splits, and print one "
            "table of mean and spread. --corpus takes an audio corpus from 'data hard' (its leave-speakers-out folds "
            "are encoded once into WORK/data); --data takes one spike dataset (no log-mel baseline). Finished runs in "
            "WORK are reused, so the command can be interrupted and run again."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    src = a.add_mutually_exclusive_group(required=True)
    src.add_argument("--corpus", type=Path, default=None, help="audio corpus folder (data hard)")
    src.add_argument("--data", type=Path, default=None, help="spike dataset folder (data synth / data wav)")
    a.add_argument("--work", type=Path, required=True, help="folder for the encoded folds, runs and accuracy.json")
    a.add_argument("--folds", default=None, help="comma list of folds (default: all of the corpus)")
    a.add_argument("--seeds", default="0,1,2", help="comma list of seeds")
    a.add_argument("--presets", default="edge", help="comma list of presets")
    a.add_argument("--steps", type=int, default=None, help="optimizer steps per SNN run (default: the preset's)")
    a.add_argument("--no-baselines", action="store_true", help="SNN rows only")
    a.add_argument("--markdown", type=Path, default=None, help="also write the table to this file")
    a.add_argument("--no-progress", action="store_true", help="no progress bars")
    a.set_defaults(func=run_accuracy)


def run(args) -> int:
    import torch

    from codegen.common.errors import UserError
    from pytrain.bench.training import run_training_benchmark

    variants = [v for v in args.variants.split(",") if v]
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise UserError(f"unknown variant(s) {', '.join(bad)}; choose from {', '.join(VARIANTS)}")
    impls = [v for v in args.impl.split(",") if v]
    if any(i not in ("fused", "reference") for i in impls):
        raise UserError("--impl takes fused and/or reference")
    if args.json:
        from codegen.common.atomic import check_writable

        check_writable(args.json)
    torch.set_num_threads(args.threads)
    rows = run_training_benchmark(args.preset, variants, impls, _floats(args.sigma), args.batch, args.steps, args.repeats)
    print(f"training step, preset {args.preset}, batch {args.batch}, T={args.steps}, {args.threads} threads, "
          f"{args.repeats} timed steps per row (seconds)")
    print(f"{'variant':<14}{'impl':<11}{'sigma':>7}{'min':>9}{'median':>9}{'max':>9}")
    for r in rows:
        print(f"{r.variant:<14}{r.impl:<11}{r.sigma:>7.2f}{r.min:>9.3f}{r.median:>9.3f}{r.max:>9.3f}")
    if args.json:
        from pathlib import Path

        from codegen.common.atomic import write_json_atomic

        write_json_atomic(Path(args.json), [dict(r.__dict__, min=r.min, median=r.median, max=r.max) for r in rows])
    return 0


def run_infer(args) -> int:
    from pathlib import Path

    import torch

    from codegen.common.errors import UserError
    from pytrain.bench.inference import benchmark_run, format_table

    if args.samples < 1 or args.repeats < 1 or args.threads < 1:
        raise UserError("--samples, --repeats and --threads must be at least 1")
    if args.json:
        from codegen.common.atomic import check_writable

        check_writable(args.json)
    torch.set_num_threads(args.threads)
    rows = [benchmark_run(Path(r), args.samples, args.repeats, args.data, args.data_root, args.optimize, args.native)
            for r in args.runs]
    print(f"inference per sample, batch 1, {args.samples} test samples, best of {args.repeats} rounds, "
          f"torch {args.threads} thread(s); C built with {args.optimize}{' -march=native' if args.native else ''} "
          "on this host")
    print(format_table(rows))
    if args.json:
        from codegen.common.atomic import write_json_atomic

        write_json_atomic(Path(args.json), [r.as_dict() for r in rows])
    return 0


def run_suite(args) -> int:
    import torch

    from codegen.common.atomic import write_bytes_atomic, write_json_atomic
    from codegen.common.errors import UserError
    from codegen.verify.firmware_run import TARGETS
    from pytrain.bench.suite import markdown, run_suite as suite

    targets = tuple(t for t in args.targets.split(",") if t)
    if any(t not in TARGETS for t in targets):
        raise UserError(f"--targets: choose from {', '.join(TARGETS)}")
    if args.samples < 1 or args.timing_samples < 1:
        raise UserError("--samples and --timing-samples must be at least 1")
    from codegen.common.atomic import check_writable

    check_writable(args.json)
    if args.markdown is not None:
        check_writable(args.markdown)
    check_writable(args.out, folder=True)
    torch.set_num_threads(1)
    rows = suite(args.preset, args.data, args.out, args.epochs, tuple(v for v in args.variants.split(",") if v),
                 targets, args.samples, args.timing_samples, args.seed, progress=not args.no_progress)
    text = markdown(rows, args.preset, args.epochs, targets)
    print(text)
    write_json_atomic(args.json, {"preset": args.preset, "epochs": args.epochs, "targets": list(targets),
                                  "variants": [r.as_dict() for r in rows]})
    if args.markdown is not None:
        write_bytes_atomic(args.markdown, (text + "\n").encode())
    return 0


def _ints(text: str, option: str) -> list[int]:
    from codegen.common.errors import UserError

    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{option} must be a comma list of integers, got {text!r}") from None


def run_accuracy(args) -> int:
    from codegen.common.atomic import write_bytes_atomic
    from pytrain.bench.accuracy import AccuracyOptions, format_table, run_accuracy as bench

    opts = AccuracyOptions(
        work=args.work, corpus=args.corpus, data=args.data,
        folds=None if args.folds is None else _ints(args.folds, "--folds"), seeds=_ints(args.seeds, "--seeds"),
        presets=[p.strip() for p in args.presets.split(",") if p.strip()], steps=args.steps,
        baselines=not args.no_baselines, progress=not args.no_progress,
    )
    table = format_table(bench(opts)["table"])
    print(table)
    if args.markdown is not None:
        write_bytes_atomic(args.markdown, (table + "\n").encode("utf-8"))
    return 0


def run_density(args) -> int:
    import sys

    from codegen.common.errors import UserError
    from codegen.verify.firmware_run import TARGETS, check_tools
    from pytrain.bench.density import format_sweep, run_sweep

    try:
        densities = [float(v) / 100 for v in args.densities.split(",") if v]
    except ValueError:
        raise UserError("--densities takes percentages, e.g. 2,5,10") from None
    if not densities or any(not 0 < d <= 1 for d in densities):
        raise UserError("--densities must be percentages in (0, 100]")
    targets = tuple(t for t in args.targets.split(",") if t)
    if not targets or any(t not in TARGETS for t in targets):
        raise UserError(f"--targets: choose from {', '.join(TARGETS)}")
    if args.samples < 1 or args.steps < 1:
        raise UserError("--samples and --steps must be at least 1")
    check_tools(need_qemu=True)
    if args.json:
        from codegen.common.atomic import check_writable

        check_writable(args.json)
    rows, dense = run_sweep(densities, targets, args.samples, args.steps, args.seed,
                            progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(format_sweep(rows, dense))
    if args.json:
        from codegen.common.atomic import write_json_atomic

        write_json_atomic(args.json, {"rows": [r.as_dict() for r in rows], "dense": [d.as_dict() for d in dense],
                                      "other_generator_m4": 760_814})
    mismatched = [(r.density, t) for r in rows for t, v in r.bit_exact.items() if v != args.samples]
    if mismatched:
        raise UserError(f"the firmware differs from the integer reference at density {mismatched[0][0]:g} on "
                        f"{mismatched[0][1]}")
    return 0
