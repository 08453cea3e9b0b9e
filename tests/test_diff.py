"""convaudit diff: the textbook model against its bottlenecked variant, and renamed layers."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import onnx
import pytest
from typer.testing import CliRunner

from convaudit.cli import app
from convaudit.diff import diff, match_layers
from convaudit.model.analyse import analyse
from convaudit.records import Layer
from convaudit.report.diff_report import delta

ROOT = Path(__file__).resolve().parents[1]
TEXTBOOK = str(ROOT / "sample_models" / "textbook_5x5.onnx")
BOTTLENECK = str(ROOT / "sample_models" / "textbook_bottleneck.onnx")


def test_textbook_to_bottleneck() -> None:
    d = diff(TEXTBOOK, BOTTLENECK)
    assert (d.base.totals.macs, d.head.totals.macs) == (112_896_000, 5_268_480)
    by_name = {c.name: c for c in d.layers}
    conv = by_name["conv5x5"]
    assert conv.match == "name"
    assert (conv.base_macs, conv.head_macs) == (112_896_000, 3_763_200)  # 16·5·5·14·14·48
    assert (conv.base_params, conv.head_params) == (576_048, 19_248)  # 48·16·25 + 48 bias
    red = by_name["reduce1x1"]
    assert red.match == "added" and red.base is None
    assert red.head_macs == 1_505_280  # 480·14·14·16
    assert [c.name for c in d.layers] == ["reduce1x1", "conv5x5"]  # HEAD's graph order
    # The bottleneck is what CA101 asked for: its finding is fixed, and no CA101 is new.
    assert [(f.rule, f.node) for f in d.fixed_findings if f.rule == "CA101"] == [
        ("CA101", "conv5x5")
    ]
    assert all(f.rule != "CA101" for f in d.new_findings)


def test_reverse_direction_reports_removed_layer() -> None:
    d = diff(BOTTLENECK, TEXTBOOK)
    (removed,) = [c for c in d.layers if c.match == "removed"]
    assert removed.name == "reduce1x1" and removed.head is None
    assert removed.base_macs == 1_505_280 and removed.head_macs == 0


def test_renamed_layers_match_by_position(tmp_path: Path) -> None:
    model = onnx.load(BOTTLENECK)
    for i, node in enumerate(model.graph.node):
        node.name = f"renamed_{i}"
    renamed = tmp_path / "renamed.onnx"
    onnx.save(model, renamed)
    base, head = analyse(BOTTLENECK), analyse(renamed)
    changes = match_layers(base.layers, head.layers)
    assert [(c.match, c.base.name if c.base else None) for c in changes] == [
        ("position", "reduce1x1"),
        ("position", "conv5x5"),
    ]
    assert all(c.base_macs == c.head_macs for c in changes)


def test_position_counts_among_layers_of_the_same_op() -> None:
    # BASE conv c1, conv c2, Gemm fc; HEAD (every node renamed) adds a conv before its Gemm.
    # The Gemm still pairs with the Gemm, not with the added conv that now sits at its index.
    (conv,) = analyse(TEXTBOOK).layers

    def layer(name: str, index: int, op: str = "Conv") -> Layer:
        category = "conv" if op == "Conv" else "matmul"
        return replace(conv, name=name, index=index, op_type=op, category=category)

    base = (layer("c1", 0), layer("c2", 1), layer("fc", 2, "Gemm"))
    head = (layer("x1", 0), layer("x2", 1), layer("x3", 2), layer("y", 3, "Gemm"))
    changes = match_layers(base, head)
    assert [(c.match, c.base and c.base.name, c.head and c.head.name) for c in changes] == [
        ("position", "c1", "x1"),
        ("position", "c2", "x2"),
        ("added", None, "x3"),
        ("position", "fc", "y"),
    ]


def test_findings_of_a_renamed_layer_are_neither_new_nor_fixed(tmp_path: Path) -> None:
    # A re-export that only renamed the textbook conv: same layer (matched by position), same
    # CA101. Keyed by name alone it came back as a new CA101 (exit 1) and a fixed one.
    model = onnx.load(TEXTBOOK)
    model.graph.node[0].name = "Conv_13"
    renamed = tmp_path / "renamed.onnx"
    onnx.save(model, renamed)
    d = diff(TEXTBOOK, str(renamed))
    assert [(c.match, c.name) for c in d.layers] == [("position", "Conv_13")]
    assert d.new_findings == () and d.fixed_findings == ()
    res = CliRunner().invoke(app, ["diff", TEXTBOOK, str(renamed)])
    assert res.exit_code == 0, res.stdout
    # A finding that really appears on the renamed layer is still new.
    d2 = diff(BOTTLENECK, str(renamed))
    assert ("CA101", "Conv_13") in [(f.rule, f.node) for f in d2.new_findings]


@pytest.mark.parametrize(
    ("before", "after", "text"),
    [
        (112_896_000, 5_268_480, "-107,627,520 (-95.3%)"),
        (0, 1_505_280, "+1,505,280 (new)"),
        (7, 7, "0"),
    ],
)
def test_delta_text(before: int, after: int, text: str) -> None:
    assert delta(before, after) == text


def test_cli_diff_json_and_missing_file(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["diff", TEXTBOOK, BOTTLENECK, "-f", "json"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["totals"]["macs"] == {"base": 112_896_000, "head": 5_268_480, "delta": -107_627_520}
    assert [x["match"] for x in doc["layers"]] == ["added", "name"]
    missing = runner.invoke(app, ["diff", TEXTBOOK, str(tmp_path / "nope.onnx")])
    assert missing.exit_code == 2
    assert "nope.onnx: no such file" in missing.stderr
    bad_fmt = runner.invoke(app, ["diff", TEXTBOOK, BOTTLENECK, "-f", "sarif"])
    assert bad_fmt.exit_code == 2


def test_a_broken_budget_on_head_is_a_budget_finding_not_a_new_one() -> None:
    from convaudit.config import Config

    # 10M MACs: BASE (5,268,480) is under it, HEAD (112,896,000) over.
    d = diff(BOTTLENECK, TEXTBOOK, Config(max_macs=10_000_000))
    assert [f.facts["metric"] for f in d.budget_findings] == ["macs"]
    assert all(f.facts.get("metric") != "macs" for f in d.new_findings)
    assert [f.facts.get("metric") for f in d.findings].count("macs") == 1
