"""``delrec-edge export-nir``: write a trained run's float model as a NIR graph (HDF5)."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "export-nir", help="export the float model to NIR (Neuromorphic Intermediate Representation)",
        description=(
            "Write the evaluation-mode float model (delays rounded half up, BatchNorm folded into Affine) as a "
            "NIR graph: Affine -> LIF per layer, recurrent layers as a cycle LIF -> Delay -> Conv1d/Linear -> LIF, "
            "Affine -> LI readout. dt, the exact leak factors, the reset mode and the full model configuration "
            "are in the graph metadata, so the file rebuilds the same model bit for bit. Few NIR consumers run "
            "Delay nodes or cycles: see README. Read it with nir.read(FILE, type_check=False)."
        ),
    )
    p.add_argument("run", type=Path, help="run folder written by 'delrec-edge train' (or its model.pt)")
    p.add_argument("--out", type=Path, required=True, help="NIR file to write (HDF5, conventionally FILE.nir)")
    p.add_argument("--dt-ms", type=float, default=None, help="time step in ms (default: the model's bin width)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip reading the file back and comparing its forward pass with the run's model")
    p.set_defaults(func=run)


def run(args) -> int:
    from codegen.common.errors import UserError

    try:
        from pytrain.interop import nir as nirexport
    except ImportError as exc:
        raise UserError(f"export-nir needs the 'nir' package ({exc}); install it with: pip install 'nir>=1.0'") from None
    from codegen.common.atomic import check_writable, write_bytes_atomic
    from pytrain.model.checkpoint import load_model
    from pytrain.runfolder import find_model_file

    out: Path = args.out
    if out.is_dir():
        raise UserError(f"--out {out} is a directory; give a file name such as {out / 'model.nir'}")
    if args.dt_ms is not None and not (args.dt_ms > 0 and args.dt_ms != float("inf")):
        raise UserError(f"--dt-ms must be a positive number, got {args.dt_ms}")
    model, record = load_model(find_model_file(args.run))
    preset = (record.get("info") or {}).get("preset")
    dt_s = None if args.dt_ms is None else args.dt_ms / 1000.0
    check_writable(out)
    try:
        graph, data = nirexport.nir_bytes(model, dt_s, preset=preset)
    except ValueError as exc:
        raise UserError(f"cannot export to NIR: {str(exc).splitlines()[0]}") from None
    if not args.no_verify:
        _verify(model, data, nirexport)  # before anything is written: a graph that does not read back is refused
    write_bytes_atomic(out, data)

    kinds: dict[str, int] = {}
    for node in graph.nodes.values():
        kinds[type(node).__name__] = kinds.get(type(node).__name__, 0) + 1
    summary = ", ".join(f"{k} x{v}" for k, v in sorted(kinds.items()))
    print(f"wrote {out}: {len(graph.nodes)} nodes, {len(graph.edges)} edges ({summary}), "
          f"dt = {graph.metadata['dt'] * 1000:g} ms, recurrence {model.cfg.recurrent}")
    if not args.no_verify:
        print("read back: same model, forward output bit-exact on a random input (32 steps x 2 samples)")
    if "Delay" in kinds:
        print("note: delays are Delay nodes (d*dt, plus one step of cycle latency); most NIR consumers "
              "cannot run Delay nodes or recurrent cycles")
    if model.cfg.reset == "subtract":
        print("note: reset by subtraction has no NIR primitive; the LIF nodes say v_reset = 0 and the metadata "
              "says reset = subtract")
    return 0


def _verify(model, data: bytes, nirexport) -> None:
    """Read ``data`` (a NIR file's bytes) back into a model and require the same forward output."""
    import tempfile

    import torch

    from codegen.common.errors import UserError

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "check.nir"
        path.write_bytes(data)
        try:
            back = nirexport.read_nir(path)
        except (OSError, ValueError, KeyError) as exc:
            raise UserError(f"the NIR graph does not read back: {str(exc).splitlines()[0]}; nothing was written") from None
    gen = torch.Generator().manual_seed(0)
    x = torch.poisson(torch.full((32, 2, model.cfg.n_inputs), 0.5), generator=gen)
    model.eval()
    with torch.no_grad():
        same = torch.equal(model(x).readout, back(x).readout)
    if not same:
        raise UserError("the NIR graph reads back to a model whose output differs from the run's (a bug: please "
                        "report); nothing was written")
