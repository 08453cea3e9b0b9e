"""The matcher: operators, unknown values, and/or/not trees."""

from __future__ import annotations

from typing import Any

import pytest

from convaudit.rules.facts import Bound
from convaudit.rules.matcher import matches
from convaudit.rules.schema import Group, Leaf, Param


class FakeBound(Bound):
    """A Bound whose facts come from a dict (no model needed)."""

    def __init__(self, facts: dict[str, Any], params: dict[str, Any] | None = None) -> None:
        self.facts = facts
        self.params = params or {}

    def get(self, name: str) -> Any:
        return self.facts.get(name)


@pytest.mark.parametrize(
    ("fact", "op", "value", "actual", "expected"),
    [
        ("in_channels", "ge", 128, 128, True),
        ("in_channels", "gt", 128, 128, False),
        ("in_channels", "lt", 128, 64, True),
        ("in_channels", "le", 128, 129, False),
        ("op", "in", ["Gemm", "MatMul"], "MatMul", True),
        ("op", "not_in", ["Gemm", "MatMul"], "Conv", True),
        ("node", "matches", "layer*/conv?", "layer3/conv1", True),
        ("node", "matches", "layer*/conv?", "layer3/conv12", False),
        ("kernel", "eq", [3, 3], (3, 3), True),
        ("kernel", "ne", [3, 3], (5, 5), True),
        ("is_depthwise", "eq", True, True, True),
        ("is_depthwise", "eq", True, 1, False),  # a bool never equals a number
        # unknown values satisfy nothing but eq null / ne value
        ("in_channels", "ge", 0, None, False),
        ("in_channels", "lt", 10**9, None, False),
        ("in_channels", "eq", None, None, True),
        ("in_channels", "ne", 128, None, True),
        ("in_channels", "ne", None, None, False),
        ("op", "not_in", ["Conv"], None, False),
    ],
)
def test_leaf(fact: str, op: str, value: Any, actual: Any, expected: bool) -> None:
    assert matches(Leaf(fact, op, value, 1), FakeBound({fact: actual})) is expected


def test_params_and_groups() -> None:
    b = FakeBound({"in_channels": 256, "group": 1}, {"min_in": 128})
    wide = Leaf("in_channels", "ge", Param("min_in"), 1)
    grouped = Leaf("group", "gt", 1, 1)
    assert matches(Group("all", (wide, Group("not", (grouped,), 1)), 1), b)
    assert not matches(Group("all", (wide, grouped), 1), b)
    assert matches(Group("any", (grouped, wide), 1), b)
    assert not matches(
        Leaf("in_channels", "ge", Param("min_in"), 1),
        FakeBound({"in_channels": 64}, {"min_in": 128}),
    )
