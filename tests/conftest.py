"""Every test gets its own user cache folder (XDG_CACHE_HOME; subprocesses inherit it unless a
test builds their whole environment): one test's cached rule files must not change another test's
code path, and the suite should not fill the developer's ~/.cache."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_user_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    folder = tmp_path_factory.mktemp("xdg-cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    return folder
