"""Configuration: what the user asked for, frozen and validated before any model is read.

Read from ``[tool.convaudit]`` in ``pyproject.toml`` or from a ``convaudit.toml`` (top-level
keys), found upward from the model (or the current folder), or named with ``--config``.
Flags override the file. Every unknown key is an error naming the file and the nearest key.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from convaudit.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SEVERITIES = ("error", "warning", "info")
FAIL_ON = (*SEVERITIES, "never")
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
)
SUPPRESSION_KEYS = ("rule", "model", "node", "reason")
CODE = re.compile(r"ALL|[A-Z]{1,8}[0-9]{0,4}")
CONFIG_NAMES = ("convaudit.toml", "pyproject.toml")


@dataclass(frozen=True, kw_only=True)
class Suppression:
    """Silence ``rule`` (code or prefix) on nodes matching ``node`` in models matching ``model``."""

    rule: str
    reason: str
    model: str = "*"
    node: str = "*"


@dataclass(frozen=True, kw_only=True)
class ModelShapes:
    """Input shapes and dims for the models whose path matches ``pattern``."""

    pattern: str
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    dims: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Config:
    """Effective settings for a scan (flags over config file over defaults)."""

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

    def path_matches(self, path: str, pattern: str) -> bool:
        """``pattern`` against the path as given, relative to the config's folder, or the name."""
        candidates = {Path(path).as_posix(), Path(path).name}
        if self.root is not None:
            try:
                rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(self.root))
                candidates.add(rel.as_posix())
            except ValueError:
                pass
        return any(fnmatch(c, pattern) for c in candidates)


# -- finding and reading the file -------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    from convaudit.safe_io import read_regular

    data = read_regular(path, error=ConfigError, what="config")  # a FIFO must not block
    try:
        return tomllib.loads(data.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", path=path) from None
    except UnicodeDecodeError:
        raise ConfigError("config is not UTF-8 text", path=path) from None
    except RecursionError:
        raise ConfigError("invalid TOML: nested too deeply", path=path) from None
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise ConfigError(f"invalid TOML: {exc}", path=path) from None


def _table(path: Path) -> dict[str, Any] | None:
    """The convaudit table of a config file (None for a pyproject without one)."""
    data = _read_toml(path)
    if path.name != "pyproject.toml":
        return data
    tool = data.get("tool")
    table = tool.get("convaudit") if isinstance(tool, dict) else None
    if table is not None and not isinstance(table, dict):
        raise ConfigError("[tool.convaudit] must be a table", path=path)
    return table


def find_config(start: str | Path) -> Path | None:
    """The nearest convaudit.toml, or pyproject.toml with [tool.convaudit], upward of ``start``."""
    here = Path(start).resolve()
    if here.is_file() or not here.exists():
        here = here.parent
    for folder in (here, *here.parents):
        for name in CONFIG_NAMES:
            candidate = folder / name
            if candidate.is_file() and _table(candidate) is not None:
                return candidate
    return None


def load_config(path: str | Path) -> Config:
    """The validated Config of one file (a pyproject without [tool.convaudit] gives defaults)."""
    p = Path(path)
    if not p.exists():  # a FIFO or device exists: read_regular then says what it is
        raise ConfigError("config file does not exist", path=p)
    from convaudit.config_table import from_table

    table = _table(p) or {}
    return from_table(table, source=str(p), root=str(p.resolve().parent))


# -- flags over file --------------------------------------------------------------------------


def resolve(
    paths: Sequence[str] = (),
    config_file: str | None = None,
    *,
    select: Sequence[str] | None = None,
    ignore: Sequence[str] | None = None,
    fail_on: str | None = None,
    baseline: str | None = None,
    rule_dirs: Sequence[str] = (),
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    dims: Mapping[str, int] | None = None,
) -> Config:
    """The effective Config: ``--config`` or the nearest config file, then the flags on top.

    ``select`` / ``ignore`` items may be comma-separated; given, they replace the file's lists.
    ``rule_dirs`` are added to the file's.
    """
    from convaudit.config_table import check_codes, nearest

    if config_file is not None:
        config = load_config(config_file)
    else:
        found = None
        if paths and Path(paths[0]).exists():
            found = find_config(paths[0])
        found = found or find_config(Path.cwd())
        config = load_config(found) if found else Config()
    changes: dict[str, Any] = {}
    if select is not None:
        changes["select"] = check_codes(_split(select), "--select", None)
    if ignore is not None:
        changes["ignore"] = check_codes(_split(ignore), "--ignore", None)
    if fail_on is not None:
        if fail_on not in FAIL_ON:
            raise ConfigError(
                f"--fail-on {fail_on!r} must be one of {', '.join(FAIL_ON)}"
                f"{nearest(fail_on, FAIL_ON)}"
            )
        changes["fail_on"] = fail_on
    if baseline is not None:
        changes["baseline"] = baseline
    if rule_dirs:
        changes["rule_dirs"] = (*config.rule_dirs, *rule_dirs)
    if input_shapes:
        changes["input_shapes"] = {**config.input_shapes, **input_shapes}
    if dims:
        changes["dims"] = {**config.dims, **dims}
    return replace(config, **changes)


def _split(items: Sequence[str]) -> list[str]:
    return [part.strip() for item in items for part in item.split(",") if part.strip()]
