"""The width search of ``fix --inputs X --max-error E`` (no --width): which layers, which widths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from fixmodels import low_rank_weight, rel_error, run, save
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from convaudit.cli import app
from convaudit.config import Config
from convaudit.fix import request, search, stages
from convaudit.fix.pipeline import FixOptions, run_fix
from convaudit.fix.result import FixResult
from convaudit.fix.search import Curve

F = TensorProto.FLOAT


def quick(src: Path, dst: Path | None, **kw: Any) -> FixResult:
    return run_fix(src, dst, FixOptions(measure_latency=False, **kw), Config())


def test_a_curve_takes_steps_while_they_remove_enough_error_per_mac() -> None:
    # Widths 8, 16, 24 cost 100, 200, 300 MACs; the original conv costs 1000. Errors² 0.5, 0.1,
    # 0.05, then 0 (original): gains per MAC 0.4/100, 0.05/100, 0.05/700.
    c = Curve(
        plan=None,  # type: ignore[arg-type]
        widths=(8, 16, 24),
        errors2=(0.5, 0.1, 0.05),
        macs=(100, 200, 300),
        gains=(0.004, 0.0005, 0.05 / 700),
    )
    assert c.width_at(0.01) == 8  # no step is worth it: the cheapest width
    assert c.width_at(0.001) == 16
    assert c.width_at(0.0001) == 24
    assert c.width_at(1e-6) is None  # every step worth it: the original conv stays


def _net(path: Path, size: int = 12) -> Path:
    """input[1,64,12,12] -> low (3x3 64->64, rank 8) -> a, and input -> mixed (3x3 64->64, full
    rank) -> out. Both read the random input: chained after "low", "mixed" would read a
    structured signal that the layer-wise fit can reproduce at width 48 (see the gain test)."""
    rng = np.random.default_rng(40)
    low = low_rank_weight(rng, cout=64, cin=64, k=3, rank=8)
    full = (rng.standard_normal((64, 64, 3, 3)) / 24).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "wl"], ["a"], name="low", pads=[1] * 4),
            helper.make_node("Conv", ["input", "wf"], ["out"], name="mixed", pads=[1] * 4),
        ],
        "search",
        [helper.make_tensor_value_info("input", F, [1, 64, size, size])],
        [
            helper.make_tensor_value_info("out", F, [1, 64, size, size]),
            helper.make_tensor_value_info("a", F, [1, 64, size, size]),
        ],
        initializer=[numpy_helper.from_array(low, "wl"), numpy_helper.from_array(full, "wf")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return save(model, path)


@pytest.fixture
def net(tmp_path: Path) -> tuple[Path, Path]:
    src = _net(tmp_path / "net.onnx")
    rng = np.random.default_rng(41)
    calib = rng.standard_normal((8, 64, 12, 12)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", input=calib)
    return src, tmp_path / "calib.npz"


def test_the_search_rewrites_what_fits_the_budget_and_leaves_the_rest(
    net: tuple[Path, Path], tmp_path: Path
) -> None:
    src, calib = net
    out = tmp_path / "o.onnx"
    result = quick(src, out, inputs=str(calib), max_error=0.05)
    # "low" is rank 8: width 8 reproduces it; "mixed" is full rank: any width below its
    # break-even (64·64·9 / (64 + 64·9) = 57.6) keeps at most 48/64 of random directions.
    assert [(x.name, x.width, x.width_source) for x in result.rewritten] == [("low", 8, "search")]
    (skipped,) = [x for x in result.layers if not x.rewritten]
    assert skipped.name == "mixed" and skipped.reason.startswith("search: no width")
    assert result.written and result.error is not None and result.error <= 0.05
    # 1x1 64->8 + 3x3 8->64 on 12x12: 144·(64·8 + 8·64·9) = 737,280 instead of 5,308,416.
    assert result.macs_after == result.macs_before - 5_308_416 + 737_280
    x = np.load(calib)["input"][3:4]  # a held-out run
    assert rel_error(run(src, x), run(out, x)) < 0.05


def test_a_loose_budget_cuts_more(net: tuple[Path, Path], tmp_path: Path) -> None:
    src, calib = net
    tight = quick(src, tmp_path / "t.onnx", inputs=str(calib), max_error=0.05)
    loose = quick(src, tmp_path / "l.onnx", inputs=str(calib), max_error=0.6)
    assert tight.macs_after is not None and loose.macs_after is not None
    assert loose.macs_after < tight.macs_after
    assert {x.name for x in loose.rewritten} == {"low", "mixed"}
    assert loose.error is not None and loose.error <= 0.6


def test_node_restricts_and_width_pins_the_search(net: tuple[Path, Path], tmp_path: Path) -> None:
    src, calib = net
    only = quick(src, tmp_path / "n.onnx", inputs=str(calib), max_error=0.6, nodes=("mixed",))
    assert [x.name for x in only.rewritten] == ["mixed"]
    assert only.rewritten[0].width_source == "search"
    pinned = quick(
        src, tmp_path / "w.onnx", inputs=str(calib), max_error=0.6, nodes=("low",), width=16
    )
    assert [(x.name, x.width, x.width_source) for x in pinned.rewritten] == [("low", 16, "--width")]


def test_when_nothing_fits_nothing_is_written(net: tuple[Path, Path], tmp_path: Path) -> None:
    src, calib = net
    out = tmp_path / "o.onnx"
    got = CliRunner().invoke(
        app,
        [
            *("fix", str(src), "-o", str(out), "--inputs", str(calib), "--node", "mixed"),
            *("--max-error", "0.001", "--format", "json"),
        ],
    )
    assert got.exit_code == 0, got.output
    doc = json.loads(got.output)
    assert not doc["written"] and not out.exists()
    assert "no width keeps the error within 0.001" in doc["message"]


def _chained(path: Path) -> Path:
    """The same two convs as ``_net``, but chained (input -> low -> a -> mixed -> out), on 24x24
    so that the refit has 8 sampled positions per unknown (r·9 + 1 = 433 at width 48)."""
    model = onnx.load(str(_net(path, size=24)))
    mixed = next(n for n in model.graph.node if n.name == "mixed")
    mixed.input[0] = "a"
    del model.graph.output[1:]
    return save(model, path)


def test_fitted_trials_meet_a_budget_the_prediction_alone_cannot(tmp_path: Path) -> None:
    src = _chained(tmp_path / "chained.onnx")
    calib = tmp_path / "calib24.npz"
    rng = np.random.default_rng(41)
    np.savez(calib, input=rng.standard_normal((8, 64, 24, 24)).astype(np.float32))
    out = tmp_path / "o.onnx"
    result = quick(src, out, inputs=str(calib), max_error=0.05)
    # "mixed" reads what the rank-8 "low" makes of random inputs: the SVD whitened on it keeps
    # too little (its own curve predicts 15.7% at width 48), but fitted layer by layer to the
    # original responses it reproduces them, so the looser targets' fitted trial passes.
    widths = {x.name: x.width for x in result.rewritten}
    assert widths == {"low": 8, "mixed": 48}
    note = next(n for n in result.rewritten[1].notes if "chosen by the search" in n)
    predicted = float(note.split("predicted error ")[1].split("%")[0]) / 100
    assert predicted > 0.05
    assert result.written and result.error is not None and result.error <= 0.05
    x = np.load(calib)["input"][7:8]  # held out of the fit (every 4th run)
    assert rel_error(run(src, x), run(out, x)) < 0.05


def _cancelling_net(path: Path) -> Path:
    """Two outputs from one input: p = A(x) − D(x), where D's weights are A's plus 2% noise, so
    p is small and an error in A or D is magnified ~50x in it; q = B(x), B a copy of A."""
    rng = np.random.default_rng(50)
    wa = low_rank_weight(rng, cout=32, cin=32, k=3, rank=8, noise=0.02)
    wd = (wa + 0.02 * np.sqrt(np.mean(wa**2)) * rng.standard_normal(wa.shape)).astype(np.float32)
    inits = [
        numpy_helper.from_array(wa, "wa"),
        numpy_helper.from_array(wd, "wd"),
        numpy_helper.from_array(wa.copy(), "wb"),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "wa"], ["ya"], name="A", pads=[1] * 4),
            helper.make_node("Conv", ["input", "wd"], ["yd"], name="D", pads=[1] * 4),
            helper.make_node("Sub", ["ya", "yd"], ["p"], name="sub"),
            helper.make_node("Conv", ["input", "wb"], ["q"], name="B", pads=[1] * 4),
        ],
        "cancel",
        [helper.make_tensor_value_info("input", F, [1, 32, 8, 8])],
        [
            helper.make_tensor_value_info("p", F, [1, 32, 8, 8]),
            helper.make_tensor_value_info("q", F, [1, 32, 8, 8]),
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return save(model, path)


def test_the_search_weighs_each_layer_by_how_much_it_moves_the_outputs(tmp_path: Path) -> None:
    src = _cancelling_net(tmp_path / "cancel.onnx")
    rng = np.random.default_rng(51)
    np.savez(tmp_path / "calib.npz", input=rng.standard_normal((12, 32, 8, 8)).astype(np.float32))
    opts = FixOptions(inputs=str(tmp_path / "calib.npz"), max_error=0.05, measure_latency=False)
    ctx = request.context(src, tmp_path / "o.onnx", opts, Config())
    sel = stages.select_layers(ctx)
    with request.scratch(ctx) as work:
        searcher = search.Searcher(ctx, sel, stages.load_feeds(ctx), work)
    gain = {c.plan.layer.name: c.gain for c in searcher.curves}
    own = {c.plan.layer.name: c.errors2[0] / c.gain**2 for c in searcher.curves}
    # A, D and B have (nearly) the same weights, so the same own error at each width; but
    # ‖A(x)‖ / ‖p‖ ≈ 1 / (0.02·√2) ≈ 35 magnifies A's and D's into p, while B's reaches q as is
    # (its worst channel a little above the pooled figure).
    assert own["A"] == pytest.approx(own["B"], rel=1e-6)
    assert gain["A"] > 20 and gain["D"] > 20
    assert 0.9 < gain["B"] < 1.5
    result = quick(src, tmp_path / "o.onnx", inputs=str(tmp_path / "calib.npz"), max_error=0.05)
    assert [x.name for x in result.rewritten] == ["B"]
    assert result.written and result.error is not None and result.error <= 0.05
