"""``delrec-edge listen``: classify a WAV file with a run's integer model, audio in, class out."""

from __future__ import annotations

import argparse
from pathlib import Path

from pytrain.deploy.listen import ENGINES


def register(sub) -> None:
    p = sub.add_parser(
        "listen", help="classify a WAV file (audio in, class out) with the generated C or the integer reference",
        description=(
            "Read FILE.wav (any sample rate, mono or stereo; resampled to the front end's rate and rounded to int16), "
            "run it through RUN's integer front end and network, and print the class and the class scores. "
            "--engine c runs the generated C built on the host (cffi), --engine reference the Python integer "
            "pipeline; both give the same result bit for bit. The model must have been trained on a dataset "
            "encoded by the integer front end."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("run", type=Path, help="run folder holding model.int.npz (and c/ if generated)")
    p.add_argument("wav", type=Path, metavar="FILE.wav", help="the audio to classify")
    p.add_argument("--engine", choices=ENGINES, default="c", help="generated C on the host, or the integer reference")
    p.add_argument("--prefix", default="model", help="C prefix when RUN has no generated c/ folder")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from pytrain.deploy.listen import listen

    heard = listen(args.run, args.wav, args.engine, args.prefix)
    names = heard.names
    if args.json:
        print(json.dumps({"class": heard.predicted, "label": heard.label, "engine": heard.engine, "steps": heard.steps,
                          "audio_seconds": heard.seconds,
                          "scores": {name: int(s) for name, s in zip(names, heard.scores)}}, ensure_ascii=False))
        return 0
    print(f"class {heard.predicted}: {heard.label}  ({heard.engine} engine, {heard.seconds:.2f} s of audio, "
          f"{heard.steps} steps)")
    order = sorted(range(len(names)), key=lambda k: (-int(heard.scores[k]), k))
    width = max(len(n) for n in names)
    for k in order:
        print(f"  {names[k]:<{width}}  {int(heard.scores[k]):>20d}{'  <-' if k == heard.predicted else ''}")
    return 0
