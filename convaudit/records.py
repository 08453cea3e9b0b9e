"""Frozen records that flow between the stages: load -> facts -> cost -> rules -> report."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

Shape = tuple[int, ...]


class Category(str, Enum):
    """What kind of compute a costed layer is. A str, so ``layer.category == "conv"`` and the
    JSON report (``"category": "conv"``) read exactly as the plain strings did."""

    CONV = "conv"
    CONV_TRANSPOSE = "conv_transpose"
    MATMUL = "matmul"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


# The categories the public ``conv_macs`` / ``conv_params`` totals have always covered.
CONV_CATEGORIES = frozenset({Category.CONV, Category.CONV_TRANSPOSE})


class Severity(str, Enum):
    """A finding's severity. Members are str so JSON, config values and ``== "error"`` are
    unchanged; ``rank`` is the one ordering every module uses (0 is the worst)."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    def __str__(self) -> str:  # "error", not "Severity.ERROR", in messages and f-strings
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def rank(self) -> int:
        """0 for error, 1 for warning, 2 for info: sort ascending for worst first."""
        return SEVERITY_NAMES.index(self.value)


# Worst first. The order of this tuple is the ranking; nothing else may restate it.
SEVERITY_NAMES: tuple[str, ...] = tuple(s.value for s in Severity)


def severity_rank(severity: str) -> int:
    """The rank of a severity given as text (0 worst); an unknown name ranks after every one."""
    return SEVERITY_NAMES.index(severity) if severity in SEVERITY_NAMES else len(SEVERITY_NAMES)


def at_or_above(severity: str, threshold: str) -> bool:
    """Whether ``severity`` is as bad as ``threshold`` or worse ("never" is above every one:
    nothing reaches it)."""
    if threshold not in SEVERITY_NAMES:
        return False
    return severity_rank(severity) <= severity_rank(threshold)


@dataclass(frozen=True, kw_only=True)
class Layer:
    """One costed node (a conv, a matmul-like op), with its exact cost or None when unknown.

    Spatial attributes are normalised: ``kernel_shape``, ``strides``, ``dilations`` have one entry
    per spatial axis and ``pads`` is ONNX order (begins then ends). They are None for ops that
    have no such notion (Gemm, MatMul).
    """

    node_id: str  # unique key in ModelFacts.graph: "<graph>/<index>"
    name: str  # node name, or "<op_type>_<index>" when the export left it empty
    op_type: str
    domain: str  # "" for the default ONNX domain
    graph: str  # "main", "main/<If>.then_branch", "function:<domain>.<name>@<call node>"
    index: int  # position in graph order across the whole walk (stable, deterministic)
    category: Category  # a str: "conv", "conv_transpose", "matmul"
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    kernel_shape: tuple[int, ...] | None = None
    strides: tuple[int, ...] | None = None
    pads: tuple[int, ...] | None = None
    dilations: tuple[int, ...] | None = None
    auto_pad: str | None = None
    group: int | None = None
    in_channels: int | None = None
    out_channels: int | None = None
    input_shape: Shape | None = None
    output_shape: Shape | None = None
    weight_shape: Shape | None = None
    weight_name: str | None = None
    has_bias: bool = False
    dtype: str | None = None  # activation element type, e.g. "float32", "uint8"
    weight_dtype: str | None = None
    macs: int | None = None  # per EXECUTION (see macs_per_execution); total_macs is per run
    params: int | None = None  # weight + bias elements
    bias_adds: int | None = None
    weight_bytes: int | None = None
    activation_bytes: int | None = None  # input + output tensor bytes per execution
    multiplier: int = 1  # executions per model run (static Loop trip counts)
    counted: bool = True  # False inside the cheaper branch of an If
    mac_share: float | None = None  # share of the model's counted MACs
    note: str | None = None  # why a figure is unknown or how it was counted
    bias_name: str | None = None  # the bias tensor's name (shared biases are counted once)

    @property
    def macs_per_execution(self) -> int | None:
        """MACs of one execution of the node (``macs``; the JSON key of the same name)."""
        return self.macs

    @property
    def total_macs(self) -> int | None:
        """MACs per model run, after Loop multiplication (None when unknown); the JSON ``macs``."""
        return None if self.macs is None else self.macs * self.multiplier

    @property
    def flops(self) -> int | None:
        """FLOPs convention: 2 per MAC plus one per bias add."""
        if self.macs is None:
            return None
        return 2 * self.macs + (self.bias_adds or 0)


@dataclass(frozen=True, kw_only=True)
class CategoryTotals:
    """Totals over the counted layers of one category (MACs per run, shared weights once)."""

    macs: int
    flops: int
    params: int
    layers: int
    unknown_layers: int
    weight_bytes: int


@dataclass(frozen=True, kw_only=True)
class Totals:
    """Model totals over counted layers; unknown layers are counted separately, never guessed.

    ``conv_macs`` / ``conv_params`` cover convolutions and transposed convolutions
    (CONV_CATEGORIES); ``by_category`` breaks every total down by the category it belongs to.
    """

    macs: int  # per model run
    flops: int
    params: int
    conv_macs: int
    conv_params: int
    layers: int
    unknown_layers: int
    weight_bytes: int
    by_category: dict[str, CategoryTotals] = field(default_factory=dict)  # category value ->


@dataclass(frozen=True, kw_only=True)
class ScanProblem:
    """A non-fatal problem found while scanning (unknown op domain, uncountable loop, ...)."""

    kind: str
    message: str
    node: str | None = None
    graph: str | None = None


@dataclass(frozen=True, kw_only=True)
class ModelFacts:
    """Everything known about one model after loading, shape resolution and costing."""

    path: str
    opset: dict[str, int]
    inputs: dict[str, tuple[int | str | None, ...] | None]
    outputs: dict[str, tuple[int | str | None, ...] | None]
    layers: tuple[Layer, ...]
    totals: Totals
    problems: tuple[ScanProblem, ...] = ()
    # The producer -> consumer graph of node ids as the walk recorded it (a
    # convaudit.model.graph.NodeGraph, or any networkx.DiGraph); node attrs: op_type, domain,
    # name, graph, attrs (plain python attribute values), layer (index into ``layers`` or None),
    # inputs / outputs (tensor names in node order), input_shapes (static shape or None each).
    node_graph: Any = field(default=None, compare=False, repr=False)

    @functools.cached_property
    def graph(self) -> Any:
        """The same graph as a ``networkx.DiGraph``, built on first use and then shared."""
        g = self.node_graph
        if g is None or not hasattr(g, "to_networkx"):
            return g
        return g.to_networkx()

    def layer_by_node(self, node_id: str) -> Layer | None:
        """The costed layer for a DiGraph node id, if the node is costed."""
        for layer in self.layers:
            if layer.node_id == node_id:
                return layer
        return None


# The recommendation kind of a 1x1 bottleneck in front of a KxK conv: what ``fix`` rewrites and
# ``scan --weights`` measures. Code keys on the kind, never on the id of the rule that gives it.
BOTTLENECK_KIND = "bottleneck"


@dataclass(frozen=True, kw_only=True)
class Recommendation:
    """A concrete change with exact before/after figures."""

    kind: str  # "bottleneck", "global-pool-head", "factorize-kernel", "separable", ...
    before_macs: int
    before_params: int
    after_macs: int
    after_params: int
    width: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def saving_factor(self) -> float:
        """before / after MACs (inf when the change removes all MACs)."""
        return self.before_macs / self.after_macs if self.after_macs else float("inf")


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One rule hit on one layer (or on the whole model, node=None)."""

    rule: str
    name: str
    severity: str  # "error" | "warning" | "info"
    node: str | None
    graph: str | None
    message: str
    fingerprint: str
    facts: dict[str, Any] = field(default_factory=dict)
    recommendation: Recommendation | None = None
    model_path: str = ""
    suppressed_reason: str | None = None  # set on findings a config suppression silenced


@dataclass(frozen=True, kw_only=True)
class ModelReport:
    """The audit of one model: facts and findings, or the error that stopped its scan."""

    path: str
    facts: ModelFacts | None
    findings: tuple[Finding, ...] = ()
    errors: tuple[str, ...] = ()
    suppressed: tuple[Finding, ...] = ()  # silenced by a config suppression (with a reason)
    baselined: tuple[Finding, ...] = ()  # already recorded in the baseline: not reported


@dataclass(frozen=True, kw_only=True)
class BaselineEntry:
    """One finding recorded in a baseline file (matched by fingerprint, not by position)."""

    fingerprint: str
    rule: str
    model: str
    node: str | None
    message: str = ""


@dataclass(frozen=True, kw_only=True)
class BaselineSummary:
    """How a scan compared with its baseline: known findings hidden, stale entries listed."""

    path: str
    matched: int
    stale: tuple[BaselineEntry, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RuleInfo:
    """What a reporter needs to describe a rule (SARIF's tool.driver.rules, HTML legends)."""

    id: str
    name: str
    summary: str
    severity: str
    description: str = ""  # the rule's "what" / "why" text
    help_markdown: str = ""  # docs rendered for a reader (what / why / example / fix)
    help_uri: str = ""  # where the rule's docs are online (SARIF helpUri); "" when nowhere


@dataclass(frozen=True, kw_only=True)
class Skipped:
    """A file or folder a folder scan left out, and why (``--verbose`` prints them)."""

    path: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class AuditResult:
    """The result of one ``scan`` call: one report per model, ordered by path."""

    reports: tuple[ModelReport, ...]
    tool_version: str = ""
    baseline: BaselineSummary | None = None  # set when scanned with --baseline
    # The enabled rules the scan ran (budgets included), sorted by id: reporters describe rules
    # from here, never from rule files. Empty for a result built by hand.
    rules: tuple[RuleInfo, ...] = ()
    # What folder and glob discovery left out (hidden folders, venvs, --exclude, .gitignore).
    skipped: tuple[Skipped, ...] = ()
    # The --fail-on the scan ran with: findings below it are not failures (JUnit's verdicts).
    fail_on: str = "warning"
    # Where the scan ran (model paths are relative to it) and the root SARIF paths start from
    # (%SRCROOT%: the git work tree holding ``cwd``, else ``cwd``); None for a hand-built result.
    cwd: str | None = None
    source_root: str | None = None

    @property
    def findings(self) -> tuple[Finding, ...]:
        """All findings across reports."""
        return tuple(f for r in self.reports for f in r.findings)


def worst_first_key(f: Finding) -> tuple[int, int, str, str, str]:
    """The one finding order of every format: severity, then the MACs at stake (the
    recommendation's before figure, else the layer's MACs), then node, rule and fingerprint."""
    if f.recommendation is not None:
        stake = f.recommendation.before_macs
    else:
        macs = f.facts.get("macs")
        stake = macs if isinstance(macs, int) else 0
    return (severity_rank(f.severity), -stake, f.node or "", f.rule, f.fingerprint)
