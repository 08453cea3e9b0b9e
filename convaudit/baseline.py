"""Baselines: record today's findings, then report only new ones (and list stale entries).

Findings match by fingerprint (rule, model path, node, op, kernel, channels, group), never by
position or MACs, so re-exporting a model does not resurrect known findings. Repeats count:
two identical fingerprints in a scan need two entries.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

from convaudit.errors import ConfigError
from convaudit.identity import model_key
from convaudit.records import AuditResult, BaselineEntry, BaselineSummary, ModelReport
from convaudit.safe_io import clip, read_regular

SCHEMA_VERSION = 1
_MISSING = "cannot read baseline: no such file"


@dataclasses.dataclass(frozen=True)
class Baseline:
    path: str
    entries: tuple[BaselineEntry, ...]


def render_baseline(result: AuditResult, root: str | None = None) -> str:
    """The baseline file for every finding of ``result`` (deterministic JSON); model paths as
    ``model_key`` names them under the config folder ``root``."""
    entries = []
    for report in result.reports:
        model = model_key(report.path, root)
        for f in report.findings:
            entries.append(
                {
                    "fingerprint": f.fingerprint,
                    "rule": f.rule,
                    "model": model,
                    "node": f.node,
                    "message": f.message,
                }
            )
    entries.sort(key=lambda e: (e["model"], e["rule"], e["node"] or "", e["fingerprint"]))
    doc = {"schema_version": SCHEMA_VERSION, "tool": "convaudit", "findings": entries}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def load_baseline(path: str | Path) -> Baseline:
    """Read and check a baseline file written by ``convaudit baseline create``."""
    p = Path(path)
    raw_bytes = read_regular(p, error=ConfigError, what="baseline", missing=_MISSING)
    try:
        data: Any = json.loads(raw_bytes.decode("utf-8"))
    except RecursionError:
        raise ConfigError("baseline is nested too deeply to be one", path=p) from None
    except ValueError as exc:  # bad UTF-8, bad JSON, a number of more than 4,300 digits
        raise ConfigError(f"baseline is not valid JSON: {clip(str(exc))}", path=p) from None
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise ConfigError(
            f"not a convaudit baseline (schema_version {SCHEMA_VERSION} expected)", path=p
        )
    raw = data.get("findings")
    if not isinstance(raw, list):
        raise ConfigError("baseline has no findings list", path=p)
    entries = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) for k in ("fingerprint", "rule", "model")
        ):
            raise ConfigError(
                f"baseline entry {i} needs fingerprint, rule and model as text", path=p
            )
        entries.append(
            BaselineEntry(
                fingerprint=item["fingerprint"],
                rule=item["rule"],
                model=item["model"],
                node=item.get("node") if isinstance(item.get("node"), str) else None,
                message=str(item.get("message", "")),
            )
        )
    return Baseline(path=str(p), entries=tuple(entries))


def apply_baseline(result: AuditResult, baseline: Baseline, root: str | None = None) -> AuditResult:
    """Hide findings the baseline knows; list its entries for scanned models that no longer
    occur (stale). Entries for models not in this scan are neither matched nor stale."""
    remaining = Counter(e.fingerprint for e in baseline.entries)
    scanned = {model_key(r.path, root) for r in result.reports}
    reports: list[ModelReport] = []
    matched = 0
    for report in result.reports:
        new, known = [], []
        for f in report.findings:
            if remaining[f.fingerprint] > 0:
                remaining[f.fingerprint] -= 1
                known.append(f)
            else:
                new.append(f)
        matched += len(known)
        reports.append(dataclasses.replace(report, findings=tuple(new), baselined=tuple(known)))
    stale = []
    for entry in baseline.entries:
        if entry.model in scanned and remaining[entry.fingerprint] > 0:
            remaining[entry.fingerprint] -= 1
            stale.append(entry)
    summary = BaselineSummary(path=baseline.path, matched=matched, stale=tuple(stale))
    return dataclasses.replace(result, reports=tuple(reports), baseline=summary)
