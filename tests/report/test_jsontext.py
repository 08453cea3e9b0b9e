"""report.jsontext writes what json.dumps(indent=2, ensure_ascii=False) writes, byte for byte:
the standard library is the oracle, on hand-picked edge cases and on generated documents."""

from __future__ import annotations

import json
from enum import Enum, IntEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convaudit.records import Category
from convaudit.report import jsontext
from convaudit.report.jsontext import dumps


def _oracle(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


class _Level(IntEnum):
    HIGH = 3


class _Colour(str, Enum):
    RED = "red"


EDGES: list[Any] = [
    {},
    [],
    {"a": {}, "b": [], "c": [[]], "d": [{}]},
    {"text": 'quote " backslash \\ tab \t newline \n nul \x00 del \x7f é 漢 😀 \u2028'},
    [0, -1, 10**40, -(10**40), True, False, None],
    [0.0, -0.0, 1.5, 1e-300, 1e300, 0.1, float("nan"), float("inf"), float("-inf")],
    {7: "int key", 2.5: "float key", True: "bool key", False: "", None: "none", "s": "str"},
    {"category": Category.CONV, "enum": _Colour.RED, "level": _Level.HIGH},
    ("a", ("tuple", "inside"), {"t": (1, 2)}),
    {"nested": {"deeper": {"deepest": [1, [2, [3, {"x": None}]]]}}},
    "just text",
    7,
    None,
]


@pytest.mark.parametrize("data", EDGES, ids=range(len(EDGES)))
def test_edge_cases_match_the_standard_library(data: Any) -> None:
    assert dumps(data) == _oracle(data)


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
_keys = st.text() | st.integers() | st.floats(allow_nan=False) | st.booleans() | st.none()
_documents = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.dictionaries(_keys, inner, max_size=5)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(_documents)
def test_generated_documents_match_the_standard_library(data: Any) -> None:
    assert dumps(data) == _oracle(data)


@pytest.mark.parametrize("bad", [{"s": {1, 2}}, [object()], {(1, 2): "tuple key"}])
def test_what_json_refuses_is_refused(bad: Any) -> None:
    with pytest.raises(TypeError):
        _oracle(bad)
    with pytest.raises(TypeError):
        dumps(bad)


@settings(max_examples=200, deadline=None)
@given(st.lists(_documents, max_size=4))
def test_text_written_for_its_depth_places_as_the_value_would(items: list[Any]) -> None:
    """``write`` at a list item's depth, wrapped in Raw, gives the document's own text."""
    doc = {"before": 1, "reports": items, "after": [True]}
    placed = {**doc, "reports": [jsontext.Raw(jsontext.write(i, "\n    ")) for i in items]}
    assert jsontext.dumps(placed) == json.dumps(doc, indent=2, ensure_ascii=False)


def test_only_raw_text_is_placed_as_it_is() -> None:
    class Text(str):
        pass

    assert jsontext.dumps([jsontext.Raw('{"a": 1}'), Text('{"a": 1}')]) == (
        '[\n  {"a": 1},\n  "{\\"a\\": 1}"\n]'
    )
