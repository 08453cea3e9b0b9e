"""Validated rules as JSON and back: the rule files a scan loads, without parsing or validating
them again while their bytes (and where they are) stay the same.

``loader`` keeps each rule file's validated rules in the user cache, keyed by the sha256 of the
file's bytes, its path and whether it is built in (all three are part of what validation
produced: ``source``, ``builtin``). Only rules that passed validation are stored, so a stored
file gives the same rules as validating it again, and a file with errors is validated (and
refused) every time. Anything unexpected in a stored entry means "validate as usual".
"""

from __future__ import annotations

from typing import Any

from convaudit.rules.schema import Condition, Group, Leaf, Param, Rule
from convaudit.rules.template import parse

KIND = "rules-compiled-1"  # bump when the encoding or the Rule record changes


def encode(rules: list[Rule]) -> list[dict[str, Any]]:
    """JSON-ready data for validated rules (TypeError for a value JSON cannot hold)."""
    return [_rule(r) for r in rules]


def decode(data: Any) -> list[Rule]:
    """The rules ``encode`` stored (TypeError, KeyError or ValueError when it did not)."""
    if not isinstance(data, list):
        raise TypeError("a list of rules")
    return [_rule_of(item) for item in data]


def _rule(r: Rule) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "summary": r.summary,
        "severity": r.severity,
        "params": _plain(r.params),
        "match": _condition(r.match),
        "message_text": r.message_text,
        "docs": _plain(r.docs),
        "recommendation": r.recommendation,
        "source": r.source,
        "line": r.line,
        "builtin": r.builtin,
        "param_types": dict(r.param_types),
        "check": r.check,
    }


def _condition(c: Condition) -> dict[str, Any]:
    if isinstance(c, Leaf):
        value = {"param": c.value.name} if isinstance(c.value, Param) else {"v": _plain(c.value)}
        return {"fact": c.fact, "op": c.op, "line": c.line, **value}
    return {"kind": c.kind, "line": c.line, "children": [_condition(x) for x in c.children]}


def _plain(value: Any) -> Any:
    """``value`` when it is plain JSON data that reads back equal, else TypeError."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if type(value) is list:
        return [_plain(v) for v in value]
    if type(value) is dict and all(type(k) is str for k in value):
        return {k: _plain(v) for k, v in value.items()}
    raise TypeError(type(value).__name__)


def _rule_of(d: dict[str, Any]) -> Rule:
    text = d["message_text"]
    if not isinstance(text, str):
        raise TypeError("message_text")
    return Rule(
        id=_str(d["id"]),
        name=_str(d["name"]),
        summary=_str(d["summary"]),
        severity=_str(d["severity"]),
        params=_dict(d["params"]),
        match=_condition_of(d["match"]),
        message=parse(text),
        message_text=text,
        docs=_dict(d["docs"]),
        recommendation=d["recommendation"]
        if d["recommendation"] is None
        else _str(d["recommendation"]),
        source=_str(d["source"]),
        line=_int(d["line"]),
        builtin=bool(d["builtin"]),
        param_types={_str(k): _str(v) for k, v in _dict(d["param_types"]).items()},
        check=_str(d["check"]),
    )


def _condition_of(d: dict[str, Any]) -> Condition:
    if "fact" in d:
        value = Param(_str(d["param"])) if "param" in d else d["v"]
        return Leaf(fact=_str(d["fact"]), op=_str(d["op"]), value=value, line=_int(d["line"]))
    children = d["children"]
    if not isinstance(children, list):
        raise TypeError("children")
    return Group(
        kind=_str(d["kind"]),
        children=tuple(_condition_of(x) for x in children),
        line=_int(d["line"]),
    )


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("str")
    return value


def _int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError("int")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError("dict")
    return value
