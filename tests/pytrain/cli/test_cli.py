"""The command line: --help everywhere, info output."""

import json
import subprocess
import sys

import pytest

from pytrain.cli import build_parser, main


def _subcommands(parser, prefix=()):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _subcommands(sub, (*prefix, name))


@pytest.mark.parametrize("cmd", [c for c in _subcommands(build_parser())])
def test_every_subcommand_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*cmd, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out and len(out.splitlines()) > 3


def test_required_subcommands_exist():
    names = set(_subcommands(build_parser()))
    for cmd in [("info",), ("data",), ("data", "synth"), ("data", "wav"), ("train",), ("eval",), ("quantize",), ("bench-train",)]:
        assert cmd in names


@pytest.mark.parametrize("variant,recurrent", [("conv", 259), ("dense", 65_792)])
def test_info_json_reports_shd_recurrent_parameters(variant, recurrent):
    res = subprocess.run([sys.executable, "-m", "pytrain", "info", "--preset", "shd", "--recurrent", variant, "--json"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout)
    assert d["params_recurrent"] == recurrent
    assert d["params_total"] == {"conv": 108_311, "dense": 173_844}[variant]
