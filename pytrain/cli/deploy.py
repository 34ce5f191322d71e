"""``delrec-edge codegen`` and ``delrec-edge parity``: generate the C folder, prove the host build bit-exact."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "codegen", help="generate the fixed-point C99 folder of an integer model",
        description=(
            "Write a self-contained C99 folder (public header, model source, weights, runtime kernels) for "
            "MODEL (a model.int.npz, or a run folder holding one), plus memory.json, and print the memory map."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("model", type=Path, help="integer model file, or a run folder written by 'delrec-edge quantize'")
    p.add_argument("--out", type=Path, default=None, help="folder to write (default: c/ next to the model file)")
    p.add_argument("--prefix", default="model", help="C name prefix of every public symbol (<prefix>_step, ...)")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.add_argument("--json", action="store_true", help="print the memory report as JSON instead of a table")
    p.set_defaults(func=run_codegen)

    q = sub.add_parser(
        "parity", help="build the generated C on the host and compare it with the integer reference",
        description=(
            "Compile the model's generated C with the host compiler (strict warnings) and run the test split "
            "through it and through the integer reference model. Every membrane, spike, readout value and "
            "score must be equal at every step. For a model with an audio front end whose dataset keeps its "
            "test audio, the same clips then go through the C (audio in, class out) and the Python integer "
            "pipeline: every bin's counts and every step must be equal. Prints the bit-exact counts and the host "
            "C accuracy, and records them in RUN/metrics.json."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    q.add_argument("run", type=Path, help="run folder holding model.int.npz (and c/ if generated)")
    q.add_argument("--data", default=None, help="dataset (default: the one the run was trained on)")
    q.add_argument("--data-root", default=None, help="folder holding SHD/ and SSC/")
    q.add_argument("--prefix", default="model", help="C prefix when RUN has no generated c/ folder")
    q.add_argument("--limit", type=int, default=None, help="only the first N test samples")
    q.add_argument("--no-audio", action="store_true", help="skip the audio parity (counts only)")
    q.add_argument("--no-progress", action="store_true")
    q.set_defaults(func=run_parity)


def run_codegen(args) -> int:
    import json

    from codegen.generator.memory import format_report

    from pytrain.deploy.cfolder import generate_c

    g = generate_c(args.model, out=args.out, prefix=args.prefix, force=args.force)
    if args.json:
        print(json.dumps(g.report, indent=2, sort_keys=True))
        return 0
    print(f"wrote {len(g.files)} files to {g.out} (prefix {g.plan.prefix}, model sha256 {g.plan.model_sha256[:16]}...)")
    print(format_report(g.report))
    return 0


def run_parity(args) -> int:
    from codegen.common.errors import UserError
    from pytrain.deploy.cfolder import load_deployment
    from pytrain.deploy.parity import has_test_audio, run_host_audio_parity, run_host_parity

    r = run_host_parity(args.run, data=args.data, data_root=args.data_root, prefix=args.prefix, limit=args.limit,
                        progress=not args.no_progress)
    print(f"host C == integer reference (every membrane, spike, readout value and score, every step): "
          f"bit-exact on {r.bit_exact}/{r.n} samples")
    print(f"host C accuracy {r.c} (integer reference {r.ref}) in {r.seconds:.1f} s")
    if r.bit_exact != r.n:
        raise UserError(f"the generated C differs from the integer reference: first at {r.first_mismatch}")
    path, net, _, _ = load_deployment(args.run, args.prefix)
    if args.no_audio or net.frontend is None:
        return 0
    if not has_test_audio(path.parent, net, args.data):
        print("host parity (audio): skipped, the dataset keeps no test audio")
        return 0
    a = run_host_audio_parity(args.run, data=args.data, prefix=args.prefix, limit=args.limit,
                              progress=not args.no_progress)
    print(f"host parity (audio): bit-exact on {a.bit_exact}/{a.n} clips (audio in, class out: every bin's counts, "
          f"every step's readout and scores)")
    print(f"host C accuracy from audio {a.c} (Python integer pipeline {a.ref}) in {a.seconds:.1f} s")
    if a.bit_exact != a.n:
        raise UserError(f"the generated C differs from the Python integer pipeline on audio: first at {a.first_mismatch}")
    return 0
