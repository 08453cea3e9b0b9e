"""The configuration records: what the user asked for, frozen and validated at construction.

``Config(...)`` checks and normalises its values with the same parsers (and messages) as the
flags and the config file, so the Python API cannot build a Config the CLI would refuse.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from convaudit.config.globs import glob_matches
from convaudit.config.values import (
    EVERY_DIM,
    parse_bool,
    parse_codes,
    parse_count,
    parse_default_dim,
    parse_dim_table,
    parse_fail_on,
    parse_fraction,
    parse_globs,
    parse_params,
    parse_severities,
    parse_shapes,
)
from convaudit.errors import ConfigError
from convaudit.safe_io import shown

KEYS = (
    "select",
    "ignore",
    "severity",
    "params",
    "input-shapes",
    "dims",
    "fail-on",
    "baseline",
    "rule-dirs",
    "suppressions",
    "max-macs",
    "max-params",
    "max-increase",
    "exclude",
    "extend-exclude",
    "respect-gitignore",
    "default-dim",
)
SUPPRESSION_KEYS = ("rule", "model", "node", "reason")
CONFIG_NAMES = ("convaudit.toml", "pyproject.toml")


def _set(obj: object, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)  # normalising a frozen record in __post_init__


@dataclass(frozen=True, kw_only=True)
class Suppression:
    """Silence ``rule`` (code or prefix) on nodes matching ``node`` in models matching ``model``."""

    rule: str
    reason: str
    model: str = "*"
    node: str = "*"
    key: str | None = field(default=None, compare=False)  # where the file wrote it, for messages

    def __post_init__(self) -> None:
        where = self.key or "Suppression"
        (rule,) = parse_codes([self.rule], f"{where}.rule")
        if not isinstance(self.reason, str) or not self.reason.strip():
            raise ConfigError(f"{where}: 'reason' is required (non-empty text)")
        for name in ("model", "node"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{where}: {shown(name)} must be a glob")
        _set(self, "rule", rule)
        _set(self, "reason", self.reason.strip())


@dataclass(frozen=True, kw_only=True)
class ModelShapes:
    """Input shapes and dims for the models whose path matches ``pattern`` (see config.globs)."""

    pattern: str
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    dims: dict[str, int] = field(default_factory=dict)
    key: str = field(default="", compare=False)  # the file's table key ('"detectors/*.onnx"')

    def __post_init__(self) -> None:
        where = f"ModelShapes({shown(self.pattern)})"
        _set(self, "input_shapes", parse_shapes(self.input_shapes, f"{where} input_shapes"))
        _set(self, "dims", parse_dim_table(self.dims, f"{where} dims"))


@dataclass(frozen=True, kw_only=True)
class Config:
    """Effective settings for a scan (flags over config file over defaults).

    Budgets take counts or text (``max_macs="4.1G"``), ``max_increase`` a fraction (0.02) or a
    percentage ("2%"); every value is checked here, with the messages the CLI gives.
    """

    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    dims: dict[str, int] = field(default_factory=dict)
    source: str | None = None  # the config file these came from, for messages
    select: tuple[str, ...] = ()  # codes or prefixes; empty selects every rule
    ignore: tuple[str, ...] = ()
    severity: dict[str, str] = field(default_factory=dict)  # rule id -> level
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # rule id -> overrides
    model_shapes: tuple[ModelShapes, ...] = ()  # from the file, by model glob
    fail_on: str = "warning"
    baseline: str | None = None
    rule_dirs: tuple[str, ...] = ()
    suppressions: tuple[Suppression, ...] = ()
    max_macs: int | None = None  # budgets (rule CA900)
    max_params: int | None = None
    max_increase: float | None = None  # a fraction: "2%" is 0.02
    root: str | None = None  # the config file's folder: globs and relative paths start here
    # What a folder scan leaves out besides hidden folders and venvs (ruff's names): ``exclude``
    # replaces the file's list when given as a flag, ``extend_exclude`` adds to it.
    exclude: tuple[str, ...] = ()
    extend_exclude: tuple[str, ...] = ()
    respect_gitignore: bool = True
    default_dim: int | None = None  # every symbolic dim nothing else sets (``--dim '*=N'``)

    def __post_init__(self) -> None:
        _set(self, "select", parse_codes(self.select, "select"))
        _set(self, "ignore", parse_codes(self.ignore, "ignore"))
        _set(self, "fail_on", parse_fail_on(self.fail_on, "fail_on"))
        _set(self, "severity", parse_severities(self.severity, "severity"))
        _set(self, "params", parse_params(self.params, "params"))
        _set(self, "input_shapes", parse_shapes(self.input_shapes, "input_shapes"))
        _set(self, "dims", parse_dim_table(self.dims, "dims"))
        _set(self, "default_dim", parse_default_dim(self.default_dim, "default_dim"))
        if EVERY_DIM in self.dims:  # dims={"*": 1} is the default dim, as --dim '*=1' is
            dims = dict(self.dims)
            every = parse_default_dim(dims.pop(EVERY_DIM), "dims['*']")
            if self.default_dim is not None and self.default_dim != every:
                raise ConfigError(
                    f"dims['*'] = {every} and default_dim = {self.default_dim} disagree: give one"
                )
            _set(self, "dims", dims)
            _set(self, "default_dim", every)
        for name in ("exclude", "extend_exclude"):
            _set(self, name, parse_globs(getattr(self, name), name))
        _set(self, "respect_gitignore", parse_bool(self.respect_gitignore, "respect_gitignore"))
        for name in ("max_macs", "max_params"):
            value = getattr(self, name)
            if value is not None:
                _set(self, name, parse_count(value, f"{name}={shown(value, 60)}"))
        if self.max_increase is not None:
            _set(self, "max_increase", parse_fraction(self.max_increase, "max_increase"))
        for name, kind in (("model_shapes", ModelShapes), ("suppressions", Suppression)):
            items = _records(getattr(self, name), name, kind)
            _set(self, name, items)
        _set(self, "rule_dirs", _texts(self.rule_dirs, "rule_dirs"))
        for name in ("baseline", "source", "root"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                _set(self, name, os.fspath(value))
            elif value is not None and not isinstance(value, str):
                raise ConfigError(f"{name} {shown(value)}: expected a path")

    def shapes_for(self, path: str) -> tuple[dict[str, tuple[int, ...]], dict[str, int]]:
        """Input shapes and dims for one model: file globs in order, then flags on top."""
        shapes: dict[str, tuple[int, ...]] = {}
        dims: dict[str, int] = {}
        for entry in self.model_shapes:
            if self.path_matches(path, entry.pattern):
                shapes.update(entry.input_shapes)
                dims.update(entry.dims)
        shapes.update(self.input_shapes)
        dims.update(self.dims)
        return shapes, dims

    def shape_origin(self, path: str, name: str) -> str | None:
        """The config-file key that set input ``name`` for this model, or None for a flag/API."""
        if name in self.input_shapes:
            return None
        origin = None
        for entry in self.model_shapes:
            if name in entry.input_shapes and self.path_matches(path, entry.pattern):
                origin = ".".join(k for k in ("input-shapes", entry.key, name) if k)
        return origin

    def dim_origin(self, path: str, name: str) -> str | None:
        """The config-file key that set dim ``name`` for this model, or None for a flag/API."""
        if name in self.dims:
            return None
        origin = None
        for entry in self.model_shapes:
            if name in entry.dims and self.path_matches(path, entry.pattern):
                origin = ".".join(k for k in ("dims", entry.key, name) if k)
        return origin

    @property
    def excluded(self) -> tuple[str, ...]:
        """Every pattern a folder scan leaves out: ``exclude`` then ``extend_exclude``."""
        return (*self.exclude, *self.extend_exclude)

    def path_matches(self, path: str, pattern: str) -> bool:
        """``pattern`` against the model's path, as .gitignore does (see config.globs)."""
        return glob_matches(path, pattern, self.root)

    def unmatched(self, paths: Iterable[str]) -> list[str]:
        """A one-line warning for each model glob of the file that matches none of ``paths``."""
        paths = list(paths)
        where = f"{self.source}: " if self.source else ""
        out = []
        for entry in self.model_shapes:
            if entry.pattern != "*" and not any(self.path_matches(p, entry.pattern) for p in paths):
                table = "input-shapes" if entry.input_shapes else "dims"
                out.append(
                    f"{where}{table}.{entry.key or repr(entry.pattern)} matches none of the "
                    "scanned models "
                    "(patterns with a '/' start at the config's folder; '**/' spans folders)"
                )
        for i, s in enumerate(self.suppressions):
            if s.model != "*" and not any(self.path_matches(p, s.model) for p in paths):
                out.append(
                    f"{where}{s.key or f'suppressions[{i}]'}.model {shown(s.model)} matches "
                    "none of the scanned models (patterns with a '/' start at the config's folder; "
                    "'**/' spans folders)"
                )
        return out


def _records(value: Any, name: str, kind: type[Any]) -> tuple[Any, ...]:
    items = tuple(value) if isinstance(value, (list, tuple)) else None
    if items is None or not all(isinstance(v, kind) for v in items):
        raise ConfigError(f"{name} must be a tuple of {kind.__name__} records")
    return items


def _texts(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, (str, os.PathLike)):
        value = (value,)
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(v, (str, os.PathLike)) for v in value
    ):
        raise ConfigError(f"{name} must be a list of paths")
    return tuple(os.fspath(v) for v in value)
