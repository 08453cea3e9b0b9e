"""Text for ``convaudit rules list`` and ``convaudit rules explain ID`` (ruff-style docs)."""

from __future__ import annotations

import textwrap

from convaudit.config.values import code_hint
from convaudit.errors import ConfigError, nearest
from convaudit.rules.engine import RuleSet
from convaudit.rules.facts import FACTS
from convaudit.rules.schema import Group, Leaf, Param, Rule

# What a rule evaluated outside the matcher compares, by its ``check``.
CHECK_TEXT = {
    "budget": (
        "From the budgets, not per layer: the model's total MACs and params against max-macs "
        "and max-params on every scan, and HEAD's growth over BASE against max-increase in "
        "`convaudit diff`. No budget set, no finding."
    ),
}


def render_list(rules: RuleSet) -> str:
    """One line per available rule: id, severity, on/off, name, summary."""
    enabled = {r.id for r in rules.rules}
    rows = [
        (r.id, r.severity, "on" if r.id in enabled else "off", r.name, r.summary)
        for r in rules.available.values()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)] if rows else [0] * 4
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in rows
    ]
    return "\n".join(lines) + "\n"


def yaml_value(value: object) -> str:
    """A value as it would be written in a rule file: true, null, 0.01, [Gemm, MatMul]."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    return str(value)


def _condition(node: Leaf | Group, params: dict[str, object], indent: int) -> list[str]:
    pad = "  " * indent
    if isinstance(node, Leaf):
        value = node.value
        if isinstance(value, Param):
            shown = f"${value.name} (= {yaml_value(params[value.name])})"
        else:
            shown = yaml_value(value)
        return [f"{pad}{node.fact} {node.op} {shown}"]
    lines = [f"{pad}{node.kind}:"]
    for child in node.children:
        lines += _condition(child, params, indent + 1)
    return lines


def _para(text: str) -> str:
    return "\n".join(textwrap.fill(p, width=96) if "\n" not in p else p for p in text.split("\n\n"))


def render_explain(rules: RuleSet, rule_id: str) -> str:
    """A rule's docs, its current params (after config) and its match, as plain text."""
    rule = rules.available.get(rule_id.upper())
    if rule is None:
        slip = code_hint(rule_id)  # a case or digit slip first: difflib may rank another id first
        hint = f" (did you mean {slip}?)" if slip in rules.available else ""
        raise ConfigError(
            f"unknown rule {rule_id!r}{hint or nearest(rule_id.upper(), rules.available)}"
        )
    return explain(rule, enabled=rule in rules.rules)


def explain(rule: Rule, *, enabled: bool = True) -> str:
    """ruff-style sections: what it does, why, example, fix, options, match."""
    state = "enabled" if enabled else "disabled by select/ignore"
    out = [
        f"{rule.id} {rule.name} ({rule.severity}, {state})",
        "",
        rule.summary,
        "",
        "## What it does",
        _para(rule.docs["what"]),
        "",
        "## Why is this bad?",
        _para(rule.docs["why"]),
        "",
        "## Example",
        rule.docs["example"],
        "",
        "## Fix",
        rule.docs["fix"],
    ]
    if rule.params:
        out += [
            "",
            "## Options (current values; override in [tool.convaudit.params." + rule.id + "])",
        ]
        out += [f"{name}: {yaml_value(value)}" for name, value in rule.params.items()]
    if rule.check != "match":  # evaluated by convaudit itself: no match tree to show
        if rule.docs.get("options"):
            out += ["", "## Options (in the config file, or as flags)", rule.docs["options"]]
        out += ["", "## Evaluated", _para(CHECK_TEXT.get(rule.check, rule.check))]
    else:
        out += ["", "## Match", *_condition(rule.match, dict(rule.params), 0)]
    used = [f for f in rule.facts_used() if f in FACTS]
    if used:
        out += ["", "## Facts"]
        out += [f"{name}: {FACTS[name].doc}" for name in used]
    if rule.docs.get("references"):
        out += ["", "## References", *(f"- {r}" for r in rule.docs["references"])]
    out += ["", f"Defined in {rule.source}:{rule.line}"]
    return "\n".join(out) + "\n"
