"""The budget rule (rules/CA900.yaml, ``check: budget``) is a catalogue rule like the others:
listed, explained, selectable, ignorable, re-levelled and suppressible, and carried by results."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convaudit.api import scan
from convaudit.budgets import builtin_budget_rule, check_budgets
from convaudit.cli import app
from convaudit.config import Config
from convaudit.errors import RuleFileError
from convaudit.model.analyse import analyse
from convaudit.report import render
from convaudit.rules.loader import load_file

ROOT = Path(__file__).resolve().parents[2]
TEXTBOOK = str(ROOT / "sample_models" / "textbook_5x5.onnx")  # 112,896,000 MACs
# The table line for textbook_5x5 over a 100M MAC budget: 112.896 / 100 - 1 = 12.9% over.
LINE = (
    "  error   CA900 budget-exceeded [model]: total MACs 112,896,000 (112.9M) exceed the budget "
    "--max-macs 100,000,000 (100.0M) by 12.9%"
)


def _scan(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["scan", TEXTBOOK, "--max-macs", "100M", *args])
    return result.exit_code, result.stdout


def test_rules_list_lists_it() -> None:
    result = CliRunner().invoke(app, ["rules", "list"])
    assert result.exit_code == 0
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("CA900")]
    assert line.split()[:4] == ["CA900", "error", "on", "budget-exceeded"]


def test_rules_explain_it() -> None:
    result = CliRunner().invoke(app, ["rules", "explain", "ca900"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("CA900 budget-exceeded (error, enabled)\n")
    for section in (
        "## What it does",
        "## Why is this bad?",
        "## Example",
        "## Fix",
        "## Options",
        "## Evaluated",
    ):
        assert section in out
    assert "max-increase" in out and "## Match" not in out


def test_table_names_the_rule_and_the_model_not_none() -> None:
    code, out = _scan()
    assert code == 1
    assert LINE in out.splitlines()
    assert "[None]" not in out


def test_ignore_and_select() -> None:
    code, out = _scan("--fail-on", "error")
    assert code == 1 and "CA900" in out
    code, out = _scan("--fail-on", "error", "--ignore", "CA900")
    assert code == 0 and "CA900" not in out and "CA101" in out
    code, out = _scan("--select", "CA900")
    findings = [x for x in out.splitlines() if x.startswith("  ") and "[" in x]
    assert findings == [LINE]


def test_config_severity_and_suppression_apply(tmp_path: Path) -> None:
    cfg = tmp_path / "convaudit.toml"
    cfg.write_text('[severity]\nCA900 = "warning"\n', encoding="utf-8")
    code, out = _scan("--config", str(cfg), "--fail-on", "error", "--select", "CA900")
    assert code == 0
    assert "  warning CA900 budget-exceeded [model]: total MACs 112,896,000" in out
    cfg.write_text(
        '[[suppressions]]\nrule = "CA900"\nreason = "budget raised next sprint"\n',
        encoding="utf-8",
    )
    code, out = _scan("--config", str(cfg), "--fail-on", "error")
    assert code == 0
    assert "  suppressed CA900 [model]: budget raised next sprint" in out


def test_budgets_find_the_rule_by_its_check_not_its_id() -> None:
    rule = dataclasses.replace(builtin_budget_rule(), id="XB1", name="renamed", severity="info")
    (f,) = check_budgets(analyse(TEXTBOOK), max_macs=100_000_000, rule=rule)
    assert (f.rule, f.name, f.severity) == ("XB1", "renamed", "info")
    assert builtin_budget_rule().check == "budget"


def test_result_carries_the_catalogue_and_sarif_reads_only_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = scan(TEXTBOOK, Config(max_macs=100_000_000, ignore=("CA103",)))
    assert [r.id for r in result.rules] == ["CA101", "CA102", "CA104", "CA105", "CA900"]
    budget = result.rules[-1]
    assert (budget.name, budget.severity) == ("budget-exceeded", "error")
    assert "### Options" in budget.help_markdown

    def no_files(*args: object, **kwargs: object) -> None:
        raise AssertionError("a reporter read rule files")

    monkeypatch.setattr("convaudit.rules.loader.load_rules", no_files)
    monkeypatch.setattr("convaudit.rules.loader.load_file", no_files)
    for fmt in ("table", "json", "markdown", "sarif", "junit", "html", "github"):
        render(result, fmt)
    driver = json.loads(render(result, "sarif"))["runs"][0]["tool"]["driver"]
    assert [r["id"] for r in driver["rules"]] == ["CA101", "CA102", "CA104", "CA105", "CA900"]


BUDGET_RULE = """\
schema_version: 1
rules:
  - id: CA901
    name: other-budget
    check: {check}
    summary: s
    severity: error
    docs: {{what: w, why: y, example: e, fix: f}}
{extra}"""


@pytest.mark.parametrize(
    ("check", "extra", "builtin", "pattern"),
    [
        (
            "budgt",
            "",
            True,
            r"check 'budgt' must be one of match, budget \(did you mean budget\?\)",
        ),
        (
            "budget",
            "    message: m\n",
            True,
            r"message does not apply to a rule with check: budget",
        ),
        ("budget", "    params: {x: 1}\n", True, r"params does not apply"),
        ("budget", "", False, r"check: budget is reserved for built-in rules"),
    ],
)
def test_check_is_validated(
    tmp_path: Path, check: str, extra: str, builtin: bool, pattern: str
) -> None:
    path = tmp_path / "r.yaml"
    text = BUDGET_RULE.format(check=check, extra=extra)
    if not builtin:
        text = text.replace("CA901", "MY901")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleFileError, match=pattern):
        load_file(path, builtin=builtin)


def test_a_budget_rule_needs_no_match_and_matches_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(BUDGET_RULE.format(check="budget", extra=""), encoding="utf-8")
    (rule,) = load_file(path, builtin=True)
    assert rule.check == "budget" and rule.message_text == ""
    assert rule.match.kind == "any" and rule.match.children == ()  # "any of nothing" is false


def test_json_schema_knows_the_check() -> None:
    import jsonschema
    import yaml

    from convaudit.rules.json_schema import rule_file_schema

    validator = jsonschema.Draft202012Validator(rule_file_schema())
    doc = yaml.safe_load(BUDGET_RULE.format(check="budget", extra=""))
    assert list(validator.iter_errors(doc)) == []
    with_match = yaml.safe_load(BUDGET_RULE.format(check="budget", extra="    message: m\n"))
    assert list(validator.iter_errors(with_match)) != []
    doc["rules"][0]["check"] = "match"  # a match rule still needs match and message
    assert list(validator.iter_errors(doc)) != []


def test_diff_growth_follows_the_configured_budget_rule(tmp_path: Path) -> None:
    # textbook_bottleneck (5,268,480 MACs) -> textbook_5x5 (112,896,000): +2042.9%, over 2%.
    bottleneck = str(ROOT / "sample_models" / "textbook_bottleneck.onnx")
    cfg = tmp_path / "convaudit.toml"
    args = ["diff", bottleneck, TEXTBOOK, "--max-increase", "2%", "--config", str(cfg)]
    cfg.write_text('fail-on = "error"\n', encoding="utf-8")
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1 and "CA900 budget-exceeded" in res.stdout
    cfg.write_text('fail-on = "error"\nignore = ["CA900"]\n', encoding="utf-8")
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.stdout
    assert "CA900" not in res.stdout
    cfg.write_text('fail-on = "error"\n[severity]\nCA900 = "warning"\n', encoding="utf-8")
    res = CliRunner().invoke(app, [*args, "--format", "json"])
    assert res.exit_code == 0, res.stdout
    budgets = json.loads(res.stdout)["budget_findings"]
    assert [(f["rule"], f["severity"]) for f in budgets] == [("CA900", "warning")] * 2
