"""A per-user cache of JSON files the tool wrote itself (``$XDG_CACHE_HOME/convaudit``).

Only an optimisation: every read or write problem means "not cached" and the caller does the
work. Entries are JSON (never pickle), named by a hash of what they were computed from, so a
changed input is a different name and nothing ever needs invalidating. ``CONVAUDIT_NO_CACHE=1``
turns it off.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from convaudit.version import __version__


def cache_dir() -> Path | None:
    """This user's cache folder for this convaudit version, or None when caching is off."""
    if os.environ.get("CONVAUDIT_NO_CACHE"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):  # the XDG spec: a relative path is invalid and is ignored
        return None
    return Path(base) / "convaudit" / __version__


def _private(folder: Path, *, make: bool = False) -> bool:
    """Whether ``folder`` (made 0700 when ``make``) is ours and nobody else can write it:
    another user's file there would otherwise become our data."""
    try:
        if make:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = folder.stat()
    except OSError:
        return False
    getuid = getattr(os, "getuid", None)
    return (getuid is None or st.st_uid == getuid()) and not st.st_mode & 0o022


def read_json(
    kind: str, key: str, object_hook: Callable[[dict[str, Any]], Any] | None = None
) -> Any | None:
    """The cached value of ``kind``/``key``.json, or None (missing, unreadable, not JSON, or
    refused by ``object_hook`` with a ValueError)."""
    data = read_bytes(kind, key)
    if data is None:
        return None
    try:
        return json.loads(data, object_hook=object_hook)
    except (ValueError, RecursionError):
        return None


def write_json(kind: str, key: str, value: Any) -> None:
    """Store ``value`` as ``kind``/``key``.json, atomically; silently skipped when it cannot."""
    try:
        data = json.dumps(value, separators=(",", ":")).encode("utf-8")
    except (ValueError, TypeError, RecursionError):
        return
    write_bytes(kind, key, data)


def read_bytes(kind: str, key: str, *, suffix: str = ".json") -> bytes | None:
    """The bytes of ``kind``/``key``+suffix, or None (caching off, missing, unreadable)."""
    folder = cache_dir()
    if folder is None or not _private(folder) or not _private(folder / kind):
        return None
    try:
        with open(folder / kind / f"{key}{suffix}", "rb") as fh:
            return fh.read()
    except OSError:
        return None


def write_bytes(kind: str, key: str, data: bytes, *, suffix: str = ".json") -> None:
    """Store ``data`` as ``kind``/``key``+suffix, atomically; silently skipped when it cannot."""
    folder = cache_dir()
    if folder is None or not _private(folder, make=True) or not _private(folder / kind, make=True):
        return
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=folder / kind)
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, folder / kind / f"{key}{suffix}")
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def prune(kind: str, *, max_entries: int, max_bytes: int) -> None:
    """Once ``kind`` holds more than ``max_entries`` files or ``max_bytes``, remove the oldest
    (by mtime) until it is under 3/4 of both; problems are ignored, as everywhere here."""
    folder = cache_dir()
    if folder is None or not _private(folder) or not _private(folder / kind):
        return
    entries: list[tuple[int, int, str]] = []
    try:
        with os.scandir(folder / kind) as it:
            for e in it:
                if e.name.endswith(".json") and e.is_file(follow_symlinks=False):
                    st = e.stat(follow_symlinks=False)
                    entries.append((st.st_mtime_ns, st.st_size, e.path))
    except OSError:
        return
    total = sum(size for _, size, _ in entries)
    if len(entries) <= max_entries and total <= max_bytes:
        return
    entries.sort()
    keep_entries, keep_bytes = max_entries * 3 // 4, max_bytes * 3 // 4
    for count, (_, size, path) in enumerate(entries):
        if len(entries) - count <= keep_entries and total <= keep_bytes:
            break
        with suppress(OSError):
            os.unlink(path)
        total -= size
