"""The command line as people expect it: shared -v/-q on every subcommand, --version, help on every flag, and
a mistake in an argument answered in one line (fast: no model is loaded)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from actrec import __version__
from actrec.cli import build_parser
from tests.helpers import actrec


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_flag_of_every_subcommand_has_help() -> None:
    for name, parser in _subcommands().items():
        for action in parser._actions:
            assert action.help, f"actrec {name} {'/'.join(action.option_strings) or action.dest} has no help"


@pytest.mark.parametrize("name", ["predict", "export", "report", "serve", "watch", "trial"])
def test_verbose_and_quiet_go_before_or_after_the_subcommand(name: str) -> None:
    parser = build_parser()
    needs = {"predict": ["x.avi"], "watch": ["0"]}.get(name, [])
    assert parser.parse_args([name, *needs, "-v"]).verbose
    assert parser.parse_args(["-v", name, *needs]).verbose
    after = parser.parse_args([name, *needs, "-q"])
    assert after.quiet and not after.verbose
    plain = parser.parse_args([name, *needs])
    assert not plain.verbose and not plain.quiet


def test_export_defaults_to_onnx() -> None:
    assert build_parser().parse_args(["export"]).format == "onnx"


def test_help_and_version(tmp_path: Path) -> None:
    assert actrec("--version", cwd=tmp_path).stdout.strip() == f"actrec {__version__}"
    report = actrec("report", "--help", cwd=tmp_path).stdout
    assert "95%" in report and "%%" not in report


@pytest.mark.parametrize(
    "args, says",
    [
        (["predict", "x.avi", "--window", "infs"], "argument --window: 'infs' is not a whole number"),
        (["serve", "--port", "99999"], "argument --port: '99999' is not a TCP port (1 to 65535)"),
    ],
)
def test_a_bad_argument_is_one_line(tmp_path: Path, args: list[str], says: str) -> None:
    done = actrec(*args, cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and says in done.stderr and "Traceback" not in done.stderr
