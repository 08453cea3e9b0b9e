"""convaudit: static analysis of ONNX models (exact MACs/params, rules, reports, fixes)."""

# The package convaudit.fix (the rewrite) shares its name with the function fix(). Importing a
# package binds it on its parent once, the first time: import it here, then bind the function,
# so importing convaudit.fix.<module> later never replaces convaudit.fix with the package.
import convaudit.fix as _fix_package  # noqa: F401  (imported for its side effect on the name)
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
