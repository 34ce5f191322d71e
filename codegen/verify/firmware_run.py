"""Cross-build the generated C into the parity firmware, run it on emulated Cortex-M cores, and report.

The board support, linker scripts, Makefile and the model-agnostic parity app live in ``firmware/``; this
module writes the app's configuration (test samples and the state hash, :mod:`codegen.verify.firmware_app`), calls
``make`` and QEMU, compares every printed value with the integer reference, and turns SysTick counts into
emulator instruction counts (``-icount shift=0``: instructions, not cycles).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..common.atomic import os_error, write_bytes_atomic
from ..common.errors import UserError
from ..common.tables import aligned, cell
from ..generator.emit import write_folder
from ..generator.memory import memory_report
from . import firmware_app, firmware_profile

TARGETS = ("cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")
INSTALL_HINT = "install it with: apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
DEFAULT_FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware"


def firmware_dir(path: Path | None = None) -> Path:
    d = Path(path) if path is not None else DEFAULT_FIRMWARE_DIR
    if not (d / "Makefile").is_file():
        raise UserError(f"no firmware Makefile in {d}: run from a delrec-edge checkout or pass --firmware-dir")
    return d


BUILD_TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-size", "make")
RUN_TOOLS = ("qemu-system-arm",)


def _missing_tools(need_qemu: bool) -> list[str]:
    return [t for t in BUILD_TOOLS + (RUN_TOOLS if need_qemu else ()) if shutil.which(t) is None]


def check_tools(need_qemu: bool) -> None:
    missing = _missing_tools(need_qemu)
    if missing:
        raise UserError(f"{', '.join(missing)} not found; {INSTALL_HINT}")


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise UserError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")


def _tool_env() -> dict[str, str]:
    return dict(os.environ, LC_ALL="C")  # stable, parseable tool output


def _make(fw: Path, args: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", "--no-print-directory", "-C", str(fw), *args], capture_output=True,
                          text=True, timeout=timeout, env=_tool_env())


def target_info(target: str, fw: Path | None = None) -> dict[str, str]:
    """``key=value`` lines of ``make TARGET=... info`` (cpu, machine, cflags, insns_per_tick, ...)."""
    _check_target(target)
    proc = _make(firmware_dir(fw), [f"TARGET={target}", "info"])
    if proc.returncode != 0:
        raise UserError(f"firmware: cannot describe target {target}: {_last_line(proc.stderr)}")
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "(no output)"


@dataclass
class BuildResult:
    target: str
    elf: Path
    optimize: str
    seconds: float
    text: int  # Berkeley text: code, read-only data, vectors
    data: int
    bss: int
    sections: dict[str, int] = field(default_factory=dict)

    @property
    def flash(self) -> int:
        return self.text + self.data

    @property
    def ram(self) -> int:
        return self.data + self.bss


def section_sizes(elf: Path) -> tuple[int, int, int, dict[str, int]]:
    """(text, data, bss) as ``arm-none-eabi-size`` reports them, and every section's size."""
    berkeley = subprocess.run(["arm-none-eabi-size", "-B", str(elf)], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(v) for v in berkeley.splitlines()[1].split()[:3])
    sysv = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    sections = {}
    for line in sysv.splitlines():
        m = re.match(r"^(\.\S+)\s+(\d+)\s+(\d+)", line)
        if m and int(m[2]):
            sections[m[1]] = int(m[2])
    return text, data, bss, sections


def build(target: str, c_dir: Path | None, app_dir: Path, build_dir: Path, optimize: str = "-O2",
          reference_kernels: bool = False, flash_budget: int | None = None, ram_budget: int | None = None,
          fw: Path | None = None, app: str = "parity", portable_kernels: bool = False) -> BuildResult:
    """Cross-compile an app (the parity app by default) with the model in ``c_dir`` (if any) and the
    configuration in ``app_dir``."""
    _check_target(target)
    check_tools(need_qemu=False)
    args = [f"TARGET={target}", f"APP={app}", f"APP_DIR={Path(app_dir).resolve()}",
            f"BUILD_DIR={Path(build_dir).resolve()}", f"OPT={optimize}"]
    if c_dir is not None:
        args.append(f"MODEL_DIR={Path(c_dir).resolve()}")
    defines = ["-DDELREC_REFERENCE_KERNELS"] * reference_kernels + ["-DDELREC_PORTABLE_KERNELS"] * portable_kernels
    if defines:
        args.append("EXTRA_CFLAGS=" + " ".join(defines))
    if flash_budget is not None:
        args.append(f"FLASH_BUDGET={flash_budget}")
    if ram_budget is not None:
        args.append(f"RAM_BUDGET={ram_budget}")
    t0 = time.perf_counter()
    proc = _make(firmware_dir(fw), args)
    if proc.returncode != 0:
        raise UserError(f"firmware build for {target} failed: {_last_line(proc.stderr or proc.stdout)}")
    elf = Path(build_dir) / "app.elf"
    text, data, bss, sections = section_sizes(elf)
    return BuildResult(target, elf, optimize, time.perf_counter() - t0, text, data, bss, sections)


def qemu_command(target: str, elf: Path, fw: Path | None = None) -> list[str]:
    """The QEMU command line that runs ``elf`` on the target's board with ``-icount shift=0``."""
    machine = target_info(target, fw).get("machine", "")
    if not machine:
        raise UserError(f"target {target} has no emulated board: it is built, not run")
    return ["qemu-system-arm", "-M", machine, "-nographic", "-monitor", "none", "-serial", "none",
            "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel", str(elf)]


def run_qemu(target: str, elf: Path, timeout: int = 300, fw: Path | None = None,
             code_map: firmware_profile.CodeMap | None = None) -> tuple[str, firmware_profile.TraceCounts | None]:
    """Run ``elf`` on the target's QEMU board with ``-icount shift=0``: its output (status 0 required), and
    with ``code_map`` the instructions it executed per profile region (:mod:`codegen.verify.firmware_profile`)."""
    check_tools(need_qemu=True)
    cmd = qemu_command(target, elf, fw)
    counts = None
    try:
        if code_map is None:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        else:
            proc, counts = firmware_profile.run_traced(cmd, code_map, timeout=timeout * 20)
    except subprocess.TimeoutExpired:
        raise UserError(f"{target}: QEMU did not finish within {timeout} s") from None
    if proc.returncode != 0:
        raise UserError(f"{target}: the firmware exited with status {proc.returncode}: "
                        f"{_last_line(proc.stdout + proc.stderr)}")
    return proc.stdout, counts


# ------------------------------------------------------------------------------------------ parity run


@dataclass
class TargetReport:
    target: str
    machine: str
    optimize: str
    samples: int
    bit_exact: int | None  # None: built only (no emulated board)
    first_mismatch: str | None
    insns_per_inference: float | None
    insns_per_step: float | None
    insns_per_step_max: float | None
    stack_step_max: int | None  # bytes, measured by stack painting on the target (None: built only)
    insns_per_synaptic_event: float | None
    synaptic_events_per_inference: float
    flash: int
    ram: int
    text: int
    data: int
    bss: int
    model_state_ram: int
    model_flash_data: int
    build_seconds: float
    run_seconds: float | None
    sections: dict[str, int] = field(default_factory=dict)
    profile: dict | None = None  # firmware_profile.Profile.as_dict() when profiled

    def as_dict(self) -> dict:
        return asdict(self)


def stage_inputs(work: Path, plan, files: dict[str, str], samples: np.ndarray) -> tuple[Path, Path]:
    """Write the generated model to ``work/c`` and the parity app's ``app_config.h`` to ``work/app``."""
    c_dir, app_dir = Path(work) / "c", Path(work) / "app"
    for d in (c_dir, app_dir):
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise os_error(d, exc, "cannot create") from None
    write_folder(files, c_dir)
    write_bytes_atomic(app_dir / "app_config.h", firmware_app.app_config(plan, samples).encode())
    return c_dir, app_dir


def kernel_events_per_step(plan, exp: firmware_app.Expected, steps: int) -> dict[str, float]:
    """Synaptic events per step of each accumulating profile region of ``plan`` (mean over the samples)."""
    names = {("readout",): "readout spikes"}
    for layer in plan.layers:
        names[("ff", layer.index)] = layer.regions["ff"]
        names[("recurrence", layer.index)] = layer.regions["recurrence"]
    return {names[k]: float(v.mean()) / steps for k, v in exp.kernel_events.items()}


def target_parity(net, plan, files: dict[str, str], samples: np.ndarray, target: str, work: Path,
                  optimize: str = "-O2", reference_kernels: bool = False, flash_budget: int | None = None,
                  ram_budget: int | None = None, fw: Path | None = None, profile: bool = False,
                  portable_kernels: bool = False) -> TargetReport:
    """Build the parity firmware for ``samples`` on ``target``, run it (if emulated) and compare everything;
    with ``profile`` also count the instructions of every region of the step function exactly."""
    work = Path(work)
    c_dir, app_dir = stage_inputs(work, plan, files, samples)
    info = target_info(target, fw)
    b = build(target, c_dir, app_dir, work / "build", optimize, reference_kernels, flash_budget, ram_budget, fw,
              portable_kernels=portable_kernels)
    exp = firmware_app.expected(net, samples)
    mem = memory_report(plan)
    report = TargetReport(
        target=target, machine=info.get("machine", ""), optimize=optimize, samples=len(samples), bit_exact=None,
        first_mismatch=None, insns_per_inference=None, insns_per_step=None, insns_per_step_max=None, stack_step_max=None,
        insns_per_synaptic_event=None, synaptic_events_per_inference=float(exp.events.mean()),
        flash=b.flash, ram=b.ram, text=b.text, data=b.data, bss=b.bss, model_state_ram=plan.state_bytes,
        model_flash_data=mem["flash"]["data_total"], build_seconds=b.seconds, run_seconds=None, sections=b.sections,
    )
    if not report.machine:
        return report
    t0 = time.perf_counter()
    cmap = None
    if profile:
        sources = {name: text for name, text in files.items() if name.endswith(".c")}
        cmap = firmware_profile.code_map(b.elf, sources, c_dir, outside=(firmware_dir(fw), app_dir))
    text, counts = run_qemu(target, b.elf, fw=fw, code_map=cmap)
    try:
        out = firmware_app.parse_output(text)
    except ValueError as exc:
        raise UserError(f"{target}: unexpected firmware output: {exc}") from None
    report.run_seconds = time.perf_counter() - t0
    check = firmware_app.check(exp, out)
    report.bit_exact, report.first_mismatch = check.exact, check.first
    steps = out.steps
    per_inference = [out.insns(r.classify_ticks) for r in out.results]
    report.insns_per_inference = float(np.mean(per_inference))
    report.insns_per_step = float(np.mean([out.insns(r.step_ticks_sum) for r in out.results])) / steps
    report.insns_per_step_max = max(out.insns(r.step_ticks_max) for r in out.results)
    report.stack_step_max = max(r.step_stack_max for r in out.results)
    if exp.events.mean() > 0:
        report.insns_per_synaptic_event = report.insns_per_inference / float(exp.events.mean())
    if counts is not None:
        # the app steps every sample twice: once step by step, once through classify (which may inline step)
        calls = 2 * len(samples) * steps
        entered = counts.entries.get(f"{plan.prefix}_step", 0)
        if entered not in (calls, calls // 2):
            raise UserError(f"{target}: the profile saw {entered} calls of {plan.prefix}_step, expected {calls} "
                            f"or {calls // 2}")
        prof = firmware_profile.make_profile(counts, plan.regions, calls,
                                             kernel_events_per_step(plan, exp, samples.shape[1]))
        report.profile = prof.as_dict()
    return report


def format_reports(reports: list[TargetReport]) -> str:
    head = ("target", "board", "opt", "parity", "insns/inference", "insns/step", "max/step", "insns/event",
            "flash B", "RAM B", "model state B", "step stack B")
    rows = []
    for r in reports:
        parity = "built only" if r.bit_exact is None else f"{r.bit_exact}/{r.samples}"
        rows.append((r.target, r.machine or "-", r.optimize, parity, cell(r.insns_per_inference, ",.0f"),
                     cell(r.insns_per_step, ",.0f"), cell(r.insns_per_step_max, ",.0f"),
                     cell(r.insns_per_synaptic_event, ".2f"), f"{r.flash:,}", f"{r.ram:,}", f"{r.model_state_ram:,}",
                     cell(r.stack_step_max, ",d")))
    lines = aligned(head, rows, left=4)
    lines.append("instruction counts are QEMU emulator instructions (-icount shift=0, SysTick), not cycles; "
                 "flash = text + data, RAM = data + bss of the whole firmware image; step stack = the deepest stack "
                 "of one step, measured by painting (step frames plus any interrupt frame)")
    return "\n".join(lines)


def environment_ok() -> bool:
    """True when the cross toolchain and QEMU are installed (tests use this to decide, loudly)."""
    return not _missing_tools(need_qemu=True)


def format_profiles(reports: list[TargetReport]) -> str:
    """One table of the profiled reports: instructions per step by region (rows) and target (columns), with
    instructions per synaptic event for the accumulating regions; empty if none was profiled."""
    done = [r for r in reports if r.profile]
    if not done:
        return ""
    names: list[str] = []
    events: dict[str, float | None] = {}
    for r in done:
        for row in r.profile["regions"]:
            if row["name"] not in names:
                names.append(row["name"])
            if row["events_per_step"]:
                events[row["name"]] = row["events_per_step"]
    head = ("region", "events/step", *[r.target for r in done])
    rows = []
    for name in names:
        cells = []
        for r in done:
            row = next((x for x in r.profile["regions"] if x["name"] == name), None)
            if row is None:
                cells.append("-")
            elif row["insns_per_event"] is not None:
                cells.append(f"{row['insns_per_step']:,.0f} ({row['insns_per_event']:.2f}/ev)")
            else:
                cells.append(f"{row['insns_per_step']:,.0f}")
        ev = events.get(name)
        rows.append((name, "" if ev is None else f"{ev:,.1f}", *cells))
    acc = [n for n in names if n in events]
    per_acc = []
    for r in done:
        by = {x["name"]: x["insns_per_step"] for x in r.profile["regions"]}
        total_events = sum(events[n] for n in acc)
        per_acc.append(f"{sum(by.get(n, 0.0) for n in acc) / total_events:.2f}/ev" if total_events else "-")
    rows.append(("accumulation kernels", f"{sum(events.values()):,.1f}", *per_acc))
    rows.append(("total (profiled)", "", *[f"{r.profile['total_per_step']:,.0f}" for r in done]))
    rows.append(("SysTick per step", "", *[f"{r.insns_per_step:,.0f}" for r in done]))
    lines = ["profile: instructions per step by region (exact QEMU instruction counts from the execution log, "
             "mean over every step call)"]
    lines += aligned(head, rows)
    lines.append("SysTick per step includes the timer reads around the call (about 30 instructions) and has a "
                 "resolution of one tick")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- audio parity


@dataclass
class AudioReport:
    """The audio app on one target: parity, instructions per block of one hop (10 ms), memory."""

    target: str
    machine: str
    optimize: str
    clips: int
    blocks: int
    bit_exact: int | None  # None: built only
    first_mismatch: str | None
    hop_ms: float
    insns_per_hop: float | None  # listen: front end and network, mean over blocks
    insns_per_hop_max: float | None
    frontend_insns_per_hop: float | None  # hear: the front end alone
    frontend_insns_per_hop_max: float | None
    frontend_state_ram: int
    frontend_flash: int  # tables and constants, plus the code of <prefix>_frontend.c (-Os) when measured
    frontend_code: int | None
    flash: int
    ram: int
    build_seconds: float
    run_seconds: float | None
    profile: dict | None = None  # the front end's stages per bin (firmware_profile.Profile.as_dict()), if profiled

    def as_dict(self) -> dict:
        return asdict(self)

    def percent_of(self, insns: float | None, mhz: float = 80.0) -> float | None:
        """``insns`` per hop as a percentage of a ``mhz`` core (one instruction per cycle)."""
        return None if insns is None else 100.0 * insns / (mhz * 1e6 * self.hop_ms / 1000)


def stage_audio_inputs(work: Path, plan, files: dict[str, str], clips) -> tuple[Path, Path]:
    """Write the generated model to ``work/c`` and the audio app's ``app_config.h`` to ``work/app-audio``."""
    from . import firmware_audio

    c_dir, app_dir = Path(work) / "c", Path(work) / "app-audio"
    for d in (c_dir, app_dir):
        d.mkdir(parents=True, exist_ok=True)
    write_folder(files, c_dir)
    write_bytes_atomic(app_dir / "app_config.h", firmware_audio.audio_config(plan, clips).encode())
    return c_dir, app_dir


def audio_parity(net, plan, files: dict[str, str], clips, target: str, work: Path, optimize: str = "-O2",
                 reference_kernels: bool = False, fw: Path | None = None,
                 portable_kernels: bool = False, profile: bool = False) -> AudioReport:
    """Build the audio app for ``clips`` (int16) on ``target``, run it (if emulated) and compare everything; with
    ``profile`` also count the instructions of every stage of the front end (the regions of
    ``<prefix>_frontend.c``) exactly, per bin."""
    from . import firmware_audio

    work = Path(work)
    c_dir, app_dir = stage_audio_inputs(work, plan, files, clips)
    info = target_info(target, fw)
    b = build(target, c_dir, app_dir, work / "build-audio", optimize, reference_kernels, fw=fw, app="audio",
              portable_kernels=portable_kernels)
    mem = memory_report(plan, files).get("frontend", {})
    code = (mem.get("code") or {}).get("text")
    fe = plan.frontend
    report = AudioReport(
        target=target, machine=info.get("machine", ""), optimize=optimize, clips=len(clips),
        blocks=sum(len(firmware_audio.blocks(len(c), fe.hop)) for c in clips), bit_exact=None, first_mismatch=None,
        hop_ms=fe.hop * 1000 / fe.sample_rate, insns_per_hop=None, insns_per_hop_max=None,
        frontend_insns_per_hop=None, frontend_insns_per_hop_max=None, frontend_state_ram=fe.state_bytes,
        frontend_flash=mem["flash"]["total"] + (code or 0), frontend_code=code, flash=b.flash, ram=b.ram,
        build_seconds=b.seconds, run_seconds=None,
    )
    if not report.machine:
        return report
    t0 = time.perf_counter()
    cmap = None
    if profile:
        sources = {name: text for name, text in files.items() if name.endswith(".c")}
        cmap = firmware_profile.code_map(b.elf, sources, c_dir, outside=(firmware_dir(fw), app_dir))
    text, counts = run_qemu(target, b.elf, fw=fw, code_map=cmap)
    try:
        out = firmware_audio.parse_output(text)
    except ValueError as exc:
        raise UserError(f"{target}: unexpected firmware output: {exc}") from None
    report.run_seconds = time.perf_counter() - t0
    exp = firmware_audio.expected(net, clips)
    check = firmware_audio.check(exp, out)
    report.bit_exact, report.first_mismatch = check.exact, check.first
    blocks = sum(r.blocks for r in out.results)
    report.insns_per_hop = out.insns(sum(r.listen_ticks_sum for r in out.results)) / blocks
    report.insns_per_hop_max = max(out.insns(r.listen_ticks_max) for r in out.results)
    report.frontend_insns_per_hop = out.insns(sum(r.hear_ticks_sum for r in out.results)) / blocks
    report.frontend_insns_per_hop_max = max(out.insns(r.hear_ticks_max) for r in out.results)
    if counts is not None:
        report.profile = _frontend_profile(plan, files, counts, sum(len(c) // fe.hop for c in clips)).as_dict()
    return report


def _frontend_profile(plan, files: dict[str, str], counts, bins: int):
    """The front end's stages per bin, from a traced run of the audio app: its regions only (the network's are
    the parity app's), over the ``2 * bins`` bins it computed (every bin once in listen and once in hear)."""
    names = firmware_profile.region_names(files[f"{plan.prefix}_frontend.c"])
    calls = counts.entries.get(f"{plan.prefix}_fe_feed", 0)
    if calls < 2 * bins:
        raise UserError(f"the profile saw {calls} calls of {plan.prefix}_fe_feed, expected at least {2 * bins}")
    mine = replace(counts, regions=Counter({n: v for n, v in counts.regions.items() if n in names}))
    return firmware_profile.make_profile(mine, names, 2 * bins)


def format_audio_profiles(reports: list[AudioReport]) -> str:
    """One table of the profiled audio reports: instructions of each front-end stage per bin (rows) and target
    (columns); empty if none was profiled."""
    done = [r for r in reports if r.profile]
    if not done:
        return ""
    names = list(dict.fromkeys(row["name"] for r in done for row in r.profile["regions"]))
    rows = []
    for name in names:
        cells = []
        for r in done:
            row = next((x for x in r.profile["regions"] if x["name"] == name), None)
            cells.append("-" if row is None else f"{row['insns_per_step']:,.0f}")
        rows.append((name, *cells))
    rows.append(("total (profiled)", *[f"{r.profile['total_per_step']:,.0f}" for r in done]))
    rows.append(("<prefix>_hear per block (SysTick)", *[f"{r.frontend_insns_per_hop:,.0f}" for r in done]))
    lines = ["profile of the front end: instructions per bin (10 ms of audio) by stage (exact QEMU instruction "
             "counts from the execution log)"]
    lines += aligned(("stage", *[r.target for r in done]), rows)
    lines.append("the SysTick row includes the loop of <prefix>_hear around the per-bin work and the timer reads")
    return "\n".join(lines)


def format_audio_reports(reports: list[AudioReport]) -> str:
    head = ("target", "board", "opt", "parity (audio)", "front end insns/10 ms", "max", "% of 80 MHz",
            "audio->class insns/10 ms", "max", "% of 80 MHz", "front-end state B", "front-end flash B")
    rows = []
    for r in reports:
        parity = "built only" if r.bit_exact is None else f"{r.bit_exact}/{r.clips} clips"
        rows.append((r.target, r.machine or "-", r.optimize, parity, cell(r.frontend_insns_per_hop, ",.0f"),
                     cell(r.frontend_insns_per_hop_max, ",.0f"), cell(r.percent_of(r.frontend_insns_per_hop), ".1f"),
                     cell(r.insns_per_hop, ",.0f"), cell(r.insns_per_hop_max, ",.0f"),
                     cell(r.percent_of(r.insns_per_hop), ".1f"), f"{r.frontend_state_ram:,}", f"{r.frontend_flash:,}"))
    lines = aligned(head, rows, left=4)
    lines.append("per block of one hop (10 ms of audio), mean and maximum over all blocks; the front end alone is "
                 "<prefix>_hear, audio->class is <prefix>_listen (front end and network step); QEMU instructions, "
                 "not cycles; front-end flash = tables, constants and the code of <prefix>_frontend.c at -Os")
    return "\n".join(lines)
