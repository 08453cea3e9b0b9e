"""``fix`` end to end: widths, refusals, skips, external data, calibration, the textbook sample."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from fixmodels import conv_model, conv_nodes, low_rank_weight, rel_error, run, save
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from convaudit.api import fix, scan
from convaudit.cli import app
from convaudit.config import Config
from convaudit.errors import FixError
from convaudit.fix import plan
from convaudit.fix.pipeline import FixOptions, run_fix
from convaudit.fix.render import render_table
from convaudit.fix.result import FixResult
from convaudit.model.analyse import analyse
from convaudit.model.loader import load_model
from convaudit.records import Finding, Recommendation

SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"
TEXTBOOK = SAMPLES / "textbook_5x5.onnx"


def quick(src: Path, dst: Path | None, **kw: Any) -> FixResult:
    """run_fix without the latency loop (timings are for benchmarks/, not tests)."""
    return run_fix(src, dst, FixOptions(measure_latency=False, **kw), Config())


@pytest.fixture
def low_rank_model(tmp_path: Path) -> Path:
    """A 3x3 conv 64->32 whose weight is rank 16 plus 1% noise, with bias."""
    rng = np.random.default_rng(10)
    w = low_rank_weight(rng, cout=32, cin=64, k=3, rank=16, noise=0.01)
    b = rng.standard_normal(32).astype(np.float32)
    return save(conv_model(w, (1, 64, 10, 10), bias=b, pads=[1, 1, 1, 1]), tmp_path / "lr.onnx")


def test_textbook_at_width_16_costs_exactly_5268480_macs(tmp_path: Path) -> None:
    out = tmp_path / "out.onnx"
    # Random weights at width 16 are far above the default 5% budget: force writes them anyway.
    result = fix(TEXTBOOK, out, nodes=["conv5x5"], width=16, force=True)
    assert result.written and out.is_file()
    (layer,) = result.rewritten
    assert (layer.before_macs, layer.after_macs) == (112_896_000, 5_268_480)
    assert (layer.before_params, layer.after_params) == (576_048, 26_928)  # bias 48 stays
    # convaudit's own scan of the written file is the oracle for the MACs.
    facts = scan(out).reports[0].facts
    assert facts is not None
    assert facts.totals.macs == 1_505_280 + 3_763_200 == 5_268_480
    convs = sorted((x.kernel_shape, x.in_channels, x.out_channels, x.macs) for x in facts.layers)
    assert convs == [((1, 1), 480, 16, 1_505_280), ((5, 5), 16, 48, 3_763_200)]
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    original = onnx.load(str(TEXTBOOK))
    assert model.graph.output[0].type == original.graph.output[0].type
    # Random weights are not low-rank: the report says so instead of hiding it.
    assert layer.energy is not None and layer.energy < 0.15
    assert layer.predicted_error is not None and layer.predicted_error > 0.9
    assert layer.measured_error == pytest.approx(layer.predicted_error, abs=0.03)
    assert result.latency_before and result.latency_after  # measured, not asserted: benchmarks/


def test_rank16_weight_factorises_with_small_measured_error(
    low_rank_model: Path, tmp_path: Path
) -> None:
    result = quick(low_rank_model, tmp_path / "o.onnx", nodes=("conv",), width=16)
    (layer,) = result.rewritten
    assert layer.width == 16 and layer.energy > 0.999
    assert layer.predicted_error < 0.012
    assert result.error < 0.02
    x = np.random.default_rng(1).standard_normal((1, 64, 10, 10)).astype(np.float32)
    assert rel_error(run(low_rank_model, x), run(tmp_path / "o.onnx", x)) < 0.02


def test_target_saving_picks_the_widest_multiple_of_8(tmp_path: Path) -> None:
    result = quick(TEXTBOOK, tmp_path / "o.onnx", nodes=("conv5x5",), target_saving=4)
    # Per unit of width: 480·14·14 + 48·25·14·14 = 329,280 MACs; 112,896,000 / 4 / 329,280
    # = 85.7, so 80.
    (layer,) = result.rewritten
    assert (layer.width, layer.width_source) == (80, "--target-saving")
    assert layer.after_macs == 80 * 329_280 == 26_342_400


def test_width_is_rounded_to_a_multiple_of_8(tmp_path: Path) -> None:
    result = quick(TEXTBOOK, tmp_path / "o.onnx", nodes=("conv5x5",), width=13)
    (layer,) = result.rewritten
    assert layer.width == 16 and "rounded" in layer.notes[0]


def test_width_at_break_even_is_skipped(tmp_path: Path) -> None:
    # Break-even for 480->48 5x5 at stride 1 is 480·48·25 / (480 + 48·25) = 342.9.
    out = tmp_path / "o.onnx"
    result = quick(TEXTBOOK, out, nodes=("conv5x5",), width=344)
    assert not result.written and not out.exists()
    (layer,) = result.layers
    assert "break-even width 342.9" in layer.reason
    # Even a skipped candidate reports E(r) (random weights: 344 of 480 directions keep ~91%).
    assert layer.energy is not None and 0.75 < layer.energy < 0.95
    assert "energy retained" in render_table(result)


def test_max_error_refuses_to_write_and_force_overrides(tmp_path: Path) -> None:
    out = tmp_path / "o.onnx"
    result = quick(TEXTBOOK, out, nodes=("conv5x5",), width=16, max_error=0.05)
    assert result.exceeded and not result.written
    assert not out.exists() and list(tmp_path.iterdir()) == []  # no temp files left either
    forced = quick(TEXTBOOK, out, nodes=("conv5x5",), width=16, max_error=0.05, force=True)
    assert forced.exceeded and forced.written and out.is_file()


def test_cli_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    src = shutil.copy(TEXTBOOK, tmp_path / "m.onnx")
    args = ["fix", str(src), "--node", "conv5x5", "--width", "16"]
    over = runner.invoke(app, [*args, "-o", str(tmp_path / "a.onnx"), "--max-error", "0.05"])
    assert over.exit_code == 1 and not (tmp_path / "a.onnx").exists()
    assert "above --max-error" in over.output
    same = runner.invoke(app, [*args, "-o", str(tmp_path / "." / "m.onnx")])
    assert same.exit_code == 2
    assert "output is the input model" in same.output
    # An explicit budget above the (random-weight) error writes the file and exits 0.
    loose = ["--max-error", "2"]
    ok = runner.invoke(app, [*args, "-o", str(tmp_path / "b.onnx"), "--format", "json", *loose])
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.output)
    assert doc["schema_version"] == 1 and doc["tool"]["name"] == "convaudit"
    assert doc["written"] and doc["totals"]["after"]["macs"] == 5_268_480
    assert doc["layers"][0]["width"] == 16 and 0 < doc["layers"][0]["energy_retained"] < 0.15


def test_output_equal_to_input_is_refused_unless_in_place(tmp_path: Path) -> None:
    src = Path(shutil.copy(TEXTBOOK, tmp_path / "m.onnx"))
    before = src.read_bytes()
    with pytest.raises(FixError, match="output is the input"):
        quick(src, tmp_path / "." / "m.onnx", nodes=("conv5x5",), width=16)
    with pytest.raises(FixError, match="no output"):
        quick(src, None, nodes=("conv5x5",), width=16)
    assert src.read_bytes() == before
    result = quick(src, None, nodes=("conv5x5",), width=16, in_place=True, force=True)
    assert result.written
    assert len(conv_nodes(onnx.load(str(src)))) == 2


def test_output_that_cannot_be_a_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(FixError, match=r"is a directory: -o names the output model file"):
        quick(TEXTBOOK, tmp_path, nodes=("conv5x5",), width=16)
    (tmp_path / "notadir").write_text("")
    with pytest.raises(FixError, match=r"notadir/o\.onnx: cannot write the output here"):
        quick(TEXTBOOK, tmp_path / "notadir" / "o.onnx", nodes=("conv5x5",), width=16)
    assert [p.name for p in tmp_path.iterdir()] == ["notadir"]


def _quantized_model(path: Path) -> Path:
    """A QLinearConv and a Conv whose weight comes out of DequantizeLinear."""
    rng = np.random.default_rng(11)
    wq = rng.integers(-8, 8, size=(16, 32, 3, 3)).astype(np.int8)
    inits = [
        numpy_helper.from_array(wq, "wq"),
        numpy_helper.from_array(np.array(0.02, np.float32), "s"),
        numpy_helper.from_array(np.array(0, np.uint8), "zp_u8"),
        numpy_helper.from_array(np.array(0, np.int8), "zp_i8"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["input", "s", "zp_u8"], ["xq"], name="q"),
        helper.make_node(
            "QLinearConv",
            ["xq", "s", "zp_u8", "wq", "s", "zp_i8", "s", "zp_u8"],
            ["yq"],
            name="qconv",
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
        ),
        helper.make_node("DequantizeLinear", ["wq", "s", "zp_i8"], ["wdq"], name="dq"),
        helper.make_node("Conv", ["input", "wdq"], ["y2"], name="dqconv", kernel_shape=[3, 3]),
    ]
    graph = helper.make_graph(
        nodes,
        "q",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 32, 8, 8])],
        [
            helper.make_tensor_value_info("yq", TensorProto.UINT8, [1, 16, 8, 8]),
            helper.make_tensor_value_info("y2", TensorProto.FLOAT, [1, 16, 6, 6]),
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return save(model, path)


def test_quantized_convs_are_skipped_with_reasons(tmp_path: Path) -> None:
    src = _quantized_model(tmp_path / "q.onnx")
    out = tmp_path / "o.onnx"
    result = quick(src, out, nodes=("qconv", "dqconv"), width=8)
    reasons = {x.name: x.reason for x in result.layers}
    assert reasons == {
        "qconv": "quantized conv (QLinearConv)",
        "dqconv": "quantized weights (produced by DequantizeLinear)",
    }
    assert not result.written and not out.exists()
    assert "nothing to rewrite" in result.message


def test_depthwise_shared_and_non_constant_weights_are_skipped(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    f32 = TensorProto.FLOAT
    inits = [
        numpy_helper.from_array(rng.standard_normal((32, 1, 3, 3)).astype(np.float32), "dw"),
        numpy_helper.from_array(rng.standard_normal((32, 32, 3, 3)).astype(np.float32), "sh"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "dw"], ["a"], name="depthwise", group=32, pads=[1] * 4),
        helper.make_node("Conv", ["a", "sh"], ["b"], name="shared1", pads=[1] * 4),
        helper.make_node("Conv", ["b", "sh"], ["c"], name="shared2", pads=[1] * 4),
        helper.make_node("Conv", ["c", "w_in"], ["d"], name="fed", pads=[1] * 4),
        helper.make_node("Neg", ["w_in"], ["neg"], name="neg"),
        helper.make_node("Conv", ["d", "neg"], ["e"], name="computed", pads=[1] * 4),
        helper.make_node("Identity", ["sh"], ["sh_id"], name="id"),
        helper.make_node("Conv", ["e", "sh_id"], ["f"], name="deduplicated", pads=[1] * 4),
    ]
    graph = helper.make_graph(
        nodes,
        "skips",
        [
            helper.make_tensor_value_info("input", f32, [1, 32, 8, 8]),
            helper.make_tensor_value_info("w_in", f32, [32, 32, 3, 3]),
        ],
        [helper.make_tensor_value_info("f", f32, [1, 32, 8, 8])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    src = save(model, tmp_path / "s.onnx")
    names = ("depthwise", "shared1", "fed", "computed", "deduplicated")
    result = quick(src, tmp_path / "o.onnx", nodes=names, width=8)
    reasons = {x.name: x.reason for x in result.layers}
    assert reasons["depthwise"].startswith("depthwise conv")
    assert reasons["shared1"] == "weights shared by 3 nodes"  # shared2 and the Identity
    assert reasons["deduplicated"] == "weights shared by 3 nodes (through Identity)"
    assert reasons["fed"].startswith("weights are a graph input")
    assert reasons["computed"] == "weights are computed by a Neg node, not stored constants"


def test_unknown_node_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(FixError, match="did you mean 'conv5x5'"):
        quick(TEXTBOOK, tmp_path / "o.onnx", nodes=("conv5x6",), width=16)


def test_a_node_without_width_or_finding_is_an_error() -> None:
    facts = analyse(TEXTBOOK)
    with load_model(TEXTBOOK) as loaded:
        with pytest.raises(FixError, match="pass --width N or --target-saving X"):
            plan.select(facts, (), loaded.proto, plan.Options(nodes=("conv5x5",)))
        # With a CA101 finding, its recommended width is used (rounded to a multiple of 8).
        finding = Finding(
            rule="CA101",
            name="wide-kxk-conv-without-bottleneck",
            severity="warning",
            node="conv5x5",
            graph="main",
            message="",
            fingerprint="x",
            recommendation=Recommendation(
                kind="bottleneck",
                before_macs=112_896_000,
                before_params=576_048,
                after_macs=5_268_480,
                after_params=26_928,
                width=16,
            ),
        )
        plans, skipped = plan.select(facts, (finding,), loaded.proto, plan.Options())
    assert [(p.layer.name, p.width, p.width_source) for p in plans] == [("conv5x5", 16, "CA101")]
    assert skipped == []


def test_external_data_model_round_trips(low_rank_model: Path, tmp_path: Path) -> None:
    ext_dir = tmp_path / "ext"
    ext_dir.mkdir()
    model = onnx.load(str(low_rank_model))
    src = ext_dir / "m.onnx"
    onnx.save_model(model, str(src), save_as_external_data=True, location="m.weights")
    assert (ext_dir / "m.weights").is_file()
    out = tmp_path / "out" / "fixed.onnx"
    result = quick(src, out, nodes=("conv",), width=16)
    assert result.written and result.external_data
    assert (out.parent / "fixed.onnx.data").is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["fixed.onnx", "fixed.onnx.data"]
    onnx.checker.check_model(str(out), full_check=True)
    x = np.random.default_rng(2).standard_normal((1, 64, 10, 10)).astype(np.float32)
    assert rel_error(run(src, x), run(out, x)) < 0.02
    assert scan(out).reports[0].facts.totals.macs == 16 * (64 * 100 + 32 * 9 * 100)


def test_output_never_replaces_the_inputs_external_data(tmp_path: Path) -> None:
    # The input keeps its weights in "out.onnx.data", the very file `-o out.onnx` would write.
    src = tmp_path / "src.onnx"
    onnx.save_model(
        onnx.load(str(TEXTBOOK)), str(src), save_as_external_data=True, location="out.onnx.data"
    )
    data = (tmp_path / "out.onnx.data").read_bytes()
    for target in ("out.onnx", "out.onnx.data"):
        with pytest.raises(FixError, match="would replace the input's external data file"):
            quick(src, tmp_path / target, nodes=("conv5x5",), width=16)
    assert (tmp_path / "out.onnx.data").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.onnx.data", "src.onnx"]
    assert quick(src, tmp_path / "other.onnx", nodes=("conv5x5",), width=16, force=True).written


def test_large_models_are_written_with_external_data(low_rank_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "big.onnx"
    opts = FixOptions(nodes=("conv",), width=16, measure_latency=False, external_threshold=0)
    result = run_fix(low_rank_model, out, opts, Config())
    assert result.written and result.external_data
    assert (tmp_path / "big.onnx.data").stat().st_size > 0
    assert len(conv_nodes(onnx.load(str(out)))) == 2


def test_calibration_inputs_whiten_the_factorisation(tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    cin, cout = 64, 32
    w = (rng.standard_normal((cout, cin, 3, 3)) / 24).astype(np.float32)
    src = save(conv_model(w, (1, cin, 8, 8), pads=[1, 1, 1, 1]), tmp_path / "c.onnx")
    # Activations in an 8-dimensional channel subspace (as trained nets' are, roughly).
    basis = rng.standard_normal((cin, 8))
    calib = np.einsum("cr,nrhw->nchw", basis, rng.standard_normal((6, 8, 8, 8)))
    calib = (calib + 0.01 * rng.standard_normal(calib.shape)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", input=calib)
    white = quick(
        src, tmp_path / "w.onnx", nodes=("conv",), width=8, inputs=str(tmp_path / "calib.npz")
    )
    plain = quick(src, tmp_path / "p.onnx", nodes=("conv",), width=8, force=True)
    assert white.inputs_source == "calib.npz (6 runs)"
    assert white.rewritten[0].whitened and not plain.rewritten[0].whitened
    x = calib[:1]
    ref = run(src, x)
    err_white = rel_error(ref, run(tmp_path / "w.onnx", x))
    err_plain = rel_error(ref, run(tmp_path / "p.onnx", x))
    assert err_white < 0.05 < 0.5 < err_plain
    # The layer's error is on the fit's own samples, the model's on the held-out run: the
    # least-squares refit fits its samples a little better than unseen ones.
    assert white.error == pytest.approx(white.rewritten[0].measured_error, rel=1.0)


def test_batchnorm_after_the_conv_is_folded(tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    w = low_rank_weight(rng, cout=32, cin=64, k=3, rank=8)
    src = save(conv_model(w, (1, 64, 8, 8), bn=True, pads=[1] * 4, rng=rng), tmp_path / "b.onnx")
    result = quick(src, tmp_path / "o.onnx", nodes=("conv",), width=8)
    (layer,) = result.rewritten
    assert layer.folded_bn == "z"
    new = onnx.load(str(tmp_path / "o.onnx"))
    assert [n.op_type for n in new.graph.node] == ["Conv", "Conv"]
    assert result.error is not None and result.error < 1e-5  # rank 8 at width 8: exact


def test_default_rewrites_every_ca101_finding_and_rescan_is_clean(tmp_path: Path) -> None:
    before = scan(TEXTBOOK).reports[0]
    assert [(f.rule, f.node) for f in before.findings if f.rule == "CA101"] == [
        ("CA101", "conv5x5")
    ]
    out = tmp_path / "o.onnx"
    result = quick(TEXTBOOK, out, force=True)  # random weights: above the default budget
    assert [(x.name, x.width, x.width_source) for x in result.rewritten] == [
        ("conv5x5", 16, "CA101")
    ]
    assert result.remaining_findings == ()
    after = scan(out).reports[0]
    assert not [f for f in after.findings if f.rule == "CA101"]
    assert after.facts is not None and after.facts.totals.macs == 5_268_480


def test_weights_from_a_constant_node_are_rewritten_and_the_node_dropped(tmp_path: Path) -> None:
    rng = np.random.default_rng(15)
    w = low_rank_weight(rng, cout=32, cin=64, k=3, rank=8)
    nodes = [
        helper.make_node("Constant", [], ["w"], name="wconst", value=numpy_helper.from_array(w)),
        helper.make_node("Conv", ["input", "w"], ["y"], name="conv", pads=[1] * 4),
    ]
    graph = helper.make_graph(
        nodes,
        "const",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 64, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 8, 8])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    src = save(model, tmp_path / "c.onnx")
    result = quick(src, tmp_path / "o.onnx", nodes=("conv",), width=8)
    assert result.written and result.error is not None and result.error < 1e-5
    new = onnx.load(str(tmp_path / "o.onnx"))
    assert [n.op_type for n in new.graph.node] == ["Conv", "Conv"]


def test_calibration_file_problems_are_errors_naming_the_file(tmp_path: Path) -> None:
    np.savez(tmp_path / "bad.npz", images=np.zeros((1, 480, 14, 14), np.float32))
    with pytest.raises(FixError, match=r"bad\.npz: calibration inputs lack input"):
        quick(TEXTBOOK, tmp_path / "o.onnx", width=16, inputs=str(tmp_path / "bad.npz"))
    with pytest.raises(FixError, match=r"missing\.npz: calibration file not found"):
        quick(TEXTBOOK, tmp_path / "o.onnx", width=16, inputs=str(tmp_path / "missing.npz"))
    # Wrong channels: named with the file, in one line (onnxruntime's own error spans several).
    np.savez(tmp_path / "chan.npz", input=np.zeros((2, 3, 14, 14), np.float32))
    with pytest.raises(
        FixError,
        match=r"chan\.npz: calibration input 'input' is 2x3x14x14 where the model takes "
        r"1x480x14x14",
    ):
        quick(TEXTBOOK, tmp_path / "o.onnx", width=16, inputs=str(tmp_path / "chan.npz"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz", "chan.npz"]


def test_float16_models_stay_float16(tmp_path: Path) -> None:
    rng = np.random.default_rng(16)
    w = low_rank_weight(rng, cout=32, cin=64, k=3, rank=8).astype(np.float16)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["y"], name="conv", pads=[1] * 4)],
        "fp16",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT16, [1, 64, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, 32, 8, 8])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    src = save(model, tmp_path / "h.onnx")
    result = quick(src, tmp_path / "o.onnx", nodes=("conv",), width=8)
    assert result.error is not None and result.error < 5e-3  # exact rank; fp16 rounding only
    new = onnx.load(str(tmp_path / "o.onnx"))
    assert {t.data_type for t in new.graph.initializer} == {TensorProto.FLOAT16}
    assert new.graph.output[0].type == model.graph.output[0].type


def test_dynamic_batch_needs_a_dim_and_then_works(tmp_path: Path) -> None:
    rng = np.random.default_rng(17)
    w = low_rank_weight(rng, cout=32, cin=64, k=3, rank=8)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["y"], name="conv", pads=[1] * 4)],
        "dyn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 64, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 32, 8, 8])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    src = save(model, tmp_path / "d.onnx")
    runner = CliRunner()
    base = ["fix", str(src), "-o", str(tmp_path / "o.onnx"), "--node", "conv", "--width", "8"]
    missing = runner.invoke(app, base)
    assert missing.exit_code == 2 and "--dim N=" in missing.output
    ok = runner.invoke(app, [*base, "--dim", "N=2", "--format", "json"])
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.output)
    # Batch 2: twice the per-image cost, 8·(64·64 + 32·9·64) = 180,224 per image.
    assert doc["totals"]["after"]["macs"] == 2 * 180_224
    assert doc["validation"]["error"] < 1e-5


def test_an_input_failing_the_checker_is_rewritten_without_new_problems(tmp_path: Path) -> None:
    # An exporter's graph output with no shape: onnx.checker rejects the input itself.
    w = low_rank_weight(np.random.default_rng(18), cout=32, cin=64, k=3, rank=8)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["y"], name="conv", pads=[1] * 4)],
        "noshape",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 64, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    src = save(model, tmp_path / "n.onnx")
    with pytest.raises(onnx.checker.ValidationError):
        onnx.checker.check_model(str(src), full_check=True)
    result = quick(src, tmp_path / "o.onnx", nodes=("conv",), width=8)
    assert result.written
    (note,) = result.notes
    assert note.startswith("the input model already fails onnx.checker")


def test_ir3_model_with_weights_listed_as_inputs_is_rewritten(tmp_path: Path) -> None:
    rng = np.random.default_rng(19)
    w = low_rank_weight(rng, cout=32, cin=64, k=3, rank=8)
    b = rng.standard_normal(32).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w", "b"], ["y"], name="conv", pads=[1] * 4)],
        "ir3",
        [
            helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 64, 8, 8]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, list(w.shape)),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [32]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 8, 8])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 8)])
    model.ir_version = 3
    src = save(model, tmp_path / "ir3.onnx")
    result = quick(src, tmp_path / "o.onnx", nodes=("conv",), width=8)
    assert result.written and result.error is not None and result.error < 1e-5
    new = onnx.load(str(tmp_path / "o.onnx"))
    assert new.ir_version == 3
    inputs = {i.name for i in new.graph.input}
    assert "w" not in inputs and {t.name for t in new.graph.initializer} <= inputs


def test_grouped_conv_is_factorised_per_group(tmp_path: Path) -> None:
    rng = np.random.default_rng(22)
    # Two groups of 32 -> 32, each rank 8: width 16 (8 per group) is exact.
    w = np.concatenate([low_rank_weight(rng, cout=32, cin=32, k=3, rank=8) for _ in range(2)])
    src = save(conv_model(w, (1, 64, 8, 8), group=2, pads=[1] * 4), tmp_path / "g.onnx")
    result = quick(src, tmp_path / "o.onnx", nodes=("conv",), width=16)
    (layer,) = result.rewritten
    # Per group: 1x1 8·32·64 and 3x3 32·8·9·64; two groups: 2·(16,384 + 147,456).
    assert layer.after_macs == result.macs_after == 327_680
    assert layer.after_params == 2 * (8 * 32 + 32 * 8 * 9)
    assert layer.energy is not None and layer.energy > 0.999999
    assert result.error is not None and result.error < 1e-5
    facts = scan(tmp_path / "o.onnx").reports[0].facts
    assert facts is not None and {x.group for x in facts.layers} == {2}


def test_widths_of_grouped_convs_are_multiples_of_the_group_count() -> None:
    facts = analyse(TEXTBOOK)
    (layer,) = facts.layers
    grouped = replace(layer, group=3)
    assert plan.width_step(layer) == 8 and plan.width_step(grouped) == 24
    assert plan.round_width(13, plan.width_step(grouped)) == 24
    assert plan.bottleneck_macs(grouped, 24) == 8 * 329_280
