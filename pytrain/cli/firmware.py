"""``delrec-edge firmware build|run|report``: the generated C on (emulated) Cortex-M cores."""

from __future__ import annotations

import argparse
from pathlib import Path

from codegen.common.atomic import check_writable
from codegen.verify.firmware_run import TARGETS

OPT_LEVELS = ("O0", "O1", "O2", "O3", "Os")


def opt_level(text: str) -> str:
    """'O2', 'Os' or '-O2' -> '-O2' (a bare '-O2' after an option would look like an option to argparse)."""
    level = text.lstrip("-")
    if level not in OPT_LEVELS:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(OPT_LEVELS)}")
    return "-" + level


def _common(p, *, samples_default: int, clips_default: int = 4) -> None:
    p.add_argument("--model", type=Path, required=True,
                   help="run folder holding model.int.npz (and c/ if generated), or its generated c/ folder")
    p.add_argument("--opt", default="-O2", type=opt_level, metavar="{O0,O1,O2,O3,Os}",
                   help="optimization level (also written --opt=-Os)")
    p.add_argument("--samples", type=int, default=samples_default, help="test samples embedded in the firmware")
    p.add_argument("--reference-kernels", action="store_true", help="build with the plain reference kernels")
    p.add_argument("--portable-kernels", action="store_true",
                   help="build with the portable event kernels (32-bit sums) instead of the core's DSP/Helium ones")
    p.add_argument("--flash-budget", type=int, default=None, help="fail the build above this many flash bytes")
    p.add_argument("--ram-budget", type=int, default=None, help="fail the build above this many RAM bytes")
    p.add_argument("--data", default=None, help="dataset for the samples (default: the one the run was trained on)")
    p.add_argument("--data-root", default=None, help="folder holding SHD/ and SSC/")
    p.add_argument("--out", type=Path, default=None, help="work folder (default: RUN/firmware/<target><opt>)")
    p.add_argument("--firmware-dir", type=Path, default=None, help="the firmware/ folder of a delrec-edge checkout")
    p.add_argument("--json", type=Path, default=None, help="also write the report as JSON to this file")
    p.add_argument("--profile", action="store_true",
                   help="also split the instructions of a step by kernel (named regions of the step function), and "
                        "with --audio (or the report's audio app) the front end's per-bin work by stage, exactly, from "
                        "QEMU's execution log and the image's debug info (slower run)")
    p.add_argument("--clips", type=int, default=clips_default,
                   help="test audio clips embedded in the audio app (int16 PCM, fed in 10 ms blocks)")


def register(sub) -> None:
    fw = sub.add_parser(
        "firmware", help="build and run the generated C on Cortex-M targets (arm-none-eabi-gcc, QEMU)",
        description="Cross-build the parity firmware, run it on QEMU-emulated Cortex-M boards, and report sizes "
                    "and emulator instruction counts.",
    )
    fsub = fw.add_subparsers(dest="firmware_command", metavar="COMMAND", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter
    b = fsub.add_parser("build", help="cross-compile the parity firmware for one target", formatter_class=fmt,
                        description="Cross-compile the model and the parity app (with embedded test samples) for a "
                                    "target; print section sizes and the model's per-layer memory map.")
    b.add_argument("--target", required=True, choices=TARGETS)
    b.add_argument("--audio", action="store_true", help="build the audio app (audio in, class out) instead")
    _common(b, samples_default=16)
    b.set_defaults(func=run_build)
    r = fsub.add_parser("run", help="build, run under QEMU and check parity with the integer reference",
                        formatter_class=fmt,
                        description="Build the parity firmware, run it on the target's QEMU board with -icount "
                                    "shift=0, and compare every sample's state hash (all internal states after "
                                    "every step), readout, scores and class with the integer reference.")
    r.add_argument("--target", required=True, choices=TARGETS)
    r.add_argument("--audio", action="store_true",
                   help="run the audio app instead: the test split's audio clips through the front end and the "
                        "network in 10 ms blocks, every block's counts and complete state compared by hash")
    _common(r, samples_default=16)
    r.set_defaults(func=run_run)
    rep = fsub.add_parser("report", help="parity, instructions and memory on several targets", formatter_class=fmt,
                          description="Run 'firmware run' on each target (built only where no board is emulated) "
                                      "and print one table: parity, emulator instructions per inference, per step "
                                      "and per synaptic event, flash and RAM. For a model with an audio front end "
                                      "whose dataset keeps test audio, also run the audio app on each target and "
                                      "print the front end's own line: audio parity, instructions per 10 ms of "
                                      "audio (the front end alone, and audio to class), its state RAM and flash.")
    rep.add_argument("--targets", default=",".join(TARGETS), help="comma list of targets")
    rep.add_argument("--no-audio", action="store_true", help="skip the audio app (the front end's line)")
    _common(rep, samples_default=8, clips_default=2)
    rep.set_defaults(func=run_report)


def _prepare(args, counts: bool = True):
    from codegen.common.errors import UserError
    from codegen.verify.firmware_run import check_tools
    from pytrain.deploy.cfolder import load_deployment
    from pytrain.deploy.parity import load_test_samples

    check_tools(need_qemu=False)
    if args.samples < 1 or args.clips < 1:
        raise UserError("--samples and --clips must be at least 1")
    if args.json is not None:
        check_writable(args.json)
    path, net, plan, files = load_deployment(args.model)
    x = load_test_samples(path.parent, net, args.data, args.data_root, args.samples).x if counts else None
    return path.parent, net, plan, files, x


def _clips(args, run_dir, net):
    from pytrain.deploy.parity import load_test_audio

    return load_test_audio(run_dir, net, args.data, args.clips)[0]


def _audio(args, target: str, run_dir, net, plan, files, clips):
    from codegen.verify.firmware_run import audio_parity

    work = _target_work(args, run_dir, target)
    return audio_parity(net, plan, files, clips, target, work, args.opt, args.reference_kernels, args.firmware_dir,
                        portable_kernels=args.portable_kernels, profile=getattr(args, "profile", False))


def _one(args, target: str, run_dir, net, plan, files, x):
    from codegen.verify.firmware_run import target_parity

    work = _target_work(args, run_dir, target)
    return target_parity(net, plan, files, x, target, work, args.opt, args.reference_kernels, args.flash_budget,
                         args.ram_budget, args.firmware_dir, profile=getattr(args, "profile", False),
                         portable_kernels=args.portable_kernels)


def _target_work(args, run_dir, target: str) -> Path:
    """The (writable) work folder of one target: ``--out``, ``--out/<target><opt>`` for a report over several
    targets, else the run's default."""
    work = args.out if args.out is not None else _work_dir(run_dir, target, args.opt)
    if args.out is not None and getattr(args, "targets", None):
        work = Path(args.out) / f"{target}{args.opt}"
    check_writable(work, folder=True)
    return work


def _work_dir(run: Path, target: str, optimize: str) -> Path:
    """The default work folder of one target: ``RUN/firmware/<target><opt>``."""
    from pytrain.runfolder import FIRMWARE_FOLDER

    return Path(run) / FIRMWARE_FOLDER / f"{target}{optimize}"


def _write_json(path, reports) -> None:
    if path is None:
        return
    from codegen.common.atomic import write_json_atomic

    write_json_atomic(Path(path), [r.as_dict() | {"instruction_note": "QEMU -icount shift=0 instructions, not cycles"}
                                   for r in reports])


def _print_profiles(reports) -> None:
    from codegen.verify.firmware_run import format_profiles

    text = format_profiles(reports)
    if text:
        print(text)


def run_build(args) -> int:
    from codegen.generator.memory import format_report, memory_report
    from codegen.verify.firmware_run import build, stage_audio_inputs, stage_inputs

    run_dir, net, plan, files, x = _prepare(args, counts=not args.audio)
    work = args.out if args.out is not None else _work_dir(run_dir, args.target, args.opt)
    check_writable(work, folder=True)
    if args.audio:
        clips = _clips(args, run_dir, net)
        c_dir, app_dir = stage_audio_inputs(work, plan, files, clips)
        b = build(args.target, c_dir, app_dir, work / "build-audio", args.opt, args.reference_kernels,
                  args.flash_budget, args.ram_budget, args.firmware_dir, portable_kernels=args.portable_kernels,
                  app="audio")
        what = f"the audio app, {len(clips)} embedded clips"
    else:
        c_dir, app_dir = stage_inputs(work, plan, files, x)
        b = build(args.target, c_dir, app_dir, work / "build", args.opt, args.reference_kernels,
                  args.flash_budget, args.ram_budget, args.firmware_dir, portable_kernels=args.portable_kernels)
        what = f"{len(x)} embedded samples"
    print(f"built {b.elf} for {args.target} ({args.opt}, {what}) in {b.seconds:.1f} s")
    print(f"firmware image: flash {b.flash:,} B (text {b.text:,} + data {b.data:,}), RAM {b.ram:,} B "
          f"(data {b.data:,} + bss {b.bss:,})")
    print("sections: " + ", ".join(f"{k} {v:,}" for k, v in b.sections.items()))
    print(format_report(memory_report(plan, files)))
    return 0


def run_run(args) -> int:
    from codegen.common.errors import UserError
    from codegen.verify.firmware_run import format_audio_profiles, format_audio_reports, format_reports

    if args.audio:
        run_dir, net, plan, files, _ = _prepare(args, counts=False)
        a = _audio(args, args.target, run_dir, net, plan, files, _clips(args, run_dir, net))
        _write_json(args.json, [a])
        if a.bit_exact is None:
            print(f"{args.target}: audio app built (no emulated board); flash {a.flash:,} B, RAM {a.ram:,} B")
            return 0
        print(f"target parity (audio): bit-exact on {a.bit_exact}/{a.clips} clips ({args.target}, {a.machine}; "
              f"{a.blocks} blocks of 10 ms, each block's counts and complete state)")
        print(format_audio_reports([a]))
        if a.profile:
            print(format_audio_profiles([a]))
        if a.bit_exact != a.clips:
            raise UserError(f"{args.target}: the audio app differs from the integer reference: {a.first_mismatch}")
        return 0
    run_dir, net, plan, files, x = _prepare(args)
    r = _one(args, args.target, run_dir, net, plan, files, x)
    _write_json(args.json, [r])
    if r.bit_exact is None:
        print(f"{args.target}: built (no emulated board); flash {r.flash:,} B, RAM {r.ram:,} B")
        return 0
    print(f"target parity ({args.target}, {r.machine}): bit-exact on {r.bit_exact}/{r.samples} samples")
    print(format_reports([r]))
    _print_profiles([r])
    if r.bit_exact != r.samples:
        raise UserError(f"{args.target}: the firmware differs from the integer reference: {r.first_mismatch}")
    return 0


def run_report(args) -> int:
    from codegen.common.errors import UserError
    from codegen.verify.firmware_run import format_reports

    targets = [t for t in args.targets.split(",") if t]
    bad = [t for t in targets if t not in TARGETS]
    if bad or not targets:
        raise UserError(f"unknown target(s) {', '.join(bad) or '(none)'}; choose from {', '.join(TARGETS)}")
    run_dir, net, plan, files, x = _prepare(args)
    from codegen.verify.firmware_run import format_audio_profiles, format_audio_reports
    from pytrain.deploy.parity import has_test_audio

    reports = [_one(args, t, run_dir, net, plan, files, x) for t in targets]
    print(format_reports(reports))
    _print_profiles(reports)
    audio = []
    if not args.no_audio and has_test_audio(run_dir, net, args.data):
        clips = _clips(args, run_dir, net)
        audio = [_audio(args, t, run_dir, net, plan, files, clips) for t in targets]
        print()
        print(f"front end (audio app, {len(clips)} test clips in 10 ms blocks):")
        print(format_audio_reports(audio))
        if any(a.profile for a in audio):
            print(format_audio_profiles(audio))
    _write_json(args.json, reports + audio)
    mismatched = [r for r in reports if r.bit_exact is not None and r.bit_exact != r.samples]
    mismatched += [a for a in audio if a.bit_exact is not None and a.bit_exact != a.clips]
    if mismatched:
        raise UserError(f"{mismatched[0].target}: the firmware differs from the integer reference: "
                        f"{mismatched[0].first_mismatch}")
    return 0
