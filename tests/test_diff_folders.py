"""`convaudit diff` of two folders: models paired by relative path, added and removed ones listed,
and the Action's diff-base step that compares a pull request with its base revision."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from convaudit.cli import app
from convaudit.diff_folders import diff_folders

ROOT = Path(__file__).resolve().parents[1]
WIDE = ROOT / "sample_models" / "textbook_5x5.onnx"  # 112,896,000 MACs
SLIM = ROOT / "sample_models" / "textbook_bottleneck.onnx"  # 5,268,480 MACs


def _put(path: Path, model: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, path)


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    base, head = tmp_path / "base", tmp_path / "head"
    _put(base / "a.onnx", WIDE)
    _put(base / "gone.onnx", SLIM)
    _put(base / "sub" / "keep.onnx", SLIM)
    _put(head / "a.onnx", SLIM)  # the PR adds the bottleneck
    _put(head / "sub" / "keep.onnx", SLIM)
    _put(head / "new.onnx", SLIM)
    return base, head


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["diff", *args])
    return result.exit_code, result.stdout, result.stderr


def test_models_pair_by_relative_path(folders: tuple[Path, Path]) -> None:
    base, head = folders
    d = diff_folders(str(base), str(head))
    assert [rel for rel, _ in d.pairs] == ["a.onnx", "sub/keep.onnx"]
    assert [rel for rel, _ in d.added] == ["new.onnx"]
    assert [rel for rel, _ in d.removed] == ["gone.onnx"]
    (_, a), (_, keep) = d.pairs
    assert (a.base.totals.macs, a.head.totals.macs) == (112_896_000, 5_268_480)
    assert keep.base.totals.macs == keep.head.totals.macs == 5_268_480


def test_json_lists_pairs_added_removed_and_totals(folders: tuple[Path, Path]) -> None:
    base, head = folders
    code, out, err = run(str(base), str(head), "-f", "json")
    assert code == 0, err  # only info findings are new: below --fail-on warning
    doc = json.loads(out)
    assert [m["path"] for m in doc["models"]] == ["a.onnx", "sub/keep.onnx"]
    assert doc["models"][0]["totals"]["macs"]["delta"] == 5_268_480 - 112_896_000
    assert [m["path"] for m in doc["added"]] == ["new.onnx"]
    assert doc["added"][0]["macs"] == 5_268_480
    assert [m["path"] for m in doc["removed"]] == ["gone.onnx"]
    # base: a + gone + keep; head: a + keep + new (every model on each side)
    assert doc["totals"]["macs"] == {
        "base": 112_896_000 + 2 * 5_268_480,
        "head": 3 * 5_268_480,
        "delta": 5_268_480 - 112_896_000,
    }
    fixed = [f["rule"] for f in doc["models"][0]["fixed_findings"]]
    assert "CA101" in fixed


def test_table_and_markdown_show_each_model(folders: tuple[Path, Path]) -> None:
    base, head = folders
    code, out, _ = run(str(base), str(head))
    assert code == 0
    rows = {
        line.split()[0]: line
        for line in out.splitlines()
        if line.split() and line.split()[0].endswith(".onnx")
    }
    assert "112.9M → 5.3M" in rows["a.onnx"] and "-107.6M (-95.3%)" in rows["a.onnx"]
    assert "added" in rows["new.onnx"] and "removed" in rows["gone.onnx"]
    assert "2 models in both, 1 added, 1 removed" in out
    assert "== a.onnx" in out and "conv5x5" in out  # the changed pair's layer table
    code, md, _ = run(str(base), str(head), "-f", "markdown")
    assert md.startswith("<!-- convaudit-diff -->\n## convaudit diff")
    assert "| `new.onnx` | - → 5.3M | added |" in md


def test_new_findings_of_added_models_count_at_fail_on(folders: tuple[Path, Path]) -> None:
    base, head = folders
    _put(head / "wide.onnx", WIDE)  # an added model with a CA101 warning
    code, out, _ = run(str(base), str(head), "--fail-on", "warning")
    assert code == 1 and "wide.onnx (added)" in out and "CA101" in out
    (head / "wide.onnx").unlink()
    code, _, _ = run(str(base), str(head), "--fail-on", "info")
    assert code == 1  # the bottleneck's new CA105 infos on reduce1x1 and in new.onnx


def test_a_broken_model_is_reported_and_exits_2(folders: tuple[Path, Path]) -> None:
    base, head = folders
    (head / "sub" / "keep.onnx").write_bytes(b"")
    code, out, err = run(str(base), str(head))
    assert code == 2
    assert "a.onnx" in out  # the other models are still compared
    (line,) = err.strip().splitlines()
    assert line.startswith("convaudit: error: ") and "keep.onnx" in line


def test_a_file_and_a_folder_do_not_compare(folders: tuple[Path, Path]) -> None:
    base, head = folders
    code, _, err = run(str(base / "a.onnx"), str(head))
    assert code == 2
    assert err.strip().splitlines() == [
        f"convaudit: error: {head}: a folder, but {base / 'a.onnx'} is a file: "
        "compare two models or two folders"
    ]


# -- the Action's diff-base step --------------------------------------------------------------
def _step() -> dict[str, Any]:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    (step,) = [s for s in action["runs"]["steps"] if s.get("id") == "diff"]
    assert "inputs.diff-base == 'true'" in step["if"] and "pull_request" in step["if"]
    assert "diff-base" in action["inputs"] and "diff-args" in action["inputs"]
    return step


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def test_action_diffs_the_pull_request_against_its_base(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _put(repo / "models" / "a.onnx", WIDE)
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "base")
    base_sha = _git(repo, "rev-parse", "HEAD")
    _put(repo / "models" / "a.onnx", SLIM)
    _put(repo / "models" / "new.onnx", SLIM)
    _put(repo / "extra" / "x.onnx", SLIM)  # a path the base revision lacks
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "head")
    temp = tmp_path / "runner"
    temp.mkdir()
    (temp / "convaudit.md").write_text("<!-- convaudit-report -->\n## convaudit report\n")
    out, summary = tmp_path / "out", tmp_path / "summary"
    step = _step()
    env = {
        **os.environ,
        **{k: v for k, v in step["env"].items() if "${{" not in str(v)},
        "CONVAUDIT_PATHS": "models extra",
        "CONVAUDIT_DIFF_ARGS": "--fail-on never",
        "BASE_SHA": base_sha,
        "RUNNER_TEMP": str(temp),
        "GITHUB_OUTPUT": str(out),
        "GITHUB_STEP_SUMMARY": str(summary),
        "CONVAUDIT_BIN": str(Path(sys.executable).parent / "convaudit"),
    }
    proc = subprocess.run(
        ["bash", "-e", "-c", step["run"]], cwd=repo, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().splitlines() == ["exit-code=0"]
    text = summary.read_text()
    assert text.startswith("<!-- convaudit-diff -->")
    assert "MACs 112,896,000 → 10,536,960" in text  # a: 5x5 -> bottleneck; new.onnx added
    assert "| `new.onnx` | - → 5.3M | added |" in text
    assert "`extra` is new in this pull request" in text
    comment = (temp / "convaudit.md").read_text()
    assert comment.startswith("<!-- convaudit-report -->") and "<!-- convaudit-diff -->" in comment
    assert len(_git(repo, "worktree", "list").splitlines()) == 1  # the base worktree is gone
