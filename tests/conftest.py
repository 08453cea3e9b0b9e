"""Every test gets its own user cache folder (XDG_CACHE_HOME; subprocesses inherit it unless a
test builds their whole environment): one test's cached rule files must not change another test's
code path, and the suite should not fill the developer's ~/.cache."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

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


@pytest.fixture(autouse=True)
def _lite_path_oracle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every model a test scans in-process by the lite path (model/lite.py) is scanned by the full
    path too, and the facts must be equal: the models the tests build are its oracle corpus.
    The lite path runs strict here, so a bug in it fails the test instead of deferring."""
    from convaudit.model import lite
    from convaudit.model.analyse import analyse
    from convaudit.model.loader import load_model

    real = lite.run_lite

    def checked(path: Any, facts_of: Any, **kw: Any) -> lite.LiteOutcome:
        kw["strict"] = True
        outcome = real(path, facts_of, **kw)
        if outcome.facts is not None:
            del kw["strict"]
            with load_model(path) as loaded:
                full = analyse(path, loaded=loaded, **kw)
            assert outcome.facts == full, f"lite and full paths differ on {path}"
            assert outcome.facts.node_graph.nodes(data=True) == full.node_graph.nodes(data=True)
            assert outcome.facts.node_graph.edges(data=True) == full.node_graph.edges(data=True)
        return outcome

    monkeypatch.setattr(lite, "run_lite", checked)
