"""What a command does once its options are parsed, with no typer in sight.

``cli`` (typer) parses every command's options and calls these; ``launch`` parses a plain
``convaudit scan`` itself and calls the same ``run_scan``, so the most common command runs
without importing typer (a fifth of a small model's scan). Errors, warnings and exit codes are
decided here, once, for both.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convaudit.errors import ConfigWarning, ConvauditError, nearest
from convaudit.safe_io import shown

if TYPE_CHECKING:
    from convaudit.config import Config
    from convaudit.records import AuditResult

_python_showwarning = warnings.showwarning


class Exit(IntEnum):
    """Process exit codes (as ruff and bandit): findings are 1, anything the user must fix is 2."""

    CLEAN = 0
    FINDINGS = 1
    ERROR = 2


FORMATS = ("table", "json", "markdown", "sarif", "junit", "html", "github")  # = report.REPORTERS
DIFF_FORMATS = ("table", "json", "markdown")
_ANSI = re.compile(r"\033\[[;?0-9]*[a-zA-Z]")  # click's: colour codes it strips off a non-terminal


def echo(message: str) -> None:
    """One line on stderr as ``click.echo(message, err=True)`` writes it: colour codes
    stripped unless stderr is a terminal, flushed."""
    stream = sys.stderr
    if stream is None:  # pythonw: no streams to write to
        return
    text = message + "\n"
    try:
        terminal = stream.isatty()
    except Exception:  # click's isatty: a stream that cannot say is not a terminal
        terminal = False
    if not terminal:
        text = _ANSI.sub("", text)
    stream.write(text)
    stream.flush()


def _show_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    """A config warning is one stderr line, like an error; others keep Python's format."""
    if issubclass(category, ConfigWarning):
        echo(f"convaudit: warning: {message}")
    else:
        _python_showwarning(message, category, *_, **__)


def guarded(fn: Callable[[], int], passthrough: tuple[type[Exception], ...] = ()) -> int:
    """Run ``fn`` and return its exit code; user errors become one line and exit 2, bugs exit
    2 with a hint to report. ``passthrough`` exceptions (typer's Exit and Abort, for the CLI)
    are raised as they are."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", ConfigWarning)
            warnings.showwarning = _show_warning
            return int(fn())
    except ConvauditError as exc:
        echo(f"convaudit: error: {exc}")
        return Exit.ERROR
    except KeyboardInterrupt:
        raise
    except passthrough:
        raise
    except Exception as exc:  # a bug: never let a traceback look like "findings" (exit 1)
        echo(
            f"convaudit: internal error: {type(exc).__name__}: {exc} "
            "(please report it with the model or a description of it)"
        )
        return Exit.ERROR


def keep_inputs(outputs: list[Path | None], inputs: list[str]) -> None:
    """Refuse an output file that is one of the models just read: `-o model.onnx` must not
    replace the user's model with a report."""
    for out in outputs:
        if out is None or not out.exists():
            continue
        for src in inputs:
            try:
                same = os.path.samefile(out, src)
            except OSError:
                continue
            if same:
                raise ConvauditError(
                    "output file is a model this command reads: refusing to overwrite it",
                    path=out,
                )


def emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    from convaudit.atomic import write_atomic

    write_atomic(output, text)


def check_format(fmt: str, formats: Iterable[str]) -> None:
    names = list(formats)
    if fmt not in names:
        raise ConvauditError(
            f"unknown --format {shown(fmt)}{nearest(fmt, names, quote=True)}; "
            f"choose one of {', '.join(names)}"
        )


def parse_reports(items: list[str]) -> list[tuple[str, Path]]:
    """--report FMT=PATH (repeatable) -> [(fmt, path)], formats checked before any scan."""
    out = []
    for item in items:
        fmt, sep, path = item.partition("=")
        if not sep or not path or fmt not in FORMATS:
            hint = nearest(fmt, FORMATS, quote=True) if sep else ""
            raise ConvauditError(
                f"--report {shown(item)}: expected FMT=PATH with FMT one of "
                f"{', '.join(FORMATS)}{hint}"
            )
        out.append((fmt, Path(path)))
    return out


def use_colour(output: Path | None) -> bool:
    """Colour the table only on a terminal: never in a file; NO_COLOR turns it off and
    FORCE_COLOR on (for CI logs, which are pipes), as no-color.org and force-color.org say."""
    if output is not None or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return sys.stdout.isatty()


def render_scan(
    result: AuditResult,
    fmt: str,
    *,
    output: Path | None,
    quiet: bool,
    statistics: bool,
    top: int | None,
) -> str:
    """The stdout report: --statistics or --quiet views, the table with --top and colour, or
    any other format as it is."""
    from convaudit.report import render

    colour = use_colour(output)
    if statistics:
        from convaudit.report.summary import statistics as counts
        from convaudit.report.summary import statistics_json

        return statistics_json(result) if fmt == "json" else counts(result, colour=colour)
    if fmt != "table":
        return render(result, fmt)
    if quiet:
        from convaudit.report.summary import findings_only

        return findings_only(result, colour=colour)
    text = render(result, fmt, top=top, colour=colour)
    if len(result.reports) > 1:
        from convaudit.report.summary import fleet_summary

        text += "\n" + fleet_summary(result, colour=colour)
    return text


def progress() -> Callable[[int, int, str], None] | None:
    """A one-line progress bar on stderr, only on a terminal and never in CI."""
    import os

    if not sys.stderr.isatty() or os.environ.get("CI"):
        return None

    def show(done: int, total: int, path: str) -> None:
        width = 30
        filled = width * done // total
        bar = "█" * filled + "·" * (width - filled)
        sys.stderr.write(f"\r\x1b[2K[{bar}] {done}/{total} {path[-50:]}")
        if done == total:
            sys.stderr.write("\r\x1b[2K")
        sys.stderr.flush()

    return show


def config_of(
    paths: list[str],
    config_file: str | None,
    input_shape: list[str] | None,
    dim: list[str] | None,
    rules_dir: list[str] | None = None,
    **flags: Any,
) -> Config:
    """The effective config: config file, then these flags on top."""
    from convaudit.config import parse_dim_flags, parse_input_shape_flags, resolve

    return resolve(
        paths,
        config_file,
        rule_dirs=rules_dir or (),
        input_shapes=parse_input_shape_flags(input_shape or []),
        dims=parse_dim_flags(dim or []),
        **flags,
    )


def report_skipped(result: AuditResult, verbose: bool) -> None:
    """--verbose: one stderr line per file or folder discovery left out, with the reason."""
    if verbose:
        for s in result.skipped:
            echo(f"convaudit: skipped {s.path}: {s.reason}")


def report_errors(result: AuditResult) -> bool:
    """Print each model's errors on stderr; True if there were any."""
    failed = [e for r in result.reports for e in r.errors]
    for line in failed:
        echo(f"convaudit: error: {line}")
    return bool(failed)


def run_scan(
    paths: list[str],
    *,
    fmt: str = "table",
    output: Path | None = None,
    input_shape: list[str] | None = None,
    dim: list[str] | None = None,
    default_dim: int | None = None,
    report: list[str] | None = None,
    jobs: int = 1,
    shard: str | None = None,
    max_macs: str | None = None,
    max_params: str | None = None,
    config_file: str | None = None,
    rules_dir: list[str] | None = None,
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    fail_on: str | None = None,
    baseline: str | None = None,
    weights: bool = False,
    exclude: list[str] | None = None,
    extend_exclude: list[str] | None = None,
    respect_gitignore: bool | None = None,
    verbose: bool = False,
    quiet: bool = False,
    statistics: bool = False,
    top: int | None = None,
    no_cache: bool = False,
) -> int:
    """``convaudit scan``: the exit code (raises ConvauditError on bad input; see ``guarded``)."""

    from convaudit.api import fails, parse_shard
    from convaudit.api import scan as api_scan
    from convaudit.report import REPORTERS, render

    check_format(fmt, REPORTERS)
    if jobs < 1:  # checked here, not by click: one error line, not a usage panel
        raise ConvauditError(f"--jobs must be at least 1, got {jobs}")
    if top is not None and top < 1:
        raise ConvauditError(f"--top must be at least 1, got {top}")
    if statistics and fmt not in ("table", "json"):
        raise ConvauditError(f"--statistics prints table or json, not --format {fmt}")
    extra_reports = parse_reports(report or [])
    config = config_of(
        paths,
        config_file,
        input_shape,
        dim,
        rules_dir,
        select=select,
        ignore=ignore,
        fail_on=fail_on,
        baseline=baseline,
        max_macs=max_macs,
        max_params=max_params,
        default_dim=default_dim,
        exclude=exclude,
        extend_exclude=extend_exclude or (),
        respect_gitignore=respect_gitignore,
    )
    result = api_scan(
        paths,
        config,
        jobs=jobs,
        shard=parse_shard(shard) if shard else None,
        progress=None if quiet else progress(),
        weights=weights,
        cache=not no_cache,  # CONVAUDIT_NO_CACHE=1 turns it off too, with every other cache
        graphs=False,
        prerender_json=(fmt == "json" and not statistics)
        or any(f == "json" for f, _ in extra_reports),
    )
    report_skipped(result, verbose)
    keep_inputs([output, *(p for _, p in extra_reports)], [r.path for r in result.reports])
    text = render_scan(result, fmt, output=output, quiet=quiet, statistics=statistics, top=top)
    emit(text, output)
    for extra_fmt, extra_path in extra_reports:
        emit(render(result, extra_fmt, config=config), extra_path)
    if report_errors(result):
        return Exit.ERROR
    return Exit.FINDINGS if fails(result, config.fail_on) else Exit.CLEAN
