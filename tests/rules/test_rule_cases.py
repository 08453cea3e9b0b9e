"""Rule cases as data: tests/rules/cases/<RULE>.yaml, layer records in, findings out.

Each case lists the nodes of a small model (costed layers with their shapes, plus the ops
between them) and the exact findings its rule must produce, with hand-worked numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from casekit import build

from convaudit.config import Config
from convaudit.rules.engine import RuleSet

CASES_DIR = Path(__file__).parent / "cases"


def _cases() -> list[Any]:
    out = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in data["cases"]:
            out.append(pytest.param(data["rule"], case, id=f"{data['rule']}: {case['name']}"))
    return out


def test_every_builtin_rule_has_a_passing_and_a_failing_case() -> None:
    rules = RuleSet.from_config(Config()).available
    covered: dict[str, set[bool]] = {}
    for path in sorted(CASES_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in data["cases"]:
            covered.setdefault(data["rule"], set()).add(bool(case["findings"]))
    for rule_id in rules:
        assert covered.get(rule_id) == {True, False}, f"{rule_id} needs a pass and a fail case"


@pytest.mark.parametrize(("rule_id", "case"), _cases())
def test_rule_case(rule_id: str, case: dict[str, Any]) -> None:
    facts = build(case["nodes"])
    params = {rule_id: case["params"]} if case.get("params") else {}
    budgets = case.get("budgets") or {}  # max_macs / max_params, for the budget rule
    ruleset = RuleSet.from_config(Config(select=(rule_id,), params=params, **budgets))
    findings, _ = ruleset.run(facts)
    got = [(f.node, f) for f in findings]
    assert [n for n, _ in got] == [e["node"] for e in case["findings"]]
    for (_, f), expected in zip(got, case["findings"], strict=True):
        assert f.rule == rule_id
        if "message" in expected:
            assert f.message == expected["message"]
        rec = expected.get("recommendation")
        if rec is not None:
            r = f.recommendation
            assert r is not None
            assert r.kind == rec["kind"]
            for key in ("width", "before_macs", "after_macs", "before_params", "after_params"):
                if key in rec:
                    assert getattr(r, key) == rec[key], key
