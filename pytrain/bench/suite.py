"""The benchmark suite: every recurrent variant through the whole chain, measured side by side.

For one preset and one training budget, each recurrent variant (``dense``, ``conv``, ``conv-nodelay``,
``taps``) is trained on the same data with the same seed, quantized to int8, generated as C, checked on
the host against the integer reference, timed (PyTorch float batch 1, integer reference, host C) and run
as firmware on emulated Cortex-M cores. A script that prints a table, not a test.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from codegen.common.errors import UserError
from codegen.integer.network import VARIANTS


@dataclass
class VariantResult:
    variant: str
    params_total: int
    params_recurrent: int
    float_acc: float
    int_acc: float
    c_acc: float
    host_bit_exact: int
    n_test: int
    float_step_ms: float  # PyTorch eager, batch 1, step loop
    float_fused_ms: float  # PyTorch eager, batch 1, fused layer op
    float_batched_ms: float  # PyTorch eager, fused, the timed samples as one batch: time per sample
    int_reference_ms: float
    c_us: float  # host C, event kernels
    flash_model: int  # weights, constants and code (Cortex-M4 -Os when measurable) of the generated model
    ram_state: int
    ram_delay_rings: int
    train_seconds: float
    targets: dict = field(default_factory=dict)  # target -> firmware numbers

    def as_dict(self) -> dict:
        return asdict(self)


def _firmware(net, plan, files, samples, target: str, work: Path) -> dict:
    from codegen.verify.firmware_run import target_parity

    r = target_parity(net, plan, files, samples, target, work)
    return {"bit_exact": r.bit_exact, "samples": r.samples, "insns_per_inference": r.insns_per_inference,
            "insns_per_step": r.insns_per_step, "insns_per_step_max": r.insns_per_step_max,
            "insns_per_synaptic_event": r.insns_per_synaptic_event,
            "synaptic_events_per_inference": r.synaptic_events_per_inference, "flash_image": r.flash,
            "ram_image": r.ram}


def run_variant(preset: str, data: str, out: Path, variant: str, epochs: int | None, targets: tuple[str, ...],
                samples: int, timing_samples: int, seed: int = 0, progress: bool = True) -> VariantResult:
    from pytrain import runfolder
    from pytrain.deploy.cfolder import generate_c, load_deployment
    from pytrain.deploy.parity import load_test_samples, run_host_parity
    from pytrain.export.quantize import QuantizeOptions, quantize_run
    from pytrain.model import checkpoint as ckpt
    from pytrain.model.network import count_parameters
    from pytrain.training.loop import TrainOptions, train

    from .inference import benchmark_run

    run = Path(out) / variant
    t0 = time.perf_counter()
    train(TrainOptions(preset=preset, data=data, out=run, epochs=epochs, seed=seed, recurrent=variant, force=True,
                       progress=progress))
    train_seconds = time.perf_counter() - t0
    q = quantize_run(QuantizeOptions(run=run, progress=progress))
    g = generate_c(run, force=True)
    parity = run_host_parity(run, progress=progress)
    timing = benchmark_run(run, samples=timing_samples, repeats=3)
    model, _ = ckpt.load_model(runfolder.find_model_file(run))
    counts = count_parameters(model)
    path, net, plan, files = load_deployment(run)
    x = load_test_samples(path.parent, net, None, None, samples).x
    code = g.report["flash"]["code"]
    fw = {t: _firmware(net, plan, files, x, t, run / "firmware" / t) for t in targets}
    return VariantResult(
        variant=variant, params_total=counts["params_total"], params_recurrent=counts["params_recurrent"],
        float_acc=q["float_acc"], int_acc=q["int_acc"], c_acc=parity.c_acc, host_bit_exact=parity.bit_exact,
        n_test=parity.n, float_step_ms=timing.float_reference_ms, float_fused_ms=timing.float_fused_ms,
        float_batched_ms=timing.float_batched_ms,
        int_reference_ms=timing.int_reference_ms, c_us=timing.c_event_us,
        flash_model=g.report["flash"]["data_total"] + (code["text"] if code else 0),
        ram_state=g.report["ram"]["state_struct"], ram_delay_rings=g.report["ram"]["delay_rings"],
        train_seconds=train_seconds, targets=fw,
    )


def run_suite(preset: str, data: str, out: Path, epochs: int | None = None, variants=VARIANTS,
              targets: tuple[str, ...] = ("cortex-m4", "cortex-m55"), samples: int = 4, timing_samples: int = 8,
              seed: int = 0, progress: bool = True) -> list[VariantResult]:
    bad = [v for v in variants if v not in VARIANTS]
    if bad or not variants:
        raise UserError(f"unknown variant(s) {', '.join(bad) or '(none)'}; choose from {', '.join(VARIANTS)}")
    return [run_variant(preset, data, out, v, epochs, tuple(targets), samples, timing_samples, seed, progress)
            for v in variants]


def _ratio(a: float, b: float) -> str:
    if not b:
        return "-"
    r = a / b
    return f"{r:.0f}x" if r >= 10 else f"{r:.2f}x"


def from_json(obj: dict) -> list[VariantResult]:
    """The rows of a suite's JSON file (as written by ``delrec-edge bench``)."""
    return [VariantResult(**row) for row in obj["variants"]]


def markdown(rows: list[VariantResult], preset: str, epochs, targets: tuple[str, ...]) -> str:
    """The suite as markdown tables: model and accuracy, speed on the host, work on the targets, memory."""
    dense = next((r for r in rows if r.variant == "dense"), None)
    out = [f"### preset `{preset}`, {epochs if epochs is not None else 'preset'} epochs per variant", "",
           "| variant | params (recurrent) | recurrent vs dense | float acc | int8 acc | C acc | host parity |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        fewer = f"{100 * (1 - r.params_recurrent / dense.params_recurrent):.3f} % fewer" if dense and r is not dense \
            and dense.params_recurrent else "-"
        out.append(f"| {r.variant} | {r.params_total:,} ({r.params_recurrent:,}) | {fewer} | {r.float_acc:.4f} | "
                   f"{r.int_acc:.4f} | {r.c_acc:.4f} | {r.host_bit_exact}/{r.n_test} |")
    out += ["", "| variant | float step loop ms | float fused ms | float batched ms/sample | int reference ms | "
            "host C us | C vs float (batch 1) | dense C / this C |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        best = min(r.float_step_ms, r.float_fused_ms)
        vs_dense = _ratio(dense.c_us, r.c_us) if dense else "-"
        out.append(f"| {r.variant} | {r.float_step_ms:.2f} | {r.float_fused_ms:.2f} | {r.float_batched_ms:.3f} | "
                   f"{r.int_reference_ms:.2f} | "
                   f"{r.c_us:.1f} | {_ratio(best * 1000, r.c_us)} | {vs_dense} |")
    for t in targets:
        out += ["", f"| variant | {t} parity | insns/inference | insns/step (mean / max) | synaptic events/inference "
                    "| insns/event | image flash | image RAM |", "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            f = r.targets[t]
            if f["bit_exact"] is None:
                out.append(f"| {r.variant} | built only | | | | | {f['flash_image']:,} | {f['ram_image']:,} |")
                continue
            out.append(f"| {r.variant} | {f['bit_exact']}/{f['samples']} | {f['insns_per_inference']:,.0f} | "
                       f"{f['insns_per_step']:,.0f} / {f['insns_per_step_max']:,.0f} | "
                       f"{f['synaptic_events_per_inference']:,.0f} | {f['insns_per_synaptic_event'] or 0:.2f} | "
                       f"{f['flash_image']:,} | {f['ram_image']:,} |")
    out += ["", "| variant | model flash (weights, constants, code) | state RAM | of which delay rings |",
            "|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r.variant} | {r.flash_model:,} | {r.ram_state:,} | {r.ram_delay_rings:,} |")
    out += ["", "Instruction counts are QEMU emulator instructions (-icount shift=0), not cycles. Times: best of 3 "
                "rounds, one sample at a time; host C built -O3."]
    return "\n".join(out)
