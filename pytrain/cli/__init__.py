"""The ``delrec-edge`` command: argument parsing and error reporting only.

Each subcommand lives in ``pytrain/cli/<name>.py`` with ``register(subparsers)``; heavy
imports (torch, tonic) happen inside the command's ``run`` so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys

from codegen.common.errors import UserError
from codegen.common.version import __version__

from . import bench, data, deploy, evaluate, firmware, frontend, info, listen, quantize, report, train
from . import nir as nir_cmd

PROG = "delrec-edge"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train Conv+DelRec spiking networks and deploy them as bit-exact fixed-point C.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (info, data, train, evaluate, quantize, nir_cmd, deploy, listen, firmware, bench, frontend, report):
        module.register(sub)
    _add_debug_everywhere(sub)
    return parser


def _add_debug_everywhere(sub: argparse._SubParsersAction) -> None:
    """``--debug`` after any (sub)command too, not only before it."""
    for child in sub.choices.values():
        if not any("--debug" in a.option_strings for a in child._actions):
            child.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                               help="show the traceback of an unexpected error")
        for action in child._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_debug_everywhere(action)


def _quiet_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null so that Python's final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit status: 0 success, 2 a one-line error (bad input, or an unexpected failure
    reported in one line unless ``--debug``), 130 interrupted, 141 the reader of the output went away."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers below
        return status
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `delrec-edge ... | head`: stop quietly, as a C tool ended by SIGPIPE would (128 + 13)
        _quiet_stdout()
        return 141
    except Exception as exc:  # noqa: BLE001 - the last resort: one line, never a traceback
        if getattr(args, "debug", False):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"{PROG}: error: unexpected {type(exc).__name__}{': ' + first if first else ''} "
              f"(a bug: please report it; run again with --debug for the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
