"""The pre-commit hook and the composite GitHub Action: well-formed, and the scan step runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str) -> Any:
    return yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))


def test_pre_commit_hook() -> None:
    (hook,) = _load(".pre-commit-hooks.yaml")
    assert hook["id"] == "convaudit"
    assert hook["entry"] == "convaudit scan"
    assert hook["language"] == "python"
    pattern = re.compile(hook["files"])
    assert pattern.search("models/resnet50.onnx")
    assert not pattern.search("models/resnet50.onnx.json")
    assert not pattern.search("notes/onnx.md")


def _steps() -> list[dict[str, Any]]:
    action = _load("action.yml")
    assert action["runs"]["using"] == "composite"
    steps: list[dict[str, Any]] = action["runs"]["steps"]
    return steps


def test_action_inputs_are_declared_and_sarif_is_uploaded() -> None:
    action = _load("action.yml")
    declared = set(action["inputs"])
    used = set(re.findall(r"inputs\.([\w-]+)", (ROOT / "action.yml").read_text()))
    assert used <= declared, used - declared
    uploads = [s for s in _steps() if s.get("uses", "").startswith("github/codeql-action/")]
    (upload,) = uploads
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@")
    assert upload["with"]["sarif_file"] == "${{ inputs.sarif-file }}"
    for step in _steps():
        if "run" in step:
            assert step["shell"] == "bash"
            check = subprocess.run(["bash", "-n"], input=step["run"], text=True, check=False)
            assert check.returncode == 0, step["name"]


def test_action_scan_step_runs_like_on_a_runner(tmp_path: Path) -> None:
    (scan,) = [s for s in _steps() if s.get("id") == "scan"]
    out, summary = tmp_path / "out", tmp_path / "summary"
    env = {
        **os.environ,
        **scan["env"],
        "CONVAUDIT_PATHS": "sample_models/textbook_5x5.onnx",
        "CONVAUDIT_ARGS": "--max-macs 100M",
        "CONVAUDIT_SARIF": str(tmp_path / "convaudit.sarif"),
        "RUNNER_TEMP": str(tmp_path),
        "GITHUB_OUTPUT": str(out),
        "GITHUB_STEP_SUMMARY": str(summary),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    proc = subprocess.run(
        ["bash", "-e", "-c", scan["run"]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert outputs == {"exit-code": "1", "sarif-written": "true"}  # CA900: over 100M MACs
    assert "::error file=sample_models/textbook_5x5.onnx,line=1,title=CA900" in proc.stdout
    assert summary.read_text().startswith("<!-- convaudit-report -->")
    sarif = json.loads((tmp_path / "convaudit.sarif").read_text())
    assert any(r["ruleId"] == "CA900" for r in sarif["runs"][0]["results"])


FAKE_GH = """#!/usr/bin/env bash
# Stands in for the GitHub CLI: logs each call, answers the comment listing from $FAKE_EXISTING.
echo "$*" >> "$FAKE_LOG"
if [[ "$*" == *"--paginate"* ]]; then
  [ -n "$FAKE_EXISTING" ] && echo "$FAKE_EXISTING"
fi
exit 0
"""


def _run_comment_step(tmp_path: Path, existing: str) -> list[str]:
    (step,) = [s for s in _steps() if s.get("name") == "Comment on the pull request"]
    assert "pull_request" in step["if"] and "pr-comment" in step["if"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    gh = bin_dir / "gh"
    gh.write_text(FAKE_GH)
    gh.chmod(0o755)
    (tmp_path / "convaudit.md").write_text("<!-- convaudit-report -->\n## convaudit report\n")
    log = tmp_path / f"gh-{existing or 'none'}.log"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "RUNNER_TEMP": str(tmp_path),
        "GITHUB_REPOSITORY": "acme/models",
        "PR_NUMBER": "42",
        "FAKE_LOG": str(log),
        "FAKE_EXISTING": existing,
    }
    proc = subprocess.run(
        ["bash", "-e", "-c", step["run"]], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return log.read_text().splitlines()


def test_pr_comment_is_updated_in_place_when_the_marker_is_found(tmp_path: Path) -> None:
    calls = _run_comment_step(tmp_path, existing="987")
    assert calls[0].startswith("api repos/acme/models/issues/42/comments --paginate --jq")
    assert "<!-- convaudit-report -->" in calls[0]
    assert calls[1] == (
        f"api -X PATCH repos/acme/models/issues/comments/987 -F body=@{tmp_path}/convaudit.md"
    )


def test_pr_comment_is_created_when_none_exists(tmp_path: Path) -> None:
    calls = _run_comment_step(tmp_path, existing="")
    assert calls[1] == (
        f"api -X POST repos/acme/models/issues/42/comments -F body=@{tmp_path}/convaudit.md"
    )


def test_action_keeps_the_callers_python() -> None:
    (setup,) = [s for s in _steps() if s.get("uses", "").startswith("actions/setup-python@")]
    assert setup["with"]["update-environment"] is False
    (install,) = [s for s in _steps() if s.get("name") == "Install convaudit"]
    # Installed into a private venv, never with the caller's (or the PATH's) pip.
    assert '"$CONVAUDIT_PYTHON" -m venv' in install["run"]
    assert "python -m pip install" not in install["run"].replace("/bin/python -m pip", "")


def test_steps_a_fork_token_cannot_do_never_fail_the_job() -> None:
    names = {"Upload SARIF to code scanning", "Comment on the pull request"}
    steps = [s for s in _steps() if s.get("name") in names]
    assert len(steps) == 2
    assert all(s["continue-on-error"] is True for s in steps)


def test_pr_comment_from_a_fork_is_a_notice_not_a_call(tmp_path: Path) -> None:
    (step,) = [s for s in _steps() if s.get("name") == "Comment on the pull request"]
    (tmp_path / "convaudit.md").write_text("<!-- convaudit-report -->\n")
    log = tmp_path / "gh.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(FAKE_GH)
    (bin_dir / "gh").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "RUNNER_TEMP": str(tmp_path),
        "GITHUB_REPOSITORY": "acme/models",
        "HEAD_REPO": "someone/models",
        "PR_NUMBER": "7",
        "FAKE_LOG": str(log),
        "FAKE_EXISTING": "",
    }
    proc = subprocess.run(
        ["bash", "-e", "-c", step["run"]], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert not log.exists()
    assert proc.stdout.startswith("::notice title=convaudit::pull request from a fork")


def test_action_scans_from_its_working_directory(tmp_path: Path) -> None:
    (scan,) = [s for s in _steps() if s.get("id") == "scan"]
    assert scan["working-directory"] == "${{ inputs.working-directory }}"
    workspace = tmp_path / "ws"
    sub = workspace / "ml"
    sub.mkdir(parents=True)
    (sub / "m.onnx").write_bytes((ROOT / "sample_models" / "textbook_5x5.onnx").read_bytes())
    out = tmp_path / "out"
    env = {
        **os.environ,
        **scan["env"],
        "CONVAUDIT_PATHS": "m.onnx",
        "CONVAUDIT_ARGS": "",
        "CONVAUDIT_SARIF": "reports/convaudit.sarif",
        "GITHUB_WORKSPACE": str(workspace),
        "RUNNER_TEMP": str(tmp_path),
        "GITHUB_OUTPUT": str(out),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    (workspace / "reports").mkdir()
    proc = subprocess.run(
        ["bash", "-e", "-c", scan["run"]], cwd=sub, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    # The model is found relative to working-directory; the SARIF lands where upload-sarif
    # reads it (relative to the workspace).
    assert "file=m.onnx,line=1,title=CA101" in proc.stdout
    sarif = json.loads((workspace / "reports" / "convaudit.sarif").read_text())
    assert sarif["runs"][0]["results"]
