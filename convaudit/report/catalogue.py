"""The rule catalogue reporters describe (SARIF's tool.driver.rules): built-in rules plus CA900."""

from __future__ import annotations

from typing import Any

from convaudit.report.common import RuleInfo


def rule_catalogue(config: Any = None) -> tuple[RuleInfo, ...]:
    """Every rule a scan can report, sorted by id: the rule engine's rules and the budget rule."""
    from convaudit.budgets import BUDGET_RULE

    infos = {BUDGET_RULE.id: BUDGET_RULE}
    for info in _engine_rules(config):
        infos.setdefault(info.id, info)
    return tuple(infos[k] for k in sorted(infos))


def _engine_rules(config: Any) -> list[RuleInfo]:
    """The rule engine's loaded rules as RuleInfo (none while the engine is not installed)."""
    return []
