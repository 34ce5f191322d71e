"""Inference speed per sample: PyTorch float (eager, batch 1), the integer reference, and the generated C.

A benchmark script that prints a table, not a test. Every engine runs the same test samples one at a
time from a fresh state, as a device classifying a stream would:

* PyTorch float, eager, batch 1: the trained model's forward pass under ``torch.no_grad()``, once with the
  step-by-step time loop (``reference``: one step at a time, as in streaming) and once with the fused
  per-layer operator (``fused``); the faster of the two is the baseline. Also, for reference, all timed
  samples in one batch (fused), as time per sample.
* The integer reference model (numpy), batch 1.
* The generated C built on the host (``-O3`` by default, the usual host release level; ``--optimize``),
  event-driven and reference kernels, called through cffi.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from codegen.common.errors import UserError
from codegen.common.tables import aligned
from pytrain import runfolder
from pytrain.model import checkpoint as ckpt


@dataclass
class InferenceTiming:
    run: str
    preset: str
    steps: int  # time steps per sample
    samples: int
    float_reference_ms: float  # PyTorch eager, step-by-step time loop
    float_fused_ms: float  # PyTorch eager, fused per-layer op
    float_batched_ms: float  # PyTorch eager, fused, all samples in one batch: time per sample
    int_reference_ms: float
    c_event_us: float
    c_reference_us: float
    threads: int

    @property
    def float_best_ms(self) -> float:
        return min(self.float_reference_ms, self.float_fused_ms)

    @property
    def speedup_vs_float(self) -> float:
        return self.float_best_ms * 1000.0 / self.c_event_us

    @property
    def speedup_vs_int_reference(self) -> float:
        return self.int_reference_ms * 1000.0 / self.c_event_us

    def as_dict(self) -> dict:
        return asdict(self) | {"float_best_ms": self.float_best_ms, "speedup_vs_float": self.speedup_vs_float,
                               "speedup_vs_int_reference": self.speedup_vs_int_reference}


def _per_sample(fn, samples, repeats: int) -> float:
    """Best (least) over ``repeats`` rounds of the mean seconds per sample of ``fn(sample)``.

    The minimum, not the median: on a shared machine other work only ever adds time, so the fastest round
    is the closest to the engine's own cost; every engine is measured the same way."""
    fn(samples[0])  # warm-up: allocators, caches, lazy imports
    rounds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for s in samples:
            fn(s)
        rounds.append((time.perf_counter() - t0) / len(samples))
    return min(rounds)


def benchmark_run(run: Path, samples: int = 16, repeats: int = 3, data: str | None = None,
                  data_root: str | None = None, optimize: str = "-O3", native: bool = False) -> InferenceTiming:
    from codegen.integer import refmodel
    from codegen.verify.hostbuild import BuildOptions, build_host_model
    from pytrain.data.loader import load_data
    from pytrain.deploy.cfolder import load_int_model, plan_and_render

    run = Path(run)
    model, rec = ckpt.load_model(runfolder.find_model_file(run))
    net = load_int_model(runfolder.find_int_model(run))
    spec = data or rec.get("info", {}).get("data_spec")
    if not spec:
        raise UserError(f"{run}: --data is required (the run does not record its dataset)")
    bundle = load_data(spec, bin_ms=net.bin_ms, data_root=data_root, progress=False)
    if (bundle.n_inputs, bundle.n_classes) != (net.n_inputs, net.n_classes):
        raise UserError(f"dataset {bundle.name} has {bundle.n_inputs} inputs and {bundle.n_classes} classes, "
                        f"the model {run} expects {net.n_inputs} and {net.n_classes}")
    x = bundle.test.x[:samples].numpy()
    plan, files = plan_and_render(net, "bench")
    c_event = build_host_model(plan, files, BuildOptions(optimize=optimize, reference_kernels=False, native=native))
    c_ref = build_host_model(plan, files, BuildOptions(optimize=optimize, reference_kernels=True, native=native))

    floats = [torch.from_numpy(s).float()[:, None, :] for s in x]  # (T, 1, C)
    float_ms = {}
    with torch.no_grad():
        for impl in ("reference", "fused"):
            for layer in model.layers:
                layer.impl = impl
            float_ms[impl] = _per_sample(model, floats, repeats) * 1e3
        batch = torch.cat(floats, dim=1)  # (T, S, C): every timed sample in one batch
        float_ms["batched"] = _per_sample(model, [batch], repeats) * 1e3 / batch.shape[1]
    ints = [s.astype(np.int64) for s in x]
    int_ms = _per_sample(lambda s: refmodel.run(net, s), ints, repeats) * 1e3
    counts = [np.ascontiguousarray(s, dtype=np.uint8) for s in x]
    # the C is fast enough that one pass is noisy: time several passes per round
    c_rounds = 20
    c_event_us = _per_sample(lambda s: [c_event.classify(s) for _ in range(c_rounds)], counts, repeats) * 1e6 / c_rounds
    c_ref_us = _per_sample(lambda s: [c_ref.classify(s) for _ in range(c_rounds)], counts, repeats) * 1e6 / c_rounds
    return InferenceTiming(
        run=str(run), preset=str(net.meta.get("preset", "")), steps=int(x.shape[1]), samples=len(x),
        float_reference_ms=float_ms["reference"], float_fused_ms=float_ms["fused"],
        float_batched_ms=float_ms["batched"], int_reference_ms=int_ms,
        c_event_us=c_event_us, c_reference_us=c_ref_us, threads=torch.get_num_threads(),
    )


def format_table(rows: list[InferenceTiming]) -> str:
    head = ("run", "preset", "T", "float step ms", "float fused ms", "float batched ms", "int ref ms", "C event us",
            "C ref us", "C vs float", "C vs int ref")
    body = [(r.run, r.preset, str(r.steps), f"{r.float_reference_ms:.2f}", f"{r.float_fused_ms:.2f}",
             f"{r.float_batched_ms:.3f}",
             f"{r.int_reference_ms:.2f}", f"{r.c_event_us:.1f}", f"{r.c_reference_us:.1f}",
             f"{r.speedup_vs_float:.0f}x", f"{r.speedup_vs_int_reference:.0f}x") for r in rows]
    return "\n".join(aligned(head, body, left=2))
