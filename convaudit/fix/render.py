"""The ``fix`` report as text: a terminal table or JSON (pure functions of a FixResult)."""

from __future__ import annotations

import json
import math
from typing import Any

from convaudit.fix.result import FixResult, LayerFix, TuneOutcome
from convaudit.humanize import human
from convaudit.version import __version__
from convaudit.weights import energy_pct

FORMATS = ("table", "json")
SCHEMA_VERSION = 1


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _dims(t: tuple[int, ...] | None) -> str:
    return "-" if t is None else "x".join(str(d) for d in t)


def _round(x: float | None, digits: int = 6) -> float | None:
    return None if x is None or math.isnan(x) or math.isinf(x) else round(x, digits)


def layer_dict(x: LayerFix) -> dict[str, Any]:
    """One candidate as JSON-ready data (exact integers)."""
    return {
        "name": x.name,
        "op_type": x.op_type,
        "kernel_shape": None if x.kernel_shape is None else list(x.kernel_shape),
        "in_channels": x.in_channels,
        "out_channels": x.out_channels,
        "rewritten": x.rewritten,
        "reason": x.reason,
        "width": x.width,
        "kind": x.kind,
        "width_source": x.width_source,
        "break_even_width": _round(x.break_even, 3),
        "before": {"macs": x.before_macs, "params": x.before_params},
        "after": {"macs": x.after_macs, "params": x.after_params},
        "saving_factor": _round(x.saving_factor, 4),
        "energy_retained": _round(x.energy),
        "predicted_error": _round(x.predicted_error),
        "measured_error": _round(x.measured_error),
        "whitened": x.whitened,
        "folded_batchnorm": x.folded_bn,
        "notes": list(x.notes),
    }


def document(r: FixResult) -> dict[str, Any]:
    """The whole fix report as JSON-ready data (keys are added, never renamed or dropped)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "convaudit", "version": __version__},
        "input": r.input_path,
        "output": r.output_path,
        "written": r.written,
        "message": r.message,
        "layers": [layer_dict(x) for x in r.layers],
        "totals": {
            "before": {"macs": r.macs_before, "params": r.params_before},
            "after": {"macs": r.macs_after, "params": r.params_after},
        },
        "validation": {
            "inputs": r.inputs_source,
            "output_errors": {k: _round(v) for k, v in sorted(r.output_errors.items())},
            "error": _round(r.error),
            "max_error": r.max_error,
            "max_error_default": r.max_error_default,
            "exceeded": r.exceeded,
            "source": r.validation_source or None,
            "validated_on": r.validation_inputs,
            "batch": r.batch,
            "channel_axis": r.channel_axis,
            "channel_errors": {
                k: {
                    "worst_channel": _worst_channel(v),
                    "worst_error": _round(max(v)) if v else None,
                    "channels": [_round(x) for x in v],
                }
                for k, v in sorted(r.channel_errors.items())
            },
            "worst": None if r.worst is None else {"output": r.worst[0], "channel": r.worst[1]},
            "latency_before_s": _round(r.latency_before, 7),
            "latency_after_s": _round(r.latency_after, 7),
            "speedup": _round(r.speedup, 3),
        },
        "external_data": r.external_data,
        "remaining_ca101": list(r.remaining_findings),  # named before kinds; a JSON contract
        "notes": list(r.notes),
        "fix_seconds": _round(r.fix_seconds, 3),
        "tuning": None if r.tuning is None else _tuning(r.tuning),
    }


def _tuning(t: TuneOutcome) -> dict[str, Any]:
    return {
        "steps": t.steps,
        "runs": t.runs,
        "applied": t.applied,
        "error_before": _round(t.error_before),
        "error_after": _round(t.error_after),
        "seconds": _round(t.seconds, 3),
        "reason": t.reason,
    }


def _worst_channel(v: tuple[float, ...]) -> int | None:
    if not v:
        return None
    return max(range(len(v)), key=lambda k: math.inf if not math.isfinite(v[k]) else v[k])


def render_json(r: FixResult) -> str:
    """Deterministic JSON apart from the timings."""
    return json.dumps(document(r), indent=2, ensure_ascii=False) + "\n"


def _rewritten_row(x: LayerFix) -> tuple[str, ...]:
    return (
        x.name,
        f"{_dims(x.kernel_shape)} {x.in_channels}→{x.out_channels}",
        f"{x.width}{' spatial' if x.kind == 'spatial' else ''} ({x.width_source})",
        f"{human(x.before_macs)} → {human(x.after_macs)}",
        f"{x.saving_factor:.1f}x" if x.saving_factor else "-",
        f"{human(x.before_params)} → {human(x.after_params)}",
        ("-" if x.energy is None else energy_pct(x.energy)) + (" (whitened)" * x.whitened),
        _pct(x.predicted_error),
        _pct(x.measured_error),
    )


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for k, row in enumerate(rows):
        out.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def render_table(r: FixResult) -> str:
    """Per-layer table, skipped candidates with reasons, model totals and measurements."""
    lines = [f"== fix {r.input_path} -> {r.output_path}"]
    done = [x for x in r.layers if x.rewritten]
    if done:
        header = (
            "layer",
            "conv",
            "width",
            "MACs",
            "saving",
            "params",
            "energy kept",
            "pred. err",
            "meas. err",
        )
        lines.extend(_table([header, *(_rewritten_row(x) for x in done)]))
    for x in done:
        extra = ([f"folded {x.folded_bn}"] if x.folded_bn else []) + list(x.notes)
        if extra:
            lines.append(f"  {x.name}: {'; '.join(extra)}")
    for x in done:
        if x.energy is not None and x.energy < 0.5:
            lines.append(
                f"warning: {x.name}: the weights are not low-rank at width {x.width} "
                f"(energy retained {_pct(x.energy)}): expect a large error without fine-tuning"
            )
    for x in r.layers:
        if not x.rewritten:
            figures = ""
            if x.energy is not None:
                figures = (
                    f" (at width {x.width}: energy retained {energy_pct(x.energy)}, "
                    f"predicted error {_pct(x.predicted_error)})"
                )
            lines.append(f"skipped {x.name}: {x.reason}{figures}")
    if r.macs_after is not None:
        lines.append("")
        ratio = r.macs_before / r.macs_after if r.macs_after else float("inf")
        lines.append(
            f"model: {human(r.macs_before)} → {human(r.macs_after)} MACs "
            f"({r.macs_before:,} → {r.macs_after:,}, {ratio:.2f}x fewer); "
            f"params {human(r.params_before)} → {human(r.params_after)}"
        )
    if r.output_errors:
        errs = ", ".join(f"{k} {_pct(v)}" for k, v in sorted(r.output_errors.items()))
        on = r.validation_inputs or r.inputs_source
        batch = "" if r.batch is None else f", batch {r.batch}"
        lines.append(f"measured on {on}{batch}: relative L2 output error {errs}")
        for name, channels in sorted(r.channel_errors.items()):
            if len(channels) > 1:
                k = _worst_channel(channels)
                assert k is not None
                lines.append(
                    f"  {name}: worst channel {k} (axis {r.channel_axis}) {_pct(channels[k])}"
                )
        budget = "default budget" if r.max_error_default else "--max-error"
        if r.error is not None and r.max_error is not None:
            lines.append(f"worst error {_pct(r.error)} against the {budget} {_pct(r.max_error)}")
    if r.speedup is not None and r.latency_before and r.latency_after:
        lines.append(
            f"latency (onnxruntime CPU, 1 thread, median): {1000 * r.latency_before:.3f} ms → "
            f"{1000 * r.latency_after:.3f} ms ({r.speedup:.2f}x)"
        )
    lines.extend(f"note: {n}" for n in r.notes)
    if r.remaining_findings:
        by = " or ".join(r.remaining_rules) or "a bottleneck rule"
        lines.append(f"still flagged by {by}: {', '.join(r.remaining_findings)}")
    lines.append(r.message)
    return "\n".join(lines) + "\n"


RENDERERS = {"table": render_table, "json": render_json}
