"""A plain scan imports neither onnx nor numpy (issue 12): the lite path reads the model and folds
its shape arithmetic in Python. A fold the Python folder leaves to numpy imports numpy then, and
the report is still the full path's, byte for byte."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted((ROOT / "sample_models").glob("*.onnx"))


def _scan(model: Path, cwd: Path, **env: str) -> tuple[str, list[str]]:
    """The JSON report of a scan in a fresh process, and which of numpy / onnx it imported."""
    code = (
        "import sys\n"
        f"sys.argv = ['convaudit', 'scan', {str(model)!r}, '--format', 'json', '--no-cache']\n"
        "from convaudit.launch import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('numpy', 'onnx') if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
        env={**os.environ, **env},
    )
    assert '"reports"' in done.stdout, done.stderr
    return done.stdout, done.stderr.strip().splitlines()[-1:]


def _shape_arithmetic_model(path: Path, cast_through: int | None = None) -> Path:
    """x -> Conv -> Reshape to (N, -1) -> MatMul, the target by Shape -> Gather -> Unsqueeze ->
    Concat (-> Cast to ``cast_through``, Mul by 1, Cast back). The MatMul's MACs are known only
    when the target was folded: 2 x 2048 x 10 = 40960."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Shape", ["y"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus_one"], ["target"], axis=0),
    ]
    target = "target"
    if cast_through is not None:
        nodes += [
            helper.make_node("Cast", ["target"], ["t_cast"], to=cast_through),
            helper.make_node("Mul", ["t_cast", "one"], ["t_mul"]),
            helper.make_node("Cast", ["t_mul"], ["t_back"], to=TensorProto.INT64),
        ]
        target = "t_back"
    nodes.append(helper.make_node("Reshape", ["y", target], ["z"]))
    nodes.append(helper.make_node("MatMul", ["z", "m"], ["out"]))
    dtype = helper.tensor_dtype_to_np_dtype(cast_through or TensorProto.INT64)
    inits = [
        numpy_helper.from_array(np.ones((8, 3, 3, 3), np.float32), "w"),
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array([0], np.int64), "axes"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus_one"),
        numpy_helper.from_array(np.array([1], dtype), "one"),
        numpy_helper.from_array(np.ones((2048, 10), np.float32), "m"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 16, 16])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [2, 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def test_a_warm_scan_imports_neither_onnx_nor_numpy(tmp_path: Path) -> None:
    built = _shape_arithmetic_model(tmp_path / "reshaped.onnx")
    _scan(built, tmp_path)  # a cold scan builds the schema table with onnx, once
    for model in [*SAMPLES, built]:
        report, imported = _scan(model, tmp_path)
        assert imported == ["[]"], model.name
        assert report == _scan(model, tmp_path, CONVAUDIT_NO_LITE="1")[0]
    assert '"macs": 40960,' in report  # the MatMul behind the folded Reshape target


@pytest.mark.parametrize(
    "cast_through", [TensorProto.FLOAT16, TensorProto.INT16], ids=["float16", "int16"]
)
def test_a_fold_left_to_numpy_imports_it_and_gives_the_full_paths_report(
    tmp_path: Path, cast_through: int
) -> None:
    model = _shape_arithmetic_model(tmp_path / "cast.onnx", cast_through)
    _scan(model, tmp_path)
    report, imported = _scan(model, tmp_path)
    # float16 arithmetic goes to numpy; int16 is folded in Python
    assert imported == (["['numpy']"] if cast_through == TensorProto.FLOAT16 else ["[]"])
    assert '"macs": 40960,' in report
    assert report == _scan(model, tmp_path, CONVAUDIT_NO_LITE="1")[0]
