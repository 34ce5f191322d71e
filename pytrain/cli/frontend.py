"""``delrec-edge bench-frontend`` (speed of the audio front ends on one CPU core, :mod:`pytrain.bench.frontend`) and
``delrec-edge bench-probe`` (how much each front end keeps: a linear probe, :mod:`pytrain.bench.probe`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from codegen.common.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench-frontend",
        help="measure the audio front ends' speed on one CPU core",
        description=(
            "Encode a synthetic test signal (noise with a syllable-rate envelope, 16 kHz) with the audio front ends "
            "on one CPU core and report the time per second of audio and the speed relative to real time: the "
            "integer front end (the Python definition the generated C reproduces) on one stream and on a batch of "
            "1 s clips (as datasets are built), and the float front end (kept for comparison)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--seconds", type=float, default=10.0, help="length of the test signal in seconds")
    p.add_argument("--channels", type=int, nargs="+", default=[32, 64], help="channel counts to measure")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per front end and channel count (min, median, max)")
    p.add_argument("--front-end", default="integer,float", help="comma list: integer, float")
    p.set_defaults(func=run_bench_frontend)
    _register_probe(subparsers)


def run_bench_frontend(args: argparse.Namespace) -> int:
    if args.seconds <= 0 or args.repeats < 1 or min(args.channels) < 1:
        raise UserError("--seconds, --repeats and --channels must be positive")
    kinds = tuple(k.strip() for k in args.front_end.split(",") if k.strip())
    if not kinds or set(kinds) - {"integer", "float"}:
        raise UserError(f"--front-end: choose from integer, float (got {args.front_end!r})")
    from pytrain.bench.frontend import time_front_end

    rows, how = time_front_end(args.seconds, args.channels, args.repeats, kinds)
    width = max(len(r.front_end) for r in rows)
    print(f"audio front ends, one core ({how}), {args.repeats} repeats, 16 kHz input; x real time at the median")
    print(f"{'front end':<{width}}  {'channels':>8}  {'audio s':>8}  {'min ms':>9}  {'median ms':>9}  {'max ms':>9}  "
          f"{'x real time':>11}")
    for r in rows:
        print(f"{r.front_end:<{width}}  {r.channels:>8d}  {r.audio_s:>8.1f}  {r.min:>9.1f}  {r.median:>9.1f}  "
              f"{r.max:>9.1f}  {r.real_time_factor:>11.1f}")
    return 0


def _register_probe(subparsers) -> None:
    p = subparsers.add_parser(
        "bench-probe",
        help="a linear probe of the front ends: how much of the words each one keeps",
        description=(
            "Synthesise spoken digits (the offline dataset's recipe; train and test voices disjoint), encode the "
            "same clips with the integer front end, the float front end and a float log-mel spectrogram (librosa), "
            "pool each over time into equal segments and fit a logistic regression (scikit-learn) on the training "
            "voices; print the accuracy on the held-out voices for each."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--per-voice", type=int, default=4, help="utterances per (word, voice)")
    p.add_argument("--segments", type=int, nargs="+", default=[10, 1], help="time segments the features are pooled into")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthesis")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes for the synthesis")
    p.add_argument("--json", type=Path, default=None, help="also write the table as JSON")
    p.set_defaults(func=run_bench_probe)


def run_bench_probe(args: argparse.Namespace) -> int:
    if args.per_voice < 1 or min(args.segments) < 1 or args.jobs < 1:
        raise UserError("--per-voice, --segments and --jobs must be positive")
    from pytrain.bench.probe import probe_front_ends

    rows = probe_front_ends(per_voice=args.per_voice, segments=tuple(args.segments), seed=args.seed, jobs=args.jobs)
    width = max(len(r.front_end) for r in rows)
    print("linear probe: logistic regression on time-pooled features, trained on the training voices, "
          "tested on the held-out voices (the offline dataset's split)")
    print(f"{'front end':<{width}}  {'segments':>8}  {'features':>8}  {'train':>6}  {'test':>5}  {'correct':>7}  {'accuracy':>8}")
    for r in rows:
        print(f"{r.front_end:<{width}}  {r.segments:>8d}  {r.features:>8d}  {r.n_train:>6d}  {r.n_test:>5d}  "
              f"{r.correct:>7d}  {r.accuracy:>8.3f}")
    if args.json is not None:
        import dataclasses

        from codegen.common.atomic import write_json_atomic

        write_json_atomic(args.json, [dataclasses.asdict(r) for r in rows])
    return 0
