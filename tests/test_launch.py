"""The console script reads a plain ``convaudit scan`` without typer (issue 12) and must do
exactly what typer's scan does: the same options, the same output, messages and exit codes.
typer's click command is the oracle; anything the fast path does not read goes to typer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main

from convaudit import launch
from convaudit.cli import app, invoked

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"
TEXTBOOK = str(SAMPLES / "textbook_5x5.onnx")
INCEPTION = str(SAMPLES / "inception_block.onnx")


def _scan_command() -> Any:
    return typer.main.get_command(invoked(app, ["scan"])).commands["scan"]  # type: ignore[attr-defined]


def test_the_table_is_scans_options() -> None:
    kinds = {}
    for param in _scan_command().params:
        if param.param_type_name == "argument":
            assert (param.name, param.required, param.multiple or param.nargs == -1) == (
                "paths",
                True,
                True,
            )
            continue
        if param.is_flag:
            for name in param.opts:
                kinds[name] = (param.name, "true")
            for name in param.secondary_opts:
                kinds[name] = (param.name, "false")
            continue
        kind = {"StringParamType": "str", "IntParamType": "int", "TyperPath": "path"}[
            type(param.type).__name__
        ]
        if param.multiple:
            assert kind == "str"
            kind = "list"
        for name in param.opts:
            kinds[name] = (param.name, kind)
    assert kinds == launch.SCAN_OPTIONS


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["scan", "m.onnx"], {"paths": ["m.onnx"]}),
        (
            ["scan", "a.onnx", "-f", "json", "b.onnx", "--format=sarif", "--jobs", "2"],
            {"paths": ["a.onnx", "b.onnx"], "fmt": "sarif", "jobs": 2},
        ),
        (
            ["scan", "m", "--dim", "N=1", "--dim=T=5", "--select", "CA1", "--no-respect-gitignore"],
            {"paths": ["m"], "dim": ["N=1", "T=5"], "select": ["CA1"], "respect_gitignore": False},
        ),
        (
            ["scan", "-", "-v", "-q", "--weights", "--statistics", "--top", "007", "-o", "r.json"],
            {
                "paths": ["-"],
                "verbose": True,
                "quiet": True,
                "weights": True,
                "statistics": True,
                "top": 7,
                "output": Path("r.json"),
            },
        ),
    ],
)
def test_plain_argv_is_read_as_typer_reads_it(argv: list[str], expected: dict[str, Any]) -> None:
    assert launch.scan_options(argv) == expected


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["scan"],  # PATHS missing
        ["--version", "scan", "m"],
        ["rules", "list"],
        ["scan", "m", "--help"],
        ["scan", "m", "--formt", "json"],
        ["scan", "m", "-fjson"],
        ["scan", "m", "-vq"],
        ["scan", "m", "--"],
        ["scan", "m", "--format"],
        ["scan", "m", "--weights=yes"],
        ["scan", "m", "--jobs", "two"],
        ["scan", "m", "--jobs", "-1"],
        ["scan", "m", "--jobs", " 2"],
        ["scan", "m", "--top", "+3"],
        ["scan", "m", "--dim", ""],
        ["scan", "m", "--format", "--output"],
        ["scan", "-model.onnx"],
    ],
)
def test_anything_else_is_left_to_typer(argv: list[str]) -> None:
    assert launch.scan_options(argv) is None


def test_an_unreadable_output_is_left_to_typer(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    out.write_text("{}", encoding="utf-8")
    out.chmod(0)
    try:
        readable = launch._value("path", str(out)) is not None
        import os

        assert readable == os.access(out, os.R_OK)  # root reads anything
    finally:
        out.chmod(0o600)


def _typer(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[Any, str, str]:
    with pytest.raises(SystemExit) as stop:
        typer.main.get_command(app)(args=argv, prog_name="convaudit")
    out, err = capsys.readouterr()
    return stop.value.code, out, err


def _launch(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> tuple[Any, str, str]:
    assert launch.scan_options(argv) is not None  # the fast path, not typer
    monkeypatch.setattr(sys, "argv", ["convaudit", *argv])
    with pytest.raises(SystemExit) as stop:
        launch.main()
    out, err = capsys.readouterr()
    return stop.value.code, out, err


CASES = [
    ["scan", TEXTBOOK],  # findings: exit 1, the table
    ["scan", TEXTBOOK, "--format", "json"],
    ["scan", TEXTBOOK, INCEPTION, "-f", "sarif", "--fail-on", "never"],
    ["scan", INCEPTION, "--format", "markdown", "--select", "CA1", "--ignore", "CA103"],
    ["scan", TEXTBOOK, "--quiet"],
    ["scan", TEXTBOOK, INCEPTION, "--statistics", "--format", "json"],
    ["scan", str(SAMPLES), "--top", "2", "-v", "--fail-on", "error"],
    ["scan", TEXTBOOK, "--max-macs", "1M", "--format", "github"],
    ["scan", TEXTBOOK, "--max-macs", "lots"],  # a ConvauditError: one line, exit 2
    ["scan", TEXTBOOK, "--format", "xml"],
    ["scan", TEXTBOOK, "--jobs", "0"],
    ["scan", TEXTBOOK, "--top", "0"],
    ["scan", TEXTBOOK, "--statistics", "--format", "sarif"],
    ["scan", TEXTBOOK, "--report", "pdf=out.pdf"],
    ["scan", TEXTBOOK, "--shard", "3/2"],
    ["scan", str(SAMPLES / "no_such_model.onnx")],
    ["scan", TEXTBOOK, "--input-shape", "nope=1x2", "--format", "json"],
    ["scan", TEXTBOOK, "--dim", "batch", "--default-dim", "1"],
    ["scan", TEXTBOOK, "--config", str(SAMPLES / "missing.toml")],
    ["scan", TEXTBOOK, "--select", "CA999"],
    ["scan", TEXTBOOK, "--rules-dir", str(SAMPLES / "no_rules_here")],
    ["scan", TEXTBOOK, "--exclude", "*.onnx", "--no-respect-gitignore"],
]


@pytest.mark.parametrize("argv", CASES, ids=lambda a: " ".join(Path(x).name for x in a))
def test_the_fast_path_does_what_typer_does(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    monkeypatch.setenv("CI", "1")
    expected = _typer(capsys, argv)
    assert _launch(capsys, monkeypatch, argv) == expected
    assert expected[1] or expected[2]


def test_reports_written_by_the_fast_path_are_typers(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def written(run: Any, folder: Path) -> tuple[Any, str, str, str]:
        folder.mkdir()
        argv = ["scan", TEXTBOOK, "-o", str(folder / "r.json"), "--format", "json"]
        argv += ["--report", f"sarif={folder / 'r.sarif'}"]
        code = run(argv)
        return (*code, (folder / "r.json").read_text() + (folder / "r.sarif").read_text())

    expected = written(lambda a: _typer(capsys, a), tmp_path / "typer")
    got = written(lambda a: _launch(capsys, monkeypatch, a), tmp_path / "fast")
    assert got[0] == expected[0] and got[3] == expected[3]


def test_a_scan_through_the_console_script_imports_no_typer(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        f"sys.argv = ['convaudit', 'scan', {TEXTBOOK!r}, '--format', 'json']\n"
        "from convaudit.launch import main\n"
        "try:\n    main()\nexcept SystemExit as stop:\n    code = stop.code\n"
        "print(code, sorted({m.split('.')[0] for m in sys.modules} & {'typer', 'click'}),"
        " file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert '"reports"' in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "1 []"


def test_the_installed_command_sends_everything_else_to_typer(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("convaudit")  # pyproject's console script
    done = subprocess.run(
        [str(script), "scan", "--formt"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("convaudit: error: scan: no such option '--formt'")


def test_an_interrupted_scan_exits_as_typers_does(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_: object, **__: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("convaudit.cli.run_scan", interrupted)
    monkeypatch.setattr("convaudit.command.run_scan", interrupted)
    argv = ["scan", TEXTBOOK]
    expected = _typer(capsys, argv)
    assert expected == (130, "", "")  # typer: 128 + SIGINT, nothing printed
    assert _launch(capsys, monkeypatch, argv) == expected


def test_a_command_that_aborts_prints_aborted(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def aborts(*_: object, **__: object) -> int:
        raise typer.Abort

    monkeypatch.setattr("convaudit.cli.run_scan", aborts)
    assert _typer(capsys, ["scan", TEXTBOOK]) == (1, "", "Aborted!\n")


def test_a_completion_request_goes_to_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["/usr/bin/convaudit", "scan", TEXTBOOK])
    assert not launch._typer_only()
    monkeypatch.setenv("_CONVAUDIT_COMPLETE", "bash_complete")
    assert launch._typer_only()


def test_windows_argv_goes_to_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    # click expands globs, ~ and variables in argv on Windows before reading it
    monkeypatch.setattr(launch.os, "name", "nt")
    assert launch._typer_only()
