"""Markdown PR comment: the bot marker, the textbook arithmetic, and the 65,000-character cap."""

from __future__ import annotations

import dataclasses

from reportkit import textbook_finding, with_findings

from convaudit.records import AuditResult
from convaudit.report import markdown


def test_marker_summary_and_arithmetic(textbook_flagged: AuditResult) -> None:
    text = markdown.render(textbook_flagged)
    assert text.splitlines()[0] == "<!-- convaudit-report -->"
    assert (
        "| `sample_models/textbook_5x5.onnx` | 112.9M | 576.0K | 1 | 0 | 1 | 0 | findings |" in text
    )
    assert "MACs 112,896,000 → 5,268,480 (112.9M → 5.3M, 21.4x fewer)" in text
    assert "params 576,000 → 26,880" in text
    assert "| `conv5x5` 🚩 | Conv | 5x5 | 480→48 |" in text


def test_clean_model_says_so(samples: dict[str, AuditResult]) -> None:
    result = samples["textbook_bottleneck"]
    result = dataclasses.replace(
        result, reports=tuple(dataclasses.replace(r, findings=()) for r in result.reports)
    )
    text = markdown.render(result)
    assert "No findings." in text
    # Layers listed costliest first: the 5x5 (3,763,200) above the 1x1 (1,505,280).
    assert text.index("`conv5x5`") < text.index("`reduce1x1`")


def test_long_report_is_truncated_under_the_limit_with_a_note(
    textbook_flagged: AuditResult,
) -> None:
    many = [
        dataclasses.replace(textbook_finding(), node=f"conv{i:04d}", fingerprint=str(i))
        for i in range(600)
    ]
    result = with_findings(textbook_flagged, *many)
    full = markdown.render(result, max_chars=10**9)
    assert len(full) > 65_000  # the test really exercises the cap
    text = markdown.render(result)
    assert len(text) <= 65_000
    assert text.startswith("<!-- convaudit-report -->\n")
    assert "**Report truncated**" in text
    kept = text.count("**CA101**")
    assert 0 < kept < 601
    # Only whole lines are cut: every kept line is a line of the full report.
    body = text.split("\n\n> **Report truncated**")[0]
    assert full.startswith(body)


def test_short_report_is_not_truncated(textbook_flagged: AuditResult) -> None:
    assert "truncated" not in markdown.render(textbook_flagged)


def test_pipes_in_names_do_not_break_tables() -> None:
    assert markdown._cell("a|b") == "a\\|b"


def test_failed_model_row_and_error_line() -> None:
    from convaudit.records import ModelReport

    bad = ModelReport(path="m/bad.onnx", facts=None, errors=("m/bad.onnx: truncated file",))
    text = markdown.render(AuditResult(reports=(bad,)))
    assert "| `m/bad.onnx` | - | - | - | 0 | 0 | 0 | failed to scan |" in text
    assert "1 model scanned, 1 failed" in text
    assert "- 🛑 **error**: m/bad.onnx: truncated file" in text


def test_hidden_findings_are_counted(textbook_flagged: AuditResult) -> None:
    (report,) = textbook_flagged.reports
    quiet = dataclasses.replace(
        report, findings=(), suppressed=(textbook_finding(),), baselined=(textbook_finding(),)
    )
    text = markdown.render(AuditResult(reports=(quiet,)))
    assert "_1 suppressed by the config, 1 already in the baseline (not shown)._" in text
