"""One self-contained HTML file: summary cards, two SVG charts per model, a sortable layer table,
and each finding with its before/after arithmetic. No network, no external assets, no timestamps.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from convaudit.humanize import human, percent
from convaudit.records import AuditResult, Finding, Layer, ModelReport
from convaudit.report.common import (
    COUNT_HEADERS,
    FAILED,
    channels,
    counts_text,
    dims,
    factor,
    failed_text,
    hidden_note,
    layer_flag,
    layer_label,
    location,
    op_label,
    plural,
    reports_by_path,
    severity_counts,
    sorted_findings,
    worst_flags,
)
from convaudit.report.html_assets import CSS, JS

# (header, right-aligned, sorted as a number)
COLUMNS = (
    ("#", True, True),
    ("layer", False, False),
    ("op", False, False),
    ("kernel", False, False),
    ("Cin→Cout", False, True),  # by input channels
    ("group", True, True),
    ("stride", False, False),
    ("input", False, False),
    ("output", False, False),
    ("MACs", True, True),
    ("share", True, True),
    ("params", True, True),
)


def op_group(layer: Layer) -> str:
    """Chart bucket: op type, with the kernel for convolutions (``Conv 5x5``)."""
    op = op_label(layer)
    return f"{op} {dims(layer.kernel_shape)}" if layer.kernel_shape else op


def model_data(report: ModelReport) -> dict[str, Any]:
    """What the charts need for one model (layers in graph order, MACs by op group)."""
    facts = report.facts
    if facts is None:
        return {"path": report.path, "layers": None, "by_op": []}
    flags = worst_flags(report)
    layers = sorted(facts.layers, key=lambda x: x.index)
    groups: dict[str, int] = {}
    for x in layers:
        if x.counted and x.total_macs:
            groups[op_group(x)] = groups.get(op_group(x), 0) + x.total_macs
    return {
        "path": report.path,
        "layers": [
            {
                "index": x.index,
                "name": layer_label(x),
                "op": op_label(x),
                "macs": x.total_macs,
                "share": None if x.mac_share is None else round(x.mac_share, 6),
                "counted": x.counted,
                "flag": layer_flag(x, flags),
            }
            for x in layers
        ],
        "by_op": [
            {"label": k, "macs": v}
            for k, v in sorted(groups.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
    }


def _td(text: str, sort: str | int | float | None, num: bool = False, raw: bool = False) -> str:
    v = "" if sort is None else str(sort)
    cls = ' class="num"' if num else ""
    body = text if raw else escape(text)
    return f'<td{cls} data-v="{escape(v)}">{body}</td>'


def _layer_rows(report: ModelReport, mi: int) -> str:
    assert report.facts is not None
    flags = worst_flags(report)
    top = max((x.total_macs or 0 for x in report.facts.layers), default=0) or 1
    rows = []
    for x in sorted(report.facts.layers, key=lambda x: x.index):
        flag = layer_flag(x, flags)
        cls = "" if flag is None else f' class="flagged{" info" if flag == "info" else ""}"'
        width = round(60 * (x.total_macs or 0) / top)
        macs = human(x.total_macs) + ("" if x.counted else " (not counted)")
        share_html = f'<span class="sharebar" style="width:{width}px"></span>' + escape(
            percent(x.mac_share)
        )
        rows.append(
            f'<tr id="m{mi}-l{x.index}" data-index="{x.index}"{cls}>'
            + _td(str(x.index), x.index, num=True)
            + _td(layer_label(x), layer_label(x))
            + _td(op_label(x), op_label(x))
            + _td(dims(x.kernel_shape), dims(x.kernel_shape))
            + _td(channels(x), x.in_channels)
            + _td(str(x.group or "-"), x.group, num=True)
            + _td(dims(x.strides), dims(x.strides))
            + _td(dims(x.input_shape), dims(x.input_shape))
            + _td(dims(x.output_shape), dims(x.output_shape))
            + f'<td class="num" data-v="{"" if x.total_macs is None else x.total_macs}" '
            f'title="{"" if x.total_macs is None else f"{x.total_macs:,}"}">{escape(macs)}</td>'
            + _td(share_html, x.mac_share, num=True, raw=True)
            + _td(human(x.params), x.params, num=True)
            + "</tr>"
        )
    return "\n".join(rows)


def _finding(f: Finding) -> str:
    sev = escape(f.severity)
    parts = [
        f'<div class="finding {sev}">',
        '<div class="title">'
        f'<span class="badge {sev}">{sev}</span>'
        f"<strong>{escape(f.rule)}</strong> <span>{escape(f.name)}</span>"
        f'<span class="subtle">at <code>{escape(location(f))}</code></span></div>',
        f'<div class="msg">{escape(f.message)}</div>',
    ]
    r = f.recommendation
    if r is not None:
        top = max(r.before_macs, r.after_macs, 1)
        ptop = max(r.before_params, r.after_params, 1)
        width = f" of width {r.width}" if r.width is not None else ""
        parts.append(
            f'<div class="subtle" style="margin-bottom:6px">Recommendation: '
            f"{escape(r.kind)}{escape(width)} · "
            f'<span class="saving">{factor(r.before_macs, r.after_macs)} fewer MACs</span></div>'
        )
        parts.append('<div class="ba">')
        for label, value, scale, cls in (
            ("MACs before", r.before_macs, top, ""),
            ("MACs after", r.after_macs, top, " after"),
            ("params before", r.before_params, ptop, ""),
            ("params after", r.after_params, ptop, " after"),
        ):
            pct = max(0.5, 100 * value / scale) if value else 0
            parts.append(
                f'<span class="subtle">{label}</span>'
                f'<div class="track"><div class="fill{cls}" style="width:{pct:.1f}%"></div></div>'
                f'<span class="fig">{value:,} ({human(value)})</span>'
            )
        parts.append("</div>")
    parts.append("</div>")
    return "\n".join(parts)


def _card(label: str, value: str, exact: str = "", cls: str = "") -> str:
    extra = f" {cls}" if cls else ""
    return (
        f'<div class="card{extra}"><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div><div class="exact">{escape(exact)}</div></div>'
    )


def _model(report: ModelReport, mi: int) -> str:
    out = [f'<section class="model" id="model-{mi}">']
    c = severity_counts(report.findings)
    out.append(
        f'<div class="model-head"><div><h2><code>{escape(report.path)}</code></h2></div></div>'
    )
    for e in report.errors:
        out.append(f'<div class="errorbox"><strong>Scan error:</strong> {escape(e)}</div>')
    facts = report.facts
    if facts is not None:
        t = facts.totals
        n = len(report.findings)
        out.append('<div class="cards">')
        out.append(_card("MACs", human(t.macs), f"{t.macs:,}"))
        out.append(_card("FLOPs", human(t.flops), "2 × MACs + bias adds"))
        out.append(_card("Params", human(t.params), f"{t.params:,}"))
        unknown = f"{t.unknown_layers} of unknown cost" if t.unknown_layers else "all costed"
        out.append(_card("Layers", str(t.layers), unknown))
        out.append(
            _card(
                "Findings",
                str(n),
                counts_text(report.findings),
                "bad" if c["error"] or c["warning"] else "good",
            )
        )
        out.append("</div>")
        out.append('<div class="grid2">')
        out.append(
            '<div class="panel"><h3>MACs per layer, in graph order</h3>'
            f'<div class="chart" data-chart="layers" data-model="{mi}"></div>'
            '<div class="legend"><span><span class="swatch" style="background:#2f6fdf"></span>'
            'layer</span><span><span class="swatch" style="background:#e5484d"></span>'
            'flagged: error or warning</span><span><span class="swatch" '
            'style="background:#f5a524"></span>flagged: info</span>'
            '<span><span class="swatch" style="background:#c7cdd8">'
            "</span>not counted (cheaper If branch)</span><span>click a bar to find its row"
            "</span></div></div>"
        )
        out.append(
            '<div class="panel"><h3>Share of MACs by op type</h3>'
            f'<div class="chart" data-chart="share" data-model="{mi}"></div></div>'
        )
        out.append("</div>")
    if report.findings:
        out.append(f'<div class="panel"><h3>Findings ({len(report.findings)})</h3>')
        out.extend(_finding(f) for f in sorted_findings(report.findings))
        out.append("</div>")
    elif facts is not None:
        out.append('<div class="panel"><span class="clean">No findings.</span></div>')
    hidden = hidden_note(report)
    if hidden:
        out.append(f'<div class="subtle" style="margin:-8px 0 18px">{escape(hidden)}.</div>')
    if facts is not None and facts.layers:
        heads = "".join(
            f'<th{" class=num" if right else ""} data-type="{"num" if num else "text"}" '
            f'scope="col">{escape(h)}</th>'
            for h, right, num in COLUMNS
        )
        out.append(
            f'<div class="panel"><h3>Layers ({len(facts.layers)})</h3>'
            '<div class="subtle" style="margin-bottom:8px">Click a column header to sort.</div>'
            f'<div class="tablewrap"><table class="layers"><thead><tr>{heads}</tr></thead>'
            f"<tbody>\n{_layer_rows(report, mi)}\n</tbody></table></div></div>"
        )
    out.append("</section>")
    return "\n".join(out)


def _overview(reports: list[ModelReport]) -> str:
    rows = []
    for mi, r in enumerate(reports):
        c = severity_counts(r.findings)
        t = r.facts.totals if r.facts else None
        status = FAILED if r.errors else ("clean" if not r.findings else "findings")
        rows.append(
            f'<tr><td><a href="#model-{mi}"><code>{escape(r.path)}</code></a></td>'
            f'<td class="num">{human(t.macs) if t else "-"}</td>'
            f'<td class="num">{human(t.params) if t else "-"}</td>'
            f'<td class="num">{c["error"]}</td><td class="num">{c["warning"]}</td>'
            f'<td class="num">{c["info"]}</td><td>{status}</td></tr>'
        )
    return (
        '<div class="panel"><h3>Models</h3><table class="overview"><thead><tr><th>model</th>'
        '<th class="num">MACs</th><th class="num">params</th>'
        + "".join(f'<th class="num">{h}</th>' for h in COUNT_HEADERS)
        + "<th>status</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )


def render(result: AuditResult) -> str:
    """The whole document."""
    reports = reports_by_path(result)
    payload = {"models": [model_data(r) for r in reports]}
    data = json.dumps(payload, sort_keys=True, separators=(",", ":")).replace("<", "\\u003c")
    expected = sum(2 for r in reports if r.facts is not None)
    version = f"convaudit {result.tool_version}" if result.tool_version else "convaudit"
    failed = failed_text(reports)
    meta = " · ".join(
        x
        for x in (plural(len(reports), "model"), failed, counts_text(result.findings))
        if x is not None
    )
    title = reports[0].path if len(reports) == 1 else meta
    body = [_overview(reports)] if len(reports) > 1 else []
    body += [_model(r, mi) for mi, r in enumerate(reports)]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n"
        f"<title>convaudit report: {escape(title)}</title>\n"
        f"<style>{CSS}</style></head>\n"
        f'<body data-charts-expected="{expected}" data-charts-drawn="0">\n'
        f'<header class="top"><h1>convaudit report</h1><span class="meta">{escape(version)} · '
        f"{escape(meta)}</span></header>\n"
        "<main>\n" + "\n".join(body) + "\n</main>\n"
        "<footer>MAC = one multiply-accumulate. FLOPs = 2 × MACs + bias adds. Conv MACs = N · Cout "
        "· prod(output spatial) · (Cin / group) · prod(kernel).</footer>\n"
        f'<script type="application/json" id="convaudit-data">{data}</script>\n'
        f"<script>{JS}</script>\n"
        "</body></html>\n"
    )
