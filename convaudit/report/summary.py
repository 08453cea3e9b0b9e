"""The terminal's extra views of a run: the fleet summary after a multi-model table, counts by
rule (``--statistics``, as ruff prints them) and the findings alone (``--quiet``)."""

from __future__ import annotations

import json
from collections import Counter

from convaudit.humanize import human
from convaudit.records import AuditResult, Finding, severity_rank
from convaudit.report.common import (
    counts_text,
    failed_text,
    finding_path,
    location,
    plural,
    reports_by_path,
    sorted_findings,
)

# ANSI styles, used only when the caller says the output is a terminal that wants colour.
_STYLES = {"error": "1;31", "warning": "33", "info": "36", "failed": "1;31", "header": "1"}


def paint(text: str, style: str, colour: bool) -> str:
    """``text`` in the style's ANSI colour when ``colour``, else unchanged."""
    code = _STYLES.get(style)
    return f"\x1b[{code}m{text}\x1b[0m" if colour and code else text


def _by_rule(result: AuditResult) -> list[tuple[str, str, str, int]]:
    """(rule, name, worst severity, count), most frequent first, then by rule id."""
    counts: Counter[str] = Counter()
    names: dict[str, str] = {}
    worst: dict[str, str] = {}
    for f in result.findings:
        counts[f.rule] += 1
        names[f.rule] = f.name
        if f.rule not in worst or severity_rank(f.severity) < severity_rank(worst[f.rule]):
            worst[f.rule] = f.severity
    return sorted(
        ((rule, names[rule], worst[rule], n) for rule, n in counts.items()),
        key=lambda row: (-row[3], row[0]),
    )


def fleet_summary(result: AuditResult, *, colour: bool = False) -> str:
    """Models, failures, the totals over the scanned ones and the findings by rule."""
    reports = reports_by_path(result)
    scanned = [r for r in reports if r.facts is not None]
    failed = failed_text(reports)
    head = f"== summary: {plural(len(reports), 'model')}"
    if failed:
        head += f", {paint(failed, 'failed', colour)}"
    lines = [paint(head, "header", colour)]
    macs = sum(r.facts.totals.macs for r in scanned if r.facts is not None)
    params = sum(r.facts.totals.params for r in scanned if r.facts is not None)
    lines.append(
        f"total: {human(macs)} MACs ({macs:,}), {human(params)} params ({params:,}) "
        f"over {plural(len(scanned), 'scanned model')}"
    )
    lines.append(counts_text(result.findings))
    rows = _by_rule(result)
    width = max((len(str(n)) for *_, n in rows), default=1)
    for rule, name, severity, n in rows:
        lines.append(f"  {n:>{width}}  {rule}  {paint(f'{severity:<7}', severity, colour)} {name}")
    return "\n".join(lines) + "\n"


def statistics(result: AuditResult, *, colour: bool = False) -> str:
    """``--statistics``: one line per rule with findings, most frequent first (ruff's form)."""
    rows = _by_rule(result)
    width = max((len(str(n)) for *_, n in rows), default=1)
    return "".join(
        f"{n:>{width}}  {rule}  {paint(f'{severity:<7}', severity, colour)} {name}\n"
        for rule, name, severity, n in rows
    )


def statistics_json(result: AuditResult) -> str:
    """``--statistics --format json``: the same rows as data."""
    rows = [
        {"code": rule, "name": name, "severity": severity, "count": n}
        for rule, name, severity, n in _by_rule(result)
    ]
    return json.dumps(rows, indent=2) + "\n"


def _finding_line(f: Finding, path: str, colour: bool) -> str:
    severity = paint(f.severity, f.severity, colour)
    return f"{path}: {severity} {f.rule} {f.name} [{location(f)}]: {f.message}"


def findings_only(result: AuditResult, *, colour: bool = False) -> str:
    """``--quiet``: one line per finding, by model then worst first; nothing when clean."""
    lines = [
        _finding_line(f, finding_path(f, report), colour)
        for report in reports_by_path(result)
        for f in sorted_findings(report.findings)
    ]
    return "".join(line + "\n" for line in lines)
