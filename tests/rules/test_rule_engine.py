"""The engine on real models: the textbook arithmetic, existing bottlenecks recognised in
GoogLeNet / ResNet-50 (onnx's conformance models), VGG-19's wide convs flagged; config
select/ignore/severity/params/suppressions; stable fingerprints; the JSON finding shape."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import onnx
import pytest

from convaudit.api import scan
from convaudit.config import Config, Suppression
from convaudit.errors import ConfigError
from convaudit.model.analyse import analyse
from convaudit.records import Finding
from convaudit.report.json_report import render
from convaudit.rules.engine import RuleSet, fingerprint, selected

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_models"
LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def findings(path: Path, config: Config | None = None, rule: str | None = None) -> list[Finding]:
    result = scan(str(path), config or Config())
    return [f for f in result.findings if rule is None or f.rule == rule]


def test_textbook_has_one_ca101_with_exact_figures() -> None:
    (f,) = findings(SAMPLES / "textbook_5x5.onnx", rule="CA101")
    assert f.node == "conv5x5" and f.severity == "warning"
    assert f.message == (
        "5x5 conv 480→48 on 14x14: 112.9M MACs; a 1x1 480→16 bottleneck first costs "
        "1.5M + 3.8M = 5.3M (21.4x fewer), params 576.0K → 26.9K"
    )
    r = f.recommendation
    assert r is not None
    assert (r.kind, r.width, r.before_macs, r.after_macs) == (
        "bottleneck",
        16,
        112_896_000,
        5_268_480,
    )
    assert (r.before_params, r.after_params) == (576_048, 26_928)  # both with the 48 biases


def test_textbook_json_finding_shape() -> None:
    doc = json.loads(render(scan(str(SAMPLES / "textbook_5x5.onnx"))))
    (f,) = [x for x in doc["reports"][0]["findings"] if x["rule"] == "CA101"]
    assert list(f)[:9] == [
        "rule",
        "name",
        "severity",
        "node",
        "graph",
        "message",
        "fingerprint",
        "facts",
        "recommendation",
    ]
    rec = f["recommendation"]
    assert rec["kind"] == "bottleneck" and rec["width"] == 16
    assert rec["before"] == {"macs": 112_896_000, "params": 576_048}
    assert rec["after"] == {"macs": 5_268_480, "params": 26_928}
    assert rec["saving_factor"] == pytest.approx(21.4286, abs=1e-4)
    assert rec["reduce_macs"] == 1_505_280 and rec["main_macs"] == 3_763_200
    assert rec["break_even_width"] == 342.9
    facts = f["facts"]
    assert facts["kernel"] == [5, 5] and facts["in_channels"] == 480
    assert facts["fed_by_1x1_reduction"] is False and facts["bottleneck_width"] == 16


@pytest.mark.parametrize("name", ["textbook_bottleneck.onnx", "inception_block.onnx"])
def test_bottlenecked_samples_have_no_ca101(name: str) -> None:
    assert findings(SAMPLES / name, rule="CA101") == []


def test_googlenet_branch_convs_are_already_bottlenecked() -> None:
    facts = analyse(LIGHT / "light_inception_v1.onnx")
    branch = [x for x in facts.layers if x.kernel_shape in ((3, 3), (5, 5)) and x.name != "n6"]
    assert len(branch) == 18  # 9 inception modules x (3x3, 5x5)
    assert findings(LIGHT / "light_inception_v1.onnx", rule="CA101") == []
    from convaudit.rules.context import GraphContext

    g = GraphContext(facts)
    assert all(g.fed_by_1x1_reduction(x) for x in branch)


def test_resnet50_bottleneck_3x3s_are_not_flagged() -> None:
    facts = analyse(LIGHT / "light_resnet50.onnx")
    from convaudit.rules.context import GraphContext

    g = GraphContext(facts)
    threes = [x for x in facts.layers if x.kernel_shape == (3, 3)]
    assert len(threes) == 16
    assert all(g.feeding_1x1(x) is not None for x in threes)
    assert all(g.followed_by_1x1_expansion(x) for x in threes)
    # the first block of stage 1 reads 64 channels from a 64 -> 64 1x1: not a reduction
    assert sum(g.fed_by_1x1_reduction(x) for x in threes) == 15
    assert findings(LIGHT / "light_resnet50.onnx", rule="CA101") == []


def test_vgg19_wide_3x3s_are_flagged_and_fc6_is_a_dense_head() -> None:
    found = findings(LIGHT / "light_vgg19.onnx")
    ca101 = {f.node for f in found if f.rule == "CA101"}
    # every 3x3 with at least 128 input channels: 13 of VGG-19's 16 convs
    assert ca101 == {
        "n7",
        "n10",
        "n12",
        "n14",
        "n16",
        "n19",
        "n21",
        "n23",
        "n25",
        "n28",
        "n30",
        "n32",
        "n34",
    }
    (head,) = [f for f in found if f.rule == "CA102"]
    assert head.node == "n38" and head.recommendation is not None
    assert head.recommendation.after_params == 512 * 4096 + 4096


def test_select_ignore_longest_prefix_wins() -> None:
    assert selected("CA101", (), ())
    assert not selected("CA101", ("CA2",), ())
    assert not selected("CA101", (), ("CA1",))
    assert selected("CA101", ("CA101",), ("CA1",))  # more specific select beats the prefix
    assert not selected("CA101", ("CA1",), ("CA101",))
    assert not selected("CA101", ("CA1",), ("CA1",))  # a tie: ignore wins
    assert selected("MY001", ("ALL",), ("CA",))


def test_config_severity_params_and_selection_apply() -> None:
    config = Config(
        select=("CA1",),
        ignore=("CA103", "CA104", "CA105"),
        severity={"CA101": "error"},
        params={"CA101": {"width_policy": "saving", "target_saving": 10}},
    )
    found = findings(SAMPLES / "textbook_5x5.onnx", config)
    assert [(f.rule, f.severity) for f in found] == [("CA101", "error")]
    assert found[0].recommendation is not None and found[0].recommendation.width == 32


@pytest.mark.parametrize(
    ("config", "pattern"),
    [
        (Config(select=("CA8",)), r"select: 'CA8' matches no rule"),
        (Config(ignore=("CA11",)), r"ignore: 'CA11' matches no rule \(did you mean CA101\?\)"),
        (
            Config(severity={"CA1011": "error"}),
            r"severity: unknown rule 'CA1011' \(did you mean CA101\?\)",
        ),
        (
            Config(params={"CA101": {"min_in_chanels": 3}}),
            r"CA101 has no param 'min_in_chanels' \(did you mean min_in_channels\?\)",
        ),
        (
            Config(params={"CA101": {"min_in_channels": "many"}}),
            r"param min_in_channels 'many' must be a int",
        ),
        (
            Config(params={"CA101": {"width_ratio": 3}}),
            r"width_ratio 3 must be a number in \(0, 1\]",
        ),
        (
            Config(suppressions=(Suppression(rule="CA110", reason="typo: digits swapped"),)),
            r"suppressions\[0\]: rule 'CA110' matches no rule",
        ),
    ],
)
def test_config_errors_name_the_nearest_rule_or_param(config: Config, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        RuleSet.from_config(dataclasses.replace(config, source="pyproject.toml"))


def test_suppressions_keep_the_reason() -> None:
    config = Config(
        suppressions=(
            Suppression(rule="CA10", model="*textbook_5x5.onnx", node="conv5*", reason="legacy"),
        )
    )
    result = scan(str(SAMPLES / "textbook_5x5.onnx"), config)
    (report,) = result.reports
    assert [f.rule for f in report.findings] == []
    assert {f.rule for f in report.suppressed} == {"CA101", "CA103", "CA104", "CA105"}
    assert {f.suppressed_reason for f in report.suppressed} == {"legacy"}
    other = Config(suppressions=(Suppression(rule="CA101", node="other", reason="x"),))
    assert "CA101" in {f.rule for f in scan(str(SAMPLES / "textbook_5x5.onnx"), other).findings}


def test_fingerprint_ignores_node_order_and_macs() -> None:
    facts = analyse(SAMPLES / "textbook_5x5.onnx")
    layer = facts.layers[0]
    fp = fingerprint("CA101", "m.onnx", layer)
    moved = dataclasses.replace(
        layer, index=7, node_id="main/7", macs=1, input_shape=(2, 480, 7, 7)
    )
    assert fingerprint("CA101", "m.onnx", moved) == fp
    assert fingerprint("CA102", "m.onnx", layer) != fp
    assert fingerprint("CA101", "other.onnx", layer) != fp
    assert fingerprint("CA101", "m.onnx", dataclasses.replace(layer, out_channels=64)) != fp
    # an unnamed node is known by its first output, not by its position
    unnamed = dataclasses.replace(layer, name="Conv_0", index=0)
    renumbered = dataclasses.replace(layer, name="Conv_5", index=5)
    assert fingerprint("CA101", "m.onnx", unnamed) == fingerprint("CA101", "m.onnx", renumbered)


def test_ruleset_loaded_once_is_reused_for_every_model() -> None:
    ruleset = RuleSet.from_config(Config())
    facts = analyse(SAMPLES / "textbook_5x5.onnx")
    first, _ = ruleset.run(facts)
    second, _ = ruleset.run(facts)
    assert first == second and {f.rule for f in first} == {"CA101", "CA103", "CA104", "CA105"}


def _resaved(src: Path, dest: Path, *, reverse: bool, strip_names: bool) -> None:
    """``src`` re-saved as another export might: nodes in another topological order (each
    Inception branch is independent), initializers reversed, node names optionally dropped."""
    model = onnx.load(str(src))
    nodes = list(model.graph.node)
    if reverse:
        ready = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer}
        order: list[onnx.NodeProto] = []
        rest = nodes[::-1]
        while rest:
            node = next(n for n in rest if all(x in ready for x in n.input if x))
            rest.remove(node)
            order.append(node)
            ready.update(node.output)
        nodes = order
        inits = list(model.graph.initializer)[::-1]
        del model.graph.initializer[:]
        model.graph.initializer.extend(inits)
    del model.graph.node[:]
    for node in nodes:
        if strip_names:
            node.name = ""
        model.graph.node.append(node)
    onnx.checker.check_model(model)
    dest.parent.mkdir(parents=True)
    onnx.save(model, str(dest))


@pytest.mark.parametrize("strip_names", [False, True])
def test_fingerprints_survive_a_reexport_in_another_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strip_names: bool
) -> None:
    src = SAMPLES / "inception_block.onnx"
    _resaved(src, tmp_path / "a" / "m.onnx", reverse=False, strip_names=strip_names)
    _resaved(src, tmp_path / "b" / "m.onnx", reverse=True, strip_names=strip_names)
    prints, positions = [], []
    for folder in ("a", "b"):
        monkeypatch.chdir(tmp_path / folder)
        (report,) = scan("m.onnx").reports
        assert report.facts is not None
        prints.append(sorted((f.rule, f.fingerprint) for f in report.findings))
        (hot,) = [x for x in report.facts.layers if x.kernel_shape == (3, 3)]
        positions.append(hot.index)
    assert [r for r, _ in prints[0]] == ["CA104", "CA105"]  # the 3x3 branch conv
    assert positions[0] != positions[1]  # the flagged conv really moved
    assert prints[0] == prints[1]
