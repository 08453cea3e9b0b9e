"""GitHub Actions workflow commands: one ``::warning file=...::`` annotation line per finding."""

from __future__ import annotations

from convaudit.records import AuditResult
from convaudit.report.common import (
    arithmetic,
    finding_path,
    location,
    reports_by_path,
    sorted_findings,
)

LEVELS = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(text: str) -> str:
    """Escape a command's message as the runner expects (%, CR, LF)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value: the message escapes plus ':' and ','."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _line(level: str, path: str, title: str, message: str) -> str:
    props = f"file={escape_property(path)},line=1,title={escape_property(title)}"
    return f"::{level} {props}::{escape_data(message)}"


def render(result: AuditResult) -> str:
    """Annotation lines: model errors first in each model, then findings worst first."""
    lines: list[str] = []
    for r in reports_by_path(result):
        for e in r.errors:
            lines.append(_line("error", r.path, "convaudit: model failed to scan", e))
        for f in sorted_findings(r.findings):
            arith = arithmetic(f)
            message = f"{f.message} [{location(f)}]" + (f"\n{arith}" if arith else "")
            lines.append(
                _line(
                    LEVELS.get(f.severity, "warning"),
                    finding_path(f, r),
                    f"{f.rule} {f.name}",
                    message,
                )
            )
    return "".join(line + "\n" for line in lines)
