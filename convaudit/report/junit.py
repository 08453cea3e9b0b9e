"""JUnit XML: a testsuite per model, a failing testcase per finding, a pass for a clean model."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from convaudit.records import AuditResult, ModelReport
from convaudit.report.common import arithmetic, location, reports_by_path, sorted_findings


def _suite(r: ModelReport) -> ET.Element:
    findings = sorted_findings(r.findings)
    hidden = [("suppressed by the config", f) for f in sorted_findings(r.suppressed)]
    hidden += [("in the baseline", f) for f in sorted_findings(r.baselined)]
    tests = len(findings) + len(r.errors) + len(hidden) + (0 if findings or r.errors else 1)
    suite = ET.Element(
        "testsuite",
        {
            "name": r.path,
            "tests": str(tests),
            "failures": str(len(findings)),
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
        fail = ET.SubElement(
            case, "failure", {"type": f"{f.rule} {f.severity}", "message": f.message}
        )
        arith = arithmetic(f)
        body = [f"{f.severity} {f.rule} {f.name} at {location(f)}", f.message]
        if arith:
            body.append(arith)
        body.append(f"fingerprint: {f.fingerprint}")
        fail.text = "\n".join(body)
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
    """The whole XML document (UTF-8 declaration, two-space indent, deterministic)."""
    suites = [_suite(r) for r in reports_by_path(result)]
    root = ET.Element(
        "testsuites",
        {
            "name": "convaudit",
            "tests": str(sum(int(s.get("tests", "0")) for s in suites)),
            "failures": str(sum(int(s.get("failures", "0")) for s in suites)),
            "errors": str(sum(int(s.get("errors", "0")) for s in suites)),
            "skipped": str(sum(int(s.get("skipped", "0")) for s in suites)),
            "time": "0",
        },
    )
    root.extend(suites)
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
