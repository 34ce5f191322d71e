"""The ``delrec-edge`` command: argument parsing and error reporting only.

Each subcommand lives in ``pytrain/cli/<name>.py`` with ``register(subparsers)``; heavy
imports (torch, tonic) happen inside the command's ``run`` so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys

from codegen.common.errors import UserError
from codegen.common.version import __version__

from . import bench, data, deploy, evaluate, firmware, frontend, info, quantize, report, train
from . import nir as nir_cmd

PROG = "delrec-edge"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train Conv+DelRec spiking networks and deploy them as bit-exact fixed-point C.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (info, data, train, evaluate, quantize, nir_cmd, deploy, firmware, bench, frontend, report):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
