"""convaudit: static analysis of ONNX models (exact MACs/params, rules, reports, fixes)."""

from convaudit.api import __version__, fix, scan
from convaudit.config import Config
from convaudit.errors import (
    ConfigError,
    ConvauditError,
    FixError,
    ModelLoadError,
    RuleFileError,
    ShapeError,
)
from convaudit.records import AuditResult, Finding, Layer, ModelFacts, ModelReport, Totals

__all__ = [
    "AuditResult",
    "Config",
    "ConfigError",
    "ConvauditError",
    "Finding",
    "FixError",
    "Layer",
    "ModelFacts",
    "ModelLoadError",
    "ModelReport",
    "RuleFileError",
    "ShapeError",
    "Totals",
    "__version__",
    "fix",
    "scan",
]
