"""What a folder scan includes: hidden folders, venvs, git-ignored files and --exclude stay out."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from convaudit.api import scan
from convaudit.discover import discover
from convaudit.errors import ModelLoadError

SAMPLE = Path(__file__).resolve().parents[1] / "sample_models" / "textbook_5x5.onnx"


def _model(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SAMPLE, path)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A fresh clone after `make demo`: the repo's models beside a venv full of onnx's own."""
    _model(tmp_path / "models" / "a.onnx")
    _model(tmp_path / "models" / "legacy" / "b.onnx")
    _model(tmp_path / ".venv" / "lib" / "onnx" / "backend" / "test.onnx")
    (tmp_path / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    _model(tmp_path / "env2" / "lib" / "x.onnx")
    (tmp_path / "env2" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    _model(tmp_path / ".git" / "lfs" / "objects" / "c.onnx")
    _model(tmp_path / "node_modules" / "pkg" / "d.onnx")
    return tmp_path


def _rel(root: Path, paths: tuple[str, ...]) -> list[str]:
    return sorted(Path(p).relative_to(root).as_posix() for p in paths)


def test_hidden_folders_and_venvs_are_skipped(tree: Path) -> None:
    found = discover([tree])
    assert _rel(tree, found.models) == ["models/a.onnx", "models/legacy/b.onnx"]
    reasons = {Path(s.path).relative_to(tree).as_posix(): s.reason for s in found.skipped}
    assert reasons == {
        ".git": "hidden folder",
        ".venv": "hidden folder",
        "env2": "virtual environment",
        "node_modules": "node_modules folder",
    }


def test_exclude_patterns_match_names_and_paths(tree: Path) -> None:
    by_folder = discover([tree], exclude=["legacy/"])
    assert _rel(tree, by_folder.models) == ["models/a.onnx"]
    by_file = discover([tree], exclude=["models/a.onnx"])
    assert _rel(tree, by_file.models) == ["models/legacy/b.onnx"]


def test_excluding_everything_is_an_error_that_says_so(tree: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"every \.onnx model below it was left out"):
        discover([tree], exclude=["*.onnx"])
    empty = tree / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match=r"directory contains no \.onnx models$"):
        discover([empty])


def test_a_file_named_outright_is_always_scanned(tree: Path) -> None:
    hidden = tree / ".venv" / "lib" / "onnx" / "backend" / "test.onnx"
    assert discover([hidden], exclude=["*.onnx"]).models == (str(hidden),)


def test_globs_skip_venvs_too(tree: Path) -> None:
    found = discover([f"{tree}/**/*.onnx"])
    assert _rel(tree, found.models) == ["models/a.onnx", "models/legacy/b.onnx"]
    assert any(s.reason == "virtual environment" for s in found.skipped)


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_gitignore_is_honoured_inside_a_work_tree(tree: Path) -> None:
    _git(tree, "init", "-q")
    (tree / ".gitignore").write_text("legacy/\nbuild/\n")
    _model(tree / "build" / "exported.onnx")
    found = discover([tree])
    assert _rel(tree, found.models) == ["models/a.onnx"]
    ignored = sorted(
        Path(s.path).relative_to(tree).as_posix()
        for s in found.skipped
        if s.reason == "ignored by git"
    )
    assert ignored == ["build/exported.onnx", "models/legacy/b.onnx"]
    # A tracked file is scanned even when a pattern matches it (git's own rule).
    _git(tree, "add", "-f", "models/legacy/b.onnx")
    assert "models/legacy/b.onnx" in _rel(tree, discover([tree]).models)
    assert _rel(tree, discover([tree], gitignore=False).models) == [
        "build/exported.onnx",
        "models/a.onnx",
        "models/legacy/b.onnx",
    ]


def test_scan_of_a_fresh_clone_reads_only_the_repos_models(tree: Path) -> None:
    result = scan(tree)
    assert _rel(tree, tuple(r.path for r in result.reports)) == [
        "models/a.onnx",
        "models/legacy/b.onnx",
    ]
