"""CA101's widths follow published architectures for the kernel's size, and a width setting that
could never meet the rule's min_saving is refused when loaded (issue 9, item 1)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import onnx
import pytest
from typer.testing import CliRunner

from convaudit.api import scan
from convaudit.cli import app
from convaudit.config import Config
from convaudit.errors import ConfigError, RuleFileError
from convaudit.rules import recommend
from convaudit.rules.engine import RuleSet
from convaudit.rules.facts.layer import kernel_name
from convaudit.rules.kinds.base import Floor
from convaudit.rules.loader import load_file, load_rules
from convaudit.rules.recommend import ConvShape
from convaudit.rules.validate import floors

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def _shape(cin: int, cout: int, kernel: tuple[int, ...], size: int = 14) -> ConvShape:
    spatial = (size,) * len(kernel)
    return ConvShape(
        in_channels=cin, out_channels=cout, kernel=kernel, in_spatial=spatial, out_spatial=spatial
    )


@pytest.mark.parametrize(
    ("kernel", "cin", "width"),
    [
        ((5, 5), 480, 16),  # 25 positions: 480 * 0.0333 = 15.98 -> 16 (GoogLeNet 4a)
        ((7, 7), 832, 24),  # 49: 832 * 0.0333 = 27.7 -> 24 (nearest multiple of 8)
        ((3, 3, 3), 256, 8),  # 27: 8.5 -> 8
        ((3, 3), 256, 64),  # 9: 256 / 4 (ResNet)
        ((3, 3), 480, 120),  # 480 / 4 = 120 (GoogLeNet 4a reduces its 3x3 to 96, 0.20)
        ((4, 4), 512, 128),  # 16 < 25: small
        ((5, 1), 768, 192),  # 5: Inception-v3 reduces 768 -> 128..192 before 1x7/7x1 stacks
        ((1, 7), 768, 192),
        ((3,), 256, 64),  # 1-D k3
    ],
)
def test_the_default_width_follows_the_kernel_area(
    kernel: tuple[int, ...], cin: int, width: int
) -> None:
    assert recommend.bottleneck_width(_shape(cin, 4 * cin, kernel)) == width


def test_large_kernel_area_moves_the_boundary() -> None:
    cube = _shape(256, 256, (3, 3, 3))
    assert recommend.bottleneck_width(cube, large_kernel_area=28) == 64
    assert recommend.bottleneck_width(_shape(480, 48, (5, 5)), large_kernel_area=26) == 120


def test_a_width_ratio_applies_to_every_kernel_as_before() -> None:
    assert recommend.bottleneck_width(_shape(256, 256, (3, 3)), width_ratio=0.0333) == 8
    assert recommend.bottleneck_width(_shape(480, 48, (5, 5)), width_ratio=0.25) == 120


def test_cin_over_4_on_a_square_3x3_saves_3_6x() -> None:
    # 256 -> 256 3x3 on 28x28: 462,422,016 MACs; width 64: 12,845,056 + 115,605,504
    shape = _shape(256, 256, (3, 3), 28)
    alt = recommend.bottleneck(shape, 64)
    assert (shape.macs, alt.macs) == (462_422_016, 128_450_560)
    assert shape.macs / alt.macs == pytest.approx(3.6)  # 9 / (1/4 + 9/4)
    assert recommend.max_ratio_saving(0.25) == 4.0  # never reached: 3.6 < 4


def test_budget_policy_leaves_a_layer_within_budget_alone() -> None:
    textbook = _shape(480, 48, (5, 5))  # 112,896,000 MACs
    assert recommend.bottleneck_width(textbook, policy="budget", mac_budget=112_896_000) is None
    assert recommend.bottleneck_width(textbook, policy="budget", mac_budget=None) is None
    assert recommend.bottleneck_width(textbook, policy="budget", mac_budget=8_000_000) == 24


@pytest.mark.parametrize(
    ("kernel", "name", "pointwise"),
    [
        ((5, 5), "5x5", "1x1"),
        ((5, 1), "5x1", "1x1"),
        ((3,), "1-D k3", "1-D k1"),
        ((3, 3, 3), "3x3x3", "1x1x1"),
        ((), None, None),
    ],
)
def test_kernels_are_named_as_they_are(
    kernel: tuple[int, ...], name: str | None, pointwise: str | None
) -> None:
    assert kernel_name(kernel) == name
    assert kernel_name(tuple(1 for _ in kernel)) == pointwise


# -- settings that could never meet min_saving --------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"width_policy": "saving", "target_saving": 2},
            "width_policy = saving with target_saving = 2 aims below min_saving = 3, so it never "
            "meets it: raise target_saving to 3 or lower min_saving",
        ),
        (
            {"width_policy": "saving", "target_saving": 2, "min_saving": 4},
            "width_policy = saving with target_saving = 2 aims below min_saving = 4, so it never "
            "meets it: raise target_saving to 4 or lower min_saving",
        ),
        (
            {"width_policy": "budget", "mac_budget": 50_000_000},
            "width_policy = budget takes the widest width within mac_budget whatever it saves: "
            "min_saving = 3 would hide every layer less than 3x over the budget; "
            "set min_saving to 1",
        ),
        (
            {"width_policy": "budget", "min_saving": 1},
            "width_policy = budget needs mac_budget (the MACs a flagged layer must fit in)",
        ),
        (
            # the case: Cin/4 saves 3.6x on a square 3x3 and never 4x
            {"min_saving": 4},
            "width_policy = ratio with small_kernel_ratio = 0.25 (kernels under "
            "large_kernel_area positions) saves at most 4x (Cin / width), so it never meets "
            "min_saving = 4: lower small_kernel_ratio below 0.25 or lower min_saving",
        ),
        (
            {"width_ratio": 0.4},
            "width_policy = ratio with width_ratio = 0.4 (every kernel) saves at most 2.5x "
            "(Cin / width), so it never meets min_saving = 3: lower width_ratio below 0.333 or "
            "lower min_saving",
        ),
        (
            {"large_kernel_ratio": 0.5},
            "width_policy = ratio with large_kernel_ratio = 0.5 (kernels of large_kernel_area "
            "positions or more) saves at most 2x (Cin / width), so it never meets min_saving = 3: "
            "lower large_kernel_ratio below 0.333 or lower min_saving",
        ),
    ],
)
def test_a_policy_that_never_meets_min_saving_is_a_config_error(
    params: dict[str, object], message: str
) -> None:
    config = Config(params={"CA101": params}, source="pyproject.toml")
    with pytest.raises(ConfigError) as err:
        RuleSet.from_config(config)
    assert str(err.value) == f"pyproject.toml: params.CA101: {message}"


@pytest.mark.parametrize(
    "params",
    [
        {"width_policy": "saving", "target_saving": 3},
        {"width_policy": "saving", "target_saving": 10},
        {"width_policy": "budget", "mac_budget": 8_000_000, "min_saving": 1},
        {"width_ratio": 0.3},  # at most 3.33x > 3
        {"min_saving": 3.9},  # Cin/4 still can: a 3x3 with Cout = 16 Cin saves 144/(145/4) = 3.97x
        {"width_ratio": 1, "min_saving": 1},  # every width below break-even saves > 1x
    ],
)
def test_policies_that_can_meet_min_saving_load(params: dict[str, object]) -> None:
    RuleSet.from_config(Config(params={"CA101": params}))


def test_the_config_error_exits_2_in_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "convaudit.toml"
    cfg.write_text('[params.CA101]\nwidth_policy = "saving"\ntarget_saving = 2\n')
    model = Path(__file__).resolve().parents[2] / "sample_models" / "textbook_5x5.onnx"
    res = CliRunner().invoke(app, ["scan", str(model), "--config", str(cfg)])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "target_saving = 2 aims below min_saving = 3" in lines[0]


RULE = """\
schema_version: 1
rules:
  - id: MY101
    name: my-bottleneck
    summary: A test rule.
    severity: warning
    params:
      width_policy: saving
      target_saving: 2.5
    match:
      all:
        - {fact: kernel_max, op: ge, value: 3}
        - {fact: saving, op: ge, value: 5}
    message: "{kernel_name} conv"
    recommendation: bottleneck
    docs: {what: w, why: y, example: e, fix: f}
"""


def test_a_rule_file_with_an_unmeetable_policy_names_file_line_and_both_settings(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(RULE)
    with pytest.raises(RuleFileError) as err:
        load_file(path)
    assert str(err.value) == (
        f"{path}:7: rule MY101: width_policy = saving with target_saving = 2.5 aims below the "
        "match's saving bound 5, so it never meets it: raise target_saving to 5 or lower the "
        "match's saving bound"
    )
    # under `any` the bound binds nothing: the file loads
    path.write_text(
        RULE.replace(
            "      all:\n        - {fact: kernel_max, op: ge, value: 3}\n",
            "      any:\n        - {fact: kernel_max, op: ge, value: 3}\n",
        )
    )
    assert [r.id for r in load_file(path)] == ["MY101"]


def test_floors_are_read_from_all_groups_only() -> None:
    rule = load_rules()["CA101"]
    got = floors(rule)
    assert got["saving"] == Floor(fact="saving", value=3.0, param="min_saving")
    assert got["in_channels"].value == 128 and got["mac_share"].value == 0.01
    assert "fed_by_1x1" not in got  # under `not`


# -- the conformance models -------------------------------------------------------------------


def test_vgg19_3x3s_get_cin_over_4_and_save_3_6_to_3_8x() -> None:
    found = [f for f in scan(str(LIGHT / "light_vgg19.onnx")).findings if f.rule == "CA101"]
    assert len(found) == 13
    got = {}
    for f in found:
        r = f.recommendation
        assert r is not None and r.width is not None
        channels = (f.facts["in_channels"], f.facts["out_channels"])
        got[channels] = (r.width, round(r.saving_factor, 2))
    assert got == {
        (128, 128): (32, 3.6),  # 9 / (1/4 + 9/4)
        (128, 256): (32, 3.79),  # 256*128*9 / (32 * (128 + 256*9)) = 294,912 / 77,824
        (256, 256): (64, 3.6),
        (256, 512): (64, 3.79),
        (512, 512): (128, 3.6),
    }


def test_setting_the_old_ratio_for_every_kernel_gives_the_old_widths() -> None:
    config = Config(params={"CA101": {"width_ratio": 0.0333}})
    found = [f for f in scan(str(LIGHT / "light_vgg19.onnx"), config).findings if f.rule == "CA101"]
    widths = {(f.facts["in_channels"], f.recommendation.width) for f in found if f.recommendation}
    assert widths == {(128, 8), (256, 8), (512, 16)}  # 4.26 -> 8, 8.5 -> 8, 17.05 -> 16


def test_a_config_changing_only_min_saving_still_checks() -> None:
    base = RuleSet.from_config(Config()).available["CA101"]
    assert base.params["min_saving"] == 3.0
    with pytest.raises(ConfigError, match="never meets min_saving = 4"):
        RuleSet.from_config(
            dataclasses.replace(Config(), params={"CA101": {"min_saving": 4}}, source="x")
        )
