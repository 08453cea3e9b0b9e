"""Command line: parse options, call the API, pick a reporter, map errors to exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from convaudit.errors import ConvauditError


class Exit(IntEnum):
    """Process exit codes (as ruff and bandit): findings are 1, anything the user must fix is 2."""

    CLEAN = 0
    FINDINGS = 1
    ERROR = 2


app = typer.Typer(
    name="convaudit",
    help="Static analyser for ONNX models: exact MACs and params per layer, and where to cut them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

T = TypeVar("T")
FORMATS = ("table", "json")


def _guard(fn: Callable[[], T]) -> T:
    """Run ``fn``; user errors become one line and exit 2, bugs exit 2 with a hint to report."""
    try:
        return fn()
    except ConvauditError as exc:
        typer.echo(f"convaudit: error: {exc}", err=True)
        raise typer.Exit(Exit.ERROR) from None
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:  # a bug: never let a traceback look like "findings" (exit 1)
        typer.echo(
            f"convaudit: internal error: {type(exc).__name__}: {exc} "
            "(please report it with the model or a description of it)",
            err=True,
        )
        raise typer.Exit(Exit.ERROR) from None


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    from convaudit.atomic import write_atomic

    write_atomic(output, text)


@app.command()
def scan(
    paths: Annotated[list[str], typer.Argument(help="ONNX files, directories or globs.")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help=f"One of: {', '.join(FORMATS)}.")
    ] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report here.")
    ] = None,
    input_shape: Annotated[
        list[str] | None,
        typer.Option("--input-shape", help="Fix an input's shape: NAME=1x3x224x224 (repeatable)."),
    ] = None,
    dim: Annotated[
        list[str] | None,
        typer.Option("--dim", help="Set a symbolic dim: SYMBOL=VALUE (repeatable)."),
    ] = None,
) -> None:
    """Scan models: per-layer MACs and params, totals, each layer's share."""

    def run() -> int:
        from convaudit.api import scan as api_scan
        from convaudit.config import Config
        from convaudit.report import REPORTERS
        from convaudit.shapes_arg import parse_dims, parse_input_shapes

        if fmt not in REPORTERS:
            raise ConvauditError(f"unknown --format {fmt!r}; choose one of {', '.join(REPORTERS)}")
        config = Config(
            input_shapes=parse_input_shapes(input_shape or []), dims=parse_dims(dim or [])
        )
        result = api_scan(paths, config)
        _emit(REPORTERS[fmt](result), output)
        failed = [e for r in result.reports for e in r.errors]
        for line in failed:
            typer.echo(f"convaudit: error: {line}", err=True)
        return Exit.ERROR if failed else Exit.CLEAN

    code: Any = _guard(run)
    raise typer.Exit(int(code))


@app.command()
def fix(
    model: Annotated[Path, typer.Argument(help="The ONNX model to rewrite (never modified).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the rewritten model here.")
    ] = None,
    node: Annotated[
        list[str] | None,
        typer.Option("--node", help="Rewrite this conv (repeatable); default: CA101 findings."),
    ] = None,
    width: Annotated[
        int | None, typer.Option("--width", help="Bottleneck width (rounded to a multiple of 8).")
    ] = None,
    target_saving: Annotated[
        float | None,
        typer.Option("--target-saving", help="Widest width saving at least this many x MACs."),
    ] = None,
    max_error: Annotated[
        float | None,
        typer.Option("--max-error", help="Write nothing and exit 1 above this relative error."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Write even when --max-error is exceeded.")
    ] = False,
    inputs: Annotated[
        Path | None,
        typer.Option("--inputs", help="Calibration .npz keyed by input name (whitened SVD)."),
    ] = None,
    in_place: Annotated[
        bool, typer.Option("--in-place", help="Allow -o to be the input (or omit -o).")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    input_shape: Annotated[
        list[str] | None,
        typer.Option("--input-shape", help="Fix an input's shape: NAME=1x3x224x224 (repeatable)."),
    ] = None,
    dim: Annotated[
        list[str] | None,
        typer.Option("--dim", help="Set a symbolic dim: SYMBOL=VALUE (repeatable)."),
    ] = None,
) -> None:
    """Insert 1x1 bottlenecks with factorised weights; measure error and speed with onnxruntime."""

    def run() -> int:
        from convaudit.api import fix as api_fix
        from convaudit.config import Config
        from convaudit.fix.render import RENDERERS
        from convaudit.shapes_arg import parse_dims, parse_input_shapes

        if fmt not in RENDERERS:
            raise ConvauditError(f"unknown --format {fmt!r}; choose one of {', '.join(RENDERERS)}")
        config = Config(
            input_shapes=parse_input_shapes(input_shape or []), dims=parse_dims(dim or [])
        )
        result = api_fix(
            model,
            output,
            config,
            nodes=tuple(node or ()),
            width=width,
            target_saving=target_saving,
            max_error=max_error,
            force=force,
            inputs=inputs,
            in_place=in_place,
        )
        sys.stdout.write(RENDERERS[fmt](result))
        return Exit.FINDINGS if result.exceeded else Exit.CLEAN

    code: Any = _guard(run)
    raise typer.Exit(int(code))


@app.callback(invoke_without_command=True)
def main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    """convaudit: where the compute goes in an ONNX model, and how to cut it."""
    if version:
        from convaudit import __version__

        typer.echo(f"convaudit {__version__}")
        raise typer.Exit(0)
