"""``delrec-edge bench-frontend``: speed of the audio front end on one CPU core.

One core is enforced by pinning the process to a single CPU (``os.sched_setaffinity``, Linux) for the
duration of the benchmark; thread pools of BLAS/OpenMP libraries are also limited to one thread with
threadpoolctl when it is installed. The affinity is restored afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from typing import Iterator

from ..errors import UserError


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


@contextlib.contextmanager
def single_core() -> Iterator[str]:
    """Run the body on one CPU; yields a description of how that was enforced."""
    how = []
    saved_affinity = None
    if hasattr(os, "sched_setaffinity"):
        saved_affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(saved_affinity)})
        how.append(f"pinned to CPU {min(saved_affinity)}")
    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(limits=1))
            how.append("thread pools limited to 1")
        except ImportError:
            pass
        try:
            yield ", ".join(how) or "no CPU pinning available on this platform"
        finally:
            if saved_affinity is not None:
                os.sched_setaffinity(0, saved_affinity)


def benchmark_signal(seconds: float, sample_rate: int, seed: int = 0):
    """Deterministic speech-like load: white noise under a 4 Hz raised-sine envelope, RMS about 0.1."""
    import numpy as np

    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t)
    return 0.15 * envelope * np.random.default_rng(seed).standard_normal(n)


def run_bench_frontend(args: argparse.Namespace) -> int:
    if args.seconds <= 0 or args.repeats < 1 or min(args.channels) < 1:
        raise UserError("--seconds, --repeats and --channels must be positive")
    from ..frontend import FrontEndConfig, encode

    rows = []
    with single_core() as how:
        for n_channels in args.channels:
            cfg = FrontEndConfig(n_channels=n_channels)
            audio = benchmark_signal(args.seconds, cfg.sample_rate)
            encode(audio[: cfg.sample_rate // 10], cfg)  # warm-up: imports and the cached filter design
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                encode(audio, cfg)
                best = min(best, time.perf_counter() - start)
            rows.append((n_channels, args.seconds, best * 1000, best * 1000 / args.seconds, args.seconds / best))
    print(f"audio front end, one core ({how}), best of {args.repeats}, 16 kHz input, 1 ms steps")
    print(f"{'channels':>8}  {'audio s':>8}  {'wall ms':>9}  {'ms/audio s':>10}  {'x real time':>11}")
    for n_channels, seconds, wall_ms, ms_per_s, speed in rows:
        print(f"{n_channels:>8d}  {seconds:>8.1f}  {wall_ms:>9.1f}  {ms_per_s:>10.1f}  {speed:>11.1f}")
    return 0
