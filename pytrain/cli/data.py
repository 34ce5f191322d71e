"""``delrec-edge data``: build spike datasets (synthetic spoken digits, or a folder of WAV files)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from codegen.common.errors import UserError
from pytrain.data.encoding import KINDS as FRONT_END_KINDS
from pytrain.data.synth import DEFAULT_TEST_VOICES, VOICE_VARIANTS

FRONT_END_HELP = ("'integer': the integer front end the generated C runs (int16 PCM -> counts per 10 ms bin; a model "
                  "trained on it can listen to audio on the device); 'float': the float biquad front end, for "
                  "comparison only")
FRONT_END_SET_HELP = ("change one setting of the integer front end (a field of codegen.integer.frontend.FrontEndConfig, "
                      "e.g. offset_db=6 for noisy recordings, pool_bins=1); repeatable; recorded in the dataset")


def register(subparsers) -> None:
    data = subparsers.add_parser(
        "data",
        help="build spike datasets",
        description="Build spike datasets in the SHD layout that 'train' and tonic read.",
    )
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    _register_synth(sub)
    _register_hard(sub)
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
    p.add_argument("--front-end", choices=FRONT_END_KINDS, default=FRONT_END_KINDS[0], help=FRONT_END_HELP)
    p.add_argument("--front-end-set", action="append", metavar="KEY=VALUE", default=None, help=FRONT_END_SET_HELP)
    p.add_argument("--force", action="store_true", help="replace an existing non-empty --out")
    p.set_defaults(func=run_synth)


def _register_hard(sub) -> None:
    from pytrain.data.hardset import HardOptions

    d = HardOptions()
    p = sub.add_parser(
        "hard",
        help="generate the hard offline benchmark: an audio corpus of degraded spoken digits",
        description=(
            "Generate spoken English digits (10 classes) as real recordings sound: espeak-ng voices with their own "
            "accent, rate and pitch, room reverberation, noise at 0-20 dB SNR (white, pink, babble), a cheap "
            "microphone or telephone band, 8 kHz, levels from quiet to clipping, the word at a random time in a 2 s "
            "window. Writes 16-bit FLAC files <digit>_<speaker>_<n>.flac, corpus.json (speakers and the "
            "leave-speakers-out folds) and clips.csv; encode a fold with 'data wav --root DIR --fold K'. "
            "The same seed gives the same files."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", type=Path, required=True, help="corpus folder to create")
    p.add_argument("--seed", type=int, default=d.seed, help="master seed")
    p.add_argument("--speakers", type=int, default=d.speakers, help="number of voices")
    p.add_argument("--per-speaker", type=int, default=d.per_speaker, help="utterances per (digit, voice)")
    p.add_argument("--folds", type=int, default=d.folds, help="disjoint groups of test voices")
    p.add_argument("--sample-rate", type=int, default=d.sample_rate, choices=(8000, 16000), help="recording rate")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    p.add_argument("--force", action="store_true", help="replace an existing non-empty --out")
    p.set_defaults(func=run_hard)


def _register_wav(sub) -> None:
    p = sub.add_parser(
        "wav",
        help="encode a folder of WAV files into a spike dataset",
        description=(
            "Encode audio files (WAV, FLAC, OGG) with the audio front end. Layout A: ROOT/<class>/*.wav (one "
            "sub-folder per class). Layout B: ROOT/<label>_<speaker>_<n>.wav (one flat folder). Any sample rate "
            "(8-48 kHz), mono or stereo, 8/16/24/32-bit PCM or float. The front end follows the recordings' "
            "sample rate (printed); clips longer than 2 s are truncated. A corpus from 'data hard' is split by "
            "its folds with --fold."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--root", type=Path, required=True, help="folder with the audio files")
    p.add_argument("--out", type=Path, required=True, help="dataset folder to create")
    p.add_argument(
        "--split",
        choices=("speaker", "random"),
        default="speaker",
        help="'speaker': no speaker in both splits; 'random': files split at random, stratified per class",
    )
    p.add_argument("--test-fraction", type=float, default=0.2, help="share of the files for the test split")
    p.add_argument("--seed", type=int, default=0, help="seed of the split")
    p.add_argument(
        "--fold", default=None,
        help="split by the corpus manifest (ROOT/corpus.json): K = the speakers of fold K are the test split; "
             "'all' = encode once, write OUT/fold0, OUT/fold1, ... (replaces --split)",
    )
    p.add_argument("--front-end", choices=FRONT_END_KINDS, default=FRONT_END_KINDS[0], help=FRONT_END_HELP)
    p.add_argument("--front-end-set", action="append", metavar="KEY=VALUE", default=None, help=FRONT_END_SET_HELP)
    p.add_argument("--force", action="store_true", help="replace an existing non-empty --out")
    p.set_defaults(func=run_wav)


def _voice_list(text: str, option: str) -> tuple[str, ...]:
    voices = tuple(v.strip() for v in text.split(",") if v.strip())
    if not voices:
        raise UserError(f"{option} is empty")
    return voices


def run_synth(args: argparse.Namespace) -> int:
    from codegen.integer.frontend import FrontEndConfig
    from pytrain.data.encoding import make_encoder, parse_settings
    from pytrain.data.synth import SynthOptions, build_synth_dataset

    if args.jobs < 1:
        raise UserError("--jobs must be at least 1")
    voices = _voice_list(args.voices, "--voices")
    test_voices = _voice_list(args.test_voices, "--test-voices")
    options = SynthOptions(seed=args.seed, per_voice=args.per_voice, voices=voices, test_voices=test_voices)
    settings = parse_settings(args.front_end_set, args.front_end)
    config = FrontEndConfig().replace(**settings) if settings else None
    counts = build_synth_dataset(args.out, options, make_encoder(args.front_end, config), jobs=args.jobs,
                                 force=args.force)
    _print_summary(args.out, counts)
    return 0


def run_hard(args: argparse.Namespace) -> int:
    from pytrain.data.hardset import HardOptions, build_hard_corpus

    if args.jobs < 1:
        raise UserError("--jobs must be at least 1")
    options = HardOptions(seed=args.seed, speakers=args.speakers, per_speaker=args.per_speaker, folds=args.folds,
                          sample_rate=args.sample_rate)
    manifest = build_hard_corpus(args.out, options, jobs=args.jobs, force=args.force)
    print(f"wrote {args.out}: {manifest['clips']} clips, {len(manifest['speakers'])} speakers, "
          f"{len(manifest['folds'])} folds, {manifest['sample_rate']} Hz, {manifest['duration_s']:g} s")
    return 0


def run_wav(args: argparse.Namespace) -> int:
    from pytrain.data.encoding import parse_settings
    from pytrain.data.wavset import build_wav_dataset, build_wav_folds

    settings = parse_settings(args.front_end_set, args.front_end)  # refused before anything is read or written
    if args.fold == "all":
        folds = build_wav_folds(args.root, args.out, force=args.force, kind=args.front_end, settings=settings)
        for k, counts in folds.items():
            _print_summary(args.out / f"fold{k}", counts)
        return 0
    fold = None
    if args.fold is not None:
        try:
            fold = int(args.fold)
        except ValueError:
            raise UserError(f"--fold must be a fold number or 'all', got {args.fold!r}") from None
    counts = build_wav_dataset(
        args.root, args.out, split=args.split, test_fraction=args.test_fraction, seed=args.seed, force=args.force,
        fold=fold, kind=args.front_end, settings=settings,
    )
    _print_summary(args.out, counts)
    return 0


def _print_summary(out: Path, counts: dict[str, int]) -> None:
    from pytrain.data.spikefile import read_meta

    meta = read_meta(out)
    kind = (meta.front_end or {}).get("kind", "unknown")
    print(
        f"wrote {out}: {counts['train']} train / {counts['test']} test samples, {len(meta.classes)} classes, "
        f"{meta.n_channels} channels, {meta.duration_s:g} s clips, {kind} front end"
    )
