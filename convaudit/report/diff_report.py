"""Renderers for ``convaudit diff``: table, json and markdown, pure functions of a ModelDiff."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from convaudit.diff import LayerChange, ModelDiff
from convaudit.humanize import human
from convaudit.records import Finding
from convaudit.report.common import location, sorted_findings
from convaudit.report.json_report import finding_dict
from convaudit.report.markdown import finding_lines

MARKER = "<!-- convaudit-diff -->"

DIFF_SCHEMA_VERSION = 1


def delta(before: int, after: int) -> str:
    """ "-107,627,520 (-95.3%)"; "+1,505,280 (new)" when BEFORE is 0; "0" when equal."""
    d = after - before
    if d == 0:
        return "0"
    pct = "new" if before == 0 else f"{100 * d / before:+.1f}%"
    return f"{d:+,} ({pct})"


def _hdelta(before: int, after: int) -> str:
    d = after - before
    if d == 0:
        return "0"
    pct = "new" if before == 0 else f"{100 * d / before:+.1f}%"
    sign = "+" if d > 0 else "-"
    return f"{sign}{human(abs(d))} ({pct})"


human_delta = _hdelta  # the folder diff's rows show the same change column


def _side(value: int, present: bool) -> str:
    return human(value) if present else "-"


def _finding_line(f: Finding) -> str:
    return f"{f.severity:<7} {f.rule} {f.name} [{location(f)}]: {f.message}"


def render_table(d: ModelDiff) -> str:
    """Terminal text: totals, changed layers, findings that appeared or went away."""
    bt, ht = d.base.totals, d.head.totals
    lines = [
        f"base: {d.base.path}",
        f"head: {d.head.path}",
        "",
        f"total MACs:   {bt.macs:,} → {ht.macs:,}  {delta(bt.macs, ht.macs)}",
        f"total params: {bt.params:,} → {ht.params:,}  {delta(bt.params, ht.params)}",
        "",
    ]
    changed = [c for c in d.layers if c.changed]
    rows = [("layer", "match", "op", "MACs base→head", "Δ MACs", "params base→head", "Δ params")]
    for c in changed:
        rows.append(
            (
                c.name,
                c.match,
                c.op_type,
                f"{_side(c.base_macs, c.base is not None)} → "
                f"{_side(c.head_macs, c.head is not None)}",
                _hdelta(c.base_macs, c.head_macs),
                f"{_side(c.base_params, c.base is not None)} → "
                f"{_side(c.head_params, c.head is not None)}",
                _hdelta(c.base_params, c.head_params),
            )
        )
    if changed:
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for k, r in enumerate(rows):
            lines.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())
            if k == 0:
                lines.append("  ".join("-" * w for w in widths))
    unchanged = len(d.layers) - len(changed)
    lines.append(f"{len(changed)} layers changed, {unchanged} unchanged")
    for title, items in (
        ("new findings", d.new_findings),
        ("fixed findings", d.fixed_findings),
        ("budgets", d.budget_findings),
    ):
        lines += ["", f"{title} ({len(items)}):"]
        lines += [f"  {_finding_line(f)}" for f in sorted_findings(items)]
    return "\n".join(lines) + "\n"


def _layer_json(c: LayerChange) -> dict[str, Any]:
    return {
        "name": c.name,
        "op_type": c.op_type,
        "match": c.match,
        "base_name": None if c.base is None else c.base.name,
        "head_name": None if c.head is None else c.head.name,
        "macs": {"base": c.base_macs, "head": c.head_macs, "delta": c.head_macs - c.base_macs},
        "params": {
            "base": c.base_params,
            "head": c.head_params,
            "delta": c.head_params - c.base_params,
        },
    }


def document(d: ModelDiff) -> dict[str, Any]:
    """The diff as JSON-ready data (exact integers)."""
    bt, ht = d.base.totals, d.head.totals
    return {
        "schema_version": DIFF_SCHEMA_VERSION,
        "base": d.base.path,
        "head": d.head.path,
        "totals": {
            "macs": {"base": bt.macs, "head": ht.macs, "delta": ht.macs - bt.macs},
            "params": {"base": bt.params, "head": ht.params, "delta": ht.params - bt.params},
        },
        "layers": [_layer_json(c) for c in d.layers],
        "new_findings": [finding_dict(f) for f in sorted_findings(d.new_findings)],
        "fixed_findings": [finding_dict(f) for f in sorted_findings(d.fixed_findings)],
        "budget_findings": [finding_dict(f) for f in sorted_findings(d.budget_findings)],
    }


def render_json(d: ModelDiff) -> str:
    """Deterministic JSON text."""
    return json.dumps(document(d), indent=2, ensure_ascii=False) + "\n"


def render_markdown(d: ModelDiff) -> str:
    """A PR comment: totals, changed layers, new/fixed findings and budgets."""
    bt, ht = d.base.totals, d.head.totals
    lines = [
        MARKER,
        "## convaudit diff",
        "",
        f"`{d.base.path}` → `{d.head.path}`",
        "",
        "| | base | head | change |",
        "|---|---:|---:|---:|",
        f"| MACs | {bt.macs:,} | {ht.macs:,} | {delta(bt.macs, ht.macs)} |",
        f"| params | {bt.params:,} | {ht.params:,} | {delta(bt.params, ht.params)} |",
    ]
    changed = [c for c in d.layers if c.changed]
    if changed:
        lines += [
            "",
            "| layer | match | op | MACs base → head | Δ MACs | params base → head | Δ params |",
            "|---|---|---|---:|---:|---:|---:|",
        ]
        for c in changed:
            name = c.name.replace("|", "\\|")
            lines.append(
                f"| `{name}` | {c.match} | {c.op_type} | "
                f"{_side(c.base_macs, c.base is not None)} → "
                f"{_side(c.head_macs, c.head is not None)} | {_hdelta(c.base_macs, c.head_macs)} | "
                f"{_side(c.base_params, c.base is not None)} → "
                f"{_side(c.head_params, c.head is not None)} | "
                f"{_hdelta(c.base_params, c.head_params)} |"
            )
    lines += ["", f"{len(changed)} layers changed, {len(d.layers) - len(changed)} unchanged."]
    for title, items in (
        ("New findings", d.new_findings),
        ("Fixed findings", d.fixed_findings),
        ("Budgets", d.budget_findings),
    ):
        if items:
            lines += ["", f"**{title}** ({len(items)}):", ""]
            for f in sorted_findings(items):
                lines += finding_lines(f)
    return "\n".join(lines) + "\n"


DIFF_REPORTERS: dict[str, Callable[[ModelDiff], str]] = {
    "table": render_table,
    "json": render_json,
    "markdown": render_markdown,
}
