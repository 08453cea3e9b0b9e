"""One severity ranking for every module: the order is pinned, and fail-on reads it one way."""

from __future__ import annotations

import dataclasses
import json

import pytest
from reportkit import textbook_finding

from convaudit.api import fails
from convaudit.records import (
    SEVERITY_NAMES,
    AuditResult,
    Finding,
    ModelReport,
    Severity,
    at_or_above,
    severity_rank,
    worst_first_key,
)
from convaudit.report import render
from convaudit.rules.engine import worst_first


def test_order_is_error_warning_info() -> None:
    assert SEVERITY_NAMES == ("error", "warning", "info")
    assert [s.rank for s in Severity] == [0, 1, 2]
    assert severity_rank("error") < severity_rank("warning") < severity_rank("info")
    assert severity_rank("fatal") == 3  # an unknown name sorts after every known one


def test_severity_is_its_text() -> None:
    assert Severity.ERROR == "error"
    assert f"{Severity.WARNING:<9}|" == "warning  |"
    assert str(Severity.INFO) == "info"
    assert json.dumps({"s": Severity.ERROR}) == '{"s": "error"}'


# (finding severity, --fail-on) -> does it fail? Written out by hand: a ranking read the
# other way round (the CLI's diff once used info=0 ... error=2) flips every off-diagonal cell.
TABLE = {
    ("error", "error"): True,
    ("warning", "error"): False,
    ("info", "error"): False,
    ("error", "warning"): True,
    ("warning", "warning"): True,
    ("info", "warning"): False,
    ("error", "info"): True,
    ("warning", "info"): True,
    ("info", "info"): True,
    ("error", "never"): False,
    ("warning", "never"): False,
    ("info", "never"): False,
}


@pytest.mark.parametrize(("severity", "fail_on"), sorted(TABLE))
def test_at_or_above(severity: str, fail_on: str) -> None:
    assert at_or_above(severity, fail_on) is TABLE[(severity, fail_on)]
    finding = dataclasses.replace(textbook_finding(), severity=severity)
    result = AuditResult(reports=(ModelReport(path="m.onnx", facts=None, findings=(finding,)),))
    assert fails(result, fail_on) is TABLE[(severity, fail_on)]


def _mixed() -> list[Finding]:
    base = textbook_finding()
    return [
        dataclasses.replace(base, severity="info", node="a", fingerprint="1", recommendation=None),
        dataclasses.replace(base, severity="warning", node="b", fingerprint="2"),
        dataclasses.replace(base, severity="error", node="c", fingerprint="3", recommendation=None),
        dataclasses.replace(base, severity="warning", node="a", fingerprint="4"),
    ]


def test_worst_first_everywhere() -> None:
    # error first though it saves nothing; then the two warnings by MACs at stake (equal here,
    # so by node); info last.
    expected = ["3", "4", "2", "1"]
    assert [f.fingerprint for f in sorted(_mixed(), key=worst_first_key)] == expected
    assert [f.fingerprint for f in worst_first(_mixed())] == expected
    report = ModelReport(path="m.onnx", facts=None, findings=tuple(_mixed()))
    result = AuditResult(reports=(report,))
    doc = json.loads(render(result, "json"))
    assert [f["fingerprint"] for f in doc["reports"][0]["findings"]] == expected
    table = [line.split()[0] for line in render(result, "table").splitlines()[3:]]
    assert table == ["error", "warning", "warning", "info"]
    nodes = [line.split("[")[1].split("]")[0] for line in render(result, "table").splitlines()[3:]]
    assert nodes == ["c", "a", "b", "a"]
