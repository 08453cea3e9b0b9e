"""Reporters: pure functions from an AuditResult to text. The registry feeds --format choices."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from convaudit.records import AuditResult

Reporter = Callable[[AuditResult], str]

# format -> module under convaudit.report whose ``render`` it is.
_MODULES = {
    "table": "table",
    "json": "json_report",
    "markdown": "markdown",
    "sarif": "sarif",
    "junit": "junit",
    "html": "html",
    "github": "github",
}


class _Registry(Mapping[str, Reporter]):
    """Imports a reporter's module on first use: a JSON scan need not load the HTML assets."""

    def __getitem__(self, fmt: str) -> Reporter:
        module = importlib.import_module(f"convaudit.report.{_MODULES[fmt]}")
        reporter: Reporter = module.render
        return reporter

    def __iter__(self) -> Iterator[str]:
        return iter(_MODULES)

    def __len__(self) -> int:
        return len(_MODULES)


REPORTERS: Mapping[str, Reporter] = _Registry()


def render(result: AuditResult, fmt: str, *, config: Any = None, **options: Any) -> str:
    """Render ``result`` in format ``fmt`` (a key of REPORTERS), from the result alone.

    ``config`` is accepted for callers of the old signature and not read: the rules a format
    describes are the catalogue the result carries (``AuditResult.rules``). ``options`` go to
    the reporter (the table's ``top`` and ``colour``).
    """
    del config
    reporter: Callable[..., str] = REPORTERS[fmt]
    return reporter(result, **options)
