"""Audio in, class out: a WAV file through a run's integer model, by the generated C (host build) or by the Python
integer pipeline (the integer front end, then the reference model). Both must give the same class and scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codegen.common.errors import UserError

from .cfolder import load_deployment

ENGINES = ("c", "reference")


@dataclass(frozen=True)
class Heard:
    engine: str
    predicted: int
    label: str
    scores: np.ndarray  # (K,) int64, summed over the steps
    steps: int
    seconds: float  # of audio
    names: tuple[str, ...]  # class names, in index order


def read_pcm(path: Path, sample_rate: int) -> np.ndarray:
    """A WAV file as int16 PCM at ``sample_rate`` (mixed to mono and resampled when needed)."""
    from codegen.integer.frontend_ref import to_pcm16
    from pytrain.data.audiofile import load_audio

    return to_pcm16(load_audio(path, sample_rate))


def listen(run: Path, wav: Path, engine: str = "c", prefix: str = "model") -> Heard:
    """Classify the audio in ``wav`` with ``run``'s integer model through ``engine`` ("c" or "reference")."""
    if engine not in ENGINES:
        raise UserError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    path, net, plan, files = load_deployment(Path(run), prefix)
    if net.frontend is None:
        raise UserError(f"{path} has no audio front end (its model was trained on spike data); it cannot listen")
    pcm = read_pcm(Path(wav), net.frontend.sample_rate)
    if engine == "reference":
        from codegen.integer import frontend_ref, refmodel

        counts, _, _ = frontend_ref.run(net.frontend, pcm)
        result = refmodel.run(net, counts.astype(np.int64))
        scores, predicted, steps = result.scores[0], int(result.predictions[0]), counts.shape[1]
    else:
        from codegen.verify.hostbuild import build_host_model

        host = build_host_model(plan, files)
        state = host.new_state()
        trace = host.listen(state, pcm)
        scores = np.asarray(host.ffi.unpack(state.score, plan.n_classes), dtype=np.int64)
        predicted = int(getattr(host.lib, f"{plan.prefix}_predict")(state))
        steps = trace.u.shape[0]
    names = net.classes or tuple(str(k) for k in range(net.n_classes))
    return Heard(engine, predicted, names[predicted], np.asarray(scores, dtype=np.int64), int(steps),
                 pcm.size / net.frontend.sample_rate, tuple(names))
