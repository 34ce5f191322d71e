"""Input-density sweep on emulated cores: the event-driven generated C beside a dense int8 evaluation.

A network of the SHD shape (140 inputs -> 256 LIF -> 256 LIF with a delayed conv recurrence -> 20 classes)
with random integer weights (fixed seed) runs on binary input spikes at several input densities. For each
density the generated C runs on every target under QEMU (bit-exact against the integer reference, every
sample, every step) and gives emulator instructions per step; the reference model gives the hidden layers'
spike densities and the synaptic events. Beside it: a dense int8 evaluation of the same layers
(:mod:`codegen.verify.firmware_dense`, checked against numpy), whose cost does not depend on the input, and a
published figure of another SNN code generator on the same network shape (760,814 instructions per step on a
Cortex-M4, independent of the input density).
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from codegen.integer.network import IntLayer, IntNetwork, IntReadout, IntRecurrence

DENSITIES = (0.02, 0.05, 0.10, 0.20, 0.50)
OTHER_GENERATOR_M4 = 760_814  # instructions per step, 140-256-256-20 network, Cortex-M4, any input density
SHAPE = (140, 256, 256, 20)
CONV_TAPS = 3


def shd_shaped_network(seed: int = 0) -> IntNetwork:
    """140 -> 256 -> 256 (conv recurrence, K = 3, delays 0..19) -> 20, random int8 weights around zero, leak 3/4,
    reset by subtraction: sparse, input-driven activity (see the hidden densities the sweep reports)."""
    n_in, n1, n2, k = SHAPE
    rng = np.random.default_rng(seed)
    w1 = rng.integers(-100, 100, (n1, n_in), endpoint=True).astype(np.int8)
    w2 = rng.integers(-80, 80, (n2, n1), endpoint=True).astype(np.int8)
    kernel = rng.integers(-64, 64, (1, 1, CONV_TAPS), endpoint=True).astype(np.int8)
    delays = rng.integers(0, 20, n2).astype(np.int32)
    layers = (
        IntLayer(w1, 6, np.zeros(n1, np.int32), 6, 400, 3, 2, "subtract"),
        IntLayer(w2, 6, np.zeros(n2, np.int32), 6, 400, 3, 2, "subtract",
                 recurrence=IntRecurrence("conv", kernel, 6, delays)),
    )
    readout = IntReadout(rng.integers(-127, 127, (k, n2), endpoint=True).astype(np.int8), 6, np.zeros(k, np.int32),
                         6, 29491, 15)
    return IntNetwork(n_in, layers, readout, 10.0, meta={"benchmark": "density sweep", "seed": seed})


def spike_inputs(density: float, samples: int, steps: int, seed: int = 1) -> np.ndarray:
    """(samples, steps, 140) binary input counts, each channel active with probability ``density`` per step."""
    rng = np.random.default_rng(seed)
    return (rng.random((samples, steps, SHAPE[0])) < density).astype(np.uint8)


def dense_shapes() -> list[tuple[int, int]]:
    """The matrix products of a dense evaluation: the two feed-forward layers and the readout."""
    n_in, n1, n2, k = SHAPE
    return [(n1, n_in), (n2, n1), (k, n2)]


@dataclass
class DensityRow:
    density: float
    hidden_density: tuple[float, float]  # mean spikes per neuron and step, layers 0 and 1
    events_per_step: float
    samples: int = 0
    insns_per_step: dict = field(default_factory=dict)  # target -> mean emulator instructions per step
    bit_exact: dict = field(default_factory=dict)  # target -> samples equal to the reference

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class DenseRow:
    target: str
    insns_per_step: float  # all layers, the recurrent conv counted at the per-MAC cost of the 256 x 256 layer
    macs_per_step: int
    insns_per_mac: float

    def as_dict(self) -> dict:
        return asdict(self)


def run_sweep(densities=DENSITIES, targets=("cortex-m4", "cortex-m55"), samples: int = 2, steps: int = 100,
              seed: int = 0, work: Path | None = None, progress=None) -> tuple[list[DensityRow], list[DenseRow]]:
    from codegen.generator.emit import generate
    from codegen.integer import refmodel
    from codegen.verify.firmware_dense import run_dense
    from codegen.verify.firmware_run import target_parity

    net = shd_shaped_network(seed)
    plan, files = generate(net, "shd_shape")
    rows: list[DensityRow] = []
    dense: list[DenseRow] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(work) if work is not None else Path(tmp)
        for d in densities:
            x = spike_inputs(d, samples, steps, seed + 1)
            trace = refmodel.run(net, x, keep_trace=True).trace
            hidden = tuple(float(layer.spikes.mean()) for layer in trace.layers)
            row = DensityRow(d, hidden, 0.0, samples)
            for t in targets:
                r = target_parity(net, plan, files, x, t, root / f"{t}-{d:g}")
                row.insns_per_step[t] = r.insns_per_step
                row.bit_exact[t] = r.bit_exact
                row.events_per_step = r.synaptic_events_per_inference / steps
                if progress is not None:
                    progress(f"density {d:g} {t}: {r.insns_per_step:,.0f} instructions per step, "
                             f"bit-exact {r.bit_exact}/{r.samples}")
            rows.append(row)
        shapes = dense_shapes()
        for t in targets:
            layers = run_dense(t, shapes, root / f"dense-{t}")
            conv_macs = SHAPE[2] * CONV_TAPS
            insns = sum(layer.insns for layer in layers) + conv_macs * layers[1].insns_per_mac
            macs = sum(layer.macs for layer in layers) + conv_macs
            dense.append(DenseRow(t, insns, macs, insns / macs))
    return rows, dense


def format_sweep(rows: list[DensityRow], dense: list[DenseRow]) -> str:
    targets = list(rows[0].insns_per_step) if rows else []
    head = ["input density", "hidden spikes (layer 0 / 1)", "synaptic events/step"]
    for t in targets:
        head += [f"{t} insns/step", f"{t} bit-exact"]
    if "cortex-m4" in targets:
        head.append(f"{OTHER_GENERATOR_M4:,} / ours (M4)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"{100 * r.density:g} %", f"{100 * r.hidden_density[0]:.1f} % / {100 * r.hidden_density[1]:.1f} %",
                 f"{r.events_per_step:,.0f}"]
        for t in targets:
            cells += [f"{r.insns_per_step[t]:,.0f}", f"{r.bit_exact[t]}/{r.samples}"]
        if "cortex-m4" in targets:
            cells.append(f"{OTHER_GENERATOR_M4 / r.insns_per_step['cortex-m4']:.1f}x")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("| dense int8 evaluation (any density) | MACs/step | insns/step | insns/MAC |")
    lines.append("|---|---|---|---|")
    for d in dense:
        lines.append(f"| {d.target} | {d.macs_per_step:,} | {d.insns_per_step:,.0f} | {d.insns_per_mac:.2f} |")
    lines.append("")
    lines.append("Emulator instructions (QEMU -icount shift=0), not cycles. The dense rows are measured products of "
                 "the two feed-forward layers and the readout (rows padded to 16 inputs), the 768 MACs of the "
                 "recurrent conv counted at the per-MAC cost of the 256 x 256 layer.")
    return "\n".join(lines)
