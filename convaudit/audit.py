"""The per-model audit: one model's facts, its rule findings and budgets (and, on request, what
its flagged layers' weights say). ``api`` runs it over many models; ``fix`` and ``diff`` on one."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from convaudit import resultcache
from convaudit.config import Config
from convaudit.errors import (
    ConfigError,
    ConvauditError,
    InputShapeError,
    ModelLoadError,
    UnknownDimError,
    UnknownInputError,
    one_line,
)
from convaudit.records import Finding, ModelFacts, ModelReport

if TYPE_CHECKING:
    from convaudit.model.loader import LoadedModel
    from convaudit.rules.engine import RuleSet

# Problems that mean part of the model could not be costed: they are errors in the report.
ERROR_PROBLEMS = {"unknown-domain", "unknown-op"}


def analyse_model(
    path: str, config: Config, loaded: LoadedModel | None = None, *, shapes_of: str | None = None
) -> ModelFacts:
    """Facts for one model with the config's input shapes and dims applied: those for
    ``shapes_of`` when given (fix scans its temp file with the input model's shapes)."""
    from convaudit.model.analyse import analyse

    shaped = path if shapes_of is None else shapes_of
    input_shapes, dims = config.shapes_for(shaped)
    try:
        return analyse(
            path,
            input_shapes=input_shapes,
            dims=dims,
            loaded=loaded,
            default_dim=config.default_dim,
        )
    except UnknownDimError as exc:
        origin = config.dim_origin(shaped, exc.symbol)
        if origin is None:
            raise ConfigError(exc.message, path=exc.path) from None
        raise ConfigError(f"{origin}: {shaped} {exc.detail}", path=config.source) from None
    except UnknownInputError as exc:
        origin = config.shape_origin(shaped, exc.input_name)
        if origin is None:  # a flag or the Python API: the walker's message names --input-shape
            raise ConfigError(exc.message, path=exc.path) from None
        # The file's entry is what to fix, not a flag the user never typed.
        raise ConfigError(
            f"{origin}: {shaped} has no input {exc.input_name!r}; its inputs are "
            f"{', '.join(exc.inputs) or '(none)'}",
            path=config.source,
        ) from None
    except InputShapeError as exc:  # the shapes came from the config: say so by type
        raise ConfigError(exc.message, path=exc.path) from None


def load_ruleset(config: Config) -> RuleSet:
    """Built-in and configured rule files, validated, with the config applied (once per scan)."""
    from convaudit.rules.engine import RuleSet

    return RuleSet.from_config(config)


def find(facts: ModelFacts, config: Config, rules: RuleSet | None = None) -> tuple[Finding, ...]:
    """Findings of the configured rules on one model's facts (suppressed ones left out)."""
    return (rules or load_ruleset(config)).run(facts)[0]


def rules_of_kind(rules: RuleSet, kind: str) -> tuple[str, ...]:
    """Ids of the rules whose findings recommend ``kind`` (every loaded rule, enabled or not):
    how code names the rule behind a recommendation without writing its id."""
    return tuple(sorted(r.id for r in rules.available.values() if r.recommendation == kind))


def scan_one(
    path: str, config: Config, rules: RuleSet | None = None, *, weights: bool = False
) -> ModelReport:
    """The report for one model; input problems are recorded in ``errors``, not raised.

    ``weights`` keeps the model open after the scan to read the weights of the layers its
    bottleneck recommendations are about.
    """
    return _scan_reading(path, config, rules, weights=weights)[0]


def _scan_reading(
    path: str, config: Config, rules: RuleSet | None, *, weights: bool
) -> tuple[ModelReport, tuple[str, ...]]:
    """``scan_one``, and the files besides the model it read (external data, for --weights)."""
    if not weights:
        return _scan_one(path, config, rules, None), ()
    from convaudit.model.loader import load_model

    try:
        opened = load_model(path)
    except ConvauditError as exc:
        return ModelReport(path=path, facts=None, errors=(str(exc),)), ()
    with opened as loaded:
        report = _scan_one(path, config, rules, loaded)
        try:
            read = loaded.external_files()
        except ConvauditError:  # the scan has recorded what is wrong with them
            read = ()
        return report, read


def _scan_one(
    path: str, config: Config, rules: RuleSet | None, loaded: LoadedModel | None
) -> ModelReport:
    try:
        facts = analyse_model(path, config, loaded)
    except ConvauditError as exc:
        return ModelReport(path=path, facts=None, errors=(str(exc),))
    # a problem quotes the model's own text (an op type with a line break in it): one line each,
    # and each distinct problem once (a node reached twice records the same problem twice)
    problems = [p for p in facts.problems if p.kind in ERROR_PROBLEMS]
    errors = tuple(dict.fromkeys(one_line(f"{path}: {p.message}") for p in problems))
    ruleset = rules or load_ruleset(config)
    findings, suppressed = ruleset.run(facts)  # budgets included
    if loaded is not None:
        from convaudit.weights import add_weight_facts, drop_in_targets

        try:
            targets = drop_in_targets(ruleset.available)
            findings = add_weight_facts(facts, findings, loaded, targets)
        except ModelLoadError as exc:  # e.g. a missing .data file: this model's error
            errors = (*errors, f"--weights: {exc}")
    return ModelReport(
        path=path, facts=facts, findings=findings, errors=errors, suppressed=suppressed
    )


def scan_one_safe(
    path: str, config: Config, rules: RuleSet | None = None, *, weights: bool = False
) -> ModelReport:
    """``scan_one`` that also records an unexpected exception in the report, so that one model
    hitting a bug in a batch does not hide the others (the CLI still exits 2 for it)."""
    try:
        return scan_one(path, config, rules, weights=weights)
    except Exception as exc:
        return _internal_error(path, exc)


def _internal_error(path: str, exc: Exception) -> ModelReport:
    return ModelReport(
        path=path,
        facts=None,
        errors=(
            f"{path}: internal error: {type(exc).__name__}: {exc} "
            "(please report it with the model or a description of it)",
        ),
    )


@dataclass(frozen=True, kw_only=True)
class ScanJob:
    """What every model of one scan is audited with; sent once to each ``--jobs`` worker."""

    config: Config
    rules: RuleSet | None
    weights: bool = False
    # None: no result cache; else the context hash entries are stored under (resultcache)
    context: str | None = None
    # False: reports leave out the walk's node graph (reporters never read it; it is most of
    # what a worker would send back)
    graphs: bool = True
    # True: a --jobs worker also writes each report's JSON text (json_report.prerender)
    prerender_json: bool = False


def run_job(job: ScanJob, path: str, key: str | None) -> ModelReport:
    """``scan_one_safe`` of ``path`` under ``job``; the report is stored as cache entry ``key``."""
    try:
        report, read = _scan_reading(path, job.config, job.rules, weights=job.weights)
    except Exception as exc:
        return _internal_error(path, exc)
    if job.context is not None and key is not None:
        resultcache.store(job.context, key, path, report, read)
    if not job.graphs and report.facts is not None and report.facts.node_graph is not None:
        report = dataclasses.replace(
            report, facts=dataclasses.replace(report.facts, node_graph=None)
        )
    return report
