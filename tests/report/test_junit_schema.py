"""JUnit follows --fail-on, and keeps to the common JUnit schema (Jenkins xunit's junit-10.xsd).

The schema is restated here as data (which attributes and children each element may have, which
are required), not vendored: the check walks the document the way an XSD validator would."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET

import pytest
from reportkit import textbook_finding

from convaudit.records import AuditResult, ModelReport
from convaudit.report import junit

# element -> (allowed attributes, required attributes, allowed children); junit-10.xsd
SCHEMA: dict[str, tuple[set[str], set[str], set[str]]] = {
    "testsuites": ({"name", "time", "tests", "failures", "errors"}, set(), {"testsuite"}),
    "testsuite": (
        {
            "name",
            "tests",
            "failures",
            "errors",
            "group",
            "time",
            "skipped",
            "timestamp",
            "hostname",
            "id",
            "package",
            "file",
            "log",
            "url",
        },
        {"name", "tests", "failures", "errors"},
        {"testsuite", "properties", "testcase", "system-out", "system-err"},
    ),
    "properties": (set(), set(), {"property"}),
    "property": ({"name", "value"}, {"name", "value"}, set()),
    "testcase": (
        {"name", "time", "classname", "group"},
        {"name"},
        {"skipped", "error", "failure", "system-out", "system-err"},
    ),
    "failure": ({"type", "message"}, set(), set()),
    "error": ({"type", "message"}, set(), set()),
    "skipped": ({"type", "message"}, set(), set()),
    "system-out": (set(), set(), set()),
    "system-err": (set(), set(), set()),
}
SUREFIRE_TIME = re.compile(r"(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?")


def schema_errors(root: ET.Element) -> list[str]:
    """Everything junit-10.xsd would refuse in the document under ``root``."""
    if root.tag != "testsuites":
        return [f"root is <{root.tag}>, not <testsuites>"]
    out = []
    for el in root.iter():
        if el.tag not in SCHEMA:
            out.append(f"unknown element <{el.tag}>")
            continue
        allowed, required, children = SCHEMA[el.tag]
        out += [f"<{el.tag}> may not have {a!r}" for a in sorted(set(el.attrib) - allowed)]
        out += [f"<{el.tag}> needs {a!r}" for a in sorted(required - set(el.attrib))]
        out += [f"<{el.tag}> may not hold <{c.tag}>" for c in el if c.tag not in children]
        time = el.attrib.get("time")
        suite = el.tag in ("testsuites", "testsuite")
        if suite and time is not None and not SUREFIRE_TIME.fullmatch(time):
            out.append(f"<{el.tag}> time {time!r}")
        if el.tag in ("property", "properties") and (el.text or "").strip():
            out.append(f"<{el.tag}> holds text")
    return out


def test_the_checker_refuses_what_the_schema_refuses() -> None:
    """The oracle itself: the old output's skipped on <testsuites> is caught."""
    bad = ET.fromstring('<testsuites skipped="2"><testsuite name="m"/></testsuites>')
    assert schema_errors(bad) == [
        "<testsuites> may not have 'skipped'",
        "<testsuite> needs 'errors'",
        "<testsuite> needs 'failures'",
        "<testsuite> needs 'tests'",
    ]


def _with(result: AuditResult, fail_on: str, **changes: object) -> AuditResult:
    reports = tuple(dataclasses.replace(r, **changes) for r in result.reports)  # type: ignore[arg-type]
    return dataclasses.replace(result, reports=reports, fail_on=fail_on)


@pytest.mark.parametrize("name", ["textbook_5x5", "inception_block", "textbook_bottleneck"])
@pytest.mark.parametrize("fail_on", ["error", "warning", "info", "never"])
def test_every_sample_validates(samples: dict[str, AuditResult], name: str, fail_on: str) -> None:
    doc = junit.render(dataclasses.replace(samples[name], fail_on=fail_on))
    assert schema_errors(ET.fromstring(doc)) == []


def test_suppressed_errors_and_hidden_findings_validate(samples: dict[str, AuditResult]) -> None:
    bad = ModelReport(path="a/bad.onnx", facts=None, errors=("a/bad.onnx: truncated",))
    result = _with(samples["textbook_5x5"], "warning", suppressed=(textbook_finding(),))
    result = dataclasses.replace(result, reports=(*result.reports, bad))
    root = ET.fromstring(junit.render(result))
    assert schema_errors(root) == []
    assert "skipped" not in root.attrib
    assert [s.get("skipped") for s in root.findall("testsuite")] == ["0", "1"]


def _verdicts(result: AuditResult) -> dict[str, str]:
    (suite,) = ET.fromstring(junit.render(result)).findall("testsuite")
    out = {}
    for case in suite.findall("testcase"):
        kind = "failure" if case.find("failure") is not None else "passed"
        out[case.get("name", "").split()[0]] = kind
    return out


@pytest.mark.parametrize(
    ("fail_on", "failing"),
    [
        ("error", set()),
        ("warning", {"CA101"}),
        ("info", {"CA101", "CA103", "CA104", "CA105"}),
        ("never", set()),
    ],
)
def test_findings_below_fail_on_pass_with_their_text_in_system_out(
    samples: dict[str, AuditResult], fail_on: str, failing: set[str]
) -> None:
    """textbook_5x5 has a CA101 warning and CA103/CA104/CA105 infos (the golden table)."""
    result = dataclasses.replace(samples["textbook_5x5"], fail_on=fail_on)
    verdicts = _verdicts(result)
    assert set(verdicts) == {"CA101", "CA103", "CA104", "CA105"}
    assert {rule for rule, v in verdicts.items() if v == "failure"} == failing
    root = ET.fromstring(junit.render(result))
    (suite,) = root.findall("testsuite")
    assert suite.get("failures") == root.get("failures") == str(len(failing))
    assert suite.get("tests") == "4"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["fail-on"] == fail_on
    for case in suite.findall("testcase"):
        out = case.find("system-out")
        if case.find("failure") is None:
            assert out is not None and f"below --fail-on {fail_on}: not a failure" in (
                out.text or ""
            )
            assert "fingerprint: " in (out.text or "")
        else:
            assert out is None


def test_the_cli_passes_its_fail_on(tmp_path: object) -> None:
    from pathlib import Path

    from typer.testing import CliRunner

    from convaudit.cli import app

    out = Path(str(tmp_path)) / "r.xml"
    model = str(Path(__file__).resolve().parents[2] / "sample_models" / "textbook_5x5.onnx")
    result = CliRunner().invoke(
        app, ["scan", model, "--fail-on", "never", "-f", "junit", "-o", str(out)]
    )
    assert result.exit_code == 0
    root = ET.fromstring(out.read_text())
    assert root.get("failures") == "0" and root.get("tests") == "4"  # exit 0, a green dashboard
    result = CliRunner().invoke(
        app, ["scan", model, "--fail-on", "info", "--report", f"junit={out}", "-f", "json"]
    )
    assert result.exit_code == 1
    assert ET.fromstring(out.read_text()).get("failures") == "4"
