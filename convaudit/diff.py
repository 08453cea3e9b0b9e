"""Compare two models: per-layer and total MAC/param changes, new and fixed findings, growth budget.

Layers are matched by (graph, name) first, then the leftovers pair up by position in graph order
when they are the same kind of op (a re-export that renamed ``Conv_12`` to ``Conv_13``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from convaudit.config import Config
from convaudit.errors import ModelLoadError
from convaudit.records import Finding, Layer, ModelFacts, ModelReport

if TYPE_CHECKING:
    from convaudit.rules.schema import Rule


@dataclass(frozen=True, kw_only=True)
class LayerChange:
    """One layer in BASE and/or HEAD, and how it was matched."""

    match: str  # "name" | "position" | "added" | "removed"
    base: Layer | None
    head: Layer | None

    @property
    def name(self) -> str:
        """HEAD's name when the layer exists there, else BASE's."""
        layer = self.head or self.base
        assert layer is not None
        return layer.name if layer.graph == "main" else f"{layer.graph}:{layer.name}"

    @property
    def op_type(self) -> str:
        layer = self.head or self.base
        assert layer is not None
        return layer.op_type

    @property
    def base_macs(self) -> int:
        return _macs(self.base)

    @property
    def head_macs(self) -> int:
        return _macs(self.head)

    @property
    def base_params(self) -> int:
        return 0 if self.base is None else self.base.params or 0

    @property
    def head_params(self) -> int:
        return 0 if self.head is None else self.head.params or 0

    @property
    def changed(self) -> bool:
        """Added, removed, renamed, or a different cost."""
        return (
            self.match != "name"
            or self.base_macs != self.head_macs
            or self.base_params != self.head_params
        )


def _macs(layer: Layer | None) -> int:
    if layer is None or not layer.counted:
        return 0
    return layer.total_macs or 0


@dataclass(frozen=True, kw_only=True)
class ModelDiff:
    """BASE vs HEAD: the layer changes, findings that appeared or went away, broken budgets."""

    base: ModelFacts
    head: ModelFacts
    layers: tuple[LayerChange, ...]
    new_findings: tuple[Finding, ...]
    fixed_findings: tuple[Finding, ...]
    budget_findings: tuple[Finding, ...] = ()  # broken budgets on HEAD (absolute and growth)

    @property
    def findings(self) -> tuple[Finding, ...]:
        """What the exit code looks at: new findings and broken budgets."""
        seen = {f.fingerprint for f in self.new_findings}
        return self.new_findings + tuple(
            f for f in self.budget_findings if f.fingerprint not in seen
        )


def match_layers(base: tuple[Layer, ...], head: tuple[Layer, ...]) -> list[LayerChange]:
    """Pair layers by unique (graph, name), then by position; the rest are added or removed."""
    b_sorted = sorted(base, key=lambda x: x.index)
    h_sorted = sorted(head, key=lambda x: x.index)
    b_count = Counter((x.graph, x.name) for x in b_sorted)
    h_count = Counter((x.graph, x.name) for x in h_sorted)
    b_by_name = {(x.graph, x.name): x for x in b_sorted}
    paired: dict[int, Layer] = {}  # head index -> base layer
    used: set[int] = set()
    for h in h_sorted:
        key = (h.graph, h.name)
        if b_count[key] == 1 and h_count[key] == 1:
            paired[h.index] = b_by_name[key]
            used.add(b_by_name[key].index)
    # Position counts among the leftovers of the same op: an added or removed Gemm must not
    # shift which Conv pairs with which.
    rest_b: dict[tuple[str, str], list[Layer]] = {}
    rest_h: dict[tuple[str, str], list[Layer]] = {}
    for x in b_sorted:
        if x.index not in used:
            rest_b.setdefault((x.category, x.op_type), []).append(x)
    for x in h_sorted:
        if x.index not in paired:
            rest_h.setdefault((x.category, x.op_type), []).append(x)
    by_position: dict[int, Layer] = {}
    for op, hs in rest_h.items():
        for b, h in zip(rest_b.get(op, []), hs, strict=False):
            by_position[h.index] = b
    used |= {b.index for b in by_position.values()}
    out: list[LayerChange] = []
    for h in h_sorted:
        if h.index in paired:
            out.append(LayerChange(match="name", base=paired[h.index], head=h))
        elif h.index in by_position:
            out.append(LayerChange(match="position", base=by_position[h.index], head=h))
        else:
            out.append(LayerChange(match="added", base=None, head=h))
    out += [
        LayerChange(match="removed", base=b, head=None) for b in b_sorted if b.index not in used
    ]
    return out


def finding_key(f: Finding) -> tuple[str, str | None, str | None, str]:
    """Identity of a finding across two different files (the fingerprint includes the path)."""
    return (f.rule, f.graph, f.node, str(f.facts.get("metric", "")))


def is_budget_finding(f: Finding, rule: Rule | None = None) -> bool:
    """A broken budget (absolute or growth): the exit code counts it as is, never as "new".
    ``rule`` is the budget rule the scan ran (by default the built-in one, found by its check)."""
    from convaudit.budgets import builtin_budget_rule

    return f.rule == (rule or builtin_budget_rule()).id


def compare(
    base: ModelReport,
    head: ModelReport,
    *,
    max_increase: float | None = None,
    budget_rule: Rule | None = None,
) -> ModelDiff:
    """The diff of two scanned models (both must have scanned); growth over ``max_increase`` is
    a finding of ``budget_rule`` (the built-in budget rule by default)."""
    for r in (base, head):
        if r.facts is None or r.errors:
            raise ModelLoadError(
                "; ".join(r.errors) or "model did not scan", path=None if r.errors else r.path
            )
    assert base.facts is not None and head.facts is not None
    layers = tuple(match_layers(base.facts.layers, head.facts.layers))
    # A layer matched by position (a re-export renamed it) keeps its findings: BASE's are keyed
    # under HEAD's name, or every finding on it would come back as both new and fixed.
    renamed = {
        (c.base.graph, c.base.name): (c.head.graph, c.head.name)
        for c in layers
        if c.match == "position" and c.base is not None and c.head is not None
    }

    def base_key(f: Finding) -> tuple[str, str | None, str | None, str]:
        rule, graph, node, metric = finding_key(f)
        graph, node = renamed.get((graph or "", node or ""), (graph, node))
        return rule, graph, node, metric

    base_keys = {base_key(f) for f in base.findings}
    head_keys = {finding_key(f) for f in head.findings}
    budget = tuple(f for f in head.findings if is_budget_finding(f, budget_rule))
    if max_increase is not None:
        from convaudit.budgets import check_increase

        budget += check_increase(base.facts, head.facts, max_increase, rule=budget_rule)
    return ModelDiff(
        base=base.facts,
        head=head.facts,
        layers=layers,
        new_findings=tuple(
            f
            for f in head.findings
            if finding_key(f) not in base_keys and not is_budget_finding(f, budget_rule)
        ),
        fixed_findings=tuple(f for f in base.findings if base_key(f) not in head_keys),
        budget_findings=budget,
    )


def diff(base: str, head: str, config: Config | None = None) -> ModelDiff:
    """Scan BASE and HEAD with ``config`` and compare them (``config.max_increase`` applies)."""
    from convaudit.audit import load_ruleset, scan_one

    config = config or Config()
    for p in (base, head):
        from pathlib import Path

        if not Path(p).is_file():
            raise ModelLoadError("no such file", path=p)
    rules = load_ruleset(config)
    budget = rules.budget_rule  # None when select/ignore turned budgets off: no growth check
    return compare(
        scan_one(base, config, rules),
        scan_one(head, config, rules),
        max_increase=config.max_increase if budget is not None else None,
        budget_rule=budget,
    )
