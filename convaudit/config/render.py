"""``config show``: the effective configuration as TOML text that ``--config`` reads back."""

from __future__ import annotations

import json
from typing import Any

from convaudit.config.records import Config, ModelShapes
from convaudit.config.values import toml_key as _key


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


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
    lines.append(f"exclude = {_toml_value(list(config.exclude))}")
    lines.append(f"extend-exclude = {_toml_value(list(config.extend_exclude))}")
    lines.append(f"respect-gitignore = {_toml_value(config.respect_gitignore)}")
    if config.default_dim is not None:
        lines.append(f"default-dim = {config.default_dim}")
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
