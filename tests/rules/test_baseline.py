"""Baselines: record findings, then report only new ones and list stale entries."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convaudit.api import scan
from convaudit.baseline import Baseline, apply_baseline, load_baseline, render_baseline
from convaudit.cli import app
from convaudit.config import Config
from convaudit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_models"


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with two sample models; the cwd, so model paths are relative."""
    (tmp_path / "m").mkdir()
    shutil.copy(SAMPLES / "textbook_5x5.onnx", tmp_path / "m" / "a.onnx")
    shutil.copy(SAMPLES / "textbook_bottleneck.onnx", tmp_path / "m" / "b.onnx")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_known_findings_are_hidden_and_new_ones_reported(models: Path) -> None:
    before = scan("m")
    assert len(before.findings) == 6  # a: CA101, CA103, CA104, CA105; b: CA105 x2
    (models / "base.json").write_text(render_baseline(before))
    doc = json.loads((models / "base.json").read_text())
    assert {e["model"] for e in doc["findings"]} == {"m/a.onnx", "m/b.onnx"}
    again = scan("m", Config(baseline="base.json"))
    assert again.findings == ()
    assert again.baseline is not None and again.baseline.matched == 6 and again.baseline.stale == ()
    assert [len(r.baselined) for r in again.reports] == [4, 2]


def test_a_fixed_model_leaves_stale_entries_and_a_new_model_is_reported(models: Path) -> None:
    (models / "base.json").write_text(render_baseline(scan("m")))
    # a.onnx is "fixed": it becomes the bottlenecked model; a new wide model c.onnx appears
    shutil.copy(SAMPLES / "textbook_bottleneck.onnx", models / "m" / "a.onnx")
    shutil.copy(SAMPLES / "textbook_5x5.onnx", models / "m" / "c.onnx")
    result = scan("m", Config(baseline="base.json"))
    assert result.baseline is not None
    assert sorted(e.rule for e in result.baseline.stale) == ["CA101", "CA103", "CA104", "CA105"]
    new = {(f.model_path, f.rule) for f in result.findings}
    assert ("m/c.onnx", "CA101") in new
    assert all(path != "m/b.onnx" for path, _ in new)


def test_entries_of_models_not_scanned_are_not_stale(models: Path) -> None:
    (models / "base.json").write_text(render_baseline(scan("m")))
    result = scan("m/b.onnx", Config(baseline="base.json"))
    assert result.findings == () and result.baseline is not None
    assert result.baseline.stale == ()


def test_repeated_fingerprints_need_as_many_entries(models: Path) -> None:
    first = scan("m/a.onnx")
    baseline = load_baseline_from_text(models, render_baseline(first))
    doubled = first.reports[0]
    twice = dataclasses.replace(
        first, reports=(dataclasses.replace(doubled, findings=doubled.findings * 2),)
    )
    out = apply_baseline(twice, baseline)
    assert len(out.findings) == len(doubled.findings)


def load_baseline_from_text(folder: Path, text: str) -> Baseline:
    path = folder / "b.json"
    path.write_text(text)
    return load_baseline(path)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("{", "baseline is not valid JSON"),
        ('{"schema_version": 9, "findings": []}', "not a convaudit baseline"),
        ('{"schema_version": 1}', "baseline has no findings list"),
        ('{"schema_version": 1, "findings": [{"rule": "CA101"}]}', "entry 0 needs fingerprint"),
    ],
)
def test_bad_baseline_files(tmp_path: Path, text: str, pattern: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=pattern):
        load_baseline(path)


def test_cli_baseline_create_then_scan_exits_0_and_lists_stale(models: Path) -> None:
    runner = CliRunner()
    created = runner.invoke(app, ["baseline", "create", "m", "-o", "base.json"])
    assert created.exit_code == 0, created.output
    assert "6 findings written to base.json" in created.stderr
    clean = runner.invoke(app, ["scan", "m", "--baseline", "base.json"])
    assert clean.exit_code == 0, clean.output
    assert "known findings hidden by the baseline" in clean.stdout
    shutil.copy(SAMPLES / "textbook_bottleneck.onnx", models / "m" / "a.onnx")
    stale = runner.invoke(app, ["scan", "m", "--baseline", "base.json", "-f", "json"])
    assert stale.exit_code == 0
    doc = json.loads(stale.stdout)
    assert doc["baseline"]["matched"] == 2 and len(doc["baseline"]["stale"]) == 4
    missing = runner.invoke(app, ["scan", "m", "--baseline", "nope.json"])
    assert missing.exit_code == 2 and "cannot read baseline" in missing.stderr


def test_baseline_from_the_project_root_matches_from_a_subfolder(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The config file's folder names the models, not the cwd: `cd m && convaudit scan a.onnx`
    # must not report every known finding as new (and the entry as neither matched nor stale).
    (models / "convaudit.toml").write_text('baseline = "base.json"\n')
    runner = CliRunner()
    created = runner.invoke(app, ["baseline", "create", "m"])
    assert created.exit_code == 0, created.output
    assert (models / "convaudit-baseline.json").exists()
    (models / "convaudit-baseline.json").rename(models / "base.json")
    doc = json.loads((models / "base.json").read_text())
    assert {e["model"] for e in doc["findings"]} == {"m/a.onnx", "m/b.onnx"}
    monkeypatch.chdir(models / "m")
    from_sub = runner.invoke(app, ["scan", "a.onnx", "-f", "json"])
    assert from_sub.exit_code == 0, from_sub.output
    out = json.loads(from_sub.stdout)
    assert out["reports"][0]["findings"] == [] and out["baseline"]["matched"] == 4
