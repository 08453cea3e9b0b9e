"""The CLI around rules: exit codes by --fail-on, select/ignore flags, rules list/explain."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from convaudit.cli import app

ROOT = Path(__file__).resolve().parents[2]
TEXTBOOK = str(ROOT / "sample_models" / "textbook_5x5.onnx")
BOTTLENECK = str(ROOT / "sample_models" / "textbook_bottleneck.onnx")


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ([TEXTBOOK], 1),  # CA101 is a warning: fails at the default --fail-on warning
        ([TEXTBOOK, "--fail-on", "error"], 0),
        ([TEXTBOOK, "--fail-on", "never"], 0),
        ([TEXTBOOK, "--ignore", "CA101"], 0),  # only info findings left
        ([TEXTBOOK, "--ignore", "CA101", "--fail-on", "info"], 1),
        ([TEXTBOOK, "--select", "CA103,CA104"], 0),
        ([BOTTLENECK, "--fail-on", "warning"], 0),  # only CA105 (info)
        ([BOTTLENECK, "--fail-on", "info"], 1),
        ([TEXTBOOK, "--fail-on", "warn"], 2),
        ([TEXTBOOK, "--select", "CA8"], 2),
        ([TEXTBOOK, "--rules-dir", "/nonexistent/rules"], 2),
        ([str(ROOT / "README.md")], 2),  # not a model: an error beats findings
    ],
)
def test_scan_exit_codes(args: list[str], code: int) -> None:
    result = CliRunner().invoke(app, ["scan", *args])
    assert result.exit_code == code, result.output
    if code == 2:
        assert result.stderr.startswith("convaudit: error: ")


def test_findings_are_listed_under_the_layer_table_worst_first() -> None:
    out = CliRunner().invoke(app, ["scan", TEXTBOOK]).stdout
    table_end = out.index("total:")
    findings = out.index("findings:")
    assert table_end < findings
    lines = [line.split()[1] for line in out[findings:].splitlines()[1:] if line.strip()]
    assert lines == ["CA101", "CA103", "CA104", "CA105"]  # warning first, then infos


def test_rules_list() -> None:
    result = CliRunner().invoke(app, ["rules", "list"])
    assert result.exit_code == 0
    ids = [line.split()[0] for line in result.stdout.splitlines()]
    assert ids == ["CA101", "CA102", "CA103", "CA104", "CA105", "CA900"]
    assert "wide-kxk-conv-without-bottleneck" in result.stdout


def test_rules_explain_shows_docs_and_current_params(tmp_path: Path) -> None:
    cfg = tmp_path / "convaudit.toml"
    cfg.write_text("[params.CA101]\nmin_in_channels = 256\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["rules", "explain", "ca101", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for section in ("## What it does", "## Why is this bad?", "## Example", "## Fix", "## Options"):
        assert section in out
    assert "min_in_channels: 256" in out and "in_channels ge $min_in_channels (= 256)" in out
    missing = CliRunner().invoke(app, ["rules", "explain", "CA1011"])
    assert missing.exit_code == 2 and "did you mean CA101?" in missing.stderr


def test_user_rule_from_rules_dir_reports_and_explains(tmp_path: Path) -> None:
    (tmp_path / "team.yaml").write_text(
        """schema_version: 1
rules:
  - id: TEAM1
    name: five-by-five-kernel
    summary: Our accelerator has no 5x5 kernels.
    severity: error
    match: {fact: kernel, op: eq, value: [5, 5]}
    message: "{node}: {kernel_size} kernel ({macs:,} MACs)"
    docs: {what: w, why: y, example: e, fix: f}
""",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        app, ["scan", TEXTBOOK, "--rules-dir", str(tmp_path), "--fail-on", "error"]
    )
    assert result.exit_code == 1
    assert "TEAM1 five-by-five-kernel [conv5x5]: conv5x5: 5x5 kernel (112,896,000 MACs)" in (
        result.stdout
    )
    listed = CliRunner().invoke(app, ["rules", "list", "--rules-dir", str(tmp_path)])
    assert "TEAM1" in listed.stdout
