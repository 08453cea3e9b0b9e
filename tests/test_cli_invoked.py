"""The console script builds only the sub-command argv names (issue 12): the help, the usage
errors and the exit codes must be those of the whole command tree, which the test runner (and
any argv that does not start with a command's exact name) still builds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import typer.main

from convaudit.cli import app, invoked

# Help, usage errors and did-you-mean of every command and group, as a user meets them.
ARGVS = [
    ["scan", "--help"],
    ["scan"],
    ["scan", "--formt", "json", "model.onnx"],
    ["scan", "--jobs", "many", "model.onnx"],
    ["fix", "--help"],
    ["fix"],
    ["diff", "--help"],
    ["diff", "a.onnx"],
    ["rules"],
    ["rules", "--help"],
    ["rules", "lst"],
    ["rules", "list", "--help"],
    ["rules", "explain"],
    ["config", "--help"],
    ["config", "show", "--help"],
    ["baseline", "--help"],
    ["baseline", "create", "--help"],
    ["baseline", "create"],
]


def _run(
    capsys: pytest.CaptureFixture[str], call: Callable[..., Any], argv: list[str]
) -> tuple[Any, str, str]:
    with pytest.raises(SystemExit) as stop:
        call(args=argv, prog_name="convaudit")
    out, err = capsys.readouterr()
    return stop.value.code, out, err


@pytest.mark.parametrize("argv", ARGVS, ids=" ".join)
def test_one_command_reads_and_fails_as_the_whole_tree(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    whole = _run(capsys, typer.main.get_command(app), argv)
    assert _run(capsys, app, argv) == whole
    assert whole[0] in (0, 2)
    assert whole[1] or whole[2]


@pytest.mark.parametrize(
    ("argv", "built"),
    [
        (["scan", "m.onnx", "--format", "json"], ["scan"]),
        (["fix", "m.onnx"], ["fix"]),
        (["diff", "a", "b"], ["diff"]),
        (["rules", "list"], ["rules"]),
        (["config", "show"], ["config"]),
        (["baseline", "create", "m.onnx"], ["baseline"]),
    ],
)
def test_a_named_command_is_the_only_one_built(argv: list[str], built: list[str]) -> None:
    group = typer.main.get_command(invoked(app, argv))
    assert sorted(group.commands) == built  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "argv", [[], ["--help"], ["--version", "scan"], ["scn", "m.onnx"], ["Scan"], ["list"]]
)
def test_anything_else_builds_every_command(argv: list[str]) -> None:
    assert invoked(app, argv) is app
    group = typer.main.get_command(app)
    assert sorted(group.commands) == [  # type: ignore[attr-defined]
        "baseline",
        "config",
        "diff",
        "fix",
        "rules",
        "scan",
    ]


def test_the_whole_tree_is_left_as_it_was() -> None:
    invoked(app, ["scan"])
    assert len(app.registered_commands) == 3
    assert len(app.registered_groups) == 3
