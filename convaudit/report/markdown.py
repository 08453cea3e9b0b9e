"""Markdown for a pull-request comment: summary table, top layers, findings with their arithmetic.

A hidden marker line lets a bot find and update its own comment; the text stays under GitHub's
65,536-character comment limit by cutting whole lines and saying so.
"""

from __future__ import annotations

from convaudit.humanize import human, percent
from convaudit.records import AuditResult, Finding, ModelReport
from convaudit.report.common import (
    COUNT_HEADERS,
    FAILED,
    arithmetic,
    channels,
    counts_text,
    dims,
    failed_text,
    hidden_note,
    is_flagged,
    layer_label,
    location,
    op_label,
    reports_by_path,
    severity_counts,
    sorted_findings,
    top_layers,
)

MARKER = "<!-- convaudit-report -->"
MAX_CHARS = 65_000
TOP_LAYERS = 10
ICONS = {"error": "🛑", "warning": "⚠️", "info": "ℹ️"}


def _cell(text: str) -> str:
    """Escape a table cell: pipes and newlines would break the row."""
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def _summary(reports: list[ModelReport]) -> list[str]:
    lines = [
        "| model | MACs | params | layers | " + " | ".join(COUNT_HEADERS) + " | status |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in reports:
        c = severity_counts(r.findings)
        if r.facts is None:
            macs = params = layers = "-"
        else:
            t = r.facts.totals
            macs, params, layers = human(t.macs), human(t.params), str(t.layers)
        status = FAILED if r.errors else ("clean" if not r.findings else "findings")
        lines.append(
            f"| {_cell(_code(r.path))} | {macs} | {params} | {layers} | {c['error']} | "
            f"{c['warning']} | {c['info']} | {status} |"
        )
    return lines


def finding_lines(f: Finding) -> list[str]:
    """One finding as a bullet, with the arithmetic as a sub-bullet."""
    icon = ICONS.get(f.severity, "")
    out = [
        f"- {icon} **{f.rule}** {f.name} ({f.severity}) at {_code(location(f))}: "
        f"{f.message.replace(chr(10), ' ')}"
    ]
    arith = arithmetic(f)
    if arith is not None:
        out.append(f"  - {arith}")
    return out


def _model_section(r: ModelReport) -> list[str]:
    lines = ["", f"### {_code(r.path)}", ""]
    for e in r.errors:
        lines.append(f"- 🛑 **error**: {e.replace(chr(10), ' ')}")
    facts = r.facts
    if facts is not None:
        t = facts.totals
        lines.append(
            f"**{human(t.macs)} MACs** ({t.macs:,}) · {human(t.params)} params ({t.params:,}) · "
            f"{t.layers} layer{'s' if t.layers != 1 else ''}"
            + (f", {t.unknown_layers} of unknown cost" if t.unknown_layers else "")
        )
        top = top_layers(facts.layers, TOP_LAYERS)
        if top:
            flagged = {(f.graph, f.node) for f in r.findings if f.node is not None}
            lines += [
                "",
                f"Top {len(top)} of {len(facts.layers)} layers by MACs:",
                "",
                "| layer | op | kernel | Cin→Cout | output | MACs | share | params |",
                "|---|---|---|---|---|---:|---:|---:|",
            ]
            for x in top:
                mark = " 🚩" if is_flagged(x, flagged) else ""
                lines.append(
                    f"| {_cell(_code(layer_label(x)))}{mark} | {op_label(x)} | "
                    f"{dims(x.kernel_shape)} | {channels(x)} | {dims(x.output_shape)} | "
                    f"{human(x.total_macs)} | {percent(x.mac_share)} | {human(x.params)} |"
                )
    if r.findings:
        lines += ["", f"Findings ({len(r.findings)}):", ""]
        for f in sorted_findings(r.findings):
            lines += finding_lines(f)
    elif facts is not None:
        lines += ["", "No findings."]
    hidden = hidden_note(r)
    if hidden:
        lines += ["", f"_{hidden}._"]
    return lines


def truncate(lines: list[str], max_chars: int) -> str:
    """Join lines, cutting whole lines so the result (note included) fits in ``max_chars``."""
    text = "\n".join(lines) + "\n"
    if len(text) <= max_chars:
        return text
    kept: list[str] = []
    size = 0
    budget = max_chars - 400  # room for the note
    for line in lines:
        if size + len(line) + 1 > budget:
            break
        kept.append(line)
        size += len(line) + 1
    omitted = len(lines) - len(kept)
    kept += [
        "",
        f"> **Report truncated**: {omitted} of {len(lines)} lines left out to stay under "
        f"{max_chars:,} characters (GitHub's comment limit). "
        "Run `convaudit scan --format json` or see the SARIF upload for the full report.",
    ]
    return "\n".join(kept) + "\n"


def render(result: AuditResult, *, max_chars: int = MAX_CHARS) -> str:
    """The whole comment: marker, heading, summary table, one section per model."""
    reports = reports_by_path(result)
    failed = failed_text(reports)
    lines = [
        MARKER,
        "## convaudit report",
        "",
        f"{len(reports)} model{'s' if len(reports) != 1 else ''} scanned"
        + (f", {failed}" if failed else "")
        + f" · {counts_text(result.findings)}"
        + (f" · convaudit {result.tool_version}" if result.tool_version else ""),
        "",
        *_summary(reports),
    ]
    for r in reports:
        lines += _model_section(r)
    lines += [
        "",
        "<sub>MAC = one multiply-accumulate; FLOPs = 2 × MACs + bias adds.</sub>",
    ]
    return truncate(lines, max_chars)
