"""Every test gets its own user cache folder (XDG_CACHE_HOME; subprocesses inherit it unless a
test builds their whole environment): one test's cached rule files must not change another test's
code path, and the suite should not fill the developer's ~/.cache."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Importing convaudit at collection, before any fixture, already uses the cache (the compiled
# code of its records): a folder of the session's own, removed when it ends.
_SESSION_CACHE = tempfile.TemporaryDirectory(prefix="convaudit-test-cache-")
os.environ["XDG_CACHE_HOME"] = _SESSION_CACHE.name


@pytest.fixture(autouse=True)
def _private_user_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    folder = tmp_path_factory.mktemp("xdg-cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    return folder
