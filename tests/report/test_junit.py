"""JUnit XML parsed with xml.etree: a suite per model, a failure per finding, a pass if clean."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from reportkit import textbook_finding, with_findings

from convaudit.records import AuditResult, ModelReport
from convaudit.report import junit


def test_clean_model_is_one_passing_testcase(samples: dict[str, AuditResult]) -> None:
    result = samples["textbook_bottleneck"]
    result = AuditResult(
        reports=tuple(r.__class__(path=r.path, facts=r.facts) for r in result.reports)
    )
    root = ET.fromstring(junit.render(result))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "sample_models/textbook_bottleneck.onnx"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("1", "0", "0")
    (case,) = suite.findall("testcase")
    assert case.find("failure") is None and case.find("error") is None
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["macs"] == "5268480"


def test_finding_is_a_failing_testcase(textbook_flagged: AuditResult) -> None:
    root = ET.fromstring(junit.render(textbook_flagged))
    (suite,) = root.findall("testsuite")
    assert suite.get("failures") == "1"
    (case,) = suite.findall("testcase")
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("type") == "CA101 warning"
    assert "480→16 bottleneck" in (failure.get("message") or "")
    assert "112,896,000 → 5,268,480" in (failure.text or "")
    assert case.get("classname") == "sample_models/textbook_5x5.onnx"


def test_several_models_errors_and_totals(textbook_flagged: AuditResult) -> None:
    bad = ModelReport(path="a/bad.onnx", facts=None, errors=("a/bad.onnx: not ONNX & <bad>",))
    two = textbook_finding()
    result = with_findings(textbook_flagged, two)
    result = AuditResult(reports=(*result.reports, bad))
    root = ET.fromstring(junit.render(result))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["a/bad.onnx", "sample_models/textbook_5x5.onnx"]
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "2", "1")
    err = suites[0].find("testcase/error")
    assert err is not None and err.get("message") == "a/bad.onnx: not ONNX & <bad>"


def test_suppressed_and_baselined_findings_are_skipped_testcases(
    textbook_flagged: AuditResult,
) -> None:
    import dataclasses

    (report,) = textbook_flagged.reports
    quiet = dataclasses.replace(
        report,
        findings=(),
        suppressed=(textbook_finding(),),
        baselined=(dataclasses.replace(textbook_finding(), rule="CA103", name="x"),),
    )
    root = ET.fromstring(junit.render(AuditResult(reports=(quiet,))))
    (suite,) = root.findall("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "0", "2")
    skipped = [c.find("skipped") for c in suite.findall("testcase")]
    messages = [s.get("message", "") for s in skipped if s is not None]
    assert [m.split(":")[0] for m in messages] == ["suppressed by the config", "in the baseline"]
    # junit-10.xsd has no skipped on <testsuites>: the count lives on each <testsuite>.
    assert root.get("skipped") is None
