"""Command line: parse options, call the API, pick a reporter, map errors to exit codes."""

# No ``from __future__ import annotations`` here: typer reads the commands' annotations on every
# run, and as strings each one is compiled and evaluated again (16 ms of a scan's 18 ms building
# its click command); evaluated once at import they cost typer nothing.

import copy
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from convaudit.command import (
    DIFF_FORMATS,
    FORMATS,
    Exit,
    check_format,
    echo,
    emit,
    guarded,
    keep_inputs,
    report_errors,
    report_skipped,
    run_scan,
)
from convaudit.command import config_of as _config
from convaudit.errors import ConvauditError, nearest, one_line
from convaudit.safe_io import shown

if TYPE_CHECKING:
    from convaudit.config import Config


def _click_exceptions() -> Any:
    """click's exception classes: typer 0.2x vendors click as ``typer._click``; older typers
    use the click package."""
    import importlib

    try:
        return importlib.import_module("typer._click.exceptions")
    except ImportError:  # pragma: no cover - typer before it vendored click
        return importlib.import_module("click.exceptions")


def _usage_line(exc: Any) -> str:
    """A click usage error as our one line: where, what, the nearest name, where to look."""
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path.removeprefix("convaudit").strip() if ctx is not None else ""
    option = getattr(exc, "option_name", None)
    if type(exc).__name__ == "NoSuchOption" and ctx is not None and option:
        names = [n for p in ctx.command.params for n in (*p.opts, *p.secondary_opts)]
        what = f"no such option {shown(option)}{nearest(option, names, quote=True)}"
    else:
        what = exc.format_message().strip()
        what = what[:1].lower() + what[1:]
        # click's "No such command 'scn'. Did you mean 'scan'?" in our did-you-mean form
        what = re.sub(r"\.? Did you mean (.+)\?$", r" (did you mean \1?)", what).rstrip(".")
    see = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
    return one_line(f"{where}: {what}{see}" if where else f"{what}{see}")


class _OneLineErrors(TyperGroup):
    """typer's group with usage errors printed as every other error is: one stderr line
    ``convaudit: error: ...`` and exit 2, never a boxed panel."""

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        errors = _click_exceptions()
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except errors.NoArgsIsHelpError:  # the help is already printed
            sys.exit(Exit.ERROR)
        except errors.ClickException as exc:
            echo(f"convaudit: error: {_usage_line(exc)}")
            sys.exit(Exit.ERROR)
        except typer.Abort:  # typer's own class: its vendored click has none
            echo("Aborted!")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


class _InvokedOnly(typer.Typer):
    """typer's app, building only the sub-command argv names: typer turns every registered
    command into a click command (signature, annotations, every option) on each run, and a scan
    has no use for the others. Anything else (no command, an option first, a typo that
    wants did-you-mean, the test runner) builds the whole tree as typer does."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        argv = kwargs.get("args", args[0] if args else None)
        only = invoked(self, sys.argv[1:] if argv is None else list(argv))
        return typer.Typer.__call__(only, *args, **kwargs)


def invoked(whole: typer.Typer, argv: list[str]) -> typer.Typer:
    """The app with only the command or group ``argv`` starts with registered, or ``whole``
    when argv does not start with the exact name of one."""
    if not argv:
        return whole
    name = argv[0]
    commands = [
        c for c in whole.registered_commands if (c.name or _command_name(c.callback)) == name
    ]
    groups = [g for g in whole.registered_groups if g.name == name]
    if not commands and not groups:
        return whole
    only = copy.copy(whole)
    only.registered_commands = commands
    only.registered_groups = groups
    return only


def _command_name(callback: Callable[..., Any] | None) -> str:
    """The name typer gives a command registered without one (typer.main.get_command_name)."""
    return "" if callback is None else callback.__name__.lower().replace("_", "-")


app = _InvokedOnly(
    cls=_OneLineErrors,
    name="convaudit",
    help="Static analyser for ONNX models: exact MACs and params per layer, and where to cut them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Options shared by several commands, declared once.
InputShapeOption = Annotated[
    list[str] | None,
    typer.Option("--input-shape", help="Fix an input's shape: NAME=1x3x224x224 (repeatable)."),
]
DimOption = Annotated[
    list[str] | None,
    typer.Option(
        "--dim", help="Set a symbolic dim: SYMBOL=VALUE (repeatable); '*=N' sets every other one."
    ),
]
DefaultDimOption = Annotated[
    int | None,
    typer.Option(
        "--default-dim", help="Set every symbolic dim no --dim sets to N (the report notes them)."
    ),
]
ExcludeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--exclude",
        help="Leave out files/folders matching this glob (repeatable; replaces the config's).",
    ),
]
ExtendExcludeOption = Annotated[
    list[str] | None,
    typer.Option("--extend-exclude", help="Like --exclude, added to the config's (repeatable)."),
]
GitignoreOption = Annotated[
    bool | None,
    typer.Option(
        "--respect-gitignore/--no-respect-gitignore",
        help="Leave out files git ignores inside a git work tree [default: respect].",
        show_default=False,
    ),
]
VerboseOption = Annotated[
    bool,
    typer.Option("--verbose", "-v", help="Say on stderr what a folder scan skipped and why."),
]
ConfigOption = Annotated[
    str | None,
    typer.Option("--config", help="Config file (default: nearest pyproject/convaudit.toml)."),
]
RulesDirOption = Annotated[
    list[str] | None,
    typer.Option("--rules-dir", help="Also load the YAML rules of this folder (repeatable)."),
]
MaxMacsOption = Annotated[
    str | None,
    typer.Option("--max-macs", help="MAC budget, e.g. 4.1G (a budget finding when over)."),
]
MaxParamsOption = Annotated[
    str | None,
    typer.Option("--max-params", help="Param budget, e.g. 25.6M (a budget finding when over)."),
]
PathsArgument = Annotated[list[str], typer.Argument(help="ONNX files, directories or globs.")]


def _run(fn: Callable[[], int]) -> None:
    """Run a command body under the error guard and exit with its code."""
    raise typer.Exit(guarded(fn, passthrough=(typer.Exit, typer.Abort)))


@app.command()
def scan(
    paths: PathsArgument,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help=f"One of: {', '.join(FORMATS)}.")
    ] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report here.")
    ] = None,
    input_shape: InputShapeOption = None,
    dim: DimOption = None,
    default_dim: DefaultDimOption = None,
    report: Annotated[
        list[str] | None,
        typer.Option("--report", help="Also write FMT=PATH, e.g. sarif=out.sarif (repeatable)."),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Parallel processes.")] = 1,
    shard: Annotated[
        str | None, typer.Option("--shard", help="Scan slice I of N of the sorted models: I/N.")
    ] = None,
    max_macs: MaxMacsOption = None,
    max_params: MaxParamsOption = None,
    config_file: ConfigOption = None,
    rules_dir: RulesDirOption = None,
    select: Annotated[
        list[str] | None,
        typer.Option("--select", help="Only these rule codes or prefixes (`rules list`)."),
    ] = None,
    ignore: Annotated[
        list[str] | None, typer.Option("--ignore", help="Skip these rule codes or prefixes.")
    ] = None,
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on", help="Exit 1 on findings at or above: error|warning|info|never [warning]."
        ),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option("--baseline", help="Report only findings not in this baseline file."),
    ] = None,
    weights: Annotated[
        bool,
        typer.Option(
            "--weights",
            help="Read flagged layers' weights: energy kept and predicted error of a bottleneck.",
        ),
    ] = False,
    exclude: ExcludeOption = None,
    extend_exclude: ExtendExcludeOption = None,
    respect_gitignore: GitignoreOption = None,
    verbose: VerboseOption = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="Print only the findings, one line each (the table format)."
        ),
    ] = False,
    statistics: Annotated[
        bool,
        typer.Option("--statistics", help="Print the number of findings of each rule instead."),
    ] = False,
    top: Annotated[
        int | None,
        typer.Option("--top", help="Show only the N costliest layers of each model's table."),
    ] = None,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache", help="Scan every model again: no stored results read or written."
        ),
    ] = False,
) -> None:
    """Scan models: per-layer MACs and params, totals, each layer's share, rule findings."""
    options = dict(locals())  # every parameter by name: run_scan takes the same names
    _run(lambda: run_scan(**options))


@app.command()
def fix(
    model: Annotated[Path, typer.Argument(help="The ONNX model to rewrite (never modified).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the rewritten model here.")
    ] = None,
    node: Annotated[
        list[str] | None,
        typer.Option(
            "--node", help="Rewrite this conv (repeatable); default: bottleneck findings."
        ),
    ] = None,
    width: Annotated[
        int | None, typer.Option("--width", help="Bottleneck width (rounded to a multiple of 8).")
    ] = None,
    target_saving: Annotated[
        float | None,
        typer.Option("--target-saving", help="Widest width saving at least this many x MACs."),
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind",
            help="bottleneck (1x1 then KxK) or spatial (Kh x 1 then 1 x Kw); default: the "
            "search picks per layer, a pinned --width is a bottleneck.",
        ),
    ] = None,
    max_error: Annotated[
        float | None,
        typer.Option(
            "--max-error",
            help="Write nothing and exit 1 above this relative error (default 0.05); with "
            "--inputs and no --width, search widths within it.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Write even when --max-error is exceeded.")
    ] = False,
    inputs: Annotated[
        Path | None,
        typer.Option(
            "--inputs",
            help="Real samples (.npz keyed by input name): fit on them, measure on a held-out "
            "split.",
        ),
    ] = None,
    eval_inputs: Annotated[
        Path | None,
        typer.Option("--eval-inputs", help="Measure the error on these samples (.npz) instead."),
    ] = None,
    channel_axis: Annotated[
        int,
        typer.Option(
            "--channel-axis",
            help="The outputs' feature axis for per-channel errors (1: NCHW; -1: [N, boxes, "
            "attributes]).",
        ),
    ] = 1,
    tune_steps: Annotated[
        int,
        typer.Option(
            "--tune-steps",
            help="With --inputs: after the layer-wise fit, this many Adam steps on the rewritten "
            "layers' factors against the original outputs (one fit run each); 0: off.",
        ),
    ] = 0,
    in_place: Annotated[
        bool, typer.Option("--in-place", help="Allow -o to be the input (or omit -o).")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    input_shape: InputShapeOption = None,
    dim: DimOption = None,
    default_dim: DefaultDimOption = None,
    config_file: ConfigOption = None,
    rules_dir: RulesDirOption = None,
) -> None:
    """Insert 1x1 bottlenecks with factorised weights; measure error and speed with onnxruntime."""

    def run() -> int:
        from convaudit.api import fix as api_fix
        from convaudit.fix.render import RENDERERS

        check_format(fmt, RENDERERS)
        # The same config as scan: the bottleneck rule's params and suppressions decide the rewrite.
        config = _config(
            [str(model)], config_file, input_shape, dim, rules_dir, default_dim=default_dim
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
            eval_inputs=eval_inputs,
            channel_axis=channel_axis,
            in_place=in_place,
            kind=kind,
            tune_steps=tune_steps,
        )
        sys.stdout.write(RENDERERS[fmt](result))
        return Exit.FINDINGS if result.exceeded else Exit.CLEAN

    _run(run)


@app.command()
def diff(
    base: Annotated[
        Path, typer.Argument(help="The base model, or folder of models (before the change).")
    ],
    head: Annotated[
        Path, typer.Argument(help="The head model, or folder of models (after the change).")
    ],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help=f"One of: {', '.join(DIFF_FORMATS)}.")
    ] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the diff here.")
    ] = None,
    max_increase: Annotated[
        str | None,
        typer.Option(
            "--max-increase", help="Allowed MAC/param growth, e.g. 2% (a budget finding when over)."
        ),
    ] = None,
    max_macs: MaxMacsOption = None,
    max_params: MaxParamsOption = None,
    input_shape: InputShapeOption = None,
    dim: DimOption = None,
    default_dim: DefaultDimOption = None,
    config_file: ConfigOption = None,
    fail_on: Annotated[
        str | None,
        typer.Option("--fail-on", help="Exit 1 for new findings at or above: error|warning|info."),
    ] = None,
) -> None:
    """Compare two models (or two folders, model by model): MACs/params, findings, budgets.

    Exits 1 when HEAD breaks a budget or brings a new finding at or above --fail-on, else 0.
    """

    def run() -> int:
        from convaudit.diff import diff as api_diff
        from convaudit.report.diff_report import DIFF_REPORTERS

        check_format(fmt, DIFF_REPORTERS)
        config = _config(
            [str(head)],
            config_file,
            input_shape,
            dim,
            fail_on=fail_on,
            max_macs=max_macs,
            max_params=max_params,
            max_increase=max_increase,
            default_dim=default_dim,
        )
        from convaudit.records import at_or_above

        if base.is_dir() or head.is_dir():
            return _diff_folders(base, head, config, fmt, output)
        result = api_diff(str(base), str(head), config)
        keep_inputs([output], [str(base), str(head)])
        emit(DIFF_REPORTERS[fmt](result), output)
        hits = [f for f in result.findings if at_or_above(f.severity, config.fail_on)]
        return Exit.FINDINGS if hits else Exit.CLEAN

    _run(run)


def _diff_folders(base: Path, head: Path, config: "Config", fmt: str, output: Path | None) -> int:
    """``diff`` of two folders: every model pair, then the added and removed models."""
    from convaudit.diff_folders import diff_folders
    from convaudit.records import at_or_above
    from convaudit.report.folder_diff_report import FOLDER_DIFF_REPORTERS

    if not (base.is_dir() and head.is_dir()):
        folder, other = (head, base) if head.is_dir() else (base, head)
        raise ConvauditError(
            f"a folder, but {other} is a file: compare two models or two folders", path=folder
        )
    result = diff_folders(str(base), str(head), config)
    models = [p.path for _, d in result.pairs for p in (d.base, d.head)]
    models += [r.path for _, r in (*result.added, *result.removed)]
    keep_inputs([output], models)
    emit(FOLDER_DIFF_REPORTERS[fmt](result), output)
    for line in result.errors:
        echo(f"convaudit: error: {line}")
    if result.errors:
        return Exit.ERROR
    hits = [f for f in result.findings if at_or_above(f.severity, config.fail_on)]
    return Exit.FINDINGS if hits else Exit.CLEAN


rules_app = typer.Typer(help="List the rules and explain one.", no_args_is_help=True)
config_app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)
baseline_app = typer.Typer(help="Record today's findings so CI reports only new ones.")
app.add_typer(rules_app, name="rules")
app.add_typer(config_app, name="config")
app.add_typer(baseline_app, name="baseline")


@rules_app.command("list")
def rules_list(config_file: ConfigOption = None, rules_dir: RulesDirOption = None) -> None:
    """Every available rule: id, severity, on/off (select/ignore), name, summary."""

    def run() -> int:
        from convaudit.api import load_ruleset
        from convaudit.rules.explain import render_list

        config = _config([], config_file, None, None, rules_dir)
        sys.stdout.write(render_list(load_ruleset(config)))
        return Exit.CLEAN

    _run(run)


@rules_app.command("explain")
def rules_explain(
    rule: Annotated[str, typer.Argument(help="A rule id (see `convaudit rules list`).")],
    config_file: ConfigOption = None,
    rules_dir: RulesDirOption = None,
) -> None:
    """A rule's docs (what, why, example, fix), its current params and its match."""

    def run() -> int:
        from convaudit.api import load_ruleset
        from convaudit.rules.explain import render_explain

        config = _config([], config_file, None, None, rules_dir)
        sys.stdout.write(render_explain(load_ruleset(config), rule))
        return Exit.CLEAN

    _run(run)


@config_app.command("show")
def config_show(
    path: Annotated[
        str | None, typer.Argument(help="A model or folder to find the config from (default: .).")
    ] = None,
    config_file: ConfigOption = None,
) -> None:
    """Print the effective configuration (defaults, file, in TOML) and where it came from."""

    def run() -> int:
        from convaudit.api import load_ruleset
        from convaudit.config import render

        config = _config([path] if path else [], config_file, None, None)
        load_ruleset(config)  # rule ids in select/severity/params are checked too
        sys.stdout.write(render(config))
        return Exit.CLEAN

    _run(run)


@baseline_app.command("create")
def baseline_create(
    paths: PathsArgument,
    output: Annotated[Path, typer.Option("--output", "-o", help="Baseline file to write.")] = Path(
        "convaudit-baseline.json"
    ),
    config_file: ConfigOption = None,
    rules_dir: RulesDirOption = None,
    input_shape: InputShapeOption = None,
    dim: DimOption = None,
    default_dim: DefaultDimOption = None,
    exclude: ExcludeOption = None,
    extend_exclude: ExtendExcludeOption = None,
    respect_gitignore: GitignoreOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Write every current finding to a baseline; `scan --baseline` then reports only new ones."""

    def run() -> int:
        import dataclasses

        from convaudit.api import scan as api_scan
        from convaudit.baseline import render_baseline

        config = _config(
            paths,
            config_file,
            input_shape,
            dim,
            rules_dir,
            default_dim=default_dim,
            exclude=exclude,
            extend_exclude=extend_exclude or (),
            respect_gitignore=respect_gitignore,
        )
        result = api_scan(paths, dataclasses.replace(config, baseline=None))
        report_skipped(result, verbose)
        if report_errors(result):
            return Exit.ERROR
        keep_inputs([output], [r.path for r in result.reports])
        emit(render_baseline(result, config.root), output)
        echo(f"convaudit: {len(result.findings)} findings written to {output}")
        return Exit.CLEAN

    _run(run)


@app.callback(invoke_without_command=True)
def main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    """convaudit: where the compute goes in an ONNX model, and how to cut it."""
    if version:
        from convaudit.version import __version__

        typer.echo(f"convaudit {__version__}")
        raise typer.Exit(0)
