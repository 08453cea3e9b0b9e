"""One error style: usage errors are one line `convaudit: error: ...`, printed once (a terminal
included), exit 2, with a did-you-mean for options, commands, formats and rule ids."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convaudit.cli import app

TEXTBOOK = str(Path(__file__).resolve().parents[1] / "sample_models" / "textbook_5x5.onnx")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stderr


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["scan", TEXTBOOK, "--formt", "json"],
            "convaudit: error: scan: no such option '--formt' (did you mean '--format'?); "
            "see 'convaudit scan --help'",
        ),
        (
            ["scn", TEXTBOOK],
            "convaudit: error: no such command 'scn' (did you mean 'scan'?); "
            "see 'convaudit --help'",
        ),
        (
            ["scan", TEXTBOOK, "--jobs", "x"],
            "convaudit: error: scan: invalid value for '--jobs' / '-j': 'x' is not a valid int; "
            "see 'convaudit scan --help'",
        ),
        (
            ["scan"],
            "convaudit: error: scan: missing argument 'paths'; see 'convaudit scan --help'",
        ),
        (["scan", TEXTBOOK, "--jobs", "0"], "convaudit: error: --jobs must be at least 1, got 0"),
        (
            ["scan", TEXTBOOK, "--select", "CA10l"],
            "convaudit: error: --select: 'CA10l' is not a rule code or prefix "
            "(did you mean 'CA101'?)",
        ),
        (
            ["scan", TEXTBOOK, "--select", "ca101"],
            "convaudit: error: --select: 'ca101' is not a rule code or prefix "
            "(did you mean 'CA101'?)",
        ),
        (
            ["scan", TEXTBOOK, "--ignore", "CA1O5"],
            "convaudit: error: --ignore: 'CA1O5' is not a rule code or prefix "
            "(did you mean 'CA105'?)",
        ),
        (
            ["scan", TEXTBOOK, "--report", "sairf=out.sarif"],
            "convaudit: error: --report 'sairf=out.sarif': expected FMT=PATH with FMT one of "
            "table, json, markdown, sarif, junit, html, github (did you mean 'sarif'?)",
        ),
        (
            ["scan", TEXTBOOK, "-f", "sairf"],
            "convaudit: error: unknown --format 'sairf' (did you mean 'sarif'?); "
            "choose one of table, json, markdown, sarif, junit, html, github",
        ),
        (
            ["rules", "explain", "CA10l"],
            "convaudit: error: unknown rule 'CA10l' (did you mean CA101?)",
        ),
    ],
)
def test_usage_errors_are_one_line_with_a_suggestion(args: list[str], line: str) -> None:
    code, err = run(*args)
    assert code == 2
    assert err.splitlines() == [line]
    assert "╭" not in err and "Usage:" not in err


def test_no_arguments_still_prints_the_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from convaudit.cli import app; app()"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "scan" in proc.stdout + proc.stderr and "Usage" in proc.stdout + proc.stderr


def test_on_a_terminal_an_error_prints_once() -> None:
    """A pseudo-terminal, where rich would draw its panel: one line, once."""
    code = "from convaudit.cli import app; app()"
    for args in (["scan", TEXTBOOK, "--formt"], ["scan", "no-such-model.onnx"]):
        parent, child = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args], stdin=child, stdout=child, stderr=child
        )
        os.close(child)
        out = b""
        while True:
            try:
                chunk = os.read(parent, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        os.close(parent)
        assert proc.wait(timeout=60) == 2
        lines = out.decode().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("convaudit: error: "), lines
