"""fix as stages: the records they hand each other, and messages that name the rule behind the
bottleneck kind from the loaded rules rather than from a literal id."""

from __future__ import annotations

from pathlib import Path

from convaudit.audit import load_ruleset
from convaudit.config import Config
from convaudit.fix import request, stages
from convaudit.fix.pipeline import FixOptions, run_fix
from convaudit.fix.render import render_table
from convaudit.fix.result import FixResult

ROOT = Path(__file__).resolve().parents[2]
TEXTBOOK = ROOT / "sample_models" / "textbook_5x5.onnx"
INCEPTION = ROOT / "sample_models" / "inception_block.onnx"  # its 1x1 reductions: no finding


def _team_bottleneck_rule(folder: Path) -> Path:
    """The built-in bottleneck rule under another id, as a team's rule pack would hold it."""
    text = (ROOT / "rules" / "CA101.yaml").read_text(encoding="utf-8")
    text = text.replace("id: CA101", "id: TEAM101")
    text = text.replace("name: wide-kxk-conv-without-bottleneck", "name: team-wide-conv")
    folder.mkdir()
    (folder / "team.yaml").write_text(text, encoding="utf-8")
    return folder


def test_the_kind_fix_keys_on_is_the_registered_bottleneck_kind() -> None:
    from convaudit.records import BOTTLENECK_KIND
    from convaudit.rules.kinds import KINDS

    assert KINDS[BOTTLENECK_KIND].name == "bottleneck"
    assert "CA101" in {
        r.id for r in load_ruleset(Config()).rules if r.recommendation == "bottleneck"
    }


def test_select_layers_records_the_plan_and_the_rule_behind_it(tmp_path: Path) -> None:
    ctx = request.context(TEXTBOOK, tmp_path / "o.onnx", FixOptions(), Config())
    sel = stages.select_layers(ctx)
    assert sel.rule_ids == ("CA101",)
    # 480 / 30 = 16: the worked example's width; its source is the rule that recommends it.
    assert [(p.layer.name, p.width, p.width_source) for p in sel.plans] == [
        ("conv5x5", 16, "CA101")
    ]
    assert sel.skipped == () and sel.external is False and sel.opset >= 1
    assert sel.facts.totals.macs == 112_896_000
    # 576,000 float32 weights + 48 biases are 2,304,192 bytes: above a 2 MB threshold, so the
    # output would be written with external data; the threshold is read from the structure.
    big = request.context(
        TEXTBOOK, tmp_path / "o.onnx", FixOptions(external_threshold=2_304_191), Config()
    )
    small = request.context(
        TEXTBOOK, tmp_path / "o.onnx", FixOptions(external_threshold=2_304_192), Config()
    )
    assert stages.select_layers(big).external is True
    assert stages.select_layers(small).external is False


def test_nothing_to_rewrite_names_the_bottleneck_rule(tmp_path: Path) -> None:
    out = tmp_path / "o.onnx"
    result = run_fix(INCEPTION, out, FixOptions(measure_latency=False), Config())
    assert result.message == "nothing to rewrite (no CA101 finding); no file written"
    assert not result.written and not out.exists()


def test_a_team_bottleneck_rule_is_named_where_ca101_was(tmp_path: Path) -> None:
    rules = _team_bottleneck_rule(tmp_path / "rules")
    config = Config(rule_dirs=(str(rules),), ignore=("CA101",))
    none = run_fix(INCEPTION, tmp_path / "a.onnx", FixOptions(measure_latency=False), config)
    assert none.message == "nothing to rewrite (no CA101 or TEAM101 finding); no file written"
    # With CA101 ignored, the team rule's finding is what fix rewrites, and the width's source.
    opts = FixOptions(measure_latency=False, force=True)  # random weights: above the budget
    done = run_fix(TEXTBOOK, tmp_path / "b.onnx", opts, config)
    assert [(x.name, x.width, x.width_source) for x in done.rewritten] == [
        ("conv5x5", 16, "TEAM101")
    ]
    assert done.written and done.macs_after == 5_268_480  # 1,505,280 + 3,763,200


def test_still_flagged_names_the_rules_that_flag() -> None:
    result = FixResult(
        input_path="in.onnx",
        output_path="out.onnx",
        written=True,
        layers=(),
        macs_before=10,
        params_before=1,
        remaining_findings=("conv",),
        remaining_rules=("CA101",),
    )
    assert "still flagged by CA101: conv\n" in render_table(result)


def test_scan_weights_keys_on_the_bottleneck_kind_not_the_rule_id(tmp_path: Path) -> None:
    from convaudit.api import scan

    rules = _team_bottleneck_rule(tmp_path / "rules")
    config = Config(rule_dirs=(str(rules),), ignore=("CA101",))
    findings = scan(TEXTBOOK, config, weights=True).reports[0].findings
    (finding,) = [f for f in findings if f.rule == "TEAM101"]
    assert 0 < finding.facts["energy_retained"] < 1
    assert "of their energy at width 16" in finding.message


def test_a_missing_external_data_file_is_the_models_error_before_any_work(tmp_path: Path) -> None:
    import onnx
    import pytest

    from convaudit.errors import ModelLoadError

    src = tmp_path / "m.onnx"
    onnx.save_model(
        onnx.load(str(TEXTBOOK)), str(src), save_as_external_data=True, location="m.data"
    )
    (tmp_path / "m.data").unlink()
    with pytest.raises(ModelLoadError, match=r"external data file of tensor 'conv5x5\.weight' not"):
        run_fix(src, tmp_path / "o.onnx", FixOptions(measure_latency=False), Config())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no scratch folder left
