"""JUnit XML: a testsuite per model; a finding at or above --fail-on is a failing testcase, one
below it a passing testcase whose system-out says what it found; a pass for a clean model.

The document keeps to the common JUnit schema (Jenkins xunit's junit-10.xsd, which test
dashboards read): ``<testsuites>`` takes name/time/tests/failures/errors only, ``skipped``
lives on ``<testsuite>``."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from convaudit.records import AuditResult, Finding, ModelReport, at_or_above
from convaudit.report.common import arithmetic, location, reports_by_path, sorted_findings


def _body(f: Finding) -> str:
    arith = arithmetic(f)
    body = [f"{f.severity} {f.rule} {f.name} at {location(f)}", f.message]
    if arith:
        body.append(arith)
    body.append(f"fingerprint: {f.fingerprint}")
    return "\n".join(body)


def _suite(r: ModelReport, fail_on: str) -> ET.Element:
    findings = sorted_findings(r.findings)
    failing = [f for f in findings if at_or_above(f.severity, fail_on)]
    hidden = [("suppressed by the config", f) for f in sorted_findings(r.suppressed)]
    hidden += [("in the baseline", f) for f in sorted_findings(r.baselined)]
    tests = len(findings) + len(r.errors) + len(hidden) + (0 if findings or r.errors else 1)
    suite = ET.Element(
        "testsuite",
        {
            "name": r.path,
            "tests": str(tests),
            "failures": str(len(failing)),
            "errors": str(len(r.errors)),
            "skipped": str(len(hidden)),
            "time": "0",
        },
    )
    if r.facts is not None:
        props = ET.SubElement(suite, "properties")
        t = r.facts.totals
        for name, value in (("macs", t.macs), ("params", t.params), ("layers", t.layers)):
            ET.SubElement(props, "property", {"name": name, "value": str(value)})
        ET.SubElement(props, "property", {"name": "fail-on", "value": fail_on})
    for e in r.errors:
        case = ET.SubElement(suite, "testcase", {"classname": r.path, "name": "scan", "time": "0"})
        err = ET.SubElement(case, "error", {"type": "ModelError", "message": e})
        err.text = e
    for f in findings:
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": r.path, "name": f"{f.rule} {f.name} [{location(f)}]", "time": "0"},
        )
        if at_or_above(f.severity, fail_on):
            fail = ET.SubElement(
                case, "failure", {"type": f"{f.rule} {f.severity}", "message": f.message}
            )
            fail.text = _body(f)
        else:  # reported, not failed: the exit code passes it too
            out = ET.SubElement(case, "system-out")
            out.text = f"{_body(f)}\nbelow --fail-on {fail_on}: not a failure"
    for why, f in hidden:
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": r.path, "name": f"{f.rule} {f.name} [{location(f)}]", "time": "0"},
        )
        ET.SubElement(case, "skipped", {"message": f"{why}: {f.message}"})
    if not findings and not r.errors:
        ET.SubElement(suite, "testcase", {"classname": r.path, "name": "no findings", "time": "0"})
    return suite


def render(result: AuditResult) -> str:
    """The whole XML document (UTF-8 declaration, two-space indent, deterministic); findings
    fail at or above ``result.fail_on``."""
    suites = [_suite(r, result.fail_on) for r in reports_by_path(result)]
    root = ET.Element(
        "testsuites",
        {
            "name": "convaudit",
            "tests": str(sum(int(s.get("tests", "0")) for s in suites)),
            "failures": str(sum(int(s.get("failures", "0")) for s in suites)),
            "errors": str(sum(int(s.get("errors", "0")) for s in suites)),
            "time": "0",
        },
    )
    root.extend(suites)
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
