"""The memory map of a generated model: flash (weights, constants, code) and RAM (state, delay rings), per layer.

Data sizes follow from the plan exactly (the test suite checks the state size against ``sizeof`` of the
compiled struct). Code size depends on the target and compiler: it is measured by compiling the model
with ``arm-none-eabi-gcc`` for a Cortex-M4 at ``-Os`` when that toolchain is installed, and reported as
not measured otherwise.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .plan import LIF_PARAMS_BYTES, Plan

CODE_TARGET = ("cortex-m4", ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-Os"])


def _matrix_info(m) -> dict:
    """How one weight matrix is stored and summed (see codegen/generator/plan.py)."""
    int8_bytes = m.n_in * m.cols if m.suffix == "i4" else None  # the same rows, padded alike, one byte a weight
    return {"name": m.name, "format": {"i4": "int4, two per byte", "i8": "int8", "i16": "int16"}[m.suffix],
            "rows": m.n_in, "columns": m.cols, "packing": m.packing.kind, "packing_note": m.packing.describe(),
            "packed_limit": m.packing.limit, "bound": m.packing.bound, "int8_bytes": int8_bytes}


def _layer_rows(plan: Plan) -> list[dict]:
    rows = []
    for layer in plan.layers:
        arrays = {a.name: a.nbytes for a in layer.arrays if a.kernels != "reference"}  # the default build
        state = {f.name: f.nbytes for f in layer.state}
        i = layer.index
        rows.append({
            "name": f"layer {i}",
            "flash": {
                "weights": arrays[f"l{i}_w"],
                "bias": arrays[f"l{i}_b"],
                "recurrent_weights": arrays.get(f"l{i}_r", 0),
                "delay_tables": arrays.get(f"l{i}_lags", 0) + arrays.get(f"l{i}_masks", 0),
                "constants": LIF_PARAMS_BYTES,
            },
            "ram": {
                "membranes": state[f"v{i}"],
                "spikes": state[f"spk{i}"],
                "delay_ring": state.get(f"ring{i}", 0),
                "ring_index": state.get(f"head{i}", 0),
            },
            "matrices": [_matrix_info(m) for m in (layer.matrix, layer.recurrence and layer.recurrence.matrix) if m],
        })
    ro = plan.readout
    arrays = {a.name: a.nbytes for a in ro.arrays}
    state = {f.name: f.nbytes for f in ro.state}
    rows.append({
        "name": "readout",
        "flash": {"weights": arrays["ro_w"], "bias": arrays["ro_b"], "recurrent_weights": 0, "delay_tables": 0,
                  "constants": 0},
        "ram": {"membranes": state["u"], "spikes": 0, "delay_ring": 0, "ring_index": 0, "scores": state["score"]},
        "matrices": [_matrix_info(ro.matrix)],
    })
    for row in rows:
        row["flash"]["total"] = sum(row["flash"].values())
        row["ram"]["total"] = sum(row["ram"].values())
    return rows


def worst_stack(callgraph: str, root: str) -> tuple[int, list[str]]:
    """The deepest stack of ``root`` in a gcc ``-fcallgraph-info=su`` graph: its frame plus the deepest callee
    chain; returns (bytes, callees without stack information, such as the C library's memset, counted as 0)."""
    frames: dict[str, int] = {}
    unknown: set[str] = set()
    calls: dict[str, list[str]] = {}
    for m in re.finditer(r'node: \{ title: "([^"]+)" label: "([^"]*)"', callgraph):
        size = re.search(r"\\n(\d+) bytes \((static|bounded)", m.group(2))
        if size:
            frames[m.group(1)] = int(size.group(1))
        else:
            unknown.add(m.group(2).split("\\n")[0])
    for m in re.finditer(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"', callgraph):
        calls.setdefault(m.group(1), []).append(m.group(2))

    def depth(node: str, seen: frozenset) -> int:
        if node in seen:
            raise ValueError(f"recursion through {node}: no static stack bound")
        below = [depth(c, seen | {node}) for c in calls.get(node, []) if c in frames]
        return frames[node] + max(below, default=0)

    if root not in frames:
        raise ValueError(f"{root} is not in the call graph")
    return depth(root, frozenset()), sorted(unknown - set(frames))


def measure_code(files: dict[str, str], prefix: str, units: dict[str, tuple[str, ...]]) -> dict[str, dict] | None:
    """Per source of ``units`` (``{"<prefix>.c": ("step", "classify"), ...}``), built once each for a
    Cortex-M4 at -Os: its ``.text`` and ``.rodata`` and, as ``stack_<name>``, the worst-case stack of
    ``<prefix>_<name>`` for each name it lists, by gcc's static analysis over the call graph of all the
    sources together (so a call from one into another is followed); ``None`` without a toolchain."""
    gcc, size = shutil.which("arm-none-eabi-gcc"), shutil.which("arm-none-eabi-size")
    if gcc is None or size is None:
        return None
    listings, graphs = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in files.items():
            (Path(tmp) / name).write_text(text, encoding="utf-8")
        for i, src in enumerate(units):
            obj = Path(tmp) / f"unit{i}.o"
            subprocess.run([gcc, *CODE_TARGET[1], "-std=c99", "-ffunction-sections", "-fdata-sections",
                            "-fcallgraph-info=su", "-I", tmp, "-c", str(Path(tmp) / src), "-o", str(obj)],
                           check=True, capture_output=True, cwd=tmp)  # fmt: skip
            graphs.append((Path(tmp) / f"unit{i}.ci").read_text())
            listings[src] = subprocess.run([size, "-A", str(obj)], check=True, capture_output=True, text=True).stdout
    callgraph = "\n".join(graphs)
    out = {}
    for src, stack_of in units.items():
        text = rodata = 0
        for line in listings[src].splitlines():
            m = re.match(r"(\.\S+)\s+(\d+)", line)
            if m and m.group(1).startswith(".text"):
                text += int(m.group(2))
            elif m and m.group(1).startswith(".rodata"):
                rodata += int(m.group(2))
        code = {"target": CODE_TARGET[0], "flags": " ".join(CODE_TARGET[1]), "text": text, "rodata": rodata}
        unknown: set[str] = set()
        for name in stack_of:
            code[f"stack_{name}"], missing = worst_stack(callgraph, f"{prefix}_{name}")
            unknown.update(missing)
        code["stack_unknown_callees"] = sorted(unknown)
        out[src] = code
    return out


def memory_report(plan: Plan, files: dict[str, str] | None = None) -> dict:
    """The report as a JSON-ready dict; ``files`` (the rendered sources) enables the code-size measurement."""
    rows = _layer_rows(plan)
    names = [c.encode("utf-8") for c in (plan.classes or [str(k) for k in range(plan.n_classes)])]
    class_names = sum(len(n) + 1 for n in names) + 4 * plan.n_classes  # strings + pointer table (32-bit target)
    model_c, frontend_c = f"{plan.prefix}.c", f"{plan.prefix}_frontend.c"
    units = {model_c: ("step", "classify")}
    if plan.frontend is not None and files is not None and frontend_c in files:
        units[frontend_c] = ("hear", "listen")
    codes = measure_code(files, plan.prefix, units) if files is not None else None
    code = codes[model_c] if codes else None
    flash_data = sum(r["flash"]["total"] for r in rows) + class_names
    matrices = [m for r in rows for m in r["matrices"]]
    packed4 = [m for m in matrices if m["int8_bytes"] is not None]
    int4 = None
    if packed4:
        stored = sum(a.nbytes for a in plan.arrays if a.name in {m["name"] for m in packed4})
        int4 = {"bytes": stored, "int8_bytes": sum(m["int8_bytes"] for m in packed4)}
    report = {
        "prefix": plan.prefix,
        "int4_packed": int4,
        "model_sha256": plan.model_sha256,
        "rows": rows,
        "flash": {
            "weights_and_constants": flash_data - class_names,
            "class_names": class_names,
            "data_total": flash_data,
            "code": code,
        },
        "ram": {
            "state_struct": plan.state_bytes,
            "delay_rings": sum(r["ram"]["delay_ring"] + r["ram"]["ring_index"] for r in rows),
            "step_stack_scratch": plan.scratch_bytes,
        },
        "notes": [
            "bytes, for the default (event-driven) kernels; flash data counts every static const array plus the class-name table (4-byte pointers)",
            "RAM is the caller-owned state struct; step_stack_scratch is the size of the step's scratch arrays as "
            "the plan declares them (a formula: the compiler may keep some in registers)",
            "code.stack_step / stack_classify: the deepest stack of one call by gcc's static call-graph analysis "
            "(-fcallgraph-info=su, Cortex-M4, -Os), C library callees (memset, memcpy) counted as 0; "
            "the firmware measures the stack of every step by painting (firmware run)",
            "code: measured with arm-none-eabi-gcc when installed (Cortex-M4, -Os), else null",
            "matrices: storage and packing of every weight matrix; packing 'static' sums in 16-bit lanes for every "
            "input, 'dynamic' while the step's input total is <= packed_limit, 'none' in 32 bits; int4_packed: "
            "the bytes of the int4 matrices and what they would take as int8 (same padding)",
        ],
    }
    if plan.frontend is not None:
        report["frontend"] = frontend_report(plan, (codes or {}).get(frontend_c))
    return report


def frontend_report(plan: Plan, code: dict | None = None) -> dict:
    """The front end's own memory: its tables and constants (flash), its state fields (RAM), its stack scratch
    per bin and ``code``, the measured code of ``<prefix>_frontend.c`` (the kernels and the streaming calls;
    :func:`measure_code`), if any."""
    from .frontend_plan import PARAMS_BYTES

    fe = plan.frontend
    return {
        "describe": fe.describe,
        "flash": {"tables": fe.table_bytes, "constants": PARAMS_BYTES, "total": fe.table_bytes + PARAMS_BYTES},
        "ram": {f.name: f.nbytes for f in fe.state} | {"total": fe.state_bytes},
        "bin_stack_scratch": fe.scratch_bytes,
        "code": code,
    }


def format_report(report: dict) -> str:
    """The report as an aligned text table."""
    head = ("", "ff weights", "bias", "rec weights", "delays", "consts", "flash", "membranes", "spikes", "ring",
            "RAM")
    lines = [head]
    for r in report["rows"]:
        f, m = r["flash"], r["ram"]
        membranes = m["membranes"] + m.get("scores", 0)
        lines.append((r["name"], f["weights"], f["bias"], f["recurrent_weights"], f["delay_tables"], f["constants"],
                      f["total"], membranes, m["spikes"], m["delay_ring"] + m["ring_index"], m["total"]))
    total_flash = sum(r["flash"]["total"] for r in report["rows"])
    total_ram = sum(r["ram"]["total"] for r in report["rows"])
    lines.append(("total", "", "", "", "", "", total_flash, "", "", "", total_ram))
    cells = [[str(c) for c in row] for row in lines]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    out = ["memory (bytes)"]
    for row in cells:
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    ram = report["ram"]
    code = report["flash"]["code"]
    for r in report["rows"]:
        for m in r["matrices"]:
            out.append(f"{r['name']} {m['name']}: {m['format']}, {m['rows']} x {m['columns']} columns; {m['packing_note']}")
    if report.get("int4_packed"):
        p = report["int4_packed"]
        out.append(f"int4 weights packed two per byte: {p['bytes']} B ({p['int8_bytes']} B as int8, "
                   f"{100 * p['bytes'] / p['int8_bytes']:.0f} %)")
    out.append(f"state struct {ram['state_struct']} B (delay rings {ram['delay_rings']} B), "
               f"class names {report['flash']['class_names']} B")
    if code is None:
        out.append(f"code size and stack: not measured (install gcc-arm-none-eabi to measure them for a Cortex-M4); "
                   f"the step's scratch arrays alone take {ram['step_stack_scratch']} B of stack")
    else:
        out.append(f"code ({code['target']}, {code['flags']}): .text {code['text']} B, .rodata {code['rodata']} B; "
                   f"stack of one step {code['stack_step']} B, of classify {code['stack_classify']} B "
                   f"(gcc static call-graph analysis, C library callees not counted)")
    fe = report.get("frontend")
    if fe is not None:
        fcode = fe["code"]
        code_text = ("not measured" if fcode is None else f".text {fcode['text']} B (tables in .rodata {fcode['rodata']} B), "
                     f"stack of {report['prefix']}_hear {fcode['stack_hear']} B, of {report['prefix']}_listen "
                     f"{fcode['stack_listen']} B with the network step (static analysis)")
        out.append(f"front end: tables and constants {fe['flash']['total']} B flash, state {fe['ram']['total']} B RAM "
                   f"(in the state struct), code {code_text}")
    return "\n".join(out)
