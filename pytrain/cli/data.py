"""``delrec-edge data``: build spike datasets (synthetic spoken digits, or a folder of WAV files)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from codegen.common.errors import UserError
from pytrain.data.synth import DEFAULT_TEST_VOICES, VOICE_VARIANTS


def register(subparsers) -> None:
    data = subparsers.add_parser(
        "data",
        help="build spike datasets",
        description="Build spike datasets in the SHD layout that 'train' and tonic read.",
    )
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    _register_synth(sub)
    _register_wav(sub)


def _register_synth(sub) -> None:
    p = sub.add_parser(
        "synth",
        help="synthesise the offline default dataset (spoken digits, English + German)",
        description=(
            "Synthesise spoken digits with espeak-ng (20 classes in SHD's order: English zero..nine, then German "
            "null..neun), augment them (speed, pitch, amplitude, accent, gain, onset, noise), encode them with the "
            "audio front end and write a spike dataset. Train and test use disjoint voices. Needs espeak-ng "
            "(apt-get install -y espeak-ng). Synthetic speech is much easier than real speech."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", type=Path, required=True, help="dataset folder to create")
    p.add_argument("--seed", type=int, default=0, help="master seed; the same seed gives the same dataset")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    p.add_argument("--per-voice", type=int, default=8, help="utterances per (word, voice)")
    p.add_argument("--voices", default=",".join(VOICE_VARIANTS), help="comma-separated espeak-ng voice variants to use")
    p.add_argument("--test-voices", default=",".join(DEFAULT_TEST_VOICES),
                   help="comma-separated voices held out for the test split")
    p.add_argument("--force", action="store_true", help="replace an existing non-empty --out")
    p.set_defaults(func=run_synth)


def _register_wav(sub) -> None:
    p = sub.add_parser(
        "wav",
        help="encode a folder of WAV files into a spike dataset",
        description=(
            "Encode WAV files with the audio front end. Layout A: ROOT/<class>/*.wav (one sub-folder per class). "
            "Layout B: ROOT/<label>_<speaker>_<n>.wav (one flat folder). Any sample rate (8-48 kHz), mono or "
            "stereo, 8/16/24/32-bit PCM or float. Clips longer than 2 s are truncated."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--root", type=Path, required=True, help="folder with the WAV files")
    p.add_argument("--out", type=Path, required=True, help="dataset folder to create")
    p.add_argument(
        "--split",
        choices=("speaker", "random"),
        default="speaker",
        help="'speaker': no speaker in both splits; 'random': files split at random, stratified per class",
    )
    p.add_argument("--test-fraction", type=float, default=0.2, help="share of the files for the test split")
    p.add_argument("--seed", type=int, default=0, help="seed of the split")
    p.add_argument("--force", action="store_true", help="replace an existing non-empty --out")
    p.set_defaults(func=run_wav)


def _voice_list(text: str, option: str) -> tuple[str, ...]:
    voices = tuple(v.strip() for v in text.split(",") if v.strip())
    if not voices:
        raise UserError(f"{option} is empty")
    return voices


def run_synth(args: argparse.Namespace) -> int:
    from pytrain.data.synth import SynthOptions, build_synth_dataset

    if args.jobs < 1:
        raise UserError("--jobs must be at least 1")
    voices = _voice_list(args.voices, "--voices")
    test_voices = _voice_list(args.test_voices, "--test-voices")
    options = SynthOptions(seed=args.seed, per_voice=args.per_voice, voices=voices, test_voices=test_voices)
    counts = build_synth_dataset(args.out, options, jobs=args.jobs, force=args.force)
    _print_summary(args.out, counts)
    return 0


def run_wav(args: argparse.Namespace) -> int:
    from pytrain.data.wavset import build_wav_dataset

    counts = build_wav_dataset(
        args.root, args.out, split=args.split, test_fraction=args.test_fraction, seed=args.seed, force=args.force
    )
    _print_summary(args.out, counts)
    return 0


def _print_summary(out: Path, counts: dict[str, int]) -> None:
    from pytrain.data.spikefile import read_meta

    meta = read_meta(out)
    print(
        f"wrote {out}: {counts['train']} train / {counts['test']} test samples, {len(meta.classes)} classes, "
        f"{meta.n_channels} channels, {meta.duration_s:g} s clips"
    )
