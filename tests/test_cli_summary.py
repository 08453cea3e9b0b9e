"""After the tables: a fleet summary; --quiet (findings only, the pre-commit hook), --statistics
(counts by rule), --top N, and colour only on a terminal (NO_COLOR, FORCE_COLOR)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from convaudit.cli import app

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["scan", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    """The textbook conv, its bottleneck version and a file that is not a model."""
    for name in ("textbook_5x5.onnx", "textbook_bottleneck.onnx"):
        shutil.copyfile(SAMPLES / name, tmp_path / name)
    (tmp_path / "broken.onnx").write_bytes(b"")
    return tmp_path


def test_a_multi_model_table_ends_with_a_fleet_summary(fleet: Path) -> None:
    code, out, _ = run(str(fleet), "--fail-on", "never")
    assert code == 2  # the broken model
    summary = out[out.index("== summary") :].splitlines()
    # 112,896,000 + 5,268,480 MACs; 576,048 + 26,944 params (hand-added from the README figures)
    assert summary[:3] == [
        "== summary: 3 models, 1 failed to scan",
        "total: 118.2M MACs (118,164,480), 603.0K params (602,992) over 2 scanned models",
        "6 findings: 0 error · 1 warning · 5 info",
    ]
    assert summary[3:] == [
        "  3  CA105  info    compute-hotspot",
        "  1  CA101  warning wide-kxk-conv-without-bottleneck",
        "  1  CA103  info    large-kernel-factorizable",
        "  1  CA104  info    separable-candidate",
    ]


def test_one_model_has_no_summary() -> None:
    _, out, _ = run(str(SAMPLES / "textbook_5x5.onnx"), "--fail-on", "never")
    assert "== summary" not in out


def test_statistics_counts_by_rule(fleet: Path) -> None:
    (fleet / "broken.onnx").unlink()
    code, out, _ = run(str(fleet), "--statistics")
    assert code == 1  # the CA101 warning still fails, as with the full report
    assert out.splitlines() == [
        "3  CA105  info    compute-hotspot",
        "1  CA101  warning wide-kxk-conv-without-bottleneck",
        "1  CA103  info    large-kernel-factorizable",
        "1  CA104  info    separable-candidate",
    ]
    _, out, _ = run(str(fleet), "--statistics", "-f", "json")
    rows = json.loads(out)
    assert rows[0] == {"code": "CA105", "name": "compute-hotspot", "severity": "info", "count": 3}
    assert sum(r["count"] for r in rows) == 6
    code, _, err = run(str(fleet), "--statistics", "-f", "sarif")
    assert code == 2 and "--statistics prints table or json" in err


def test_quiet_prints_only_the_findings(fleet: Path) -> None:
    (fleet / "broken.onnx").unlink()
    code, out, err = run(str(fleet), "--quiet")
    assert code == 1 and err == ""
    lines = out.splitlines()
    assert len(lines) == 6
    assert lines[0].startswith(
        f"{fleet / 'textbook_5x5.onnx'}: warning CA101 wide-kxk-conv-without-bottleneck [conv5x5]: "
    )
    assert all(": info CA10" in line for line in lines[1:])
    code, out, _ = run(str(fleet / "textbook_bottleneck.onnx"), "-q", "--select", "CA101")
    assert code == 0 and out == ""  # a clean commit prints nothing


def test_the_pre_commit_hook_runs_quiet() -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["args"] == ["--quiet"]
    assert "args: [--quiet" in (ROOT / "README.md").read_text()


def test_top_keeps_the_costliest_layers() -> None:
    _, out, _ = run(str(SAMPLES / "inception_block.onnx"), "--top", "2", "--fail-on", "never")
    rows = [line for line in out.splitlines() if line.startswith("inception_4a/")]
    assert len(rows) == 2
    assert rows[0].startswith("inception_4a/3x3 ")  # 35.2M MACs, 47.9%: the costliest
    _, full, _ = run(str(SAMPLES / "inception_block.onnx"), "--fail-on", "never")
    layers = sum(1 for line in full.splitlines() if line.startswith("inception_4a/"))
    assert f"... {layers - 2} more layers (--top 2)" in out
    code, _, err = run(str(SAMPLES / "inception_block.onnx"), "--top", "0")
    assert code == 2 and err.strip() == "convaudit: error: --top must be at least 1, got 0"


def test_colour_only_when_asked_for(tmp_path: Path) -> None:
    model = str(SAMPLES / "textbook_5x5.onnx")
    _, plain, _ = run(model, "--fail-on", "never")
    assert not ANSI.search(plain)  # CliRunner's stdout is a pipe
    _, forced, _ = run(model, "--fail-on", "never", env={"FORCE_COLOR": "1"})
    assert "\x1b[33mwarning\x1b[0m CA101" in forced
    assert ANSI.sub("", forced) == plain  # colour adds codes, never changes the text
    _, off, _ = run(model, "--fail-on", "never", env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert off == plain
    out = tmp_path / "report.txt"
    run(model, "--fail-on", "never", "-o", str(out), env={"FORCE_COLOR": "1"})
    assert out.read_text() == plain  # never in a file
