"""Helpers for report tests: sample scans, a hand-built CA101 finding, golden-file paths.

Golden files are rewritten only when CONVAUDIT_UPDATE_GOLDEN=1 is set; otherwise a difference
fails the test (review the diff, then regenerate deliberately).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from convaudit.api import scan
from convaudit.records import AuditResult, Finding, Recommendation

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
SAMPLES = ("textbook_5x5", "textbook_bottleneck", "inception_block")
UPDATE = os.environ.get("CONVAUDIT_UPDATE_GOLDEN") == "1"

# The textbook arithmetic: 5x5 480->48 on 14x14, 1x1 480->16 bottleneck first.
TEXTBOOK_MESSAGE = (
    "5x5 conv 480→48 on 14x14: 112.9M MACs; a 1x1 480→16 bottleneck first costs "
    "1.5M + 3.8M = 5.3M (21.4x fewer), params 576.0K → 26.9K"
)


def scan_sample(name: str) -> AuditResult:
    """Scan sample_models/<name>.onnx with a repo-relative path (as CI would)."""
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return scan(f"sample_models/{name}.onnx")
    finally:
        os.chdir(cwd)


def textbook_finding(path: str = "sample_models/textbook_5x5.onnx") -> Finding:
    """A CA101 finding on the textbook conv, built by hand with the issue's exact integers."""
    return Finding(
        rule="CA101",
        name="wide-kxk-conv-without-bottleneck",
        severity="warning",
        node="conv5x5",
        graph="main",
        message=TEXTBOOK_MESSAGE,
        fingerprint="ca101-textbook-conv5x5",
        facts={"kernel": [5, 5], "in_channels": 480, "out_channels": 48},
        recommendation=Recommendation(
            kind="bottleneck",
            before_macs=112_896_000,
            before_params=576_000,
            after_macs=5_268_480,
            after_params=26_880,
            width=16,
        ),
        model_path=path,
    )


def with_findings(result: AuditResult, *findings: Finding) -> AuditResult:
    """``result`` with ``findings`` added to the report of their model."""
    reports = []
    for r in result.reports:
        extra = tuple(f for f in findings if f.model_path == r.path)
        reports.append(dataclasses.replace(r, findings=r.findings + extra))
    return dataclasses.replace(result, reports=tuple(reports))
