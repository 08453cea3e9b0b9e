"""The orchestrator: scan(paths, config) -> AuditResult over many models, and fix(...).

The CLI and Python users both call this; the per-model audit is ``convaudit.audit``."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from convaudit import resultcache
from convaudit.audit import (
    ERROR_PROBLEMS,
    ScanJob,
    analyse_model,
    find,
    load_ruleset,
    run_job,
    scan_one,
    scan_one_safe,
)
from convaudit.config import Config
from convaudit.errors import ConfigError, ConfigWarning
from convaudit.records import AuditResult, ModelReport, at_or_above
from convaudit.version import __version__

if TYPE_CHECKING:
    from convaudit.fix.result import FixResult
    from convaudit.parallel import Workers
    from convaudit.rules.engine import RuleSet

# The per-model audit lives in convaudit.audit (fix and diff use it too); its names stay
# importable from here, where they were first published.
__all__ = [
    "ERROR_PROBLEMS",
    "__version__",
    "analyse_model",
    "expand_paths",
    "fails",
    "find",
    "fix",
    "load_ruleset",
    "parse_shard",
    "scan",
    "scan_one",
    "scan_one_safe",
    "select_shard",
]


def expand_paths(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Files, directories (every ``*.onnx`` below) and globs -> sorted unique model paths.

    Hidden folders, virtual environments and git-ignored files are left out (see ``discover``).
    """
    from convaudit.discover import discover

    return list(discover(paths).models)


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
    *,
    cache: bool = False,
    graphs: bool = True,
    workers: Workers | None = None,
    prerender_json: bool = False,
) -> tuple[ModelReport, ...]:
    """Every model's report, in order: cache hits first (no model read), then the rest scanned
    in this process or by ``jobs`` workers (``workers`` when already started), each stored in
    the cache as it is made."""
    context = None
    if cache and rules is not None:
        context = resultcache.context_key(rules, weights=weights)
    job = ScanJob(
        config=config,
        rules=rules,
        weights=weights,
        context=context,
        graphs=graphs and not cache,  # a cached report has none: every report the same
        prerender_json=prerender_json,
    )
    total = len(models)
    reports: dict[int, ModelReport] = {}
    keys: list[str | None] = [None] * total
    if context is not None:
        for i, m in enumerate(models):
            keys[i], hit = resultcache.lookup(context, m)
            if hit is not None:
                reports[i] = hit
                if progress is not None:
                    progress(len(reports), total, m)
    todo = [i for i in range(total) if i not in reports]
    done = len(reports)
    todo_models, todo_keys = [models[i] for i in todo], [keys[i] for i in todo]
    if jobs <= 1 or len(todo) <= 1:
        if workers is not None:
            workers.close()  # not needed: free their cores now
        for k, i in enumerate(todo, done + 1):
            reports[i] = run_job(job, models[i], keys[i])
            if progress is not None:
                progress(k, total, models[i])
    elif workers is not None:
        scanned = workers.scan(todo_models, todo_keys, job, progress, done, total)
        reports.update(zip(todo, scanned, strict=True))
    else:
        from convaudit.parallel import scan_parallel

        scanned = scan_parallel(todo_models, todo_keys, job, jobs, progress, done, total)
        reports.update(zip(todo, scanned, strict=True))
    if context is not None and todo:
        resultcache.prune()
    return tuple(reports[i] for i in range(total))


def scan(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    config: Config | None = None,
    *,
    jobs: int = 1,
    shard: tuple[int, int] | None = None,
    progress: Progress | None = None,
    weights: bool = False,
    cache: bool = False,
    graphs: bool = True,
    prerender_json: bool = False,
) -> AuditResult:
    """Scan one model, a directory or a glob (or several): one report per model, by path.

    Raises ``ModelLoadError`` only when a given path names nothing; a model that fails to load
    gets a report whose ``errors`` say why, so one bad file does not hide the others.
    ``jobs`` > 1 scans in that many processes (same result, same order); ``shard=(i, n)`` keeps
    slice i of n of the sorted models; ``progress(done, total, path)`` is called as models finish.
    ``weights`` reads the weights of each layer given a bottleneck recommendation (one at a
    time) and adds the energy retained and the predicted error at its width to the finding.
    ``cache`` reuses and stores each model's report in the per-user result cache (off when
    ``CONVAUDIT_NO_CACHE=1``; see ``resultcache`` for what invalidates an entry); its reports
    then carry no ``facts.node_graph``, cached or not, as with ``graphs=False`` (reporters never
    read it; leaving it out is most of what ``--jobs`` workers would send back).
    ``prerender_json`` (for a caller about to render the JSON report) has ``--jobs`` workers
    also write each model's part of it, on their cores: the same text, made in parallel and
    not after the last model; it changes nothing else.
    """
    config = config or Config()
    if jobs <= 1 or (cache and resultcache.enabled()):
        # With the cache on the workers start once the models it cannot answer are known: on a
        # run of hits, workers warming up beside the parent only take CPU from it.
        return _scan(
            paths, config, jobs, shard, progress, weights, cache, graphs, None, prerender_json
        )
    from convaudit.parallel import Workers

    # Every model will be scanned: the workers start first, and their warm-up runs beside the
    # parent's rule loading and discovery.
    with Workers(jobs) as workers:
        return _scan(
            paths, config, jobs, shard, progress, weights, cache, graphs, workers, prerender_json
        )


def _scan(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    config: Config,
    jobs: int,
    shard: tuple[int, int] | None,
    progress: Progress | None,
    weights: bool,
    cache: bool,
    graphs: bool,
    workers: Workers | None,
    prerender_json: bool = False,
) -> AuditResult:
    rules = load_ruleset(config)  # rule-file and config errors stop the scan before any model
    baseline = None
    if config.baseline is not None:
        from convaudit.baseline import load_baseline

        baseline = load_baseline(config.baseline)
    from convaudit.discover import discover, source_root

    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    discovery = discover(
        items, exclude=config.excluded, gitignore=config.respect_gitignore, root=config.root
    )
    found = list(discovery.models)
    for message in config.unmatched(found):  # before sharding: another shard may match it
        warnings.warn(message, ConfigWarning, stacklevel=2)
    models = select_shard(found, shard)
    reports = _scan_all(
        models,
        config,
        jobs,
        progress,
        rules,
        weights,
        cache=cache,
        graphs=graphs,
        workers=workers,
        prerender_json=prerender_json,
    )
    result = AuditResult(
        reports=reports,
        tool_version=__version__,
        rules=rules.catalogue(),
        skipped=discovery.skipped,
        fail_on=config.fail_on,
        cwd=os.getcwd(),
        source_root=source_root(os.getcwd()),
    )
    if baseline is not None:
        from convaudit.baseline import apply_baseline

        result = apply_baseline(result, baseline, config.root)
    return result


def fails(result: AuditResult, fail_on: str) -> bool:
    """Whether ``result`` has a finding at or above ``fail_on`` (error/warning/info/never)."""
    return any(at_or_above(f.severity, fail_on) for f in result.findings)


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
    eval_inputs: str | os.PathLike[str] | None = None,
    channel_axis: int = 1,
    kind: str | None = None,
    tune_steps: int = 0,
) -> FixResult:
    """Rewrite wide convs of ``path`` as a 1x1 bottleneck + KxK, with factorised weights.

    Rewrites every conv with a bottleneck recommendation (or the ``nodes`` named) at ``width``,
    at the width that saves ``target_saving``x, or at the recommended width. Raises
    ``FixError`` on a refusal (output equal to the input without ``in_place``, a bad width, ...).
    A measured error above ``max_error`` (default 5%: ``DEFAULT_MAX_ERROR``) is not an
    exception: ``result.exceeded`` is set and nothing is written unless ``force``. With
    ``inputs``, the error is measured on a held-out split of them, or on ``eval_inputs``; with
    ``inputs`` and ``max_error`` but no ``width``/``target_saving``, the widths are searched.
    ``kind`` ("bottleneck" or "spatial": a Kh x 1 conv then a 1 x Kw one) pins the rewrite's
    kind; by default the search picks it per layer, and a pinned width is a bottleneck.
    ``tune_steps`` (with ``inputs``): after the layer-wise fit, that many Adam steps on the
    rewritten layers' factors towards the original model's outputs (``fix.tune``).
    """
    from convaudit.fix.pipeline import FixOptions, run_fix

    opts = FixOptions(
        nodes=tuple(nodes),
        width=width,
        target_saving=target_saving,
        max_error=max_error,
        force=force,
        inputs=None if inputs is None else os.fspath(inputs),
        eval_inputs=None if eval_inputs is None else os.fspath(eval_inputs),
        channel_axis=channel_axis,
        in_place=in_place,
        seed=seed,
        kind=kind,
        tune_steps=tune_steps,
    )
    out = None if output is None else os.fspath(output)
    return run_fix(os.fspath(path), out, opts, config or Config())
