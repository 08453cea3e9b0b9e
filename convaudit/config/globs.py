"""Model globs in the config, matched the way .gitignore patterns are.

- A pattern without a slash matches a file or folder name at any depth: ``"*.onnx"``,
  ``"yolo*.onnx"``, ``"legacy"`` (every model below a folder named legacy).
- A pattern with a slash is anchored at the config file's folder (a leading ``/`` changes
  nothing): ``"legacy/*.onnx"`` is ``<config folder>/legacy/*.onnx`` only.
- ``*`` and ``?`` stay inside one path segment; ``**`` spans any number of folders
  (``"**/legacy/*.onnx"`` is a legacy folder at any depth).

A model outside the config's folder is matched by its path relative to the current folder, or
as given when it is outside that too.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    """An anchored pattern -> a regex over a relative posix path."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")  # zero or more folders
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


def relative_path(path: str, root: str | None) -> str:
    """``path`` as the globs see it: relative to ``root``, else to the cwd, else as given."""
    absolute = Path(os.path.abspath(path))
    for base in (root, os.getcwd()):
        if base is None:
            continue
        try:
            return absolute.relative_to(os.path.abspath(base)).as_posix()
        except ValueError:
            continue
    return Path(path).as_posix()


def glob_matches(path: str, pattern: str, root: str | None) -> bool:
    """Whether the model at ``path`` matches the config glob ``pattern`` (module docstring)."""
    if pattern in ("*", "**"):
        return True
    rel = relative_path(path, root)
    anchored = pattern.rstrip("/")
    if "/" not in anchored:
        parts = rel.split("/")
        regex = _compile(anchored)
        return any(regex.fullmatch(part) for part in parts)
    return _compile(anchored.lstrip("/")).fullmatch(rel) is not None
