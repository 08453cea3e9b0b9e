"""Budgets: CA900 findings from --max-macs / --max-params / --max-increase, and their exit codes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convaudit.budgets import check_budgets, check_increase, parse_budget, parse_increase
from convaudit.cli import app
from convaudit.errors import ConfigError
from convaudit.model.analyse import analyse
from convaudit.records import ModelFacts

ROOT = Path(__file__).resolve().parents[1]
TEXTBOOK = ROOT / "sample_models" / "textbook_5x5.onnx"
BOTTLENECK = ROOT / "sample_models" / "textbook_bottleneck.onnx"


@pytest.fixture(scope="module")
def textbook() -> ModelFacts:
    return analyse(TEXTBOOK)  # 112,896,000 MACs, 576,048 params


def _with_totals(facts: ModelFacts, macs: int, params: int) -> ModelFacts:
    return dataclasses.replace(
        facts, totals=dataclasses.replace(facts.totals, macs=macs, params=params)
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [("4.1G", 4_100_000_000), ("25.6M", 25_600_000), ("1200", 1200), ("2k", 2000)],
)
def test_parse_budget(text: str, value: int) -> None:
    assert parse_budget("--max-macs", text) == value


@pytest.mark.parametrize("text", ["", "4.1X", "-3M", "0"])
def test_parse_budget_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="--max-macs"):
        parse_budget("--max-macs", text)


def test_parse_increase() -> None:
    assert parse_increase("2%") == pytest.approx(0.02)
    assert parse_increase("0.5") == pytest.approx(0.005)
    with pytest.raises(ConfigError, match="percentage"):
        parse_increase("two")


def test_mac_budget_over_and_at_the_limit(textbook: ModelFacts) -> None:
    (f,) = check_budgets(textbook, max_macs=100_000_000)
    assert (f.rule, f.name, f.severity, f.node) == ("CA900", "budget-exceeded", "error", None)
    assert f.message == (
        "total MACs 112,896,000 (112.9M) exceed the budget --max-macs 100,000,000 (100.0M) by 12.9%"
    )
    assert f.facts == {"metric": "macs", "value": 112_896_000, "budget": 100_000_000}
    assert check_budgets(textbook, max_macs=112_896_000) == ()  # at the budget is within it


def test_param_budget(textbook: ModelFacts) -> None:
    (f,) = check_budgets(textbook, max_params=576_047)
    assert f.facts["metric"] == "params"
    assert check_budgets(textbook, max_params=576_048) == ()
    assert check_budgets(textbook) == ()


def test_increase_boundary(textbook: ModelFacts) -> None:
    base = _with_totals(textbook, 1000, 500)
    assert check_increase(base, _with_totals(textbook, 1020, 510), 0.02) == ()  # exactly +2%
    (f,) = check_increase(base, _with_totals(textbook, 1021, 510), 0.02)
    assert f.facts == {"metric": "macs_increase", "base": 1000, "value": 1021, "max_increase": 0.02}
    assert "+2.10%" in f.message
    both = check_increase(base, _with_totals(textbook, 2000, 1000), 0.0)
    assert [x.facts["metric"] for x in both] == ["macs_increase", "params_increase"]


def test_cli_budget_is_a_finding_in_every_format(tmp_path: Path) -> None:
    runner = CliRunner()
    sarif_path = tmp_path / "out.sarif"
    res = runner.invoke(
        app,
        [
            "scan",
            str(TEXTBOOK),
            "--max-macs",
            "100M",
            "-f",
            "json",
            "--report",
            f"sarif={sarif_path}",
        ],
    )
    assert res.exit_code == 1, res.stderr
    findings = json.loads(res.stdout)["reports"][0]["findings"]
    (finding,) = [f for f in findings if f["rule"] == "CA900"]
    assert finding["severity"] == "error"
    sarif = json.loads(sarif_path.read_text())
    (result,) = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "CA900"]
    assert result["level"] == "error"
    ok = runner.invoke(app, ["scan", str(TEXTBOOK), "--max-macs", "4.1G", "-f", "json"])
    assert ok.exit_code in (0, 1), ok.stderr  # 1 only for rule findings, never for the budget
    assert "CA900" not in ok.stdout
    within = runner.invoke(app, ["scan", str(BOTTLENECK), "--max-macs", "4.1G", "-f", "json"])
    assert within.exit_code == 0, within.stdout


def test_cli_bad_budget_exits_2() -> None:
    res = CliRunner().invoke(app, ["scan", str(TEXTBOOK), "--max-params", "lots"])
    assert res.exit_code == 2
    assert res.stderr.startswith("convaudit: error: --max-params 'lots'")


def test_cli_diff_max_increase_exit_codes() -> None:
    runner = CliRunner()
    grew = runner.invoke(app, ["diff", str(BOTTLENECK), str(TEXTBOOK), "--max-increase", "2%"])
    assert grew.exit_code == 1
    assert "CA900 budget-exceeded" in grew.stdout
    assert "total MACs grew 5,268,480 → 112,896,000" in grew.stdout
    shrank = runner.invoke(app, ["diff", str(TEXTBOOK), str(BOTTLENECK), "--max-increase", "2%"])
    assert shrank.exit_code == 0, shrank.stdout


def test_budget_from_config_file_and_flag_override(tmp_path: Path) -> None:
    import shutil

    shutil.copy(TEXTBOOK, tmp_path / "m.onnx")
    (tmp_path / "convaudit.toml").write_text('max-macs = "100M"\nfail-on = "error"\n')
    runner = CliRunner()
    res = runner.invoke(app, ["scan", str(tmp_path / "m.onnx"), "-f", "github"])
    assert res.exit_code == 1, res.stderr  # CA900 is an error: fails even at fail-on error
    assert "title=CA900 budget-exceeded::total MACs 112,896,000" in res.stdout
    loose = runner.invoke(app, ["scan", str(tmp_path / "m.onnx"), "--max-macs", "4.1G"])
    assert loose.exit_code == 0, loose.stdout  # the flag wins; the rest are warnings/info
