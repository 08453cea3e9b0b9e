"""Configuration: what the user asked for, frozen and validated before any model is read.

Read from ``[tool.convaudit]`` in ``pyproject.toml`` or from a ``convaudit.toml`` (top-level
keys), found upward from the model (or the current folder), or named with ``--config``.
Flags override the file. Every unknown key is an error naming the file and the nearest key.
"""

from __future__ import annotations

import difflib
import json
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


def nearest(word: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_quantity_value(value: Any, key: str, src: str | None) -> int:
    """A count from an integer or a text like "4.1G"."""
    from convaudit.humanize import parse_quantity

    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        try:
            return parse_quantity(value)
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}", path=src) from None
    raise ConfigError(f'{key} must be a count like 4100000000 or "4.1G"', path=src)


def parse_percent(text: str, key: str = "--max-increase", src: str | None = None) -> float:
    """ "2%" -> 0.02."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*%\s*", text) if isinstance(text, str) else None
    if not m:
        raise ConfigError(f'{key} {text!r}: expected a percentage like "2%"', path=src)
    return float(m.group(1)) / 100


# -- finding and reading the file -------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror or exc}", path=path) from None
    except tomllib.TOMLDecodeError as exc:
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
    if not p.is_file():
        raise ConfigError("config file does not exist", path=p)
    table = _table(p) or {}
    return from_table(table, source=str(p), root=str(p.resolve().parent))


def from_table(table: Mapping[str, Any], *, source: str | None, root: str | None) -> Config:
    """Validate a convaudit table (the ``[tool.convaudit]`` contents) into a Config."""
    where = "[tool.convaudit]" if source and source.endswith("pyproject.toml") else "config"
    for key in table:
        if key not in KEYS:
            raise ConfigError(f"{where}: unknown key {key!r}{nearest(key, KEYS)}", path=source)
    base = Path(root) if root else Path.cwd()

    def codes(key: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key} must be a list of rule codes or prefixes", path=source)
        return check_codes(value, key, source)

    severity = _mapping(table, "severity", source)
    for rule, level in severity.items():
        if level not in SEVERITIES:
            raise ConfigError(
                f"severity.{rule} {level!r} must be one of {', '.join(SEVERITIES)}"
                f"{nearest(str(level), SEVERITIES)}",
                path=source,
            )
    params = _mapping(table, "params", source)
    for rule, values in params.items():
        if not isinstance(values, dict):
            raise ConfigError(f"params.{rule} must be a table of param = value", path=source)
    fail_on = table.get("fail-on", "warning")
    if fail_on not in FAIL_ON:
        raise ConfigError(
            f"fail-on {fail_on!r} must be one of {', '.join(FAIL_ON)}"
            f"{nearest(str(fail_on), FAIL_ON)}",
            path=source,
        )
    baseline = table.get("baseline")
    if baseline is not None and not isinstance(baseline, str):
        raise ConfigError("baseline must be a path", path=source)
    dirs = table.get("rule-dirs", [])
    if not isinstance(dirs, list) or not all(isinstance(d, str) for d in dirs):
        raise ConfigError("rule-dirs must be a list of paths", path=source)
    budgets: dict[str, Any] = {}
    for key in ("max-macs", "max-params"):
        if key in table:
            budgets[key.replace("-", "_")] = parse_quantity_value(table[key], key, source)
    if "max-increase" in table:
        budgets["max_increase"] = parse_percent(table["max-increase"], "max-increase", source)
    return Config(
        source=source,
        root=root,
        select=codes("select"),
        ignore=codes("ignore"),
        severity={k: str(v) for k, v in severity.items()},
        params={k: dict(v) for k, v in params.items()},
        model_shapes=_model_shapes(table, source),
        fail_on=str(fail_on),
        baseline=None if baseline is None else str(base / baseline),
        rule_dirs=tuple(str(base / d) for d in dirs),
        suppressions=_suppressions(table, source),
        **budgets,
    )


def check_codes(values: Sequence[str], key: str, source: str | None) -> tuple[str, ...]:
    """Rule codes or prefixes (CA1, CA101, ALL); their existence is checked with the rules."""
    for v in values:
        if not CODE.fullmatch(v):
            raise ConfigError(
                f"{key}: {v!r} is not a rule code or prefix (e.g. CA101, CA1)", path=source
            )
    return tuple(values)


def _mapping(table: Mapping[str, Any], key: str, source: str | None) -> dict[str, Any]:
    value = table.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a table keyed by rule id", path=source)
    for rule in value:
        if not CODE.fullmatch(rule) or rule == "ALL":
            raise ConfigError(f"{key}: {rule!r} is not a rule id (e.g. CA101)", path=source)
    return dict(value)


def _shape(value: Any, where: str, source: str | None) -> tuple[int, ...]:
    from convaudit.shapes_arg import parse_input_shapes

    if isinstance(value, list) and value and all(isinstance(d, int) and d >= 0 for d in value):
        return tuple(value)
    if isinstance(value, str):
        try:
            return parse_input_shapes([f"x={value}"])["x"]
        except ConfigError:
            pass
    raise ConfigError(f'{where} {value!r}: expected a shape like "1x3x224x224"', path=source)


def _dim(value: Any, where: str, source: str | None) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ConfigError(f"{where} {value!r}: expected a non-negative integer", path=source)


def _model_shapes(table: Mapping[str, Any], source: str | None) -> tuple[ModelShapes, ...]:
    """Plain entries apply to every model ("*"); a table keyed by a glob to matching models."""
    entries: dict[str, ModelShapes] = {"*": ModelShapes(pattern="*")}
    for key, parse in (("input-shapes", _shape), ("dims", _dim)):
        value = table.get(key, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a table", path=source)
        for name, item in value.items():
            if isinstance(item, dict):  # a model glob
                entry = entries.setdefault(name, ModelShapes(pattern=name))
                target = entry.input_shapes if key == "input-shapes" else entry.dims
                for inner, v in item.items():
                    target[inner] = parse(v, f'{key}."{name}".{inner}', source)  # type: ignore[assignment]
            else:
                target = entries["*"].input_shapes if key == "input-shapes" else entries["*"].dims
                target[name] = parse(item, f"{key}.{name}", source)  # type: ignore[assignment]
    return tuple(e for e in entries.values() if e.input_shapes or e.dims)


def _suppressions(table: Mapping[str, Any], source: str | None) -> tuple[Suppression, ...]:
    raw = table.get("suppressions", [])
    if not isinstance(raw, list):
        raise ConfigError(
            "suppressions must be an array of tables ([[...suppressions]])", path=source
        )
    out = []
    for i, item in enumerate(raw):
        where = f"suppressions[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be a table", path=source)
        for key in item:
            if key not in SUPPRESSION_KEYS:
                raise ConfigError(
                    f"{where}: unknown key {key!r}{nearest(key, SUPPRESSION_KEYS)}", path=source
                )
        for key in ("rule", "reason"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise ConfigError(f"{where}: {key!r} is required (non-empty text)", path=source)
        for key in ("model", "node"):
            if key in item and not isinstance(item[key], str):
                raise ConfigError(f"{where}: {key!r} must be a glob", path=source)
        check_codes([item["rule"]], f"{where}.rule", source)
        out.append(
            Suppression(
                rule=item["rule"],
                reason=item["reason"].strip(),
                model=item.get("model", "*"),
                node=item.get("node", "*"),
            )
        )
    return tuple(out)


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


# -- config show ------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def render(config: Config) -> str:
    """The effective configuration as ``convaudit.toml`` text (re-readable by ``--config``)."""
    lines = [f"# effective convaudit configuration; source: {config.source or '(defaults)'}"]
    lines.append(f"select = {_toml_value(list(config.select) or ['ALL'])}")
    lines.append(f"ignore = {_toml_value(list(config.ignore))}")
    lines.append(f"fail-on = {_toml_value(config.fail_on)}")
    if config.baseline is not None:
        lines.append(f"baseline = {_toml_value(config.baseline)}")
    lines.append(f"rule-dirs = {_toml_value(list(config.rule_dirs))}")
    for key, value in (
        ("max-macs", config.max_macs),
        ("max-params", config.max_params),
    ):
        if value is not None:
            lines.append(f"{key} = {value}")
    if config.max_increase is not None:
        lines.append(f'max-increase = "{config.max_increase * 100:g}%"')
    if config.severity:
        lines += ["", "[severity]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in sorted(config.severity.items())]
    for rule, values in sorted(config.params.items()):
        lines += ["", f"[params.{rule}]"]
        lines += [f"{_key(k)} = {_toml_value(v)}" for k, v in sorted(values.items())]
    shapes = [*config.model_shapes]
    if config.input_shapes or config.dims:
        shapes.append(ModelShapes(pattern="*", input_shapes=config.input_shapes, dims=config.dims))
    for key, attr in (("input-shapes", "input_shapes"), ("dims", "dims")):
        entries = [(e.pattern, getattr(e, attr)) for e in shapes if getattr(e, attr)]
        for pattern, values in entries:
            lines += ["", f"[{key}.{_key(pattern)}]"]
            for name, v in sorted(values.items()):
                shown = "x".join(map(str, v)) if isinstance(v, tuple) else v
                lines.append(f"{_key(name)} = {_toml_value(shown)}")
    for s in config.suppressions:
        lines += ["", "[[suppressions]]"]
        lines += [
            f"rule = {_toml_value(s.rule)}",
            f"model = {_toml_value(s.model)}",
            f"node = {_toml_value(s.node)}",
            f"reason = {_toml_value(s.reason)}",
        ]
    return "\n".join(lines) + "\n"
