"""The terminal table: layers by MACs, totals, unknown count, findings worst first."""

from __future__ import annotations

from collections.abc import Sequence

from convaudit.humanize import human, percent
from convaudit.records import AuditResult, Layer, ModelReport
from convaudit.report.common import FAILED, location, plural, sorted_findings
from convaudit.report.summary import paint

HEADERS = (
    "name",
    "op",
    "kernel",
    "Cin→Cout",
    "group",
    "stride",
    "input",
    "output",
    "MACs",
    "share",
    "params",
)


def _dims(t: Sequence[int] | None) -> str:
    return "-" if t is None else "x".join(str(d) for d in t)


def _row(layer: Layer) -> tuple[str, ...]:
    op = layer.op_type if not layer.domain else f"{layer.domain}.{layer.op_type}"
    chans = f"{layer.in_channels if layer.in_channels is not None else '?'}→" + (
        f"{layer.out_channels if layer.out_channels is not None else '?'}"
    )
    name = layer.name if layer.graph == "main" else f"{layer.graph}:{layer.name}"
    macs = human(layer.total_macs)
    if layer.multiplier != 1:
        macs += f" (×{layer.multiplier})"
    if not layer.counted:
        macs += " (not counted)"
    return (
        name,
        op,
        _dims(layer.kernel_shape),
        chans,
        str(layer.group or "-"),
        _dims(layer.strides),
        _dims(layer.input_shape),
        _dims(layer.output_shape),
        macs,
        percent(layer.mac_share),
        human(layer.params),
    )


def _format(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    numeric = {8, 9, 10}
    out = []
    for k, r in enumerate(rows):
        cells = [
            c.rjust(widths[i]) if i in numeric else c.ljust(widths[i]) for i, c in enumerate(r)
        ]
        out.append("  ".join(cells).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def sort_key(layer: Layer) -> tuple[int, int]:
    """Costliest first; unknown last; graph order breaks ties."""
    return (
        -(layer.total_macs if layer.total_macs is not None and layer.counted else -1),
        layer.index,
    )


def render_report(report: ModelReport, *, top: int | None = None, colour: bool = False) -> str:
    """One model's section; ``top`` keeps the N costliest layers of its table."""
    lines = [paint(f"== {report.path}", "header", colour)]
    facts = report.facts
    if facts is not None:
        layers = sorted(facts.layers, key=sort_key)
        shown = layers if top is None else layers[:top]
        if shown:
            lines.extend(_format([HEADERS, *(_row(x) for x in shown)]))
        if len(shown) < len(layers):
            rest = len(layers) - len(shown)
            lines.append(f"... {plural(rest, 'more layer')} (--top {top})")
        t = facts.totals
        lines.append("")
        lines.append(
            f"total: {human(t.macs)} MACs ({t.macs:,}), {human(t.flops)} FLOPs, "
            f"{human(t.params)} params ({t.params:,}); conv: {human(t.conv_macs)} MACs, "
            f"{human(t.conv_params)} params; {t.layers} layer{'' if t.layers == 1 else 's'}, "
            f"{t.unknown_layers} with unknown cost"
        )
        for p in facts.problems:
            lines.append(f"note: {p.message}")
    if report.findings:
        lines.append("")
        lines.append("findings:")
        for f in sorted_findings(report.findings):
            severity = paint(f"{f.severity:<7}", f.severity, colour)
            lines.append(f"  {severity} {f.rule} {f.name} [{location(f)}]: {f.message}")
    for f in report.suppressed:
        lines.append(f"  suppressed {f.rule} [{location(f)}]: {f.suppressed_reason}")
    if report.baselined:
        lines.append(f"  ({len(report.baselined)} known findings hidden by the baseline)")
    for e in report.errors:
        lines.append(f"{paint(FAILED, 'failed', colour)}: {e}")
    return "\n".join(lines) + "\n"


def render(result: AuditResult, *, top: int | None = None, colour: bool = False) -> str:
    """All models, separated by blank lines; then stale baseline entries, if any. ``top`` keeps
    each model's N costliest layers; ``colour`` adds ANSI colours (for a terminal only)."""
    reports = sorted(result.reports, key=lambda r: r.path)
    text = "\n".join(render_report(r, top=top, colour=colour) for r in reports)
    b = result.baseline
    if b is not None and b.stale:
        text += f"\nstale baseline entries in {b.path} (fixed or changed; remove them):\n"
        text += "".join(f"  {e.rule} {e.model} [{e.node}]: {e.message}\n" for e in b.stale)
    return text
