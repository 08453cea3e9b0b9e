"""The orchestrator: scan(paths, config) -> AuditResult. The CLI and Python users both call this."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from convaudit.config import Config
from convaudit.errors import ConvauditError, ModelLoadError
from convaudit.records import AuditResult, Finding, ModelFacts, ModelReport

if TYPE_CHECKING:
    from convaudit.fix.result import FixResult

__version__ = "0.1.0"

# Problems that mean part of the model could not be costed: they are errors in the report.
ERROR_PROBLEMS = {"unknown-domain", "unknown-op"}


def expand_paths(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Files, directories (every ``*.onnx`` below) and globs -> sorted unique model paths."""
    found: list[str] = []
    for raw in paths:
        text = os.fspath(raw)
        p = Path(text)
        if p.is_dir():
            models = sorted(str(m) for m in p.rglob("*.onnx") if m.is_file())
            if not models:
                raise ModelLoadError("directory contains no .onnx models", path=text)
            found.extend(models)
        elif p.exists():
            found.append(text)
        elif glob.has_magic(text):
            matches = sorted(m for m in glob.glob(text, recursive=True) if Path(m).is_file())
            if not matches:
                raise ModelLoadError("pattern matches no files", path=text)
            found.extend(matches)
        else:
            raise ModelLoadError("no such file or directory", path=text)
    return sorted(dict.fromkeys(found))


def analyse_model(path: str, config: Config) -> ModelFacts:
    """Facts for one model with the config's input shapes and dims applied."""
    from convaudit.model.facts import analyse

    return analyse(path, input_shapes=config.input_shapes, dims=config.dims)


def find(facts: ModelFacts, config: Config) -> tuple[Finding, ...]:
    """Findings of the configured rules on one model's facts."""
    return ()


def scan_one(path: str, config: Config) -> ModelReport:
    """The report for one model; input problems are recorded in ``errors``, not raised."""
    try:
        facts = analyse_model(path, config)
    except ConvauditError as exc:
        return ModelReport(path=path, facts=None, errors=(str(exc),))
    errors = tuple(f"{path}: {p.message}" for p in facts.problems if p.kind in ERROR_PROBLEMS)
    return ModelReport(path=path, facts=facts, findings=find(facts, config), errors=errors)


def scan(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    config: Config | None = None,
) -> AuditResult:
    """Scan one model, a directory or a glob (or several): one report per model, by path.

    Raises ``ModelLoadError`` only when a given path names nothing; a model that fails to load
    gets a report whose ``errors`` say why, so one bad file does not hide the others.
    """
    config = config or Config()
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    models = expand_paths(items)
    reports = tuple(scan_one(m, config) for m in models)
    return AuditResult(reports=reports, tool_version=__version__)


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
