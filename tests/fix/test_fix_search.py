"""The width search of ``fix --inputs X --max-error E`` (no --width): which layers, which widths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fixmodels import low_rank_weight, rel_error, run, save
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from convaudit.cli import app
from convaudit.config import Config
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


def _net(path: Path) -> Path:
    """input[1,64,12,12] -> low (3x3 64->64, rank 8) -> mixed (3x3 64->64, full rank) -> out."""
    rng = np.random.default_rng(40)
    low = low_rank_weight(rng, cout=64, cin=64, k=3, rank=8)
    full = (rng.standard_normal((64, 64, 3, 3)) / 24).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "wl"], ["a"], name="low", pads=[1] * 4),
            helper.make_node("Conv", ["a", "wf"], ["out"], name="mixed", pads=[1] * 4),
        ],
        "search",
        [helper.make_tensor_value_info("input", F, [1, 64, 12, 12])],
        [helper.make_tensor_value_info("out", F, [1, 64, 12, 12])],
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
