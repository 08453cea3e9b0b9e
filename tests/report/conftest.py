"""Fixtures for report tests (helpers live in reportkit.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from reportkit import GOLDEN, SAMPLES, UPDATE, scan_sample, textbook_finding, with_findings

from convaudit.records import AuditResult


@pytest.fixture(scope="session")
def samples() -> dict[str, AuditResult]:
    """Each sample model's scan, by name."""
    return {name: scan_sample(name) for name in SAMPLES}


@pytest.fixture(scope="session")
def textbook_flagged(samples: dict[str, AuditResult]) -> AuditResult:
    """textbook_5x5 with exactly the hand-built CA101 finding (independent of the rule engine)."""
    result = samples["textbook_5x5"]
    bare = dataclasses.replace(
        result, reports=tuple(dataclasses.replace(r, findings=()) for r in result.reports)
    )
    return with_findings(bare, textbook_finding())


@pytest.fixture
def check_golden() -> Callable[[str, str], None]:
    """Compare text with tests/golden/<name>, or rewrite it under CONVAUDIT_UPDATE_GOLDEN=1."""

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if UPDATE:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="")
            return
        assert path.exists(), f"missing golden file {path}: run CONVAUDIT_UPDATE_GOLDEN=1 pytest"
        expected = path.read_text(encoding="utf-8")
        assert text == expected, (
            f"{name} differs from its golden file; if the change is intended, regenerate with "
            "CONVAUDIT_UPDATE_GOLDEN=1 pytest tests/report and review the diff"
        )

    return check
