"""The TOML side of the configuration: a ``[tool.convaudit]`` table -> Config, and back.

Every key, table and value is checked; an unknown key names the nearest valid one.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from convaudit.config import (
    CODE,
    FAIL_ON,
    KEYS,
    SEVERITIES,
    SUPPRESSION_KEYS,
    Config,
    ModelShapes,
    Suppression,
)
from convaudit.errors import ConfigError


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
    if isinstance(value, str) and "=" not in value:  # "1x=3x640x640" must not parse as x=1x
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
