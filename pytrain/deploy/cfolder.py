"""A run's integer model and its generated C folder ``RUN/c``: write it, and load it back checked.

``generate_c`` writes the C99 folder and its memory report through a staged directory; ``load_deployment``
renders the C from the model file again and refuses a ``RUN/c`` that differs from it (hand-edited or stale).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from codegen.common.atomic import read_json_object, staged_directory, write_json_atomic
from codegen.common.errors import UserError
from pytrain.runfolder import C_FOLDER, INT_MODEL_FILE, MEMORY_FILE, find_int_model


def load_int_model(path: Path):
    """The integer network in the model file ``path``; ``UserError`` naming the file when it is unusable."""
    from codegen.integer.modelfile import load_network

    try:
        return load_network(path)
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: {exc}") from None


def check_dataset_frontend(path: Path, net) -> None:
    """Refuse the model file ``path`` when its run records a dataset folder (that still exists) encoded by another
    front end than the one in the model: the C would hear differently from how the model was trained."""
    from codegen.integer.modelfile import frontend_digest
    from pytrain.data import spikefile

    from .parity import run_data_spec

    spec = run_data_spec(Path(path).parent)
    if not spec or spec.lower() in ("shd", "ssc") or not (Path(spec) / spikefile.METADATA_FILE).is_file():
        return
    meta = spikefile.read_meta(Path(spec))
    dataset_fe = spikefile.load_frontend(Path(spec), meta)
    ours = None if net.frontend is None else frontend_digest(net.frontend)
    theirs = None if dataset_fe is None else frontend_digest(dataset_fe)
    if ours != theirs:
        have = "no front end" if ours is None else f"the front end {ours[:16]}..."
        want = "none" if theirs is None else f"{theirs[:16]}..."
        raise UserError(f"{path} holds {have}, but its dataset {spec} was encoded with {want}; they must be the same "
                        "(quantize the run again)")


def plan_and_render(net, prefix: str):
    """(plan, files) of the C for ``net``; ``UserError`` for a bad prefix or a model that could overflow."""
    from codegen.generator.emit import generate

    try:
        return generate(net, prefix)
    except ValueError as exc:
        raise UserError(f"cannot generate C: {exc}") from None


@dataclass
class Generated:
    out: Path
    plan: object
    files: dict
    report: dict


def generate_c(model: Path, out: Path | None = None, prefix: str = "model", force: bool = False) -> Generated:
    """Write the C folder for ``model`` (a model file or a run folder) to ``out`` (default: next to it, ``c/``)."""
    from codegen.generator.emit import write_folder
    from codegen.generator.memory import memory_report

    path = find_int_model(model)
    net = load_int_model(path)
    check_dataset_frontend(path, net)
    plan, files = plan_and_render(net, prefix)
    out = Path(out) if out is not None else path.parent / C_FOLDER
    report = memory_report(plan, files)
    with staged_directory(out, force=force) as tmp:
        write_folder(files, tmp)
        write_json_atomic(tmp / MEMORY_FILE, report)
    return Generated(out, plan, files, report)


def load_deployment(run: Path, prefix: str = "model"):
    """(model file, network, plan, files) of ``run`` (a run folder, or its generated ``c/`` folder).

    The C is rendered from the model file; when ``run/c`` exists it must be exactly that rendering (its
    prefix is taken from its memory.json), so a hand-edited or stale folder is refused.
    """
    run = Path(run)
    if run.is_dir() and (run / MEMORY_FILE).is_file() and not (run / INT_MODEL_FILE).is_file():
        run = run.parent  # the generated folder itself was named
    path = find_int_model(run)
    net = load_int_model(path)
    check_dataset_frontend(path, net)
    folder = path.parent / C_FOLDER
    if folder.is_dir() and (folder / MEMORY_FILE).exists():
        recorded = read_json_object(folder / MEMORY_FILE).get("prefix", prefix)
        prefix = recorded if isinstance(recorded, str) else prefix
    plan, files = plan_and_render(net, prefix)
    if folder.is_dir():
        stale = [name for name, text in files.items()
                 if not (folder / name).is_file() or (folder / name).read_bytes() != text.encode("utf-8")]
        if stale:
            raise UserError(f"{folder} is not what 'delrec-edge codegen' writes for this model ({stale[0]} differs); "
                            "regenerate it")
    return path, net, plan, files
