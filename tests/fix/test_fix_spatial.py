"""The spatial kind of rewrite (Jaderberg et al. 2014, scheme 2): Conv KxK -> Kh x 1 -> 1 x Kw.

Oracles: onnxruntime running the original conv (the full-rank pair must reproduce it under every
padding/stride/dilation case), costs worked by hand, and weights built with a known structure.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from fixmodels import attr, conv_model, conv_nodes, rel_error, run, save
from onnx import numpy_helper

from convaudit import cost
from convaudit.config import Config
from convaudit.fix import layerfit
from convaudit.fix.factorize import (
    column_moment,
    compose_spatial,
    factorize,
    spatial_factorize,
)
from convaudit.fix.pipeline import FixOptions, run_fix
from convaudit.fix.rewrite import ConvRewrite, rewrite_conv
from convaudit.fix.search import curve

CIN, COUT = 6, 5
SHAPE = (1, CIN, 13, 12)

CASES: dict[str, dict[str, Any]] = {
    "plain": {},
    "pads": {"pads": [1, 1, 1, 1]},
    "asymmetric_pads": {"pads": [0, 2, 1, 0]},
    "strides": {"strides": [2, 3], "pads": [1, 0, 1, 2]},
    "dilations": {"dilations": [2, 3], "pads": [2, 3, 2, 3]},
    "same_upper_stride2": {"auto_pad": "SAME_UPPER", "strides": [2, 2]},
    "same_lower_stride": {"auto_pad": "SAME_LOWER", "strides": [3, 2]},
    "valid_stride": {"auto_pad": "VALID", "strides": [1, 2]},
}


def spatially_rewritten(model: onnx.ModelProto, width: int) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    w = numpy_helper.to_array(out.graph.initializer[0]).astype(np.float64)
    f = spatial_factorize(w, width)
    rewrite_conv(
        out.graph,
        ConvRewrite(conv_output="y", u=f.u, v=f.v, kind="spatial"),
        np.dtype(np.float32),
    )
    onnx.checker.check_model(out, full_check=True)
    return out


@pytest.mark.parametrize("kernel", [(3, 3), (3, 5), (2, 4)], ids=["3x3", "3x5", "2x4"])
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_full_rank_spatial_pair_reproduces_the_conv(
    case: str, with_bias: bool, kernel: tuple[int, int]
) -> None:
    rng = np.random.default_rng(7)
    w = rng.standard_normal((COUT, CIN, *kernel)).astype(np.float32)
    bias = rng.standard_normal(COUT).astype(np.float32) if with_bias else None
    model = conv_model(w, SHAPE, bias=bias, **CASES[case])
    # Full rank: min(Cin·Kh, Cout·Kw).
    new = spatially_rewritten(model, min(CIN * kernel[0], COUT * kernel[1]))
    x = rng.standard_normal(SHAPE).astype(np.float32)
    ya, yb = run(model, x), run(new, x)
    assert ya.shape == yb.shape
    assert rel_error(ya, yb) < 1e-5
    vertical, horizontal = conv_nodes(new)
    assert attr(vertical, "kernel_shape") == [kernel[0], 1]
    assert attr(horizontal, "kernel_shape") == [1, kernel[1]]
    assert len(vertical.input) == 2  # the bias stays on the second conv
    assert len(horizontal.input) == (3 if with_bias else 2)


def test_swapping_the_strides_between_the_pair_breaks_it() -> None:
    # The check above can tell a right placement from a wrong one.
    rng = np.random.default_rng(8)
    w = rng.standard_normal((COUT, CIN, 3, 3)).astype(np.float32)
    model = conv_model(w, SHAPE, strides=[1, 2], pads=[1, 1, 1, 1])
    new = spatially_rewritten(model, CIN * 3)
    vertical, horizontal = conv_nodes(new)
    # The horizontal stride on the vertical conv: the same shapes, columns dropped too early.
    for node, strides in ((vertical, [1, 2]), (horizontal, [1, 1])):
        a = next(a for a in node.attribute if a.name == "strides")
        a.ints[:] = strides
    x = rng.standard_normal(SHAPE).astype(np.float32)
    ya, yb = run(model, x), run(new, x)
    assert ya.shape == yb.shape and rel_error(ya, yb) > 0.1


def test_the_factors_compose_back_to_the_weight_at_full_rank() -> None:
    rng = np.random.default_rng(9)
    w = rng.standard_normal((4, 3, 3, 2))
    f = spatial_factorize(w, 8)  # rank of the 9 x 8 matrix is 8
    assert f.u.shape == (8, 3, 3, 1) and f.v.shape == (4, 8, 1, 2)
    assert np.allclose(compose_spatial(f.u, f.v), w)
    assert f.energy == pytest.approx(1.0)


def test_spatial_costs_match_a_hand_count() -> None:
    # 96 -> 24, 3x3, pads 1, stride 1 on 80x160; r = 24. Vertical 3x1: 24·96·3 per position of
    # its 80x160 map = 6912·12,800 = 88,473,600; horizontal 1x3: 24·24·3 = 1728 per output
    # position = 22,118,400. The original: 24·96·9·12,800 = 265,420,800.
    assert cost.spatial_macs(96, (80, 160), 24, 24, (3, 3), (80, 160)) == (88_473_600, 22_118_400)
    # Break-even: 265,420,800 / (96·3·12,800 + 24·3·12,800) per unit of width = 57.6.
    assert cost.spatial_break_even_width(96, 24, (3, 3), (80, 160), (80, 160)) == pytest.approx(
        57.6
    )
    # Stride 2 both ways, 3x3, 16 -> 8 on 10x12 in, 5x6 out: the vertical conv's map is 5x12
    # (vertical stride only): 4·16·3·60 = 11,520; horizontal 8·4·3·30 = 2,880.
    assert cost.spatial_macs(16, (5, 12), 4, 8, (3, 3), (5, 6)) == (11_520, 2_880)
    assert cost.spatial_params(16, 4, 8, (3, 3)) == 4 * (16 * 3 + 8 * 3)


def test_fix_counts_the_spatial_pair_as_it_runs(tmp_path: Path) -> None:
    # Strides [2, 2] on 13x12 with pads 1: out 7x6, the vertical conv's map 7x12.
    rng = np.random.default_rng(10)
    w = rng.standard_normal((32, 24, 3, 3)).astype(np.float32)
    model = conv_model(w, (1, 24, 13, 12), strides=[2, 2], pads=[1, 1, 1, 1])
    src = save(model, tmp_path / "m.onnx")
    out = tmp_path / "o.onnx"
    opts = FixOptions(nodes=("conv",), width=8, kind="spatial", force=True, measure_latency=False)
    result = run_fix(src, out, opts, Config())
    (layer,) = result.rewritten
    assert layer.kind == "spatial" and layer.width == 8
    vertical, horizontal = 8 * 24 * 3 * 7 * 12, 32 * 8 * 3 * 7 * 6
    assert layer.after_macs == vertical + horizontal
    assert result.macs_after == vertical + horizontal  # the scan of the written model agrees
    assert layer.after_params == 8 * (24 * 3 + 32 * 3)


def _separable(rng: np.random.Generator, cout: int, cin: int, rank: int) -> np.ndarray:
    """W[o, c, i, j] = Σ_k H[o, k, j]·V[k, c, i]: spatially rank ``rank``, full rank along Cin."""
    v = rng.standard_normal((rank, cin, 3))
    h = rng.standard_normal((cout, rank, 3))
    return np.einsum("okj,kci->ocij", h, v) / math.sqrt(cin * 9)


def test_a_separable_layer_is_recovered_at_low_width_where_the_bottleneck_is_not() -> None:
    rng = np.random.default_rng(11)
    w = _separable(rng, cout=32, cin=32, rank=8)
    spatial = spatial_factorize(w, 8)
    assert rel_error(w, compose_spatial(spatial.u, spatial.v)) < 1e-9
    # The bottleneck at the same width (and more MACs: 8·(32 + 32·9) vs 8·(32·3 + 32·3) per
    # position) keeps only 8 of the 32 input directions.
    bottleneck = factorize(w, 8)
    assert bottleneck.predicted_error > 0.5
    # On the model: the spatial pair at width 8 reproduces it to float32 precision.
    model = conv_model(w.astype(np.float32), (1, 32, 12, 12), pads=[1, 1, 1, 1])
    x = rng.standard_normal((1, 32, 12, 12)).astype(np.float32)
    assert rel_error(run(model, x), run(spatially_rewritten(model, 8), x)) < 1e-5


def test_the_fitted_spatial_pair_beats_the_one_shot_svd_on_correlated_inputs() -> None:
    # Inputs near a 4-dim subspace of 16 channels and smooth across positions (neighbouring
    # columns correlate: the cross terms the column-whitened SVD leaves out).
    rng = np.random.default_rng(12)
    w = rng.standard_normal((8, 16, 3, 3))
    n, r = 40, 8
    basis = rng.standard_normal((4, 16))
    z = rng.standard_normal((n, 4, 10, 10))
    z = z + np.roll(z, 1, 2) + np.roll(z, 1, 3) + np.roll(z, -1, 3)
    x = np.einsum("nkhw,kc->nchw", z, basis) + 0.05 * rng.standard_normal((n, 16, 10, 10))
    geo = layerfit.Geometry(kernel=(3, 3), strides=(1, 1), dilations=(1, 1), pads_begin=(0, 0))
    patches = layerfit.gather_patches(x, geo, (8, 8), np.arange(n * 64))  # [P, 16, 9]
    y = np.einsum("pck,ock->po", patches, w.reshape(8, 16, 9))
    fit_p, fit_y, held_p, held_y = patches[:2000], y[:2000], patches[2000:], y[2000:]
    plain = spatial_factorize(w, r)
    whitened = spatial_factorize(w, r, column_moment(fit_p, 3))
    fit = layerfit.refit(
        whitened.u.reshape(r, -1),
        whitened.v.reshape(8, r, 3),
        None,
        fit_p.reshape(len(fit_p), 48, 3),  # columns (Cin·Kh) per horizontal tap
        fit_y,
        None,
    )

    def error(u: np.ndarray, v: np.ndarray, b: np.ndarray) -> float:
        cols = np.einsum("pck,rc->prk", held_p.reshape(len(held_p), 48, 3), u.reshape(r, 48))
        return rel_error(held_y, cols.reshape(len(held_p), -1) @ v.reshape(8, -1).T + b)

    zero = np.zeros(8)
    e_plain = error(plain.u, plain.v, zero)
    e_white = error(whitened.u, whitened.v, zero)
    e_fit = error(fit.u, fit.v, fit.bias)
    # On positions neither saw: whitening by the columns' second moment more than halves the
    # error (0.74 -> 0.31), and the alternating least squares on the patches lowers it again
    # (0.27).
    assert e_white < 0.5 * e_plain
    assert e_fit < 0.9 * e_white
    assert fit.error < fit.error_before


def test_the_search_curve_takes_the_cheaper_kind_per_unit_of_error() -> None:
    # A layer where the spatial pair reaches zero error at width 8 for fewer MACs than any
    # bottleneck: its curve keeps only spatial options from there on.
    from convaudit.fix.plan import LayerPlan
    from convaudit.records import Category, Layer

    layer = Layer(
        node_id="main/0",
        name="conv",
        op_type="Conv",
        domain="",
        graph="main",
        index=0,
        category=Category("conv"),
        inputs=("x", "w"),
        outputs=("y",),
        kernel_shape=(3, 3),
        strides=(1, 1),
        dilations=(1, 1),
        group=1,
        in_channels=32,
        out_channels=32,
        input_shape=(1, 32, 10, 10),
        output_shape=(1, 32, 10, 10),
        macs=32 * 32 * 9 * 100,
    )
    p = LayerPlan(layer=layer, width=8, width_source="search", break_even=0, weight_name="w")
    bottleneck = tuple(1.0 for _ in range(32))  # white: every channel direction counts
    spatial = (*(1.0 for _ in range(8)), *(0.0 for _ in range(88)))  # rank 8
    c = curve(p, bottleneck, spatial=spatial, kinds=("bottleneck", "spatial"))
    assert c.kinds[0] == "spatial" and c.widths[0] == 8 and c.errors2[0] == 0.0
    assert set(c.kinds) == {"spatial"}  # nothing costs more and is better than zero error
    only = curve(p, bottleneck, spatial=spatial, kinds=("bottleneck",))
    assert set(only.kinds) == {"bottleneck"}
    # Spatial width 8 on 10x10: 8·32·3·100 + 32·8·3·100 = 153,600 MACs.
    assert c.macs[0] == 153_600


def test_the_cli_pins_the_kind_and_the_json_reports_it(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from convaudit.cli import app

    rng = np.random.default_rng(13)
    w = _separable(rng, cout=32, cin=32, rank=8).astype(np.float32)
    src = save(conv_model(w, (1, 32, 12, 12), pads=[1, 1, 1, 1]), tmp_path / "m.onnx")
    out = tmp_path / "o.onnx"
    args = ["fix", str(src), "-o", str(out), "--node", "conv", "--width", "8", "-f", "json"]
    got = CliRunner().invoke(app, [*args, "--kind", "spatial"])
    assert got.exit_code == 0, got.output
    doc = json.loads(got.output)
    (layer,) = doc["layers"]
    assert layer["kind"] == "spatial" and layer["width"] == 8
    assert doc["written"] and doc["validation"]["error"] < 1e-4  # separable: exact at width 8
    # Without --kind a pinned width is a bottleneck, which cannot reproduce this layer.
    got = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "b.onnx")])
    assert got.exit_code == 1, got.output
    assert json.loads(got.output)["layers"][0]["kind"] == "bottleneck"
    bad = CliRunner().invoke(app, [*args, "--kind", "diagonal"])
    assert bad.exit_code == 2 and "--kind must be one of bottleneck, spatial" in bad.output


def test_a_pinned_spatial_kind_skips_what_it_cannot_rewrite(tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    w = rng.standard_normal((8, 8, 1, 3)).astype(np.float32)  # 1x3: no vertical factor
    src = save(conv_model(w, (1, 8, 6, 6)), tmp_path / "m.onnx")
    opts = FixOptions(nodes=("conv",), width=8, kind="spatial", measure_latency=False)
    result = run_fix(src, tmp_path / "o.onnx", opts, Config())
    (layer,) = result.layers
    assert not layer.rewritten and layer.reason is not None
    assert "at least 2 tall and wide, not 1x3" in layer.reason
