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


# -- the flags, the config keys and --verbose (issue 11, item 1) ---------------------------------
def _cli(*args: str) -> tuple[int, str, str]:
    from typer.testing import CliRunner

    from convaudit.cli import app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _scanned(root: Path, out: str) -> list[str]:
    import json

    return sorted(
        Path(r["model"]["path"]).relative_to(root).as_posix() for r in json.loads(out)["reports"]
    )


def test_exclude_flag_and_verbose_say_what_was_left_out(tree: Path) -> None:
    code, out, err = _cli(
        "scan", str(tree), "--exclude", "legacy", "-f", "json", "--fail-on", "never", "-v"
    )
    assert code == 0, err
    assert _scanned(tree, out) == ["models/a.onnx"]
    lines = err.strip().splitlines()
    assert f"convaudit: skipped {tree / 'models' / 'legacy'}: excluded by 'legacy'" in lines
    assert f"convaudit: skipped {tree / '.venv'}: hidden folder" in lines
    assert f"convaudit: skipped {tree / 'env2'}: virtual environment" in lines
    assert len(lines) == 5  # .git, .venv, env2, node_modules, legacy: one line each
    # Without --verbose nothing is said.
    code, _, err = _cli("scan", str(tree), "--exclude", "legacy", "--fail-on", "never")
    assert code == 0 and err == ""


def _config(tree: Path, text: str) -> None:
    (tree / "convaudit.toml").write_text(text)


def test_config_exclude_is_replaced_by_the_flag_and_extended_by_extend_exclude(tree: Path) -> None:
    _config(tree, 'exclude = ["legacy"]\n')
    code, out, _ = _cli("scan", str(tree), "-f", "json", "--fail-on", "never")
    assert code == 0 and _scanned(tree, out) == ["models/a.onnx"]
    # --exclude replaces the file's list (ruff): the legacy model is back, a.onnx goes.
    code, out, _ = _cli(
        "scan", str(tree), "-f", "json", "--fail-on", "never", "--exclude", "a.onnx"
    )
    assert code == 0 and _scanned(tree, out) == ["models/legacy/b.onnx"]
    # --extend-exclude adds to it: nothing is left, which is an error saying so.
    code, _, err = _cli("scan", str(tree), "--extend-exclude", "a.onnx")
    assert code == 2 and "every .onnx model below it was left out" in err
    _config(tree, 'extend-exclude = ["models/a.onnx"]\n')
    code, out, _ = _cli("scan", str(tree), "-f", "json", "--fail-on", "never")
    assert code == 0 and _scanned(tree, out) == ["models/legacy/b.onnx"]


def test_exclude_globs_match_like_the_readmes_model_globs(tree: Path) -> None:
    """A pattern with a slash starts at the config's folder; '**/' spans folders."""
    _config(tree, 'exclude = ["legacy/*.onnx"]\n')  # <root>/legacy/*.onnx: nothing here
    code, out, _ = _cli("scan", str(tree), "-f", "json", "--fail-on", "never")
    assert _scanned(tree, out) == ["models/a.onnx", "models/legacy/b.onnx"]
    _config(tree, 'exclude = ["**/legacy/*.onnx"]\n')
    code, out, _ = _cli("scan", str(tree), "-f", "json", "--fail-on", "never")
    assert _scanned(tree, out) == ["models/a.onnx"]
    _config(tree, 'exclude = ["models/leg*"]\n')  # a folder, anchored: everything below it
    code, out, _ = _cli("scan", str(tree), "-f", "json", "--fail-on", "never")
    assert _scanned(tree, out) == ["models/a.onnx"]
    # Through a glob argument a pattern naming a folder above the match applies too.
    glob = f"{tree}/models/**/*.onnx"
    config = str(tree / "convaudit.toml")  # a glob is no folder to find the config from
    code, out, _ = _cli("scan", glob, "--config", config, "-f", "json", "--fail-on", "never")
    assert code == 0 and _scanned(tree, out) == ["models/a.onnx"]


def test_respect_gitignore_flag_and_key(tree: Path) -> None:
    _git(tree, "init", "-q")
    (tree / ".gitignore").write_text("legacy/\n")
    code, out, _ = _cli("scan", str(tree), "-f", "json", "--fail-on", "never")
    assert _scanned(tree, out) == ["models/a.onnx"]
    code, out, _ = _cli(
        "scan", str(tree), "-f", "json", "--fail-on", "never", "--no-respect-gitignore"
    )
    assert _scanned(tree, out) == ["models/a.onnx", "models/legacy/b.onnx"]
    _config(tree, "respect-gitignore = false\n")
    code, out, _ = _cli("scan", str(tree), "-f", "json", "--fail-on", "never")
    assert _scanned(tree, out) == ["models/a.onnx", "models/legacy/b.onnx"]
    code, out, _ = _cli(
        "scan", str(tree), "-f", "json", "--fail-on", "never", "--respect-gitignore"
    )
    assert code == 0
    assert _scanned(tree, out) == ["models/a.onnx"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("exclude = 3\n", "exclude must be a list of globs"),
        ('extend-exclude = [""]\n', "extend-exclude must be a list of globs"),
        ('respect-gitignore = "no"\n', "respect-gitignore 'no': expected true or false"),
        ('exclud = ["x"]\n', "unknown key 'exclud' (did you mean 'exclude'?)"),
    ],
)
def test_bad_exclude_keys_name_the_file(tree: Path, text: str, needle: str) -> None:
    _config(tree, text)
    code, _, err = _cli("scan", str(tree))
    assert code == 2
    (line,) = err.strip().splitlines()
    assert str(tree / "convaudit.toml") in line and needle in line, line


def test_python_config_takes_the_same_keys(tree: Path) -> None:
    from convaudit.config import Config
    from convaudit.errors import ConfigError

    result = scan(tree, Config(extend_exclude=("legacy",)))
    assert [Path(r.path).name for r in result.reports] == ["a.onnx"]
    assert {s.reason for s in result.skipped} >= {"excluded by 'legacy'", "hidden folder"}
    with pytest.raises(ConfigError, match="respect_gitignore 1: expected true or false"):
        Config(respect_gitignore=1)  # type: ignore[arg-type]
