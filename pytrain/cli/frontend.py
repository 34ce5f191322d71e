"""``delrec-edge bench-frontend``: speed of the audio front end on one CPU core (:mod:`pytrain.bench.frontend`)."""

from __future__ import annotations

import argparse

from codegen.common.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench-frontend",
        help="measure the audio front end's speed on one CPU core",
        description=(
            "Encode a synthetic test signal (noise with a syllable-rate envelope, 16 kHz) with the audio front end "
            "on one CPU core and report the time per second of audio and the speed relative to real time."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--seconds", type=float, default=10.0, help="length of the test signal in seconds")
    p.add_argument("--channels", type=int, nargs="+", default=[32, 64], help="channel counts to measure")
    p.add_argument("--repeats", type=int, default=3, help="runs per channel count; the fastest is reported")
    p.set_defaults(func=run_bench_frontend)


def run_bench_frontend(args: argparse.Namespace) -> int:
    if args.seconds <= 0 or args.repeats < 1 or min(args.channels) < 1:
        raise UserError("--seconds, --repeats and --channels must be positive")
    from pytrain.bench.frontend import time_front_end

    rows, how = time_front_end(args.seconds, args.channels, args.repeats)
    print(f"audio front end, one core ({how}), best of {args.repeats}, 16 kHz input, 1 ms steps")
    print(f"{'channels':>8}  {'audio s':>8}  {'wall ms':>9}  {'ms/audio s':>10}  {'x real time':>11}")
    for r in rows:
        print(f"{r.channels:>8d}  {r.audio_s:>8.1f}  {r.wall_ms:>9.1f}  {r.ms_per_audio_s:>10.1f}  "
              f"{r.real_time_factor:>11.1f}")
    return 0
