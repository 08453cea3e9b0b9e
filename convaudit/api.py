"""The orchestrator: scan(paths, config) -> AuditResult. The CLI and Python users both call this."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from convaudit.config import Config
from convaudit.errors import ConvauditError, ModelLoadError
from convaudit.records import AuditResult, Finding, ModelFacts, ModelReport

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
