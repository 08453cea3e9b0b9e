"""The orchestrator: scan(paths, config) -> AuditResult. The CLI and Python users both call this."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from convaudit.config import Config
from convaudit.errors import ConfigError, ConvauditError, InputShapeError, ModelLoadError
from convaudit.records import AuditResult, Finding, ModelFacts, ModelReport

if TYPE_CHECKING:
    from convaudit.fix.result import FixResult
    from convaudit.model.loader import LoadedModel
    from convaudit.rules.engine import RuleSet

__version__ = "0.1.0"

# Problems that mean part of the model could not be costed: they are errors in the report.
ERROR_PROBLEMS = {"unknown-domain", "unknown-op"}


def expand_paths(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Files, directories (every ``*.onnx`` below) and globs -> sorted unique model paths.

    Hidden folders, virtual environments and git-ignored files are left out (see ``discover``).
    """
    from convaudit.discover import discover

    return list(discover(paths).models)


def analyse_model(path: str, config: Config, loaded: LoadedModel | None = None) -> ModelFacts:
    """Facts for one model with the config's input shapes and dims applied."""
    from convaudit.model.analyse import analyse

    input_shapes, dims = config.shapes_for(path)
    try:
        return analyse(path, input_shapes=input_shapes, dims=dims, loaded=loaded)
    except InputShapeError as exc:  # the shapes came from the config: say so by type
        raise ConfigError(exc.message, path=exc.path) from None


def load_ruleset(config: Config) -> RuleSet:
    """Built-in and configured rule files, validated, with the config applied (once per scan)."""
    from convaudit.rules.engine import RuleSet

    return RuleSet.from_config(config)


def find(facts: ModelFacts, config: Config, rules: RuleSet | None = None) -> tuple[Finding, ...]:
    """Findings of the configured rules on one model's facts (suppressed ones left out)."""
    return (rules or load_ruleset(config)).run(facts)[0]


def scan_one(
    path: str, config: Config, rules: RuleSet | None = None, *, weights: bool = False
) -> ModelReport:
    """The report for one model; input problems are recorded in ``errors``, not raised.

    ``weights`` keeps the model open after the scan to read its CA101 layers' weights.
    """
    if not weights:
        return _scan_one(path, config, rules, None)
    from convaudit.model.loader import load_model

    try:
        opened = load_model(path)
    except ConvauditError as exc:
        return ModelReport(path=path, facts=None, errors=(str(exc),))
    with opened as loaded:
        return _scan_one(path, config, rules, loaded)


def _scan_one(
    path: str, config: Config, rules: RuleSet | None, loaded: LoadedModel | None
) -> ModelReport:
    try:
        facts = analyse_model(path, config, loaded)
    except ConvauditError as exc:
        return ModelReport(path=path, facts=None, errors=(str(exc),))
    errors = tuple(f"{path}: {p.message}" for p in facts.problems if p.kind in ERROR_PROBLEMS)
    found, suppressed = (rules or load_ruleset(config)).run(facts)
    findings = found + _budget_findings(facts, config)
    if loaded is not None:
        from convaudit.fix.weights import add_weight_facts

        try:
            findings = add_weight_facts(facts, findings, loaded)
        except ModelLoadError as exc:  # e.g. a missing .data file: this model's error
            errors = (*errors, f"--weights: {exc}")
    return ModelReport(
        path=path, facts=facts, findings=findings, errors=errors, suppressed=suppressed
    )


def _budget_findings(facts: ModelFacts, config: Config) -> tuple[Finding, ...]:
    from convaudit.budgets import check_budgets

    return check_budgets(facts, max_macs=config.max_macs, max_params=config.max_params)


def scan_one_safe(
    path: str, config: Config, rules: RuleSet | None = None, *, weights: bool = False
) -> ModelReport:
    """``scan_one`` that also records an unexpected exception in the report, so that one model
    hitting a bug in a batch does not hide the others (the CLI still exits 2 for it)."""
    try:
        return scan_one(path, config, rules, weights=weights)
    except Exception as exc:
        return ModelReport(
            path=path,
            facts=None,
            errors=(
                f"{path}: internal error: {type(exc).__name__}: {exc} "
                "(please report it with the model or a description of it)",
            ),
        )


def parse_shard(text: str) -> tuple[int, int]:
    """ "2/4" -> (2, 4): the second of four slices (1-based, as CI matrix indices usually are)."""
    index, sep, count = text.partition("/")
    if sep and index.strip().isdigit() and count.strip().isdigit():
        i, n = int(index), int(count)
        if 1 <= i <= n:
            return i, n
    raise ConfigError(f"--shard {text!r}: expected I/N with 1 <= I <= N, e.g. 2/4")


def select_shard(models: Sequence[str], shard: tuple[int, int] | None) -> list[str]:
    """Slice I of N of the sorted model list: every N-th model starting at the I-th, so the
    slices are disjoint, cover every model and differ in size by at most one."""
    if shard is None:
        return list(models)
    i, n = shard
    return list(models)[i - 1 :: n]


Progress = Callable[[int, int, str], None]


def _scan_all(
    models: list[str],
    config: Config,
    jobs: int,
    progress: Progress | None,
    rules: RuleSet | None = None,
    weights: bool = False,
) -> tuple[ModelReport, ...]:
    total = len(models)
    if jobs <= 1 or total <= 1:
        reports = []
        for k, m in enumerate(models, 1):
            reports.append(scan_one_safe(m, config, rules, weights=weights))
            if progress is not None:
                progress(k, total, m)
        return tuple(reports)
    from concurrent.futures import ProcessPoolExecutor, as_completed

    by_path: dict[str, ModelReport] = {}
    with ProcessPoolExecutor(max_workers=min(jobs, total)) as pool:
        futures = {pool.submit(scan_one_safe, m, config, rules, weights=weights): m for m in models}
        for k, fut in enumerate(as_completed(futures), 1):
            m = futures[fut]
            try:
                by_path[m] = fut.result()
            except Exception as exc:  # the worker died (e.g. killed): record it, go on
                by_path[m] = ModelReport(
                    path=m, facts=None, errors=(f"{m}: worker failed: {type(exc).__name__}",)
                )
            if progress is not None:
                progress(k, total, m)
    return tuple(by_path[m] for m in models)


def scan(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    config: Config | None = None,
    *,
    jobs: int = 1,
    shard: tuple[int, int] | None = None,
    progress: Progress | None = None,
    weights: bool = False,
) -> AuditResult:
    """Scan one model, a directory or a glob (or several): one report per model, by path.

    Raises ``ModelLoadError`` only when a given path names nothing; a model that fails to load
    gets a report whose ``errors`` say why, so one bad file does not hide the others.
    ``jobs`` > 1 scans in that many processes (same result, same order); ``shard=(i, n)`` keeps
    slice i of n of the sorted models; ``progress(done, total, path)`` is called as models finish.
    ``weights`` reads each CA101-flagged layer's weights (one at a time) and adds the energy
    retained and the predicted error at the recommended width to the finding.
    """
    config = config or Config()
    rules = load_ruleset(config)  # rule-file and config errors stop the scan before any model
    baseline = None
    if config.baseline is not None:
        from convaudit.baseline import load_baseline

        baseline = load_baseline(config.baseline)
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    models = select_shard(expand_paths(items), shard)
    reports = _scan_all(models, config, jobs, progress, rules, weights)
    result = AuditResult(reports=reports, tool_version=__version__)
    if baseline is not None:
        from convaudit.baseline import apply_baseline

        result = apply_baseline(result, baseline, config.root)
    return result


def fails(result: AuditResult, fail_on: str) -> bool:
    """Whether ``result`` has a finding at or above ``fail_on`` (error/warning/info/never)."""
    rank = {"error": 0, "warning": 1, "info": 2}
    limit = rank.get(fail_on, -1)
    return any(rank.get(f.severity, 2) <= limit for f in result.findings)


def fix(
    path: str | os.PathLike[str],
    output: str | os.PathLike[str] | None,
    config: Config | None = None,
    *,
    nodes: Sequence[str] = (),
    width: int | None = None,
    target_saving: float | None = None,
    max_error: float | None = None,
    force: bool = False,
    inputs: str | os.PathLike[str] | None = None,
    in_place: bool = False,
    seed: int = 0,
) -> FixResult:
    """Rewrite wide convs of ``path`` as a 1x1 bottleneck + KxK, with factorised weights.

    Rewrites every CA101 finding (or the ``nodes`` named) at ``width``, at the width that saves
    ``target_saving``x, or at the finding's recommended width. Raises ``FixError`` on a refusal
    (output equal to the input without ``in_place``, a bad width, ...). A measured error above
    ``max_error`` is not an exception: ``result.exceeded`` is set and nothing is written unless
    ``force``.
    """
    from convaudit.fix.pipeline import FixOptions, run_fix

    opts = FixOptions(
        nodes=tuple(nodes),
        width=width,
        target_saving=target_saving,
        max_error=max_error,
        force=force,
        inputs=None if inputs is None else os.fspath(inputs),
        in_place=in_place,
        seed=seed,
    )
    out = None if output is None else os.fspath(output)
    return run_fix(os.fspath(path), out, opts, config or Config())
