"""SARIF rules link their docs (helpUri), and model URIs start at a declared base (%SRCROOT%, the
git work tree), so a scan from a subfolder gives repository paths, not ../model.onnx."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from convaudit.api import scan
from convaudit.records import AuditResult, ModelReport
from convaudit.report import sarif

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_models" / "textbook_5x5.onnx"
DOCS = "https://github.com/convaudit/convaudit/blob/main/rules/"


def _run(result: AuditResult) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(sarif.render(result))
    (run,) = doc["runs"]
    return run


def test_every_built_in_rule_links_its_docs_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    run = _run(scan("sample_models/textbook_5x5.onnx"))
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert {"CA101", "CA105", "CA900"} <= set(rules)
    for rule_id, rule in rules.items():
        assert rule["helpUri"] == f"{DOCS}{rule_id}.yaml"
        # the link's target is the file in this repository that holds the rule's docs
        assert "docs:" in (ROOT / "rules" / f"{rule_id}.yaml").read_text()
    assert DOCS in (ROOT / "README.md").read_text()  # the README names where the docs are


def test_a_rule_from_a_rules_dir_has_no_made_up_link(tmp_path: Path) -> None:
    from convaudit.config import Config

    team = tmp_path / "team"
    team.mkdir()
    shutil.copyfile(ROOT / "rules" / "CA105.yaml", team / "hot.yaml")
    text = (team / "hot.yaml").read_text().replace("CA105", "TEAM1")
    (team / "hot.yaml").write_text(text)
    result = scan(SAMPLE, Config(rule_dirs=(str(team),)))
    rules = {r["id"]: r for r in _run(result)["tool"]["driver"]["rules"]}
    assert "TEAM1" in rules and "helpUri" not in rules["TEAM1"]


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    (repo / "src" / "deep").mkdir(parents=True)
    shutil.copyfile(SAMPLE, repo / "models" / "m#1.onnx")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    return repo


def test_a_scan_from_a_subfolder_gives_repository_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _repo(tmp_path)
    monkeypatch.chdir(repo / "src" / "deep")
    result = scan("../../models/m#1.onnx")
    monkeypatch.chdir(tmp_path)  # rendering later, elsewhere, changes nothing
    run = _run(result)
    assert run["originalUriBaseIds"]["%SRCROOT%"]["description"]["text"]
    locations = [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in run["results"]]
    assert locations and all(
        loc == {"uri": "models/m%231.onnx", "uriBaseId": "%SRCROOT%"} for loc in locations
    )


def test_without_git_the_base_is_the_folder_it_ran_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "here").mkdir()
    shutil.copyfile(SAMPLE, tmp_path / "here" / "m.onnx")
    shutil.copyfile(SAMPLE, tmp_path / "outside.onnx")
    monkeypatch.chdir(tmp_path / "here")
    assert scan("m.onnx").source_root == str((tmp_path / "here").resolve())
    inside = _run(scan("m.onnx"))["results"][0]["locations"][0]["physicalLocation"]
    assert inside["artifactLocation"] == {"uri": "m.onnx", "uriBaseId": "%SRCROOT%"}
    outside = _run(scan("../outside.onnx"))["results"][0]["locations"][0]["physicalLocation"]
    expected = (tmp_path / "outside.onnx").resolve().as_uri()
    assert outside["artifactLocation"] == {"uri": expected}  # absolute, no base to hang it on


def test_a_failed_model_is_located_the_same_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _repo(tmp_path)
    (repo / "models" / "bad.onnx").write_bytes(b"")
    monkeypatch.chdir(repo / "src")
    run = _run(scan("../models/bad.onnx"))
    (note,) = run["invocations"][0]["toolExecutionNotifications"]
    loc = note["locations"][0]["physicalLocation"]["artifactLocation"]
    assert loc == {"uri": "models/bad.onnx", "uriBaseId": "%SRCROOT%"}


def test_a_hand_built_result_keeps_its_paths() -> None:
    bad = ModelReport(path="models/bad.onnx", facts=None, errors=("truncated",))
    run = _run(AuditResult(reports=(bad,)))
    loc = run["invocations"][0]["toolExecutionNotifications"][0]["locations"][0]
    assert loc["physicalLocation"]["artifactLocation"] == {"uri": "models/bad.onnx"}
