"""``delrec-edge info``: a preset's architecture and parameter counts."""

from __future__ import annotations

import argparse
import json

from codegen.integer.network import VARIANTS


def register(sub) -> None:
    p = sub.add_parser(
        "info", help="show a preset's architecture and parameter counts",
        description="Show a preset's architecture and parameter counts (recurrent = recurrent weights + delays).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--preset", default="edge", help="preset name (shd, ssc, edge, edge-m, edge-l, tiny)")
    p.add_argument("--recurrent", choices=VARIANTS, default=None, help="recurrent variant (default: the preset's)")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.set_defaults(func=run)


def describe(preset_name: str, recurrent: str | None) -> dict:
    from pytrain.model.network import DelRecSNN, count_parameters
    from pytrain.model.presets import get_preset

    preset = get_preset(preset_name)
    cfg = preset.model if recurrent is None else preset.model.replace(recurrent=recurrent)
    model = DelRecSNN(cfg)
    return {
        "preset": preset.name,
        "description": preset.description,
        "recurrent": cfg.recurrent,
        "n_inputs": cfg.n_inputs,
        "hidden": list(cfg.hidden),
        "recurrent_layers": list(cfg.recurrent_layers),
        "n_classes": cfg.n_classes,
        "kernel_size": cfg.kernel_size,
        "channels": cfg.channels,
        "bin_ms": cfg.bin_ms,
        **count_parameters(model),
    }


def run(args) -> int:
    d = describe(args.preset, args.recurrent)
    if args.json:
        print(json.dumps(d, indent=2, sort_keys=True))
        return 0
    layers = " -> ".join(f"{'rec ' if r else ''}LIF {n}" for n, r in zip(d["hidden"], d["recurrent_layers"]))
    print(f"preset {d['preset']}: {d['description']}")
    print(f"  {d['n_inputs']} inputs -> {layers} -> {d['n_classes']} classes, recurrence {d['recurrent']}, {d['bin_ms']} ms bins")
    print(f"  parameters: {d['params_total']:,} total, {d['params_recurrent']:,} recurrent (weights + delays)")
    return 0
