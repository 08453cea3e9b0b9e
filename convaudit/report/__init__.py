"""Reporters: pure functions from an AuditResult to text. The registry feeds --format choices."""

from __future__ import annotations

from collections.abc import Callable

from convaudit.records import AuditResult
from convaudit.report import json_report, table

Reporter = Callable[[AuditResult], str]

REPORTERS: dict[str, Reporter] = {
    "table": table.render,
    "json": json_report.render,
}


def render(result: AuditResult, fmt: str) -> str:
    """Render ``result`` in format ``fmt`` (a key of REPORTERS)."""
    return REPORTERS[fmt](result)
