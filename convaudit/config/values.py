"""One parser per config value, shared by the flags, the config file and ``Config(...)``.

Each takes the value as written and the ``key`` it was written under (``--max-macs``,
``max-macs``, ``max_macs``) and returns the normalised value, or raises a ConfigError naming
that key (and the file, through ``src``). Parsers are idempotent: a parsed value parses to itself,
so a Config re-validated after ``dataclasses.replace`` cannot fail.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from convaudit.errors import ConfigError, nearest
from convaudit.lazyre import LazyPattern
from convaudit.records import SEVERITY_NAMES
from convaudit.safe_io import shown

SEVERITIES = SEVERITY_NAMES  # the one ranking (records), worst first
FAIL_ON = (*SEVERITIES, "never")
CODE = LazyPattern(r"ALL|[A-Z]{1,8}[0-9]{0,4}")
SHAPE_EXAMPLE = "1x3x224x224"


def toml_key(name: str) -> str:
    """A TOML key as a user would write it: bare when it can be, else quoted."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_choice(value: Any, key: str, choices: Sequence[str], src: str | None = None) -> str:
    """One of ``choices`` exactly (fail-on, a severity level)."""
    if isinstance(value, str) and value in choices:
        return value
    raise ConfigError(
        f"{key} {shown(value)} must be one of {', '.join(choices)}"
        f"{nearest(str(value), choices, quote=True)}",
        path=src,
    )


def parse_fail_on(value: Any, key: str = "fail-on", src: str | None = None) -> str:
    return parse_choice(value, key, FAIL_ON, src)


def parse_severities(value: Any, key: str = "severity", src: str | None = None) -> dict[str, str]:
    """{rule id: level}; the ids' existence is checked against the loaded rules."""
    table = parse_rule_table(value, key, src)
    return {rule: parse_choice(level, f"{key}.{rule}", SEVERITIES, src) for rule, level in table}


def parse_params(
    value: Any, key: str = "params", src: str | None = None
) -> dict[str, dict[str, Any]]:
    """{rule id: {param: value}}; names and values are checked against the rule's params."""
    out: dict[str, dict[str, Any]] = {}
    for rule, values in parse_rule_table(value, key, src):
        if not isinstance(values, Mapping):
            raise ConfigError(f"{key}.{rule} must be a table of param = value", path=src)
        out[rule] = dict(values)
    return out


def parse_rule_table(value: Any, key: str, src: str | None) -> list[tuple[str, Any]]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must be a table keyed by rule id", path=src)
    for rule in value:
        if not isinstance(rule, str) or not CODE.fullmatch(rule) or rule == "ALL":
            raise ConfigError(f"{key}: {shown(rule)} is not a rule id (e.g. CA101)", path=src)
    return list(value.items())


def parse_codes(value: Any, key: str, src: str | None = None) -> tuple[str, ...]:
    """Rule codes or prefixes (CA1, CA101, ALL): a list, or one text; existence is checked later."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key} must be a list of rule codes or prefixes", path=src)
    return check_codes(value, key, src)


def check_codes(values: Iterable[str], key: str, src: str | None = None) -> tuple[str, ...]:
    values = tuple(values)
    for v in values:
        if not CODE.fullmatch(v):
            hint = code_hint(v)
            raise ConfigError(
                f"{key}: {shown(v)} is not a rule code or prefix"
                + (f" (did you mean {hint!r}?)" if hint else " (e.g. CA101, CA1)"),
                path=src,
            )
    return values


# Letters typed for digits in a code's number part: CA1O1, CA10l.
_DIGIT_SLIPS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def code_hint(text: str) -> str | None:
    """The code ``text`` was probably meant to be: upper case (ca101), digits for look-alike
    letters after the prefix (CA10l); None when no such code comes out."""
    if not isinstance(text, str) or len(text) > 20:
        return None
    upper = text.strip().upper()
    m = re.fullmatch(r"([A-Z]{1,8}?)([0-9][0-9OIL]*)", upper)
    candidate = upper if m is None else m.group(1) + m.group(2).translate(_DIGIT_SLIPS)
    return candidate if CODE.fullmatch(candidate) and candidate != text else None


def split_codes(items: Iterable[str]) -> list[str]:
    """Flag values: ``--select CA1,CA205 --select CA3`` -> [CA1, CA205, CA3]."""
    return [part.strip() for item in items for part in item.split(",") if part.strip()]


def parse_count(value: Any, where: str, src: str | None = None) -> int:
    """A budget (max-macs, max-params): a positive integer, or text like "4.1G" / "25.6M".

    ``where`` locates the value as the user wrote it: the key in a file (``max-macs``), the flag
    and its text on the command line (``--max-macs '4.1X'``), ``max_macs=...`` in Python.
    Zero is refused everywhere: every model with a MAC would break it, so it is a slip.
    """
    from convaudit.humanize import parse_quantity

    if isinstance(value, str):
        try:
            count = parse_quantity(value)
        except ValueError:
            raise ConfigError(
                f"{where}: not a quantity (expected e.g. 4.1G, 25.6M, 1200)", path=src
            ) from None
    elif _is_int(value):
        count = value
    else:
        raise ConfigError(f'{where}: expected a count like 4100000000 or "4.1G"', path=src)
    if count <= 0:
        raise ConfigError(f"{where}: must be positive (a budget of 0 fails every model)", path=src)
    return count


def parse_percent(value: Any, key: str = "--max-increase", src: str | None = None) -> float:
    """max-increase as the flag and the file write it: "2%" -> 0.02; a bare number ("2", or a
    TOML 2) is a percentage too, as the flag has always read it."""
    if (_is_int(value) or isinstance(value, float)) and math.isfinite(value) and value >= 0:
        return float(value) / 100
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*%?\s*", value) if isinstance(value, str) else None
    if not m:
        raise ConfigError(f'{key} {shown(value)}: expected a percentage like "2%"', path=src)
    return float(m.group(1)) / 100


def parse_fraction(value: Any, key: str = "max_increase", src: str | None = None) -> float:
    """The Python field: a fraction (0.02) or the text the file takes ("2%")."""
    if isinstance(value, str):
        return parse_percent(value, key, src)
    if (_is_int(value) or isinstance(value, float)) and math.isfinite(value) and value >= 0:
        return float(value)
    raise ConfigError(f'{key} {shown(value)}: expected a fraction like 0.02 or "2%"', path=src)


def parse_shape(value: Any, key: str, src: str | None = None) -> tuple[int, ...]:
    """A shape: "1x3x224x224" (or "1,3,224,224") or a list/tuple of non-negative integers."""
    if isinstance(value, (list, tuple)) and value and all(_is_int(d) and d >= 0 for d in value):
        return tuple(value)
    if isinstance(value, str) and "=" not in value:  # "1x=3x640x640" must not parse as x=1x
        try:
            shape = tuple(int(d) for d in value.lower().replace(",", "x").split("x"))
        except ValueError:
            shape = ()
        if shape and all(d >= 0 for d in shape):
            return shape
    raise ConfigError(f'{key} {shown(value)}: expected a shape like "{SHAPE_EXAMPLE}"', path=src)


def parse_globs(value: Any, key: str, src: str | None = None) -> tuple[str, ...]:
    """exclude / extend-exclude: a list of gitignore-like globs (one text is a list of one)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        example = '["legacy/", "*.tmp.onnx"]'
        raise ConfigError(f"{key} must be a list of globs, e.g. {example}", path=src)
    return tuple(value)


def parse_bool(value: Any, key: str, src: str | None = None) -> bool:
    """A switch: true or false (TOML booleans; "true" in quotes is a slip, not a switch)."""
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{key} {shown(value)}: expected true or false", path=src)


def parse_default_dim(value: Any, key: str = "default-dim", src: str | None = None) -> int | None:
    """default-dim: the value of every symbolic dim nothing else sets (None: leave them)."""
    if value is None:
        return None
    if _is_int(value) and value >= 1:
        return int(value)
    raise ConfigError(f"{key} {shown(value)}: expected a positive integer, e.g. 1", path=src)


def parse_dim(value: Any, key: str, src: str | None = None) -> int:
    """A symbolic dim's value: a non-negative integer."""
    if _is_int(value) and value >= 0:
        return int(value)
    raise ConfigError(f"{key} {shown(value)}: expected a non-negative integer", path=src)


def parse_shapes(value: Any, key: str, src: str | None = None) -> dict[str, tuple[int, ...]]:
    """{input name: shape}."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must be a table of input = shape", path=src)
    return {str(k): parse_shape(v, f"{key}.{k}", src) for k, v in value.items()}


def parse_dim_table(value: Any, key: str, src: str | None = None) -> dict[str, int]:
    """{symbol: value}."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must be a table of symbol = value", path=src)
    return {str(k): parse_dim(v, f"{key}.{k}", src) for k, v in value.items()}


# -- flags: NAME=VALUE items ------------------------------------------------------------------


def parse_input_shape_flags(items: Iterable[str]) -> dict[str, tuple[int, ...]]:
    """["images=1x3x640x640"] -> {"images": (1, 3, 640, 640)}."""
    out: dict[str, tuple[int, ...]] = {}
    for item in items:
        name, sep, dims = item.rpartition("=")
        if not sep or not name:
            raise ConfigError(
                f"--input-shape {shown(item)}: expected NAME=AxBxC, e.g. images={SHAPE_EXAMPLE}"
            )
        try:
            out[name] = parse_shape(dims, "--input-shape", None)
        except ConfigError:
            raise ConfigError(
                f"--input-shape {shown(item)}: expected NAME=AxBxC, e.g. images={SHAPE_EXAMPLE}"
            ) from None
    return out


# ``--dim '*=1'``: the symbol that stands for every symbol no other --dim sets.
EVERY_DIM = "*"


def parse_dim_flags(items: Iterable[str]) -> dict[str, int]:
    """["batch=1"] -> {"batch": 1}; ``*=N`` is kept under EVERY_DIM (see parse_default_dim)."""
    out: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip().isdigit():
            raise ConfigError(f"--dim {shown(item)}: expected SYMBOL=VALUE, e.g. batch=1")
        out[name.strip()] = int(value)
    if EVERY_DIM in out:
        parse_default_dim(out[EVERY_DIM], f"--dim '*={out[EVERY_DIM]}'")
    return out
