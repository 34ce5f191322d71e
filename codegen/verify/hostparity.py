"""Host parity: samples through the generated C built on the host and through the integer reference, compared.

Every sample runs from a fresh state through :class:`~codegen.verify.hostbuild.HostModel` (recording each
layer's membranes and spikes, the readout and the scores after every step) and through ``classify``; the
reference model runs the same samples in batches. :func:`codegen.verify.compare.compare` then requires every
recorded value, the class and the final scores to be equal.
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
