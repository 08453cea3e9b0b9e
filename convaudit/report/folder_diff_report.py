"""Renderers for ``convaudit diff`` of two folders: table, json and markdown (pure functions)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from convaudit.diff_folders import FolderDiff
from convaudit.humanize import human
from convaudit.report.common import location, plural, sorted_findings
from convaudit.report.diff_report import (
    DIFF_SCHEMA_VERSION,
    MARKER,
    delta,
    document,
    human_delta,
)
from convaudit.report.diff_report import render_table as model_table
from convaudit.report.json_report import finding_dict
from convaudit.report.markdown import finding_lines


def _totals(d: FolderDiff) -> tuple[int, int, int, int]:
    """(base MACs, head MACs, base params, head params) over every model on each side."""
    bm = sum(p.base.totals.macs for _, p in d.pairs)
    hm = sum(p.head.totals.macs for _, p in d.pairs)
    bp = sum(p.base.totals.params for _, p in d.pairs)
    hp = sum(p.head.totals.params for _, p in d.pairs)
    for _, r in d.added:
        if r.facts is not None:
            hm += r.facts.totals.macs
            hp += r.facts.totals.params
    for _, r in d.removed:
        if r.facts is not None:
            bm += r.facts.totals.macs
            bp += r.facts.totals.params
    return bm, hm, bp, hp


def _rows(d: FolderDiff) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for rel, p in d.pairs:
        bt, ht = p.base.totals, p.head.totals
        rows.append(
            (
                rel,
                f"{human(bt.macs)} → {human(ht.macs)}",
                human_delta(bt.macs, ht.macs),
                f"{human(bt.params)} → {human(ht.params)}",
                human_delta(bt.params, ht.params),
                str(len(p.findings)),
            )
        )
    for rel, r in d.added:
        t = r.facts.totals if r.facts is not None else None
        macs = "?" if t is None else human(t.macs)
        params = "?" if t is None else human(t.params)
        rows.append((rel, f"- → {macs}", "added", f"- → {params}", "added", str(len(r.findings))))
    for rel, r in d.removed:
        t = r.facts.totals if r.facts is not None else None
        macs = "?" if t is None else human(t.macs)
        params = "?" if t is None else human(t.params)
        rows.append((rel, f"{macs} → -", "removed", f"{params} → -", "removed", "0"))
    return rows


HEADERS = ("model", "MACs base → head", "Δ MACs", "params base → head", "Δ params", "new")


def _summary(d: FolderDiff) -> str:
    bm, hm, bp, hp = _totals(d)
    return (
        f"{plural(len(d.pairs), 'model')} in both, {len(d.added)} added, {len(d.removed)} "
        f"removed; MACs {bm:,} → {hm:,} {delta(bm, hm)}; params {bp:,} → {hp:,} {delta(bp, hp)}"
    )


def render_table(d: FolderDiff) -> str:
    """One row per model (paired, added, removed), the totals, then each changed pair."""
    lines = [f"base: {d.base}", f"head: {d.head}", ""]
    rows = [HEADERS, *_rows(d)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    for k, row in enumerate(rows):
        lines.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += ["", _summary(d)]
    for rel, p in d.pairs:
        if any(c.changed for c in p.layers) or p.findings or p.fixed_findings:
            lines += ["", f"== {rel}", model_table(p).rstrip("\n")]
    for rel, r in d.added:
        if r.findings:
            lines += ["", f"== {rel} (added): {plural(len(r.findings), 'finding')}"]
            lines += [
                f"  {f.severity:<7} {f.rule} {f.name} [{location(f)}]: {f.message}"
                for f in sorted_findings(r.findings)
            ]
    for e in d.errors:
        lines.append(f"failed to scan: {e}")
    return "\n".join(lines) + "\n"


def render_json(d: FolderDiff) -> str:
    """The folder diff as data: each pair's model diff document, added and removed models."""
    bm, hm, bp, hp = _totals(d)
    doc: dict[str, Any] = {
        "schema_version": DIFF_SCHEMA_VERSION,
        "base": d.base,
        "head": d.head,
        "totals": {
            "macs": {"base": bm, "head": hm, "delta": hm - bm},
            "params": {"base": bp, "head": hp, "delta": hp - bp},
        },
        "models": [{"path": rel, **document(p)} for rel, p in d.pairs],
        "added": [
            {
                "path": rel,
                "macs": None if r.facts is None else r.facts.totals.macs,
                "params": None if r.facts is None else r.facts.totals.params,
                "findings": [finding_dict(f) for f in sorted_findings(r.findings)],
            }
            for rel, r in d.added
        ],
        "removed": [
            {
                "path": rel,
                "macs": None if r.facts is None else r.facts.totals.macs,
                "params": None if r.facts is None else r.facts.totals.params,
            }
            for rel, r in d.removed
        ],
        "errors": list(d.errors),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def render_markdown(d: FolderDiff) -> str:
    """A PR comment: a row per model, the totals, then new findings and budgets per model."""
    lines = [MARKER, "## convaudit diff", "", f"`{d.base}` → `{d.head}`", ""]
    lines += [
        "| " + " | ".join(HEADERS) + " |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in _rows(d):
        lines.append("| `" + row[0].replace("|", "\\|") + "` | " + " | ".join(row[1:]) + " |")
    lines += ["", _summary(d) + "."]
    for rel, p in d.pairs:
        if p.findings:
            lines += ["", f"**{rel}**: new findings and budgets ({len(p.findings)}):", ""]
            for f in sorted_findings(p.findings):
                lines += finding_lines(f)
    for rel, r in d.added:
        if r.findings:
            lines += ["", f"**{rel}** (added): findings ({len(r.findings)}):", ""]
            for f in sorted_findings(r.findings):
                lines += finding_lines(f)
    if d.errors:
        lines += ["", "**Failed to scan:**", ""] + [f"- {e}" for e in d.errors]
    return "\n".join(lines) + "\n"


FOLDER_DIFF_REPORTERS: dict[str, Callable[[FolderDiff], str]] = {
    "table": render_table,
    "json": render_json,
    "markdown": render_markdown,
}
