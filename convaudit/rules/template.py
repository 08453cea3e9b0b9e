"""Safe message templates: only ``{name}`` and ``{name:spec}`` placeholders.

``str.format`` would happily evaluate ``{x.__class__}`` or ``{x[0]}``; here a placeholder is a
plain name and an optional format spec, checked when the rule file is loaded. Besides Python's
format-spec mini-language, the spec ``h`` renders a count the way the tables do (112.9M).
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from convaudit.humanize import human
from convaudit.lazyre import LazyPattern

NAME = LazyPattern(r"[A-Za-z_][A-Za-z0-9_]*")
# [[fill]align][sign][z][#][0][width][grouping][.precision][type] (no nested fields); width and
# precision stay under 1000: a rule file asking for {macs:>99999999999} must not exhaust memory.
SPEC = LazyPattern(
    r"(?:[^{}]?[<>=^])?[+\- ]?z?#?0?(?:\d{1,3})?[,_]?(?:\.\d{1,3})?[bcdeEfFgGnosxX%]?|h|\.\dh"
)


class TemplateError(ValueError):
    """What is wrong with a template (the loader adds file, line and rule)."""


@dataclass(frozen=True)
class Placeholder:
    name: str
    spec: str


@dataclass(frozen=True)
class Template:
    """A parsed template: literal text and placeholders in order."""

    parts: tuple[str | Placeholder, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parts if isinstance(p, Placeholder))

    def render(self, lookup: Callable[[str], Any]) -> str:
        out: list[str] = []
        for part in self.parts:
            out.append(
                part if isinstance(part, str) else format_value(lookup(part.name), part.spec)
            )
        return "".join(out)


def parse(text: str) -> Template:
    """Parse ``text``; raise TemplateError on anything but a plain name and a spec."""
    parts: list[str | Placeholder] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(
            f"bad message template: {exc} (write a literal brace as {{{{ or }}}})"
        ) from None
    for literal, field, spec, conversion in parsed:
        if literal:
            parts.append(literal)
        if field is None:
            continue
        shown = (
            "{"
            + field
            + (f"!{conversion}" if conversion else "")
            + (f":{spec}" if spec else "")
            + "}"
        )
        if not NAME.fullmatch(field):
            raise TemplateError(
                f"placeholder {shown} is not allowed: "
                "use {fact} or {fact:spec} with a plain name"
            )
        if conversion:
            raise TemplateError(f"placeholder {shown}: conversions like !r are not allowed")
        if spec and ("{" in spec or "}" in spec or not SPEC.fullmatch(spec)):
            raise TemplateError(f"placeholder {shown}: bad format spec {spec!r}")
        parts.append(Placeholder(field, spec or ""))
    return Template(tuple(parts))


def format_value(value: Any, spec: str) -> str:
    """One placeholder's text: None is "?", tuples are "5x5", ``h`` is a human count."""
    if value is None:
        return "?"
    if isinstance(value, (tuple, list)):
        value = "x".join(str(v) for v in value)
    if spec.endswith("h"):
        digits = int(spec[1:-1]) if spec.startswith(".") else 1
        return human(value, digits) if isinstance(value, (int, float)) else str(value)
    return format(value, spec)


SAMPLES: dict[str, Any] = {"int": 1, "float": 1.5, "bool": True, "str": "x", "ints": (1, 1)}


def check_spec(type_: str, spec: str) -> None:
    """Raise TemplateError when ``spec`` cannot format a value of fact type ``type_``."""
    try:
        format_value(SAMPLES[type_], spec)
    except (ValueError, TypeError) as exc:
        raise TemplateError(f"format spec {spec!r} does not fit a {type_} value: {exc}") from None
