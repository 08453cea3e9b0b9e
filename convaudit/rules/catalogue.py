"""Loaded rules as the catalogue a result carries: RuleInfo records with their docs rendered.

Built once per scan from the rule set the scan ran, so that reporters describe rules (SARIF's
tool.driver.rules) from the result alone and never read rule files while rendering.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from convaudit.records import RuleInfo
from convaudit.rules.schema import Rule

# Where the built-in rule files (and so their docs) are published; the README names it.
BUILTIN_DOCS_URL = "https://github.com/convaudit/convaudit/blob/main/rules"

# ruff's rule-doc sections, in ruff's order; "fix" is the rule files' key for "Use instead".
DOC_TITLES = (
    ("what", "What it does"),
    ("why", "Why is this bad?"),
    ("example", "Example"),
    ("fix", "Fix"),
)


def catalogue(rules: Iterable[Rule]) -> tuple[RuleInfo, ...]:
    """The rules as RuleInfo, sorted by id (one entry per id)."""
    infos = {r.id: rule_info(r) for r in rules}
    return tuple(infos[k] for k in sorted(infos))


def rule_info(rule: Rule) -> RuleInfo:
    """A loaded rule (id, name, summary, severity, docs) as the reporters' RuleInfo."""
    docs: dict[str, Any] = dict(rule.docs or {})
    return RuleInfo(
        id=rule.id,
        name=rule.name,
        summary=rule.summary.strip(),
        severity=rule.severity,
        description=" ".join(str(docs.get(k, "")).strip() for k in ("what", "why") if docs.get(k)),
        help_markdown=help_markdown(rule.id, rule.name, docs, rule.params),
        help_uri=f"{BUILTIN_DOCS_URL}/{Path(rule.source).name}" if rule.builtin else "",
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
    options = str(docs.get("options", "")).strip()
    if params:
        opts = "\n".join(f"- `{k}` = `{v!r}`" for k, v in params.items())
        parts.append(f"### Options\n\n{opts}")
    elif options:  # a rule evaluated outside the matcher documents its config keys instead
        parts.append(f"### Options\n\n```\n{options}\n```")
    refs = docs.get("references") or []
    if refs:
        parts.append("### References\n\n" + "\n".join(f"- {r}" for r in refs))
    return "\n\n".join(parts)
