"""Rule records and the vocabulary of rule files: keys, severities, operators and their types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from convaudit.lazyre import LazyPattern
from convaudit.records import SEVERITY_NAMES
from convaudit.rules.template import Template

SCHEMA_VERSION = 1
SEVERITIES = SEVERITY_NAMES
FILE_KEYS = ("schema_version", "rules")
RULE_KEYS = (
    "id",
    "name",
    "summary",
    "severity",
    "params",
    "match",
    "message",
    "docs",
    "recommendation",
    "check",
)
REQUIRED_RULE_KEYS = ("id", "name", "summary", "severity", "match", "message", "docs")
# How a rule is evaluated: "match" runs its match tree over every layer; "budget" compares the
# model's totals with the configured budgets (max-macs, max-params, max-increase) and builds its
# own message from the numbers, so such a rule has docs but no match, message or params.
CHECKS = ("match", "budget")
MATCH_ONLY_KEYS = ("params", "match", "message", "recommendation")
DOC_KEYS = ("what", "why", "example", "fix")
OPTIONAL_DOC_KEYS = ("references", "options")
LEAF_KEYS = ("fact", "op", "value")
GROUP_KEYS = ("all", "any", "not")

RULE_ID = LazyPattern(r"[A-Z]{1,8}[0-9]{1,4}")
BUILTIN_ID = LazyPattern(r"CA[0-9]{3}")
RULE_NAME = LazyPattern(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
PARAM_NAME = LazyPattern(r"[a-z_][a-z0-9_]*")

# operator -> fact types it applies to
OPS: dict[str, tuple[str, ...]] = {
    "eq": ("int", "float", "bool", "str", "ints"),
    "ne": ("int", "float", "bool", "str", "ints"),
    "lt": ("int", "float"),
    "le": ("int", "float"),
    "gt": ("int", "float"),
    "ge": ("int", "float"),
    "in": ("int", "float", "str"),
    "not_in": ("int", "float", "str"),
    "matches": ("str",),
}


class LineDict(dict[str, Any]):
    """A mapping of a parsed rule file that knows the line it starts on and the line of each
    key (1-based): what validation messages point at."""

    line: int = 0
    key_lines: dict[str, int]


@dataclass(frozen=True)
class Param:
    """A ``$name`` reference to one of the rule's params."""

    name: str


@dataclass(frozen=True)
class Leaf:
    """``{fact, op, value}``: value may be a Param resolved at match time."""

    fact: str
    op: str
    value: Any
    line: int


@dataclass(frozen=True)
class Group:
    """``all`` / ``any`` (several children) or ``not`` (one child)."""

    kind: str
    children: tuple[Leaf | Group, ...]
    line: int


Condition = Leaf | Group


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One validated rule, with where it came from (for messages and ``rules explain``)."""

    id: str
    name: str
    summary: str
    severity: str
    params: dict[str, Any]
    match: Condition
    message: Template
    message_text: str
    docs: dict[str, Any]
    recommendation: str | None
    source: str
    line: int
    builtin: bool
    param_types: dict[str, str] = field(default_factory=dict)
    check: str = "match"  # one of CHECKS

    def leaves(self) -> list[Leaf]:
        """Every leaf of the match tree, in file order."""
        out: list[Leaf] = []
        stack: list[Condition] = [self.match]
        while stack:
            node = stack.pop()
            if isinstance(node, Leaf):
                out.append(node)
            else:
                stack.extend(reversed(node.children))
        return out

    def facts_used(self) -> tuple[str, ...]:
        """Facts the match and message read, in first-use order (recorded in each finding)."""
        names = [leaf.fact for leaf in self.leaves()] + list(self.message.names)
        return tuple(dict.fromkeys(n for n in names if n not in self.params))


def value_type(value: Any) -> str | None:
    """The fact type a YAML value fits (None for null, lists of mixed types, ...)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list) and value and all(value_type(v) == "int" for v in value):
        return "ints"
    return None


def fits(fact_type: str, value: Any) -> bool:
    """Whether ``value`` may be compared with a fact of ``fact_type``."""
    vt = value_type(value)
    if fact_type == "float":
        return vt in ("int", "float")
    return vt == fact_type
