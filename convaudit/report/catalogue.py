"""The rule catalogue reporters describe (SARIF's tool.driver.rules): enabled rules plus CA900."""

from __future__ import annotations

from typing import Any

from convaudit.records import RuleInfo

DOC_TITLES = (
    ("what", "What it does"),
    ("why", "Why is this bad?"),
    ("example", "Example"),
    ("fix", "Fix"),
)


def rule_catalogue(config: Any = None) -> tuple[RuleInfo, ...]:
    """Every rule a scan with ``config`` can report, sorted by id: the enabled rules (built-in and
    the config's rule dirs, with its severities) and the budget rule CA900."""
    from convaudit.budgets import BUDGET_RULE

    infos = {BUDGET_RULE.id: BUDGET_RULE}
    for info in engine_rules(config):
        infos.setdefault(info.id, info)
    return tuple(infos[k] for k in sorted(infos))


def engine_rules(config: Any = None) -> list[RuleInfo]:
    """The rule engine's enabled rules as RuleInfo."""
    from convaudit.config import Config
    from convaudit.rules.engine import RuleSet

    ruleset = RuleSet.from_config(config if config is not None else Config())
    return [rule_info(r) for r in ruleset.rules]


def rule_info(rule: Any) -> RuleInfo:
    """A loaded rule (id, name, summary, severity, docs) as the reporters' RuleInfo."""
    docs: dict[str, Any] = dict(rule.docs or {})
    return RuleInfo(
        id=rule.id,
        name=rule.name,
        summary=rule.summary.strip(),
        severity=rule.severity,
        description=" ".join(str(docs.get(k, "")).strip() for k in ("what", "why") if docs.get(k)),
        help_markdown=help_markdown(rule.id, rule.name, docs, getattr(rule, "params", {})),
    )


def help_markdown(rule_id: str, name: str, docs: dict[str, Any], params: dict[str, Any]) -> str:
    """ruff-style rule docs: What it does / Why is this bad? / Example / Fix / Options."""
    parts = [f"## {rule_id} {name}"]
    for key, title in DOC_TITLES:
        text = str(docs.get(key, "")).strip()
        if not text:
            continue
        if key in ("example", "fix") and "\n" in text:
            parts.append(f"### {title}\n\n```\n{text}\n```")
        else:
            parts.append(f"### {title}\n\n{text}")
    if params:
        opts = "\n".join(f"- `{k}` = `{v!r}`" for k, v in params.items())
        parts.append(f"### Options\n\n{opts}")
    refs = docs.get("references") or []
    if refs:
        parts.append("### References\n\n" + "\n".join(f"- {r}" for r in refs))
    return "\n\n".join(parts)
