"""The rule engine: configured rules over one model's layers -> findings.

Rule files are loaded and the config applied once per scan (``RuleSet.from_config``); each
model then costs one pass over its layers. The engine knows facts and operators, not rule ids.
What only evaluating rules needs (facts, kinds, the matcher, budgets) is imported by ``run``:
a scan whose reports all come from the result cache loads the pack and never evaluates it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from convaudit.config import Config, Suppression
from convaudit.errors import ConfigError, nearest
from convaudit.identity import fingerprint, model_key
from convaudit.records import (
    Finding,
    ModelFacts,
    RuleInfo,
    worst_first_key,
)
from convaudit.rules.catalogue import catalogue
from convaudit.rules.loader import load_rules
from convaudit.rules.schema import Rule

if TYPE_CHECKING:
    from convaudit.rules.facts import Bound

# Facts every finding records, besides those its rule reads.
CORE_FACTS = (
    "op",
    "kernel",
    "kernel_size",  # a built-in message once read it: findings keep the key (JSON contract)
    "in_channels",
    "out_channels",
    "group",
    "input_shape",
    "output_shape",
    "macs",
    "params",
    "mac_share",
)


def selected(rule_id: str, select: Iterable[str], ignore: Iterable[str]) -> bool:
    """ruff's rule: the longest matching prefix decides; an empty select means ALL."""
    sel = [
        len(c) if c != "ALL" else 0
        for c in (tuple(select) or ("ALL",))
        if c == "ALL" or rule_id.startswith(c)
    ]
    ign = [len(c) if c != "ALL" else 0 for c in ignore if c == "ALL" or rule_id.startswith(c)]
    if not sel:
        return False
    return not ign or max(ign) < max(sel)


@dataclass(frozen=True)
class RuleSet:
    """Loaded rules with the config applied: enabled ones, and every one (for explain/list)."""

    rules: tuple[Rule, ...]
    available: Mapping[str, Rule]
    suppressions: tuple[Suppression, ...] = ()
    config: Config = dataclasses.field(default_factory=Config)

    @classmethod
    def from_config(cls, config: Config) -> RuleSet:
        """Load built-in and configured rule files; apply select/ignore/severity/params."""
        available = load_rules(config.rule_dirs)
        src = config.source
        ids = list(available)
        for key, codes in (("select", config.select), ("ignore", config.ignore)):
            for code in codes:
                if code != "ALL" and not any(i.startswith(code) for i in ids):
                    raise ConfigError(
                        f"{key}: {code!r} matches no rule{nearest(code, ids)}", path=src
                    )
        for k, s in enumerate(config.suppressions):  # a typo would silently suppress nothing
            if s.rule != "ALL" and not any(i.startswith(s.rule) for i in ids):
                raise ConfigError(
                    f"suppressions[{k}]: rule {s.rule!r} matches no rule{nearest(s.rule, ids)}",
                    path=src,
                )
        for key in ("severity", "params"):
            for rule_id in getattr(config, key):
                if rule_id not in available:
                    raise ConfigError(
                        f"{key}: unknown rule {rule_id!r}{nearest(rule_id, ids)}", path=src
                    )
        if config.params:  # the validator checks overrides as it checks rule files
            from convaudit.rules.validate import check_param, incoherence
        configured: dict[str, Rule] = {}
        for rule_id, rule in available.items():
            changes: dict[str, Any] = {}
            if rule_id in config.severity:
                changes["severity"] = config.severity[rule_id]
            overrides = config.params.get(rule_id, {})
            for name, value in overrides.items():
                if name not in rule.params:
                    raise ConfigError(
                        f"params.{rule_id}: {rule_id} has no param {name!r}"
                        f"{nearest(name, list(rule.params))}",
                        path=src,
                    )
                try:
                    check_param(name, value, rule.param_types.get(name))
                except ValueError as exc:
                    raise ConfigError(f"params.{rule_id}: {exc}", path=src) from None
            if overrides:
                changes["params"] = {**rule.params, **overrides}
            configured[rule_id] = dataclasses.replace(rule, **changes) if changes else rule
            problem = incoherence(configured[rule_id]) if overrides else None
            if problem is not None:  # a config that could only ever find nothing
                raise ConfigError(f"params.{rule_id}: {problem}", path=src)
        enabled = tuple(
            r for r in configured.values() if selected(r.id, config.select, config.ignore)
        )
        return cls(
            rules=enabled,
            available=configured,
            suppressions=config.suppressions,
            config=config,
        )

    @property
    def budget_rule(self) -> Rule | None:
        """The enabled rule evaluated from the budgets (``check: budget``), None when ignored."""
        return next((r for r in self.rules if r.check == "budget"), None)

    def catalogue(self) -> tuple[RuleInfo, ...]:
        """The enabled rules as the catalogue a result carries, sorted by id."""
        return catalogue(self.rules)

    def run(self, facts: ModelFacts) -> tuple[tuple[Finding, ...], tuple[Finding, ...]]:
        """(findings, suppressed findings) on one model: the match rules' in graph order then
        rule id, then the budget rule's (from the config's budgets on the model's totals)."""
        from convaudit.budgets import check_budgets
        from convaudit.rules.context import GraphContext
        from convaudit.rules.facts import Bound, Subject
        from convaudit.rules.matcher import matches

        matchers = [r for r in self.rules if r.check == "match"]
        found: list[Finding] = []
        if matchers:
            graph = GraphContext(facts)
            model = model_key(facts.path, self.config.root)
            for layer in sorted(facts.layers, key=lambda x: x.index):
                subject = Subject(layer, facts, graph)
                for rule in matchers:
                    bound = Bound(subject, rule.params)
                    if matches(rule.match, bound):
                        found.append(_finding(rule, bound, model))
        budget = self.budget_rule
        if budget is not None:
            found += check_budgets(
                facts,
                max_macs=self.config.max_macs,
                max_params=self.config.max_params,
                rule=budget,
            )
        kept: list[Finding] = []
        suppressed: list[Finding] = []
        for f in found:
            reason = self._suppression(f, facts.path)
            if reason is None:
                kept.append(f)
            else:
                suppressed.append(dataclasses.replace(f, suppressed_reason=reason))
        return tuple(kept), tuple(suppressed)

    def _suppression(self, finding: Finding, path: str) -> str | None:
        """The reason of the first suppression matching ``finding``, if any."""
        for s in self.suppressions:
            if (
                (s.rule == "ALL" or finding.rule.startswith(s.rule))
                and self.config.path_matches(path, s.model)
                and fnmatchcase(finding.node or "", s.node)
            ):
                return s.reason
        return None


def _finding(rule: Rule, bound: Bound, model: str) -> Finding:
    from convaudit.rules.kinds import recommendation

    layer = bound.layer

    def lookup(name: str) -> Any:
        return rule.params[name] if name in rule.params else bound.get(name)

    facts = {}
    for name in (*CORE_FACTS, *rule.facts_used()):
        value = bound.get(name)
        facts[name] = list(value) if isinstance(value, tuple) else value
    return Finding(
        rule=rule.id,
        name=rule.name,
        severity=rule.severity,
        node=layer.name,
        graph=layer.graph,
        message=rule.message.render(lookup),
        fingerprint=fingerprint(rule.id, model, layer),
        facts=facts,
        recommendation=recommendation(rule.recommendation, bound),
        model_path=model,
    )


def worst_first(findings: Iterable[Finding]) -> list[Finding]:
    """Severity, then MACs at stake, then node name."""
    return sorted(findings, key=worst_first_key)
