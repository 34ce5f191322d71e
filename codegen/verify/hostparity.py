"""Host parity: samples through the generated C built on the host and through the integer reference, compared.

Every sample runs from a fresh state through :class:`~codegen.verify.hostbuild.HostModel` (recording each
layer's membranes and spikes, the readout and the scores after every step) and through ``classify``; the
reference model runs the same samples in batches. :func:`codegen.verify.compare.compare` then requires every
recorded value, the class and the final scores to be equal.

For a model with an audio front end, :func:`host_audio_parity` does the same from int16 clips: the generated
``<prefix>_listen`` against the Python integer pipeline (:mod:`codegen.integer.frontend_ref`, then the reference
model), every bin and every step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..common.accuracy import Accuracy
from ..integer import refmodel
from .compare import Comparison, compare
from .hostbuild import BuildOptions, HostModel, build_host_model


@dataclass
class ParityResult:
    n: int
    bit_exact: int
    c: Accuracy  # the host C's classes against the labels
    ref: Accuracy  # the integer reference's
    first_mismatch: str | None
    seconds: float

    @property
    def c_acc(self) -> float:
        return self.c.value

    @property
    def ref_acc(self) -> float:
        return self.ref.value


def trace_fields(n_layers: int) -> dict[str, tuple[str, ...]]:
    """The compared fields of one sample and their axes (after the sample axis)."""
    axes: dict[str, tuple[str, ...]] = {}
    for i in range(n_layers):
        axes[f"layer {i} membrane"] = ("step", "neuron")
        axes[f"layer {i} spikes"] = ("step", "neuron")
    axes.update({"readout": ("step", "class"), "score": ("step", "class"), "class": (), "final scores": ("class",)})
    return axes


def _host_values(host: HostModel, xb: np.ndarray) -> dict[str, np.ndarray]:
    per_sample = []
    for sample in xb:
        trace = host.trace(host.new_state(), sample)
        cls, scores = host.classify(sample)
        values = {}
        for i in range(len(trace.v)):
            values[f"layer {i} membrane"] = trace.v[i]
            values[f"layer {i} spikes"] = trace.spikes[i]
        values.update({"readout": trace.u, "score": trace.score, "class": np.int64(cls), "final scores": scores})
        per_sample.append(values)
    return {name: np.stack([v[name] for v in per_sample]) for name in per_sample[0]}


def _reference_values(ref: refmodel.RunResult) -> dict[str, np.ndarray]:
    values = {}
    for i, layer in enumerate(ref.trace.layers):
        values[f"layer {i} membrane"] = layer.v
        values[f"layer {i} spikes"] = layer.spikes
    values.update({"readout": ref.trace.u, "score": ref.trace.score, "class": ref.predictions,
                   "final scores": ref.scores})
    return values


def host_parity(net, plan, files, x: np.ndarray, y: np.ndarray, progress: bool = True, batch: int = 64,
                options: BuildOptions = BuildOptions()) -> ParityResult:
    """Run samples ``x`` (S, T, C) counts through the host-built C and the reference; compare everything."""
    t0 = time.perf_counter()
    host = build_host_model(plan, files, options)
    axes = trace_fields(len(plan.layers))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(x), unit="sample", desc="host parity", dynamic_ncols=True)
    result = Comparison(0, 0)
    c_correct = ref_correct = 0
    for start in range(0, len(x), batch):
        xb = np.asarray(x[start : start + batch])
        ref = refmodel.run(net, xb.astype(np.int64), keep_trace=True)
        observed = _host_values(host, xb)
        result = result + compare(_reference_values(ref), observed, axes, first_sample=start)
        labels = np.asarray(y[start : start + batch], dtype=np.int64)
        c_correct += int(np.sum(observed["class"] == labels))
        ref_correct += int(np.sum(ref.predictions == labels))
        if bar is not None:
            bar.update(len(xb))
    if bar is not None:
        bar.close()
    n = len(x)
    return ParityResult(n, result.exact, Accuracy(c_correct, n), Accuracy(ref_correct, n), result.first,
                        time.perf_counter() - t0)


AUDIO_FIELDS = {"counts": ("step", "channel"), "floor": ("step", "channel"), "encoder membrane": ("step", "channel"),
                "readout": ("step", "class"), "score": ("step", "class"), "class": (), "final scores": ("class",)}


def reference_audio(net, clips) -> list[dict[str, np.ndarray]]:
    """The Python integer pipeline on whole clips (the front end, then the network per bin), per clip the values
    :data:`AUDIO_FIELDS` names; clips with the same number of bins run as one batch."""
    from ..integer import frontend_ref

    fe = net.frontend
    out: list[dict | None] = [None] * len(clips)
    groups: dict[int, list[int]] = {}
    for i, clip in enumerate(clips):
        groups.setdefault(len(clip) // fe.hop, []).append(i)
    for _, members in sorted(groups.items()):
        longest = max(len(clips[i]) for i in members)
        pcm = np.zeros((len(members), longest), np.int64)
        for row, i in enumerate(members):
            pcm[row, : len(clips[i])] = clips[i]
        counts, _, trace = frontend_ref.feed(fe, frontend_ref.initial_state(fe, len(members)), pcm, keep_trace=True)
        n_bins = len(clips[members[0]]) // fe.hop
        counts = counts[:, :n_bins]
        ref = refmodel.run(net, counts.astype(np.int64), keep_trace=n_bins > 0)
        k = net.n_classes
        for row, i in enumerate(members):
            out[i] = {
                "counts": counts[row], "floor": trace.floor[row, :n_bins], "encoder membrane": trace.v[row, :n_bins],
                "readout": ref.trace.u[row] if n_bins else np.zeros((0, k), np.int64),
                "score": ref.trace.score[row] if n_bins else np.zeros((0, k), np.int64),
                "class": ref.predictions[row], "final scores": ref.scores[row],
            }
    return out


def host_audio_parity(net, plan, files, clips, labels, progress: bool = True,
                      options: BuildOptions = BuildOptions()) -> ParityResult:
    """Whole clips of int16 audio through ``<prefix>_listen`` (host build) and through the Python integer pipeline:
    every bin's counts, floor and encoder membranes, every step's readout and scores, the class and the final
    scores must be equal."""
    t0 = time.perf_counter()
    host = build_host_model(plan, files, options)
    expected = reference_audio(net, clips)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(clips), unit="clip", desc="host parity (audio)", dynamic_ncols=True)
    result = Comparison(0, 0)
    c_correct = ref_correct = 0
    for i, clip in enumerate(clips):
        state = host.new_state()
        trace = host.listen(state, clip)
        observed = {"counts": trace.counts, "floor": trace.floor, "encoder membrane": trace.v, "readout": trace.u,
                    "score": trace.score, "class": np.int64(getattr(host.lib, f"{plan.prefix}_predict")(state)),
                    "final scores": np.asarray(host.ffi.unpack(state.score, plan.n_classes), dtype=np.int64)}
        exp = expected[i]
        result = result + compare({k: np.asarray(v)[None] for k, v in exp.items()},
                                  {k: np.asarray(v)[None] for k, v in observed.items()}, AUDIO_FIELDS, first_sample=i)
        c_correct += int(observed["class"] == labels[i])
        ref_correct += int(exp["class"] == labels[i])
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    n = len(clips)
    return ParityResult(n, result.exact, Accuracy(c_correct, n), Accuracy(ref_correct, n), result.first,
                        time.perf_counter() - t0)
