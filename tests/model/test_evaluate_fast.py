"""Numpy fast paths for the shape arithmetic real exporters write, against onnx's reference.

PyTorch's dynamo exporter pads with Mod, paddle2onnx slices shapes, YOLO anchors use Range and
Expand: folding each through a ReferenceEvaluator costs milliseconds per node, so these ops
fold in numpy. The oracle is onnx's own reference implementation of each op.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import convaudit.model.evaluate as evaluate_module
from convaudit.model.evaluate import FAST, evaluate

I64 = np.int64
BIG = np.iinfo(np.int64).max


def ints(*values: int) -> np.ndarray:
    return np.array(values, I64)


def _node(op: str, n_inputs: int, **attrs: Any) -> Any:
    return helper.make_node(op, [f"i{k}" for k in range(n_inputs)], ["o"], **attrs)


def _reference(op: str, inputs: list[np.ndarray], opset: int, **attrs: Any) -> np.ndarray:
    names = [f"i{k}" for k in range(len(inputs))]
    graph = helper.make_graph(
        [_node(op, len(inputs), **attrs)],
        "g",
        [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
            for n, v in zip(names, inputs, strict=True)
        ],
        [helper.make_tensor_value_info("o", 0, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    (out,) = ReferenceEvaluator(model).run(None, dict(zip(names, inputs, strict=True)))
    return np.asarray(out)


CASES: list[tuple[str, list[np.ndarray], dict[str, Any]]] = [
    ("Reshape", [np.arange(24, dtype=I64).reshape(2, 3, 4), np.array([0, -1], I64)], {}),
    ("Reshape", [np.arange(6, dtype=I64).reshape(3, 2), ints(0, 2)], {"allowzero": 0}),
    ("Reshape", [np.arange(0, dtype=I64), np.array([0, 3], I64)], {"allowzero": 1}),
    ("Slice", [np.arange(10, dtype=I64), np.array([1], I64), np.array([BIG], I64)], {}),
    (
        "Slice",  # a reversal: start INT64_MAX, end INT64_MIN, step -1
        [np.arange(6, dtype=I64), ints(BIG), ints(-BIG - 1), ints(0), ints(-1)],
        {},
    ),
    (
        "Slice",  # negative axis and a stride of 2 on a shape tensor's tail
        [np.arange(12, dtype=I64).reshape(3, 4), ints(-3), ints(4), ints(-1), ints(2)],
        {},
    ),
    ("Range", [np.array(0, I64), np.array(7, I64), np.array(2, I64)], {}),
    ("Range", [np.array(5, I64), np.array(0, I64), np.array(-2, I64)], {}),
    (
        "Range",
        [np.array(0.5, np.float32), np.array(3.0, np.float32), np.array(0.5, np.float32)],
        {},
    ),
    ("Expand", [np.array([[1], [2]], I64), np.array([1, 3], I64)], {}),
    ("Expand", [np.array([1, 2, 3], np.float32), np.array([2, 1, 1], I64)], {}),
    ("Transpose", [np.arange(6, dtype=I64).reshape(1, 2, 3)], {"perm": [2, 0, 1]}),
    ("Transpose", [np.arange(6, dtype=I64).reshape(2, 3)], {}),
    ("Mod", [np.array([7, -7, 7, -7], I64), np.array([3, 3, -3, -3], I64)], {}),
    ("Mod", [np.array([7, -7, 7, -7], I64), np.array([3, 3, -3, -3], I64)], {"fmod": 1}),
    ("Mod", [np.array([5.5, -5.5], np.float32), np.array([2.0, 2.0], np.float32)], {"fmod": 1}),
    ("Not", [np.array([True, False])], {}),
    ("And", [np.array([True, True, False]), np.array([True, False, False])], {}),
    ("Or", [np.array([True, True, False]), np.array([True, False, False])], {}),
    ("Less", [np.array([1, 5], I64), np.array([3, 3], I64)], {}),
    ("LessOrEqual", [np.array([1, 3], I64), np.array([3, 3], I64)], {}),
    ("Greater", [np.array([1, 5], I64), np.array([3, 3], I64)], {}),
    ("GreaterOrEqual", [np.array([1, 3], I64), np.array([3, 3], I64)], {}),
    (
        "Where",
        [np.array([True, False]), np.array([1, 2], I64), np.array([[9], [8]], I64)],
        {},
    ),
    ("Min", [np.array([4, 1], I64), np.array([2], I64), np.array([3, 0], I64)], {}),
    ("Max", [np.array([4, 1], I64), np.array([2], I64), np.array([3, 0], I64)], {}),
    ("Abs", [np.array([-3, 0, 2], I64)], {}),
    ("NonZero", [np.array([[1, 0, 2], [0, 0, 3]], I64)], {}),
    ("NonZero", [np.ones(5, np.float32)], {}),
    ("NonZero", [np.zeros((2, 2), I64)], {}),
]


@pytest.mark.parametrize(("op", "inputs", "attrs"), CASES)
def test_fast_fold_equals_the_reference_evaluator(
    op: str, inputs: list[np.ndarray], attrs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert op in FAST

    def no_reference(*args: Any) -> None:
        raise AssertionError("the fast path should have folded this")

    monkeypatch.setattr(evaluate_module, "_reference", no_reference)
    got = evaluate(_node(op, len(inputs), **attrs), inputs, attrs, 18)
    want = _reference(op, inputs, 18, **attrs)
    assert got is not None
    assert got[0].dtype == want.dtype
    assert got[0].shape == want.shape
    np.testing.assert_array_equal(got[0], want)


@pytest.mark.parametrize(
    "value", [None, numpy_helper.from_array(np.array([7], I64), "v")], ids=["default", "int64"]
)
def test_constant_of_shape_reads_its_tensor_attribute(
    value: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(evaluate_module, "_reference", None)  # never called
    attrs = {} if value is None else {"value": value}
    shape = np.array([2, 3], I64)
    got = evaluate(_node("ConstantOfShape", 1, **attrs), [shape], {}, 18)
    want = _reference("ConstantOfShape", [shape], 18, **attrs)
    assert got is not None
    assert got[0].dtype == want.dtype
    np.testing.assert_array_equal(got[0], want)


def test_opset9_slice_reads_attributes() -> None:
    data = np.arange(10, dtype=I64)
    attrs = {"starts": [-4], "ends": [BIG], "axes": [0]}
    got = evaluate(_node("Slice", 1, **attrs), [data], attrs, 9)
    assert got is not None
    np.testing.assert_array_equal(got[0], _reference("Slice", [data], 9, **attrs))


@pytest.mark.parametrize(
    ("op", "inputs", "attrs"),
    [
        ("Mod", [np.array([7], I64), np.array([0], I64)], {}),
        ("Slice", [np.arange(4, dtype=I64)] + [np.array([v], I64) for v in (0, 4, 0, 0)], {}),
    ],
)
def test_invalid_folds_stay_unknown(op: str, inputs: list[np.ndarray], attrs: dict) -> None:
    assert evaluate(_node(op, len(inputs), **attrs), inputs, attrs, 18) is None
