"""GitHub workflow annotations: one escaped command line per finding and per failed model."""

from __future__ import annotations

import dataclasses

from reportkit import textbook_finding, with_findings

from convaudit.records import AuditResult, ModelReport
from convaudit.report import github


def test_escaping_follows_the_runner_rules() -> None:
    assert github.escape_data("a%b\r\nc") == "a%25b%0D%0Ac"
    assert github.escape_property("x:y,z%") == "x%3Ay%2Cz%25"


def test_one_line_per_finding_with_level_file_and_title(textbook_flagged: AuditResult) -> None:
    info = dataclasses.replace(
        textbook_finding(),
        rule="CA105",
        name="compute-hotspot",
        severity="info",
        message="100% of MACs",
        recommendation=None,
        fingerprint="x",
    )
    text = github.render(with_findings(textbook_flagged, info))
    lines = text.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(
        "::warning file=sample_models/textbook_5x5.onnx,line=1,"
        "title=CA101 wide-kxk-conv-without-bottleneck::"
    )
    assert "%0Abottleneck (width 16): MACs 112,896,000 → 5,268,480" in lines[0]
    assert lines[1].startswith("::notice file=sample_models/textbook_5x5.onnx,line=1,")
    assert lines[1].endswith("::100%25 of MACs [conv5x5]")


def test_failed_model_is_an_error_annotation() -> None:
    bad = ModelReport(path="m/b.onnx", facts=None, errors=("m/b.onnx: empty file",))
    assert github.render(AuditResult(reports=(bad,))) == (
        "::error file=m/b.onnx,line=1,title=convaudit%3A model failed to scan::"
        "m/b.onnx: empty file\n"
    )
