"""Regular expressions compiled on first use, not at import: a scan that never validates a rule
file or parses a size never pays for those patterns (issue 12: no work at import time)."""

from __future__ import annotations

import re


class LazyPattern:
    """The parts of ``re.Pattern`` the package uses; compiled by ``re`` (and kept in its cache)
    the first time one is called."""

    __slots__ = ("_compiled", "flags", "pattern")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern = pattern
        self.flags = flags
        self._compiled: re.Pattern[str] | None = None

    def compiled(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self.pattern, self.flags)
        return self._compiled

    def fullmatch(self, text: str) -> re.Match[str] | None:
        return self.compiled().fullmatch(text)

    def sub(self, repl: str, text: str) -> str:
        return self.compiled().sub(repl, text)
