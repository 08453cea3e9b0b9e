"""Evaluate a rule's ``all``/``any``/``not`` tree of ``{fact, op, value}`` leaves on one layer.

An unknown fact value (None) satisfies no comparison except ``eq: null`` / ``ne`` with a
non-null value: a missing shape never produces a finding by accident.
"""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any

from convaudit.rules.facts import Bound
from convaudit.rules.schema import Condition, Group, Leaf, Param


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return list(a) == list(b)
    return bool(a == b)


COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _same,
    "ne": lambda a, b: not _same(a, b),
    "lt": lambda a, b: bool(a < b),
    "le": lambda a, b: bool(a <= b),
    "gt": lambda a, b: bool(a > b),
    "ge": lambda a, b: bool(a >= b),
    "in": lambda a, b: a in b,
    "not_in": lambda a, b: a not in b,
    "matches": lambda a, b: fnmatchcase(str(a), str(b)),
}


def leaf_value(leaf: Leaf, params: dict[str, Any]) -> Any:
    """The leaf's comparison value with a ``$param`` resolved."""
    return params[leaf.value.name] if isinstance(leaf.value, Param) else leaf.value


def matches(cond: Condition, bound: Bound) -> bool:
    """Whether the layer behind ``bound`` satisfies ``cond`` (short-circuit, lazy facts)."""
    if isinstance(cond, Group):
        if cond.kind == "all":
            return all(matches(c, bound) for c in cond.children)
        if cond.kind == "any":
            return any(matches(c, bound) for c in cond.children)
        return not matches(cond.children[0], bound)
    actual = bound.get(cond.fact)
    expected = leaf_value(cond, dict(bound.params))
    if actual is None or expected is None:
        if cond.op == "eq":
            return actual is None and expected is None
        if cond.op == "ne":
            return (actual is None) != (expected is None)
        return False
    if isinstance(actual, bool) != isinstance(expected, bool) and cond.op in ("eq", "ne"):
        return cond.op == "ne"
    return COMPARE[cond.op](actual, expected)
