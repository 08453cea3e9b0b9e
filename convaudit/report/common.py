"""Helpers every reporter shares: ordering, severity counts, display names, finding arithmetic."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from convaudit.humanize import human
from convaudit.records import (
    SEVERITY_NAMES,
    AuditResult,
    Finding,
    Layer,
    ModelReport,
    severity_rank,
    worst_first_key,
)

SEVERITIES = SEVERITY_NAMES


def plural(n: int, word: str) -> str:
    """(1, "warning") -> "1 warning"; (3, "warning") -> "3 warnings"."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# One vocabulary in every format: a model that could not be scanned *failed*; findings have a
# *severity*. "2 errors" beside "0 failed" read as a contradiction, so counts name findings.
FAILED = "failed to scan"
COUNT_HEADERS = tuple(f"{s} findings" for s in SEVERITY_NAMES)


def counts_text(findings: Iterable[Finding]) -> str:
    """ "4 findings: 0 error · 1 warning · 3 info" (by severity)."""
    c = severity_counts(findings)
    by = " · ".join(f"{c[s]} {s}" for s in SEVERITY_NAMES)
    return f"{plural(sum(c.values()), 'finding')}: {by}"


def failed_text(reports: Iterable[ModelReport]) -> str | None:
    """ "1 failed to scan", or None when every model was scanned."""
    n = sum(1 for r in reports if r.errors)
    return f"{n} {FAILED}" if n else None


def hidden_note(report: ModelReport) -> str | None:
    """ "2 suppressed by the config, 1 already in the baseline (not shown)", or None."""
    parts = []
    if report.suppressed:
        parts.append(f"{len(report.suppressed)} suppressed by the config")
    if report.baselined:
        parts.append(f"{len(report.baselined)} already in the baseline")
    return ", ".join(parts) + " (not shown)" if parts else None


def reports_by_path(result: AuditResult) -> list[ModelReport]:
    """Reports in path order (the one order every format uses)."""
    return sorted(result.reports, key=lambda r: r.path)


def sorted_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Findings worst first, deterministic: the one order of every format."""
    return sorted(findings, key=worst_first_key)


def severity_counts(findings: Iterable[Finding]) -> dict[str, int]:
    """{"error": n, "warning": n, "info": n} (always all three keys)."""
    c = Counter(f.severity for f in findings)
    return {s: c.get(s, 0) for s in SEVERITIES}


def layer_label(layer: Layer) -> str:
    """The layer's name, prefixed with its graph when it lives in a subgraph or function."""
    return layer.name if layer.graph == "main" else f"{layer.graph}:{layer.name}"


def op_label(layer: Layer) -> str:
    """Op type, with its domain when not the default one."""
    return layer.op_type if not layer.domain else f"{layer.domain}.{layer.op_type}"


def dims(t: Sequence[int] | None, sep: str = "x") -> str:
    """(5, 5) -> "5x5"; None -> "-"."""
    return "-" if t is None else sep.join(str(d) for d in t)


def channels(layer: Layer) -> str:
    """ "480→48" with "?" for an unknown side."""
    cin = "?" if layer.in_channels is None else str(layer.in_channels)
    cout = "?" if layer.out_channels is None else str(layer.out_channels)
    return f"{cin}→{cout}"


def top_layers(layers: Iterable[Layer], n: int) -> list[Layer]:
    """The ``n`` costliest counted layers (graph order breaks ties)."""
    known = [x for x in layers if x.counted and x.total_macs is not None]
    return sorted(known, key=lambda x: (-(x.total_macs or 0), x.index))[:n]


def flagged_nodes(report: ModelReport) -> set[tuple[str | None, str]]:
    """(graph, node name) of every layer a finding points at."""
    return {(f.graph, f.node) for f in report.findings if f.node is not None}


def is_flagged(layer: Layer, flagged: set[tuple[str | None, str]]) -> bool:
    """True when a finding names this layer (by graph and name, or by name alone)."""
    return (layer.graph, layer.name) in flagged or (None, layer.name) in flagged


def worst_flags(report: ModelReport) -> dict[tuple[str | None, str], str]:
    """(graph, node) -> the worst severity of the findings that point at it."""
    out: dict[tuple[str | None, str], str] = {}
    for f in report.findings:
        if f.node is None:
            continue
        key = (f.graph, f.node)
        if key not in out or severity_rank(f.severity) < severity_rank(out[key]):
            out[key] = f.severity
    return out


def layer_flag(layer: Layer, flags: dict[tuple[str | None, str], str]) -> str | None:
    """The worst severity flagging ``layer`` (matched by graph and name, or name alone)."""
    return flags.get((layer.graph, layer.name)) or flags.get((None, layer.name))


def factor(before: int, after: int) -> str:
    """112896000, 5268480 -> "21.4x"; a removal is "all"."""
    return f"{before / after:.1f}x" if after else "all"


def arithmetic(f: Finding) -> str | None:
    """The recommendation's before/after figures in one line, or None without a recommendation."""
    r = f.recommendation
    if r is None:
        return None
    width = f" (width {r.width})" if r.width is not None else ""
    return (
        f"{r.kind}{width}: MACs {r.before_macs:,} → {r.after_macs:,} "
        f"({human(r.before_macs)} → {human(r.after_macs)}, "
        f"{factor(r.before_macs, r.after_macs)} fewer); "
        f"params {r.before_params:,} → {r.after_params:,} "
        f"({human(r.before_params)} → {human(r.after_params)})"
    )


def location(f: Finding) -> str:
    """Where a finding points: "graph:node", "node" in the main graph, or "model"."""
    if f.node is None:
        return "model"
    return f.node if f.graph in (None, "main") else f"{f.graph}:{f.node}"


def finding_path(f: Finding, report: ModelReport) -> str:
    """The model path a finding belongs to (its own, else its report's)."""
    return f.model_path or report.path
