"""The JSON report: a versioned public contract. Keys may be added, never renamed or dropped."""

from __future__ import annotations

import math
from typing import Any

from convaudit.records import AuditResult, Finding, Layer, ModelReport
from convaudit.report.common import sorted_findings
from convaudit.report.jsontext import Raw, dumps, write

SCHEMA_VERSION = 1

CONVENTIONS = {
    "macs": "one multiply-accumulate; Conv: N*Cout*prod(out spatial)*(Cin/group)*prod(kernel); "
    "ConvTranspose: N*Cin*prod(in spatial)*(Cout/group)*prod(kernel); bias adds are not MACs",
    "flops": "2*MACs + bias adds",
    "params": "weight elements + bias elements (a weight shared by several layers counts once)",
    "loops": "layer macs are per model run: per-execution MACs times the static trip count",
    "if": "only the costlier branch of an If is counted (or the branch a constant selects)",
}


def _shape(shape: Any) -> Any:
    return None if shape is None else list(shape)


def layer_dict(layer: Layer) -> dict[str, Any]:
    """One layer as JSON-ready data (exact integers)."""
    return {
        "name": layer.name,
        "op_type": layer.op_type,
        "domain": layer.domain,
        "graph": layer.graph,
        "kernel_shape": _shape(layer.kernel_shape),
        "strides": _shape(layer.strides),
        "pads": _shape(layer.pads),
        "dilations": _shape(layer.dilations),
        "group": layer.group,
        "in_channels": layer.in_channels,
        "out_channels": layer.out_channels,
        "input_shape": _shape(layer.input_shape),
        "output_shape": _shape(layer.output_shape),
        "macs": layer.total_macs,
        "params": layer.params,
        "mac_share": None if layer.mac_share is None else round(layer.mac_share, 6),
        "index": layer.index,
        "category": layer.category,
        "auto_pad": layer.auto_pad,
        "weight_shape": _shape(layer.weight_shape),
        "dtype": layer.dtype,
        "flops": None if layer.flops is None else layer.flops * layer.multiplier,
        "bias_adds": layer.bias_adds,
        "macs_per_execution": layer.macs,
        "executions": layer.multiplier,
        "counted": layer.counted,
        "weight_bytes": layer.weight_bytes,
        "activation_bytes": layer.activation_bytes,
        "note": layer.note,
    }


def _finite(x: float) -> float | None:
    return None if math.isinf(x) or math.isnan(x) else round(x, 4)


def finding_dict(f: Finding) -> dict[str, Any]:
    """One finding as JSON-ready data."""
    out: dict[str, Any] = {
        "rule": f.rule,
        "name": f.name,
        "severity": f.severity,
        "node": f.node,
        "graph": f.graph,
        "message": f.message,
        "fingerprint": f.fingerprint,
        "facts": dict(sorted(f.facts.items())),
        "recommendation": None,
    }
    r = f.recommendation
    if r is not None:
        out["recommendation"] = {
            "kind": r.kind,
            "width": r.width,
            "before": {"macs": r.before_macs, "params": r.before_params},
            "after": {"macs": r.after_macs, "params": r.after_params},
            "saving_factor": _finite(r.saving_factor),
            **dict(sorted(r.details.items())),
        }
    return out


def report_dict(report: ModelReport) -> dict[str, Any]:
    """One model's report as JSON-ready data."""
    facts = report.facts
    model: dict[str, Any] = {"path": report.path, "opset": None, "inputs": None, "outputs": None}
    totals = None
    layers: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    if facts is not None:
        model["opset"] = facts.opset
        model["inputs"] = {k: _shape(v) for k, v in sorted(facts.inputs.items())}
        model["outputs"] = {k: _shape(v) for k, v in sorted(facts.outputs.items())}
        t = facts.totals
        totals = {
            "macs": t.macs,
            "flops": t.flops,
            "params": t.params,
            "conv_macs": t.conv_macs,
            "conv_params": t.conv_params,
            "layers": t.layers,
            "unknown_layers": t.unknown_layers,
            "weight_bytes": t.weight_bytes,
            "by_category": {
                name: {
                    "macs": c.macs,
                    "flops": c.flops,
                    "params": c.params,
                    "layers": c.layers,
                    "unknown_layers": c.unknown_layers,
                    "weight_bytes": c.weight_bytes,
                }
                for name, c in t.by_category.items()
            },
        }
        layers = [layer_dict(x) for x in sorted(facts.layers, key=lambda x: x.index)]
        notes = [
            {"kind": p.kind, "message": p.message, "node": p.node, "graph": p.graph}
            for p in facts.problems
        ]
    return {
        "model": model,
        "totals": totals,
        "layers": layers,
        "findings": [finding_dict(f) for f in sorted_findings(report.findings)],
        "errors": list(report.errors),
        "notes": notes,
        "suppressed": [
            {**finding_dict(f), "reason": f.suppressed_reason} for f in report.suppressed
        ],
        "baselined": len(report.baselined),
    }


# Where a report sits in the document: an item of the top-level "reports" list.
_REPORT_INDENT = "\n    "
# The attribute a report's JSON text is kept under (see ``prerender``).
_TEXT = "_json_text"


def prerender(report: ModelReport) -> None:
    """Write ``report``'s part of the document now and keep it on the report, for ``render``
    to place as it is. ``--jobs`` workers call this, so each model's text is made on a
    worker's core and not serially by the parent after the last model (the largest serial
    step of a folder scan's JSON). A report is immutable, so the text cannot go stale: a
    changed report (``dataclasses.replace``, as the baseline makes) is a new object without
    it. It travels with the report when pickled; the result cache stores fields only."""
    object.__setattr__(report, _TEXT, write(report_dict(report), _REPORT_INDENT))


def _report_value(report: ModelReport) -> Any:
    text = report.__dict__.get(_TEXT)
    return Raw(text) if isinstance(text, str) else report_dict(report)


def document(result: AuditResult) -> dict[str, Any]:
    """The whole JSON document. A report ``prerender`` wrote is its text, placed as it is
    by ``render`` (``json.dumps`` would quote it: ``render`` is the way to the text)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "convaudit", "version": result.tool_version},
        "conventions": CONVENTIONS,
        "reports": [_report_value(r) for r in sorted(result.reports, key=lambda r: r.path)],
        "baseline": _baseline(result),
    }


def _baseline(result: AuditResult) -> dict[str, Any] | None:
    """How the scan compared with ``--baseline`` (None without one)."""
    b = result.baseline
    if b is None:
        return None
    return {
        "path": b.path,
        "matched": b.matched,
        "stale": [
            {
                "fingerprint": e.fingerprint,
                "rule": e.rule,
                "model": e.model,
                "node": e.node,
                "message": e.message,
            }
            for e in b.stale
        ],
    }


def render(result: AuditResult) -> str:
    """Deterministic JSON text: two runs give byte-identical output."""
    return dumps(document(result)) + "\n"
