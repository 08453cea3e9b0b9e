"""Budgets: a model over its MAC or parameter budget (or grown too much) is a budget finding.

A broken budget is an ordinary finding, so it flows through every report format and the findings
exit code like any rule hit. Its rule (id, name, severity, docs) is the catalogue's rule marked
``check: budget`` in the built-in pack, found by that mark (never by its id), so select, ignore
and severity apply to it like to any rule.
"""

from __future__ import annotations

import functools

from convaudit.config.values import parse_count, parse_percent
from convaudit.humanize import human
from convaudit.identity import sha256_hex
from convaudit.records import Finding, ModelFacts
from convaudit.rules.schema import Rule
from convaudit.safe_io import shown

BUDGET_CHECK = "budget"


@functools.cache
def builtin_budget_rule() -> Rule:
    """The built-in pack's budget rule, for callers that have no configured rule set."""
    from convaudit.rules.loader import load_rules

    return next(r for r in load_rules().values() if r.check == BUDGET_CHECK)


def parse_budget(flag: str, text: str) -> int:
    """ "4.1G" -> 4_100_000_000: the parser the config file and Config(...) use too."""
    return parse_count(text, f"{flag} {shown(text, 60)}")


def parse_increase(text: str, flag: str = "--max-increase") -> float:
    """ "2%" -> 0.02: the parser the config file and Config(...) use too."""
    return parse_percent(text, flag)


def _fingerprint(rule: Rule, path: str, metric: str) -> str:
    return sha256_hex(f"{rule.id}\0{path}\0{metric}".encode())[:16]


def _over(
    rule: Rule, path: str, metric: str, label: str, value: int, budget: int, flag: str
) -> Finding:
    excess = (value - budget) / budget
    return Finding(
        rule=rule.id,
        name=rule.name,
        severity=rule.severity,
        node=None,
        graph=None,
        message=(
            f"total {label} {value:,} ({human(value)}) exceed the budget {flag} "
            f"{budget:,} ({human(budget)}) by {100 * excess:.1f}%"
        ),
        fingerprint=_fingerprint(rule, path, metric),
        facts={"metric": metric, "value": value, "budget": budget},
        model_path=path,
    )


def check_budgets(
    facts: ModelFacts,
    *,
    max_macs: int | None = None,
    max_params: int | None = None,
    rule: Rule | None = None,
) -> tuple[Finding, ...]:
    """Budget findings (of ``rule``, by default the built-in budget rule) on one model's totals."""
    rule = rule or builtin_budget_rule()
    out: list[Finding] = []
    t = facts.totals
    if max_macs is not None and t.macs > max_macs:
        out.append(_over(rule, facts.path, "macs", "MACs", t.macs, max_macs, "--max-macs"))
    if max_params is not None and t.params > max_params:
        out.append(
            _over(rule, facts.path, "params", "params", t.params, max_params, "--max-params")
        )
    return tuple(out)


def check_increase(
    base: ModelFacts, head: ModelFacts, max_increase: float, *, rule: Rule | None = None
) -> tuple[Finding, ...]:
    """Budget findings when HEAD's MACs or params grew more than ``max_increase`` over BASE's."""
    rule = rule or builtin_budget_rule()
    out: list[Finding] = []
    for metric, label in (("macs", "MACs"), ("params", "params")):
        before = getattr(base.totals, metric)
        after = getattr(head.totals, metric)
        # Integer comparison: after > before * (1 + max_increase), without float drift at 0%.
        grew = after > 0 if before == 0 else after - before > before * max_increase
        if not grew:
            continue
        pct = "new" if before == 0 else f"+{100 * (after - before) / before:.2f}%"
        out.append(
            Finding(
                rule=rule.id,
                name=rule.name,
                severity=rule.severity,
                node=None,
                graph=None,
                message=(
                    f"total {label} grew {before:,} → {after:,} ({human(before)} → "
                    f"{human(after)}, {pct}), over --max-increase {100 * max_increase:g}%"
                ),
                fingerprint=_fingerprint(rule, head.path, f"{metric}-increase"),
                facts={
                    "metric": f"{metric}_increase",
                    "base": before,
                    "value": after,
                    "max_increase": max_increase,
                },
                model_path=head.path,
            )
        )
    return tuple(out)
