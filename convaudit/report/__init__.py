"""Reporters: pure functions from an AuditResult to text. The registry feeds --format choices."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from convaudit.records import AuditResult
from convaudit.report import github, html, json_report, junit, markdown, sarif, table

Reporter = Callable[[AuditResult], str]

REPORTERS: dict[str, Reporter] = {
    "table": table.render,
    "json": json_report.render,
    "markdown": markdown.render,
    "sarif": sarif.render,
    "junit": junit.render,
    "html": html.render,
    "github": github.render,
}


def render(result: AuditResult, fmt: str, *, config: Any = None) -> str:
    """Render ``result`` in format ``fmt`` (a key of REPORTERS).

    SARIF describes every rule the scan ran, so it gets the rule catalogue for ``config``.
    """
    if fmt == "sarif":
        from convaudit.report.catalogue import rule_catalogue

        return sarif.render(result, rules=rule_catalogue(config))
    return REPORTERS[fmt](result)
