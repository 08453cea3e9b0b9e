"""Budgets: a model over its MAC or parameter budget (or grown too much) is a CA900 finding.

A broken budget is an ordinary finding of severity error, so it flows through every report format
and the findings exit code like any rule hit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Any

from convaudit.config import Config
from convaudit.errors import ConfigError
from convaudit.humanize import human, parse_quantity
from convaudit.records import Finding, ModelFacts, RuleInfo
from convaudit.safe_io import shown

RULE_ID = "CA900"
RULE_NAME = "budget-exceeded"

BUDGET_RULE = RuleInfo(
    id=RULE_ID,
    name=RULE_NAME,
    summary="The model exceeds a MAC or parameter budget, or grew more than allowed.",
    severity="error",
    description=(
        "Fires when the model's total MACs exceed --max-macs (config max-macs), its total "
        "parameters exceed --max-params (max-params), or, when comparing against a base model "
        "with `convaudit diff`, its MACs or parameters grew by more than --max-increase."
    ),
    help_markdown=(
        "**What it does**: checks the model's totals against the budgets you set "
        "(`--max-macs 4.1G`, `--max-params 25.6M`, `--max-increase 2%` with `convaudit diff`).\n\n"
        "**Why is this bad?** A budget is a deployment constraint (latency, memory, energy); "
        "a model over it will miss its target on the device.\n\n"
        "**Fix**: act on the other findings (bottlenecks, factorised kernels), or raise the "
        "budget deliberately in the config so the change is reviewed."
    ),
)


def parse_budget(flag: str, text: str) -> int:
    """ "4.1G" -> 4_100_000_000, as a ConfigError naming the flag when malformed."""
    try:
        value = parse_quantity(text)
    except ValueError as exc:
        raise ConfigError(f"{flag} {shown(text, 60)}: {exc}") from None
    if value <= 0:
        raise ConfigError(f"{flag} {shown(text)}: must be positive")
    return value


def parse_increase(text: str, flag: str = "--max-increase") -> float:
    """ "2%" -> 0.02; "0.5%" -> 0.005; a bare number is a percentage too."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*%?\s*", text)
    if not m:
        raise ConfigError(f"{flag} {shown(text)}: expected a percentage such as 2% or 0.5%")
    return float(m.group(1)) / 100


def _fingerprint(path: str, metric: str) -> str:
    return hashlib.sha256(f"{RULE_ID}\0{path}\0{metric}".encode()).hexdigest()[:16]


def _over(path: str, metric: str, label: str, value: int, budget: int, flag: str) -> Finding:
    excess = (value - budget) / budget
    return Finding(
        rule=RULE_ID,
        name=RULE_NAME,
        severity="error",
        node=None,
        graph=None,
        message=(
            f"total {label} {value:,} ({human(value)}) exceed the budget {flag} "
            f"{budget:,} ({human(budget)}) by {100 * excess:.1f}%"
        ),
        fingerprint=_fingerprint(path, metric),
        facts={"metric": metric, "value": value, "budget": budget},
        model_path=path,
    )


def check_budgets(
    facts: ModelFacts, *, max_macs: int | None = None, max_params: int | None = None
) -> tuple[Finding, ...]:
    """CA900 findings for absolute budgets on one model's totals."""
    out: list[Finding] = []
    t = facts.totals
    if max_macs is not None and t.macs > max_macs:
        out.append(_over(facts.path, "macs", "MACs", t.macs, max_macs, "--max-macs"))
    if max_params is not None and t.params > max_params:
        out.append(_over(facts.path, "params", "params", t.params, max_params, "--max-params"))
    return tuple(out)


def check_increase(base: ModelFacts, head: ModelFacts, max_increase: float) -> tuple[Finding, ...]:
    """CA900 findings when HEAD's MACs or params grew more than ``max_increase`` over BASE's."""
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
                rule=RULE_ID,
                name=RULE_NAME,
                severity="error",
                node=None,
                graph=None,
                message=(
                    f"total {label} grew {before:,} → {after:,} ({human(before)} → "
                    f"{human(after)}, {pct}), over --max-increase {100 * max_increase:g}%"
                ),
                fingerprint=_fingerprint(head.path, f"{metric}-increase"),
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


def with_budget_flags(
    config: Config,
    *,
    max_macs: str | None = None,
    max_params: str | None = None,
    max_increase: str | None = None,
) -> Config:
    """``config`` with the budget flags that were given (text as typed) replacing its values."""
    changes: dict[str, Any] = {}
    if max_macs is not None:
        changes["max_macs"] = parse_budget("--max-macs", max_macs)
    if max_params is not None:
        changes["max_params"] = parse_budget("--max-params", max_params)
    if max_increase is not None:
        changes["max_increase"] = parse_increase(max_increase)
    return dataclasses.replace(config, **changes) if changes else config
