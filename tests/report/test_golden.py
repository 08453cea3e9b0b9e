"""Golden files: every format on every sample model, plus a hand-built CA101 finding and a diff.

Regenerate deliberately with CONVAUDIT_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from reportkit import ROOT, SAMPLES, scan_sample

from convaudit.diff import diff
from convaudit.records import AuditResult
from convaudit.report import REPORTERS, render
from convaudit.report.diff_report import DIFF_REPORTERS

EXT = {
    "table": "table.txt",
    "json": "json",
    "markdown": "md",
    "sarif": "sarif",
    "junit": "junit.xml",
    "html": "html",
    "github": "github.txt",
}


def test_every_format_has_a_golden_extension() -> None:
    assert set(EXT) == set(REPORTERS)


def test_cli_format_choices_are_the_registry() -> None:
    from convaudit.cli import FORMATS  # a literal there keeps `convaudit --help` import-light

    assert tuple(REPORTERS) == FORMATS


@pytest.mark.parametrize("fmt", sorted(EXT))
@pytest.mark.parametrize("name", SAMPLES)
def test_sample_golden(
    name: str, fmt: str, samples: dict[str, AuditResult], check_golden: Callable[[str, str], None]
) -> None:
    check_golden(f"{name}.{EXT[fmt]}", render(samples[name], fmt))


@pytest.mark.parametrize("fmt", sorted(EXT))
def test_flagged_textbook_golden(
    fmt: str, textbook_flagged: AuditResult, check_golden: Callable[[str, str], None]
) -> None:
    check_golden(f"textbook_5x5.handmade-ca101.{EXT[fmt]}", render(textbook_flagged, fmt))


@pytest.mark.parametrize("fmt", sorted(DIFF_REPORTERS))
def test_diff_golden(
    fmt: str, monkeypatch: pytest.MonkeyPatch, check_golden: Callable[[str, str], None]
) -> None:
    monkeypatch.chdir(ROOT)
    d = diff("sample_models/textbook_5x5.onnx", "sample_models/textbook_bottleneck.onnx")
    ext = {"table": "txt", "json": "json", "markdown": "md"}[fmt]
    check_golden(f"diff.textbook_5x5.textbook_bottleneck.{ext}", DIFF_REPORTERS[fmt](d))


@pytest.mark.parametrize("fmt", sorted(EXT))
def test_output_is_deterministic(fmt: str, samples: dict[str, AuditResult]) -> None:
    assert render(scan_sample("inception_block"), fmt) == render(samples["inception_block"], fmt)
