"""One vocabulary (issue 11 item 8): a model that could not be scanned *failed*; findings have a
*severity*. Budget findings of severity error must not read as "errors" beside "0 failed"."""

from __future__ import annotations

import dataclasses

from reportkit import textbook_finding

from convaudit.records import AuditResult, ModelReport
from convaudit.report import render


def _result() -> AuditResult:
    budget = dataclasses.replace(
        textbook_finding(),
        rule="CA900",
        name="budget-exceeded",
        severity="error",
        node=None,
        graph=None,
        recommendation=None,
        message="over budget",
    )
    over = ModelReport(
        path="m/big.onnx",
        facts=None,
        findings=(budget, dataclasses.replace(budget, fingerprint="params")),
    )
    bad = ModelReport(path="m/bad.onnx", facts=None, errors=("m/bad.onnx: truncated file",))
    return AuditResult(reports=(over, bad))


def test_markdown_counts_findings_by_severity_and_failures_apart() -> None:
    text = render(_result(), "markdown")
    assert "2 models scanned, 1 failed to scan · 2 findings: 2 error · 0 warning · 0 info" in text
    assert "| error findings | warning findings | info findings | status |" in text
    assert "2 errors" not in text


def test_html_says_the_same() -> None:
    text = render(_result(), "html")
    assert "2 models · 1 failed to scan · 2 findings: 2 error · 0 warning · 0 info" in text
    assert '<th class="num">error findings</th>' in text
    assert "<td>failed to scan</td>" in text
    assert "2 errors" not in text


def test_table_says_failed_for_a_model_it_could_not_scan() -> None:
    lines = render(_result(), "table").splitlines()
    assert "failed to scan: m/bad.onnx: truncated file" in lines
    assert [x.split()[:2] for x in lines if "CA900" in x] == [["error", "CA900"]] * 2
