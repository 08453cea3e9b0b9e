"""The op registry: one row per op, with its MACs and params worked by hand; totals per category.

Adding an op to convaudit/model/ops.py means adding its row to OP_ROWS.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from convaudit.model.analyse import analyse
from convaudit.model.ops import OPS, ContractionOp, ConvOp
from convaudit.records import Category

F = TensorProto.FLOAT
RNG = np.random.default_rng(3)


def w(name: str, shape: Sequence[int], dtype: Any = np.float32) -> TensorProto:
    return numpy_helper.from_array(RNG.standard_normal(shape).astype(dtype), name)


def one_node(
    tmp_path: Path,
    op: str,
    domain: str,
    x_shape: Sequence[int],
    weights: Sequence[TensorProto],
    attrs: dict[str, Any],
    x_type: int = F,
) -> Path:
    inputs = ["x", *(t.name for t in weights)]
    node = helper.make_node(op, inputs, ["y"], name="n", domain=domain, **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", x_type, list(x_shape))],
        [helper.make_tensor_value_info("y", F, None)],
        list(weights),
    )
    opsets = [helper.make_opsetid("", 18)]
    if domain:
        opsets.append(helper.make_opsetid(domain, 1))
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 9
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    return path


@dataclass(frozen=True)
class Row:
    op: str
    domain: str
    x_shape: tuple[int, ...]
    weights: list[TensorProto]
    attrs: dict[str, Any]
    category: Category
    macs: int
    params: int
    x_type: int = F


OP_ROWS = {
    # 4 out * 6x6 * 3 in * 3x3 = 3888; weight 4*3*3*3 = 108
    "conv": Row("Conv", "", (1, 3, 8, 8), [w("W", (4, 3, 3, 3))], {}, Category.CONV, 3888, 108),
    "conv_integer": Row(
        "ConvInteger",
        "",
        (1, 3, 8, 8),
        [w("W", (4, 3, 3, 3), np.uint8)],
        {},
        Category.CONV,
        3888,
        108,
        x_type=TensorProto.UINT8,
    ),
    # every input element through the kernel: 4 in * 5x5 * 2 out * 3x3 = 1800; weight 72
    "conv_transpose": Row(
        "ConvTranspose",
        "",
        (1, 4, 5, 5),
        [w("W", (4, 2, 3, 3))],
        {"strides": [2, 2]},
        Category.CONV_TRANSPOSE,
        1800,
        72,
    ),
    # output 2x3x5 = 30 elements, K = 4 each: 120; weight 20
    "matmul": Row("MatMul", "", (2, 3, 4), [w("W", (4, 5))], {}, Category.MATMUL, 120, 20),
    # M=3, K=4, N=5 (B read transposed): 60; weight 20 + bias 5
    "gemm": Row(
        "Gemm", "", (3, 4), [w("W", (5, 4)), w("C", (5,))], {"transB": 1}, Category.MATMUL, 60, 25
    ),
    # b=2, i=3, j=4, k=5: the whole index space 120; weight 20
    "einsum": Row(
        "Einsum",
        "",
        (2, 3, 4),
        [w("W", (4, 5))],
        {"equation": "bij,jk->bik"},
        Category.MATMUL,
        120,
        20,
    ),
    # the standard conv's 3888; weight 108 + bias 4
    "fused_conv": Row(
        "FusedConv",
        "com.microsoft",
        (1, 3, 8, 8),
        [w("W", (4, 3, 3, 3)), w("B", (4,))],
        {"activation": "Relu"},
        Category.CONV,
        3888,
        112,
    ),
    # A (4, 3) read transposed: (3, 4) @ (4, 5) = 15 outputs * K 4 = 60; weight 20
    "fused_matmul": Row(
        "FusedMatMul",
        "com.microsoft",
        (4, 3),
        [w("W", (4, 5))],
        {"transA": 1},
        Category.MATMUL,
        60,
        20,
    ),
    "fused_gemm": Row(
        "FusedGemm", "com.microsoft", (3, 4), [w("W", (4, 5))], {}, Category.MATMUL, 60, 20
    ),
}


@pytest.mark.parametrize("row", sorted(OP_ROWS))
def test_op_rows(tmp_path: Path, row: str) -> None:
    r = OP_ROWS[row]
    facts = analyse(one_node(tmp_path, r.op, r.domain, r.x_shape, r.weights, r.attrs, r.x_type))
    (layer,) = facts.layers
    assert (layer.category, layer.macs, layer.params) == (r.category, r.macs, r.params)
    assert layer.macs_per_execution == layer.total_macs == r.macs  # no loop: once per run


def test_every_entry_reads_real_operands() -> None:
    """Data, weight and bias are distinct operand positions; categories fit the entry's kind."""
    for key, spec in OPS.items():
        positions = [spec.data, spec.weight] + ([spec.bias] if spec.bias is not None else [])
        assert len(set(positions)) == len(positions), key
        if isinstance(spec, ConvOp):
            assert spec.category in (Category.CONV, Category.CONV_TRANSPOSE), key
        else:
            assert isinstance(spec, ContractionOp) and spec.category is Category.MATMUL, key


def test_category_reads_as_its_string() -> None:
    assert Category.CONV_TRANSPOSE == "conv_transpose"
    assert f"{Category.MATMUL}" == str(Category.MATMUL) == "matmul"
    assert "{}".format(*[Category.CONV]) == "conv"  # str.format, as rule messages use it
    assert json.dumps({"c": Category.CONV}) == '{"c": "conv"}'
    assert {"conv": 1}[Category.CONV] == 1


def test_totals_per_category(tmp_path: Path) -> None:
    """Conv 3->4 (3x3, 8x8 -> 6x6), ConvTranspose 4->2 (3x3, 6x6 -> 8x8), MatMul by (8, 5).

    conv: 4*36*3*9 = 3888 MACs, 108 params; conv_transpose: 4*36*2*9 = 2592, 72;
    matmul: output 1x2x8x5 = 80 elements * K 8 = 640, 40. conv_macs keeps its meaning:
    convolutions and transposed convolutions, 3888 + 2592.
    """
    nodes = [
        helper.make_node("Conv", ["x", "W1"], ["a"], name="conv"),
        helper.make_node("ConvTranspose", ["a", "W2"], ["b"], name="up"),
        helper.make_node("MatMul", ["b", "W3"], ["y"], name="mm"),
    ]
    inits = [w("W1", (4, 3, 3, 3)), w("W2", (4, 2, 3, 3)), w("W3", (8, 5))]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", F, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", F, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    t = analyse(path).totals
    assert (t.macs, t.params, t.conv_macs, t.conv_params) == (7120, 220, 6480, 180)
    by = {k: (c.macs, c.flops, c.params, c.layers, c.unknown_layers, c.weight_bytes)
          for k, c in t.by_category.items()}  # fmt: skip
    assert by == {
        "conv": (3888, 2 * 3888, 108, 1, 0, 4 * 108),
        "conv_transpose": (2592, 2 * 2592, 72, 1, 0, 4 * 72),
        "matmul": (640, 2 * 640, 40, 1, 0, 4 * 40),
    }
    assert sum(c.macs for c in t.by_category.values()) == t.macs

    from convaudit import scan
    from convaudit.report.json_report import render

    doc = json.loads(render(scan(str(path))))
    totals = doc["reports"][0]["totals"]
    assert totals["conv_macs"] == 6480
    assert totals["by_category"]["conv_transpose"] == {
        "macs": 2592,
        "flops": 5184,
        "params": 72,
        "layers": 1,
        "unknown_layers": 0,
        "weight_bytes": 288,
    }
