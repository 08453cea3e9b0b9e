"""``scan --weights``: the drop-in width (a rewrite without retraining) of each bottleneck finding,
what it saves, and whether the layer needs a bottleneck designed in and retrained (issue 9, 2)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pytest
from fixmodels import conv_model, low_rank_weight, save

from convaudit.api import scan
from convaudit.config import Config
from convaudit.errors import ConfigError
from convaudit.records import Finding
from convaudit.report import REPORTERS, render
from convaudit.rules import recommend
from convaudit.rules.engine import RuleSet
from convaudit.weightmath import energy_curve, smallest_width, weight_energy_curve
from convaudit.weights import DropInTarget, drop_in

TEXTBOOK = Path(__file__).resolve().parents[2] / "sample_models" / "textbook_5x5.onnx"
SHAPE = recommend.ConvShape(
    in_channels=480, out_channels=48, kernel=(5, 5), in_spatial=(14, 14), out_spatial=(14, 14)
)
PER_WIDTH = 480 * 196 + 48 * 25 * 196  # 329,280 bottleneck MACs per channel of width


def _ca101(path: Path, config: Config | None = None) -> Finding:
    report = scan(path, config, weights=True).reports[0]
    (finding,) = [f for f in report.findings if f.rule == "CA101"]
    return finding


def _oracle_width(w: np.ndarray, max_error: float, cap: int) -> int | None:
    """Independent: numpy's SVD of W unfolded along Cin, then the first multiple of 8."""
    m = np.moveaxis(w.astype(np.float64), 1, 0).reshape(w.shape[1], -1)
    s2 = np.linalg.svd(m, compute_uv=False) ** 2
    for r in range(8, cap + 1, 8):
        if np.sqrt(max(0.0, 1 - s2[:r].sum() / s2.sum())) <= max_error:
            return r
    return None


def test_smallest_width_by_hand() -> None:
    # squared singular values: 8 x 100, 8 x 10, 16 x 0.1 (total 881.6)
    curve = energy_curve(np.sqrt(np.array([100.0] * 8 + [10.0] * 8 + [0.1] * 16)))
    # E(8) = 800/881.6: error sqrt(81.6/881.6) = 0.304; E(16) = 880/881.6: sqrt(1.6/881.6) = 0.0426
    assert smallest_width(curve, 0.05, cap=32, step=8) == 16
    # E(24) = 880.8/881.6: sqrt(0.8/881.6) = 0.0301
    assert smallest_width(curve, 0.04, cap=32, step=8) == 24
    assert smallest_width(curve, 0.04, cap=16, step=8) is None  # 24 is above the cap
    assert smallest_width(curve, 0.31, cap=32, step=8) == 8
    assert smallest_width(curve, 0.05, cap=None, step=8) is None


def test_drop_in_figures_by_hand() -> None:
    curve = energy_curve(np.sqrt(np.array([100.0] * 8 + [10.0] * 8 + [0.1] * 464)))
    # total 800 + 80 + 46.4 = 926.4. Even at the cap (336, below break-even 342.9) the tail
    # left is (480 - 336) * 0.1 = 14.4: error sqrt(14.4 / 926.4) = 0.125 > 5%: no drop-in.
    assert drop_in(curve, SHAPE, 112_896_000, DropInTarget(max_error=0.05)) is None
    # within 13%: at most 0.13^2 * 926.4 = 15.66 may be left out:
    # 880 + (r - 16) * 0.1 >= 910.74 -> r >= 323.4 -> 328 (left 15.2: 0.128; at 320: 0.131)
    got = drop_in(curve, SHAPE, 112_896_000, DropInTarget(max_error=0.13))
    assert got is not None and got["width"] == 328 and got["macs"] == 328 * PER_WIDTH
    exact = np.sqrt(np.array([100.0] * 8 + [10.0] * 8))  # rank 16 exactly
    got = drop_in(energy_curve(exact), SHAPE, 112_896_000, DropInTarget(max_error=0.05))
    assert got == {
        "width": 16,
        "predicted_error": 0.0,
        "macs": 16 * PER_WIDTH,
        "saving_factor": 21.4286,
    }


def test_a_low_rank_layer_drops_in_at_its_rank(tmp_path: Path) -> None:
    w = low_rank_weight(np.random.default_rng(20), cout=48, cin=480, k=5, rank=16, noise=0.01)
    path = save(conv_model(w, (1, 480, 14, 14), pads=[2] * 4, name="conv5x5"), tmp_path / "a.onnx")
    f = _ca101(path)
    rec = f.recommendation
    assert rec is not None
    d = rec.details["drop_in"]
    assert d["width"] == _oracle_width(w, 0.05, 336) == 16
    assert (d["macs"], d["saving_factor"]) == (5_268_480, 21.4286)  # 16 * 329,280
    assert 0 < d["predicted_error"] < 0.012
    assert rec.details["needs_retraining"] is False
    assert rec.details["predicted_error_basis"] == "white-input upper bound"
    assert f.facts["drop_in_width"] == 16 and f.facts["needs_retraining"] is False
    assert "; without retraining: width 16 (predicted error ≤ 1.0%) saves 21.4x" in f.message
    assert "retrain," not in f.message


def test_a_drop_in_below_min_saving_says_design_it_in_and_retrain(tmp_path: Path) -> None:
    # Rank 200: a rewrite without retraining needs width 200, 200 * 329,280 = 65,856,000 MACs,
    # 112,896,000 / 65,856,000 = 1.71x, under min_saving = 3.
    w = low_rank_weight(np.random.default_rng(3), cout=48, cin=480, k=5, rank=200, noise=0.001)
    path = save(conv_model(w, (1, 480, 14, 14), pads=[2] * 4, name="conv5x5"), tmp_path / "b.onnx")
    f = _ca101(path)
    rec = f.recommendation
    assert rec is not None and rec.width == 16  # the static recommendation is unchanged
    d = rec.details["drop_in"]
    assert d["width"] == _oracle_width(w, 0.05, 336) == 200
    assert (d["macs"], d["saving_factor"]) == (65_856_000, 1.7143)
    assert rec.details["needs_retraining"] is True
    assert f.message.endswith(
        f"; without retraining: width 200 (predicted error ≤ {100 * d['predicted_error']:.1f}%) "
        "saves 1.7x, under min_saving = 3: design the bottleneck in and retrain, not a drop-in "
        "rewrite"
    )
    # a lower min_saving accepts the same drop-in
    relaxed = _ca101(path, Config(params={"CA101": {"min_saving": 1.5}}))
    assert relaxed.recommendation is not None
    assert relaxed.recommendation.details["needs_retraining"] is False


def test_random_weights_have_no_drop_in() -> None:
    f = _ca101(TEXTBOOK)
    rec = f.recommendation
    assert rec is not None
    assert rec.details["drop_in"] is None and rec.details["needs_retraining"] is True
    assert f.message.endswith(
        "; without retraining no width below break-even keeps the predicted error within 5.0%: "
        "design the bottleneck in and retrain"
    )


def test_drop_in_error_is_a_rule_param() -> None:
    from onnx import load, numpy_helper

    w = numpy_helper.to_array(
        next(t for t in load(str(TEXTBOOK)).graph.initializer if t.name == "conv5x5.weight")
    )
    f = _ca101(TEXTBOOK, Config(params={"CA101": {"drop_in_error": 0.6}}))
    rec = f.recommendation
    assert rec is not None
    d = rec.details["drop_in"]
    expected = _oracle_width(w, 0.6, 336)
    assert expected is not None and d["width"] == expected
    assert d["macs"] == expected * PER_WIDTH
    assert d["predicted_error"] <= 0.6
    with pytest.raises(ConfigError, match=r"param drop_in_error 1 must be a number in \(0, 1\)"):
        RuleSet.from_config(Config(params={"CA101": {"drop_in_error": 1}}))


def test_every_format_shows_the_drop_in_and_json_has_its_fields(tmp_path: Path) -> None:
    w = low_rank_weight(np.random.default_rng(20), cout=48, cin=480, k=5, rank=16, noise=0.01)
    path = save(conv_model(w, (1, 480, 14, 14), pads=[2] * 4, name="conv5x5"), tmp_path / "c.onnx")
    result = scan(path, weights=True)
    for fmt in REPORTERS:
        text = html.unescape(render(result, fmt))
        assert "without retraining: width 16" in text or '"drop_in"' in text, fmt
    doc = json.loads(render(result, "json"))
    (ca101,) = [f for f in doc["reports"][0]["findings"] if f["rule"] == "CA101"]
    rec = ca101["recommendation"]
    assert set(rec["drop_in"]) == {"width", "predicted_error", "macs", "saving_factor"}
    assert rec["needs_retraining"] is False
    assert rec["predicted_error_basis"] == "white-input upper bound"
    # without --weights nothing is claimed about the weights
    plain = json.loads(render(scan(path), "json"))
    (ca101,) = [f for f in plain["reports"][0]["findings"] if f["rule"] == "CA101"]
    assert "drop_in" not in ca101["recommendation"]


def test_a_1d_conv_gets_its_drop_in_width(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((8, 256)), rng.standard_normal((512, 8, 3))
    w = (np.einsum("ork,rc->ock", b, a) / np.sqrt(256 * 3)).astype(np.float32)  # rank 8
    path = save(conv_model(w, (1, 256, 100), pads=[1, 1], name="conv1d"), tmp_path / "d.onnx")
    f = _ca101(path)
    assert f.message.startswith("1-D k3 conv 256→512 on 100: 39.3M MACs; a 1-D k1 256→64")
    rec = f.recommendation
    assert rec is not None and rec.width == 64  # 256 / 4: a 1-D k3 is a small kernel
    # width 8: 8*256*100 = 204,800 + 512*8*3*100 = 1,228,800 -> 1,433,600; 39,321,600 / that
    assert rec.details["drop_in"] == {
        "width": 8,
        "predicted_error": pytest.approx(0.0, abs=1e-3),
        "macs": 1_433_600,
        "saving_factor": 27.4286,
    }
    assert rec.details["needs_retraining"] is False


def test_the_energy_curve_does_not_depend_on_the_weight_s_scale() -> None:
    """Singular values 2 and 1 along Cin: E(1) = 4/5, E(2) = 1, at any scale (the Gram matrix
    of weights near 1e200 overflowed, near 1e-200 it underflowed to 0 and E(0) read 1)."""
    w = np.zeros((4, 4, 3, 3))
    w[0, 0, 0, 0], w[1, 1, 1, 1] = 1.0, 2.0
    for scale in (1.0, 1e200, 1e-200):
        with np.errstate(all="raise"):
            curve = weight_energy_curve(w * scale)
        assert curve.tolist() == pytest.approx([0.0, 0.8, 1.0, 1.0, 1.0]), scale


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_weight_holding_nan_or_inf_is_the_model_s_error(tmp_path: Path, bad: float) -> None:
    """No width can be read from it (LAPACK failed: an internal error): one line naming the
    model and the tensor, and the scan's figures without --weights are unchanged."""
    w = low_rank_weight(np.random.default_rng(1), cout=48, cin=480, k=5, rank=16)
    w[3, 7, 0, 0] = bad
    path = save(conv_model(w, (1, 480, 14, 14), pads=[2] * 4, name="conv5x5"), tmp_path / "n.onnx")
    (error,) = scan(path, weights=True).reports[0].errors
    assert error == (
        f"--weights: {path}: tensor 'conv5x5.weight' holds NaN or infinite values: no width can"
        " be read from it; check the model's export (and its external-data offsets)"
    )
    plain = scan(path).reports[0]
    assert plain.errors == () and "CA101" in {f.rule for f in plain.findings}
