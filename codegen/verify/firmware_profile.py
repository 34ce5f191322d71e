"""Exact per-region instruction counts of a firmware run, from QEMU's execution log and the image's debug info.

The method (no instrumentation: the profiled image is the parity image, byte for byte):

1. **Named regions in the source.** A generated C file marks its regions with comments:
   ``/* region: NAME */`` starts region NAME on the next line, ``/* region end */`` ends the last one (so does
   the next marker). Any C file of the model folder may carry them (the step function, an audio front end,
   ...): :func:`source_regions` finds them.
2. **Every instruction address mapped to a region.** ``arm-none-eabi-addr2line -i`` gives each instruction of
   the model's functions its chain of inlined calls; the outermost frame whose source line lies inside a
   region names it (the kernels are ``static inline``: their instructions are attributed to the line of the
   call in the step function). Instructions of a marked file outside every region count as ``other``
   (argument checks, prologue and epilogue, the classify loop).
3. **Every executed instruction counted.** QEMU runs the image with ``-d in_asm,exec,nochain`` (chaining
   off, so every executed translation block is logged; ``in_asm`` lists the instructions of each block when it
   is translated). A block's instructions are added to their regions each time it runs; blocks that QEMU
   stopped before running ("Stopped execution of TB chain") are taken back, and a block rewound at an I/O
   access (``cpu_io_recompile``) counts only the instructions before the rewind point.
4. **Calls out of a region.** Code without a region of its own (C library ``memset``/``memcpy``, compiler
   helpers such as ``__aeabi_uidiv`` on ARMv6-M, runtime functions the compiler did not inline) is counted in
   the region that called it: the region of the last model instruction executed before it. Code of the
   application, startup and timer port (source outside the model folder) is not profiled.

The counts are exact emulator instruction counts (``-icount shift=0``: one instruction per instruction),
independent of SysTick: the sum over regions per step is checked against the SysTick measurement, which has a
resolution of one tick and includes the timer reads around the call.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from bisect import bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..common.tables import aligned, cell

REGION_MARK = re.compile(r"/\*\s*region:\s*(.+?)\s*\*/")
REGION_END = re.compile(r"/\*\s*region end\s*\*/")
OTHER = "other"  # marked file, outside every region
OUTSIDE = None  # not model code: not profiled

_TRACE = re.compile(r"^Trace \d+: (0x[0-9a-f]+) \[[0-9a-f]+/([0-9a-f]+)/")
_INSN = re.compile(r"^0x([0-9a-f]+):\s+([0-9a-f]{4})(?: ([0-9a-f]{4}))?(?:\s|$)")
_STOPPED = re.compile(r"^Stopped execution of TB chain before (0x[0-9a-f]+)")
_REWOUND = re.compile(r"^cpu_io_recompile: rewound execution of TB to ([0-9a-f]+)")
_ADDRESS = re.compile(r"0x[0-9a-f]+")
_FUNC = re.compile(r"^([0-9a-f]+) ([0-9a-f]+) [tTwW] (\S+)$")


def source_regions(text: str) -> list[tuple[int, int, str]]:
    """``(first_line, last_line, name)`` of every region marked in ``text`` (lines count from 1)."""
    out: list[tuple[int, int, str]] = []
    current: tuple[int, str] | None = None
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        mark, end = REGION_MARK.search(line), REGION_END.search(line)
        if (mark or end) and current is not None:
            out.append((current[0], number - 1, current[1]))
            current = None
        if mark:
            current = (number + 1, mark.group(1))
    if current is not None:
        out.append((current[0], len(lines), current[1]))
    return [r for r in out if r[1] >= r[0]]


def region_names(text: str) -> list[str]:
    """The region names of ``text`` in source order, each once."""
    return list(dict.fromkeys(name for _, _, name in source_regions(text)))


@dataclass(frozen=True)
class CodeMap:
    """What each instruction address of an image belongs to."""

    static: dict[int, str]  # model instruction address -> region name (or OTHER)
    functions: list[tuple[int, int, str]]  # (start, end, kind) sorted; kind "model", "outside" or "dynamic"
    entries: dict[str, int]  # function name -> address, for the functions of the marked files

    def kind(self, pc: int) -> str:
        i = bisect_right(self.functions, (pc, 1 << 62, "")) - 1
        if i >= 0 and self.functions[i][0] <= pc < self.functions[i][1]:
            return self.functions[i][2]
        return "dynamic"


def _tool(prefix: str, name: str) -> str:
    return f"{prefix}{name}"


def _functions(elf: Path, prefix: str) -> list[tuple[int, int, str]]:
    out = subprocess.run([_tool(prefix, "nm"), "-S", "-n", "--defined-only", str(elf)], capture_output=True,
                         text=True, check=True).stdout
    funcs = []
    for line in out.splitlines():
        m = _FUNC.match(line.strip())
        if m and int(m[2], 16) > 0:
            start = int(m[1], 16) & ~1
            funcs.append((start, start + int(m[2], 16), m[3]))
    return funcs


def _addr2line(elf: Path, addresses: list[int], prefix: str) -> dict[int, list[tuple[str, str, int]]]:
    """address -> inline chain ``[(function, file, line), ...]``, innermost first (``line`` 0 if unknown)."""
    if not addresses:
        return {}
    proc = subprocess.run([_tool(prefix, "addr2line"), "-a", "-i", "-f", "-e", str(elf)],
                          input="\n".join(f"0x{a:x}" for a in addresses) + "\n", capture_output=True, text=True,
                          check=True)
    chains: dict[int, list[tuple[str, str, int]]] = {}
    lines = proc.stdout.splitlines()
    i, current = 0, None
    while i < len(lines):
        line = lines[i]
        if _ADDRESS.fullmatch(line):
            current = int(line, 16)
            chains[current] = []
            i += 1
            continue
        func, loc = line, lines[i + 1] if i + 1 < len(lines) else "??:0"
        path, _, number = loc.rpartition(":")
        number = number.split()[0] if number else "0"
        chains[current].append((func, path, int(number) if number.isdigit() else 0))
        i += 2
    return chains


def code_map(elf: Path, sources: dict[str, str], model_dir: Path, outside: tuple[Path, ...],
             prefix: str = "arm-none-eabi-") -> CodeMap:
    """Map the instructions of ``elf`` to the regions marked in ``sources`` (file name -> text), whose files
    live in ``model_dir``; functions compiled from files under the ``outside`` folders (the application, the
    startup code, the timer port) are not profiled."""
    model_dir = Path(model_dir).resolve()
    outside = tuple(Path(d).resolve() for d in outside)
    regions = {name: source_regions(text) for name, text in sources.items()}
    marked = {name for name, r in regions.items() if r}
    funcs = _functions(elf, prefix)
    heads = _addr2line(elf, [f[0] for f in funcs], prefix)

    def file_of(addr: int) -> str:
        chain = heads.get(addr) or [("??", "??", 0)]
        return chain[-1][1]

    kinds: list[tuple[int, int, str]] = []
    entries: dict[str, int] = {}
    model_funcs = []
    for start, end, name in funcs:
        path = file_of(start)
        in_model = path not in ("??", "") and Path(path).resolve().parent == model_dir
        if in_model and Path(path).name in marked:
            kinds.append((start, end, "model"))
            entries[name] = start
            model_funcs.append((start, end))
        elif path not in ("??", "") and any(d in Path(path).resolve().parents for d in outside):
            kinds.append((start, end, "outside"))  # the application, startup code, the timer port
        else:
            kinds.append((start, end, "dynamic"))  # C library, compiler helpers, out-of-line runtime kernels
    kinds.sort()
    addresses = [a for start, end in model_funcs for a in range(start, end, 2)]
    chains = _addr2line(elf, addresses, prefix)
    static: dict[int, str] = {}
    for addr in addresses:
        region = OTHER
        for _, path, line in reversed(chains.get(addr, [])):  # outermost frame first
            name = Path(path).name
            hit = next((r for a, b, r in regions.get(name, ()) if a <= line <= b), None)
            if hit is not None and Path(path).resolve().parent == model_dir:
                region = hit
                break
        static[addr] = region
    return CodeMap(static, kinds, entries)


@dataclass
class TraceCounts:
    """Instructions per region over a whole run, and how often each model function was entered."""

    regions: Counter = field(default_factory=Counter)
    entries: Counter = field(default_factory=Counter)  # function name -> calls (executions of its first block)
    blocks: int = 0  # translation blocks executed (after corrections)


class _Parser:
    """Streaming parser of ``-d in_asm,exec,nochain`` output (see the module docstring)."""

    def __init__(self, cmap: CodeMap):
        self.cmap = cmap
        self.counts = TraceCounts()
        self.entry_names = {addr: name for name, addr in cmap.entries.items()}
        self.pending: dict[int, list[int]] = {}  # block start pc -> instruction addresses, translated, not yet run
        self.listing: list[tuple[int, int, int]] = []  # the block being listed: (address, first halfword, bytes)
        self.blocks: dict[str, tuple] = {}  # host pointer -> block description
        self.collecting = False  # inside an "IN:" listing
        self.context: str | None = OUTSIDE
        self.last: tuple[str, Counter, str | None] | None = None  # (host ptr, what it added, context before it)

    def _describe(self, addrs: list[int]) -> tuple:
        kind = self.cmap.kind(addrs[0])
        if kind == "model":
            per = [self.cmap.static.get(a, OTHER) for a in addrs]
            return ("model", addrs, per)
        return (kind, addrs, None)

    def _add(self, block: tuple, upto: int | None = None) -> Counter:
        """Count ``block`` (its instructions before address ``upto``, if given); returns what it added."""
        kind, addrs, per = block
        n = len(addrs) if upto is None else sum(1 for a in addrs if a < upto)
        added: Counter = Counter()
        if kind == "model":
            for region in per[:n]:
                added[region] += 1
            if n:
                self.context = per[n - 1]
        elif kind == "outside":
            self.context = OUTSIDE
        elif self.context is not OUTSIDE and n:
            added[self.context] += n
        self.counts.regions.update(added)
        return added

    def _undo(self) -> None:
        if self.last is None:
            return
        _, added, context = self.last
        self.counts.regions.subtract(added)
        self.context = context
        self.counts.blocks -= 1
        self.last = None

    def _instructions(self) -> list[int]:
        """Instruction addresses of the listed block. QEMU's disassembler prints instructions it cannot decode
        (several MVE encodings) as one line per halfword, so the lines are not the instructions: walk the
        halfwords instead, a 32-bit Thumb instruction being one whose first halfword starts 0b11101, 0b11110 or
        0b11111."""
        halfwords = {}
        for addr, hw, _ in self.listing:
            halfwords.setdefault(addr, hw)
        addr, end = self.listing[0][0], max(a + size for a, _, size in self.listing)
        out = []
        while addr < end:
            hw = halfwords.get(addr)
            if hw is None:
                raise ValueError(f"QEMU log: no instruction listed at 0x{addr:x}")
            out.append(addr)
            addr += 4 if (hw >> 11) >= 0x1D else 2
        return out

    def feed(self, line: str) -> None:
        if self.collecting:
            m = _INSN.match(line)
            if m:
                addr = int(m[1], 16)
                self.listing.append((addr, int(m[2], 16), 4 if m[3] else 2))
                if m[3]:  # the disassembler may join halfwords that belong to two instructions: keep both
                    self.listing.append((addr + 2, int(m[3], 16), 0))
                return
            if self.listing:
                addrs = self._instructions()
                self.pending[addrs[0]] = addrs
            self.collecting = False
            self.listing = []
        if line.startswith("Trace "):
            m = _TRACE.match(line)
            if not m:
                return
            ptr, pc = m[1], int(m[2], 16)
            if pc in self.pending:
                self.blocks[ptr] = self._describe(self.pending.pop(pc))
            block = self.blocks.get(ptr)
            if block is None:
                raise ValueError(f"QEMU log: block {ptr} at 0x{pc:x} ran before it was listed (in_asm missing?)")
            context = self.context
            self.last = (ptr, self._add(block), context)
            self.counts.blocks += 1
            name = self.entry_names.get(pc)
            if name is not None:
                self.counts.entries[name] += 1
        elif line.startswith("IN:"):
            self.collecting = True
        elif line.startswith("Stopped execution"):
            m = _STOPPED.match(line)
            if m and self.last is not None and self.last[0] == m[1]:
                block = self.blocks[m[1]]
                if block[1][0] in self.entry_names:
                    self.counts.entries[self.entry_names[block[1][0]]] -= 1
                self._undo()
        elif line.startswith("cpu_io_recompile"):
            m = _REWOUND.match(line)
            if m and self.last is not None:
                ptr, _, context = self.last
                block = self.blocks[ptr]
                self._undo()
                self.context = context
                self.counts.blocks += 1
                self._add(block, upto=int(m[1], 16))
                self.last = None


def run_traced(cmd: list[str], cmap: CodeMap, timeout: float) -> tuple[subprocess.CompletedProcess, TraceCounts]:
    """Run QEMU ``cmd`` with the execution log streamed through a pipe into the parser."""
    read_fd, write_fd = os.pipe()
    full = [*cmd, "-d", "in_asm,exec,nochain", "-D", f"/dev/fd/{write_fd}"]
    proc = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, pass_fds=(write_fd,))
    os.close(write_fd)
    parser = _Parser(cmap)
    outputs: dict[str, str] = {}

    def drain(name, stream):
        outputs[name] = stream.read()

    threads = [threading.Thread(target=drain, args=(n, s), daemon=True) for n, s in
               (("stdout", proc.stdout), ("stderr", proc.stderr))]
    for t in threads:
        t.start()
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    error = None
    try:
        with os.fdopen(read_fd, "r", buffering=1 << 20, errors="replace") as log:
            for line in log:
                if error is None:
                    try:
                        parser.feed(line)
                    except ValueError as exc:  # keep draining so that QEMU can finish
                        error = exc
        proc.wait()
    finally:
        timer.cancel()
        for t in threads:
            t.join()
    if error is not None:
        raise error
    done = subprocess.CompletedProcess(full, proc.returncode, outputs.get("stdout", ""), outputs.get("stderr", ""))
    return done, parser.counts


@dataclass(frozen=True)
class RegionRow:
    name: str
    insns_per_step: float
    share: float  # of the profiled instructions of a step
    events_per_step: float | None  # synaptic events of this kernel per step, when it has them

    @property
    def insns_per_event(self) -> float | None:
        if not self.events_per_step:
            return None
        return self.insns_per_step / self.events_per_step


@dataclass(frozen=True)
class Profile:
    """Instructions per step by region (the mean over every call of the step function)."""

    steps: int  # calls of the step function in the run
    rows: tuple[RegionRow, ...]
    total_per_step: float

    def as_dict(self) -> dict:
        return {"steps": self.steps, "total_per_step": self.total_per_step,
                "regions": [{"name": r.name, "insns_per_step": r.insns_per_step, "share": r.share,
                             "events_per_step": r.events_per_step, "insns_per_event": r.insns_per_event}
                            for r in self.rows]}


def make_profile(counts: TraceCounts, order: list[str], steps: int, events: dict[str, float] | None = None) -> Profile:
    """Per-step rows in ``order`` (regions not listed follow, ``other`` last); ``events``: per region, per step."""
    events = events or {}
    names = [n for n in order if n in counts.regions] + sorted(
        n for n in counts.regions if n not in order and n not in (OTHER, OUTSIDE))
    if counts.regions.get(OTHER):
        names.append(OTHER)
    total = sum(counts.regions[n] for n in names)
    steps = max(steps, 1)
    rows = tuple(RegionRow(n, counts.regions[n] / steps, counts.regions[n] / total if total else 0.0, events.get(n))
                 for n in names)
    return Profile(steps, rows, total / steps)


def format_profile(profile: Profile, title: str) -> str:
    head = ("region", "insns/step", "share", "events/step", "insns/event")
    rows = [(r.name, f"{r.insns_per_step:,.1f}", f"{100 * r.share:.1f} %", cell(r.events_per_step, ",.1f"),
             cell(r.insns_per_event, ".2f")) for r in profile.rows]
    rows.append(("total", f"{profile.total_per_step:,.1f}", "100.0 %", "", ""))
    lines = [title, *aligned(head, rows)]
    return "\n".join(lines)


def region_totals(profiles: dict[str, Profile]) -> dict[str, dict[str, float]]:
    """target -> region -> instructions per step (for JSON and tables)."""
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for target, p in profiles.items():
        for r in p.rows:
            out[target][r.name] = r.insns_per_step
    return dict(out)
