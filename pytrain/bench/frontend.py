"""Speed of the audio front ends on one CPU core (a benchmark that prints a table, not a test).

The integer front end (:mod:`codegen.integer.frontend_ref`, the definition the C reproduces, which datasets are
built with) is timed on one stream fed in one call, and on a batch of 1 s clips as ``data synth`` and ``data
wav`` encode them; the float front end (:mod:`pytrain.data.frontend`, kept for comparison) on one stream.

One core is enforced by pinning the process to a single CPU (``os.sched_setaffinity``, Linux) for the
duration of the benchmark; thread pools of BLAS/OpenMP libraries are also limited to one thread with
threadpoolctl when it is installed. The affinity is restored afterwards.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from typing import Iterator

from .repeats import Repeats


@dataclass(frozen=True)
class FrontEndTiming(Repeats):
    channels: int
    audio_s: float
    times: tuple[float, ...]  # milliseconds of every repeat, in order (min, median, max: Repeats)
    front_end: str = "float"  # "integer", "integer, N clips of 1 s" or "float"

    @property
    def real_time_factor(self) -> float:
        """Seconds of audio per second of computation, at the median."""
        return self.audio_s * 1000 / self.median


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


def _times_ms(fn, repeats: int) -> tuple[float, ...]:
    """Milliseconds of each of ``repeats`` calls of ``fn``."""
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return tuple(out)


def time_front_end(seconds: float, channels: list[int], repeats: int,
                   kinds: tuple[str, ...] = ("integer", "float"), batch: int = 16) -> tuple[list[FrontEndTiming], str]:
    """``repeats`` timed encodings of ``seconds`` of the benchmark signal per front end and channel count, on
    one core. The integer front end is also timed on ``batch`` clips of 1 s encoded together (0: not)."""
    from codegen.integer import frontend_ref
    from codegen.integer.frontend import FrontEndConfig as IntConfig
    from codegen.integer.frontend import design
    from pytrain.data.frontend import FrontEndConfig, encode

    rows = []
    with single_core() as how:
        for n_channels in channels:
            if "integer" in kinds:
                fe = design(IntConfig(n_channels=n_channels))
                pcm = frontend_ref.to_pcm16(benchmark_signal(seconds, fe.sample_rate))
                frontend_ref.run(fe, pcm[: fe.sample_rate // 10])  # warm-up
                rows.append(FrontEndTiming(n_channels, seconds, _times_ms(lambda: frontend_ref.run(fe, pcm), repeats),
                                           "integer"))
                if batch:
                    clips = [frontend_ref.to_pcm16(benchmark_signal(1.0, fe.sample_rate, seed=i)) for i in range(batch)]
                    times = _times_ms(lambda: frontend_ref.encode_clips(fe, clips), repeats)
                    rows.append(FrontEndTiming(n_channels, float(batch), times, f"integer, {batch} clips of 1 s"))
            if "float" in kinds:
                cfg = FrontEndConfig(n_channels=n_channels)
                audio = benchmark_signal(seconds, cfg.sample_rate)
                encode(audio[: cfg.sample_rate // 10], cfg)  # warm-up: imports and the cached filter design
                rows.append(FrontEndTiming(n_channels, seconds, _times_ms(lambda: encode(audio, cfg), repeats), "float"))
    return rows, how
