"""Render a :class:`~codegen.generator.plan.Plan` into the C99 source folder, and describe it (the cffi cdef).

The generated folder holds::

    <prefix>.h            public API: sizes, the state struct, reset / step / classify / predict
    <prefix>.c            the step function: runtime kernels called in graph order
    <prefix>_weights.h    static const weights and per-layer constants (private to <prefix>.c)
    CMakeLists.txt        the model as a static library target named <prefix>
    delrec_runtime.h      the hand-written kernels (header only, shared by every model)
    delrec_kernels.inc    the weight-typed kernels, included by delrec_runtime.h

and, for a model with an audio front end::

    <prefix>_frontend.c   the front end's tables and the streaming calls <prefix>_hear / <prefix>_listen
    delrec_frontend.h     the front end's hand-written kernels (header only)

Every file starts with the same banner (generator version, model hash, "do not edit") and the bytes
depend on the model and the prefix only: no dates, no paths, no dictionary-order accidents.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import functools

import jinja2
import numpy as np

from ..common.atomic import os_error
from ..common.version import __version__
from ..integer.network import MAX_COUNT, IntNetwork
from .plan import ConstArray, Plan, make_plan

RUNTIME_FILES = ("delrec_runtime.h", "delrec_kernels.inc", "delrec_packed.inc", "delrec_matrix.inc")
FRONTEND_RUNTIME_FILES = ("delrec_frontend.h",)
SIGNED_FE_PARAMS = ("floor_min", "offset", "depth", "threshold")  # the int32_t fields of delrec_fe_params
VALUES_PER_LINE = 16
TEMPLATES = ("codegen.generator",)  # packages whose templates/ folder a render searches, first match wins


@functools.lru_cache(maxsize=4)
def _environment(packages: tuple[str, ...]) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.PackageLoader(pkg, "templates") for pkg in packages]),
        undefined=jinja2.StrictUndefined,  # a missing value is a generator bug, never an empty string
        keep_trailing_newline=True,
        autoescape=False,
    )


def c_array_body(values: np.ndarray, per_line: int = VALUES_PER_LINE) -> str:
    """Comma-separated decimal integers, ``per_line`` to a line, indented by four spaces."""
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    if not flat:
        return "    0"  # C forbids empty initializers; only used for zero-length arrays, which we never emit
    lines = [", ".join(flat[i : i + per_line]) for i in range(0, len(flat), per_line)]
    return ",\n".join("    " + line for line in lines)


def c_string(text: str) -> str:
    """A C string literal for ``text``: printable ASCII kept, everything else as octal escapes of its UTF-8."""
    out = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\?':  # '?' too: no trigraphs
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


@dataclass(frozen=True)
class _ArrayView:
    """What the weights template needs of one :class:`ConstArray`."""

    name: str
    ctype: str
    length: int
    what: str
    body: str
    kernels: str
    aligned: bool


def _array_view(a: ConstArray) -> _ArrayView:
    return _ArrayView(a.name, a.ctype, int(a.values.size), a.what, c_array_body(a.values), a.kernels, a.aligned)


def _context(plan: Plan) -> dict:
    names = plan.classes if plan.classes else tuple(str(k) for k in range(plan.n_classes))
    return dict(
        plan=plan, p=plan.prefix, M=plan.macro, version=__version__, spec_version=plan.spec_version,
        max_count=MAX_COUNT, arrays=[_array_view(a) for a in plan.arrays],
        class_literals=[c_string(n) for n in names],
    )


def render_template(name: str, plan: Plan, templates: tuple[str, ...] = TEMPLATES, **extra) -> str:
    """Render template ``name`` with the plan's context plus ``extra`` values. The host and firmware harnesses
    (:mod:`codegen.verify`) render their helpers from the same plan, with their own package first in
    ``templates``."""
    return _environment(tuple(templates)).get_template(name).render(_context(plan) | extra)


def render(plan: Plan) -> dict[str, str]:
    """File name -> text of every generated file, in a fixed order."""
    files = {
        f"{plan.prefix}.h": render_template("model.h.j2", plan),
        f"{plan.prefix}.c": render_template("model.c.j2", plan),
        f"{plan.prefix}_weights.h": render_template("weights.h.j2", plan),
        "CMakeLists.txt": render_template("CMakeLists.txt.j2", plan),
    }
    banner = render_template("banner.j2", plan)
    runtime = resources.files("codegen.generator") / "runtime"
    runtime_files = RUNTIME_FILES
    if plan.frontend is not None:
        files[f"{plan.prefix}_frontend.c"] = render_template(
            "frontend.c.j2", plan, fe=plan.frontend, fe_tables=[_array_view(a) for a in plan.frontend.tables],
            signed_params=SIGNED_FE_PARAMS)
        runtime_files = RUNTIME_FILES + FRONTEND_RUNTIME_FILES
    for name in runtime_files:
        files[name] = banner + (runtime / name).read_text(encoding="utf-8")
    return files


def generate(net: IntNetwork, prefix: str = "model") -> tuple[Plan, dict[str, str]]:
    """Plan and render ``net``: ``ValueError`` (one line) for a bad prefix or a model that could overflow."""
    plan = make_plan(net, prefix)
    return plan, render(plan)


def cdef(plan: Plan) -> str:
    """Declarations of the public API for ``cffi.FFI.cdef``: the macros, the state struct and the functions."""
    m = plan.macro
    macros = [
        f"#define {m}_N_INPUTS {plan.n_inputs}",
        f"#define {m}_N_CLASSES {plan.n_classes}",
        f"#define {m}_N_LAYERS {len(plan.layers)}",
        f"#define {m}_OK 0",
        f"#define {m}_ERR_NULL -1",
        f"#define {m}_ERR_SIZE -2",
        f"#define {m}_ERR_STATE -3",
    ]
    if plan.frontend is not None:
        fe = plan.frontend
        if not any(line.startswith(f"#define {m}_ERR_STATE ") for line in macros):
            macros.append(f"#define {m}_ERR_STATE -3")
        macros += [f"#define {m}_SAMPLE_RATE {fe.sample_rate}", f"#define {m}_HOP {fe.hop}",
                   f"#define {m}_FRAME {fe.frame}", f"#define {m}_FE_FLOOR_INIT {fe.floor_init}",
                   f"#define {m}_FE_MAX_COUNT {fe.max_count}"]
    return "\n".join(macros) + "\n" + render_template("api.h.j2", plan)


def write_folder(files: dict[str, str], out: Path) -> None:
    """Write ``files`` into the existing folder ``out`` (bytes exactly as rendered, LF line ends); a one-line
    :class:`~codegen.common.errors.UserError` when that fails."""
    for name, text in files.items():
        try:
            (Path(out) / name).write_bytes(text.encode("utf-8"))
        except OSError as exc:
            raise os_error(Path(out) / name, exc) from None
