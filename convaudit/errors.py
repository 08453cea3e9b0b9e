"""Error types: each problem with the user's input is a ConvauditError, printed in one line."""

from __future__ import annotations

from pathlib import Path


class ConvauditError(Exception):
    """Base class: bad input or usage. The CLI prints ``str(error)`` on one line and exits 2."""

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class ModelLoadError(ConvauditError):
    """The file is missing, empty, truncated, not ONNX, or its external data cannot be read."""


class ShapeError(ConvauditError):
    """A shape needed for a cost cannot be resolved (dynamic dims left unset) or overflows."""


class RuleFileError(ConvauditError):
    """A YAML rule file is malformed or refers to unknown facts, ops or params."""


class ConfigError(ConvauditError):
    """The configuration (pyproject.toml / convaudit.toml / flags) is invalid."""


class FixError(ConvauditError):
    """A rewrite was refused or cannot be performed."""
