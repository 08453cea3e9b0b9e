"""SARIF 2.1.0 for GitHub code scanning: rules in tool.driver, one result per finding.

A model is a binary artefact, so every result points at line 1 of the model file and names the
node in a logical location; ``partialFingerprints`` carries the finding's own fingerprint so that
several findings in one file stay separate alerts (GitHub would otherwise hash line 1's text).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import PurePath, PureWindowsPath
from typing import Any
from urllib.parse import quote

from convaudit.records import AuditResult, Finding, ModelReport, RuleInfo
from convaudit.report.common import (
    arithmetic,
    finding_path,
    reports_by_path,
    sorted_findings,
)

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/convaudit/convaudit"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}
FINGERPRINT_KEY = "convaudit/v1"
SRCROOT = "%SRCROOT%"  # the uriBaseId of every model path under the scan's source root
MAX_RESULTS = 25_000  # GitHub code scanning rejects a run with more results


def artifact_uri(path: str) -> str:
    """A model path as a SARIF URI: relative paths with '/' (GitHub resolves them from the repo
    root), absolute paths as file:// URIs."""
    p = PureWindowsPath(path) if "\\" in path else PurePath(path)
    if p.is_absolute():
        return p.as_uri()
    # A URI reference, like as_uri(): a space or '#' in a file name must be percent-encoded
    # ('#' would start a fragment and cut the path).
    return quote(p.as_posix(), safe="/")


def artifact_location(path: str, result: AuditResult) -> dict[str, Any]:
    """A model path as an artifactLocation: relative to %SRCROOT% (the git work tree the scan
    ran in) when it lies under it, so a scan from a subfolder still gives repository paths, not
    ``../model.onnx``; else an absolute file URI. A hand-built result (no roots) keeps the path
    as given."""
    if result.source_root is None or result.cwd is None:
        return {"uri": artifact_uri(path)}
    absolute = os.path.normpath(os.path.join(result.cwd, path))
    rel = os.path.relpath(absolute, result.source_root)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return {"uri": artifact_uri(absolute)}
    return {"uri": artifact_uri(rel), "uriBaseId": SRCROOT}


def rule_descriptor(info: RuleInfo) -> dict[str, Any]:
    """tool.driver.rules[] entry with every field GitHub reads."""
    full = info.description or info.summary
    help_md = info.help_markdown or f"**{info.id} {info.name}**: {full}"
    out: dict[str, Any] = {
        "id": info.id,
        "name": info.name,
        "shortDescription": {"text": info.summary},
        "fullDescription": {"text": full},
        "help": {"text": _plain(help_md), "markdown": help_md},
        "defaultConfiguration": {"level": LEVELS.get(info.severity, "warning")},
        "properties": {"tags": ["onnx", "performance"], "precision": "very-high"},
    }
    if info.help_uri:
        out["helpUri"] = info.help_uri
    return out


def _plain(markdown: str) -> str:
    return markdown.replace("**", "").replace("`", "")


def _rule_from_finding(f: Finding) -> RuleInfo:
    return RuleInfo(id=f.rule, name=f.name, summary=f.name.replace("-", " "), severity=f.severity)


def _result(f: Finding, report: ModelReport, index: int, result: AuditResult) -> dict[str, Any]:
    arith = arithmetic(f)
    text = f.message if arith is None else f"{f.message}\n{arith}"
    loc: dict[str, Any] = {
        "physicalLocation": {
            "artifactLocation": artifact_location(finding_path(f, report), result),
            "region": {"startLine": 1},
        }
    }
    if f.node is not None:
        graph = f.graph or "main"
        loc["logicalLocations"] = [
            {"name": f.node, "fullyQualifiedName": f"{graph}/{f.node}", "kind": "member"}
        ]
    props: dict[str, Any] = {"severity": f.severity}
    r = f.recommendation
    if r is not None:
        props["recommendation"] = {
            "kind": r.kind,
            "width": r.width,
            "before": {"macs": r.before_macs, "params": r.before_params},
            "after": {"macs": r.after_macs, "params": r.after_params},
        }
    return {
        "ruleId": f.rule,
        "ruleIndex": index,
        "level": LEVELS.get(f.severity, "warning"),
        "message": {"text": text},
        "locations": [loc],
        "partialFingerprints": {FINGERPRINT_KEY: f.fingerprint},
        "properties": props,
    }


def document(
    result: AuditResult,
    rules: Sequence[RuleInfo] | None = None,
    max_results: int = MAX_RESULTS,
) -> dict[str, Any]:
    """The SARIF log as plain dicts (one run, at most ``max_results`` results)."""
    if rules is None:  # the rules the scan ran; a hand-built result describes its findings'
        rules = result.rules
    catalogue: dict[str, RuleInfo] = {r.id: r for r in rules}
    reports = reports_by_path(result)
    for rep in reports:
        for f in rep.findings:
            catalogue.setdefault(f.rule, _rule_from_finding(f))
    ids = sorted(catalogue)
    index = {rid: i for i, rid in enumerate(ids)}
    results = [
        _result(f, rep, index[f.rule], result)
        for rep in reports
        for f in sorted_findings(rep.findings)
    ]
    dropped = len(results) - max_results
    results = results[:max_results]
    notifications: list[dict[str, Any]] = [
        {
            "level": "error",
            "message": {"text": e},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": artifact_location(rep.path, result),
                        "region": {"startLine": 1},
                    }
                }
            ],
        }
        for rep in reports
        for e in rep.errors
    ]
    if dropped > 0:
        notifications.append(
            {
                "level": "warning",
                "message": {
                    "text": f"{dropped} results left out: GitHub accepts at most "
                    f"{max_results:,} per run (split the scan with --shard)"
                },
            }
        )
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "convaudit",
                        "version": result.tool_version or "0",
                        "semanticVersion": result.tool_version or "0",
                        "informationUri": INFORMATION_URI,
                        "rules": [rule_descriptor(catalogue[i]) for i in ids],
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": not any(r.errors for r in reports),
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": results,
                "columnKind": "utf16CodeUnits",
                # No absolute path here: reports stay byte-identical across checkouts, and code
                # scanning resolves %SRCROOT% to the repository it checked out.
                "originalUriBaseIds": {
                    SRCROOT: {
                        "description": {
                            "text": "The root of the git work tree convaudit ran in (else the "
                            "folder it ran in); model URIs are relative to it."
                        }
                    }
                },
            }
        ],
    }


def render(result: AuditResult, *, rules: Sequence[RuleInfo] | None = None) -> str:
    """Deterministic SARIF JSON text."""
    return json.dumps(document(result, rules), indent=2, ensure_ascii=False) + "\n"
