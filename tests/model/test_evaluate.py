"""Constant folding: the fast numpy paths against onnx's reference evaluator, and its limits."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from convaudit.model.evaluate import FAST, evaluate
from convaudit.model.tensors import MAX_VALUE_ELEMENTS

RNG = np.random.default_rng(3)


def reference(op: str, inputs: list[np.ndarray], **attrs: Any) -> list[np.ndarray]:
    """What onnx's own reference implementation says (an oracle independent of FAST)."""
    names = [f"i{k}" for k in range(len(inputs))]
    node = helper.make_node(op, names, ["o"], **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
            for n, v in zip(names, inputs, strict=True)
        ],
        [helper.make_tensor_value_info("o", 0, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    feeds = dict(zip(names, inputs, strict=True))
    return [np.asarray(r) for r in ReferenceEvaluator(model).run(None, feeds)]


def fold(op: str, inputs: list[np.ndarray], **attrs: Any) -> list[np.ndarray] | None:
    names = [f"i{k}" for k in range(len(inputs))]
    node = helper.make_node(op, names, ["o"], **attrs)
    plain = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return evaluate(node, inputs, plain, 17)


SIGNED = [
    np.array([7, -7, 7, -7, 0, 2**62 + 1, -(2**62) - 3], np.int64),
    np.array([2, 2, -2, -2, 5, 1, 2], np.int64),
]


@pytest.mark.parametrize(
    ("op", "inputs", "attrs"),
    [
        ("Div", SIGNED, {}),
        ("Add", SIGNED, {}),
        ("Sub", SIGNED, {}),
        ("Mul", [SIGNED[0][:5], SIGNED[1][:5]], {}),
        ("Div", [np.array([7.0, -1.5], np.float32), np.array([2.0, 4.0], np.float32)], {}),
        ("Gather", [np.arange(4, dtype=np.int64) * 3, np.array([-1, 0], np.int64)], {"axis": 0}),
        ("Unsqueeze", [np.array([5, 6], np.int64), np.array([0, -1], np.int64)], {}),
        ("Squeeze", [np.ones((1, 3, 1), np.int64), np.array([-1], np.int64)], {}),
        ("Concat", [np.array([1], np.int64), np.array([2, 3], np.int64)], {"axis": -1}),
        ("Cast", [np.array([2.7, -2.7], np.float32)], {"to": 7}),
        ("Equal", [np.array([1, 2], np.int64), np.array([1, 3], np.int64)], {}),
        ("Floor", [np.array([-1.5, 1.5], np.float32)], {}),
        ("Ceil", [np.array([-1.5, 1.5], np.float32)], {}),
        ("Neg", [np.array([-1, 4], np.int64)], {}),
    ],
)
def test_fast_paths_agree_with_the_reference_evaluator(
    op: str, inputs: list[np.ndarray], attrs: dict[str, Any]
) -> None:
    assert op in FAST
    got = fold(op, inputs, **attrs)
    assert got is not None
    (want,) = reference(op, inputs, **attrs)
    assert got[0].dtype == want.dtype
    np.testing.assert_array_equal(got[0], want)


def test_integer_division_is_exact_beyond_float_precision() -> None:
    got = fold("Div", [np.array([2**62 + 1], np.int64), np.array([1], np.int64)])
    assert got is not None and int(got[0][0]) == 2**62 + 1


def test_division_by_zero_is_not_folded_and_prints_nothing() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning would fail the test
        assert fold("Div", [np.array([7], np.int64), np.array([0], np.int64)]) is None
        out = fold("Div", [np.array([1.0], np.float32), np.array([0.0], np.float32)])
        assert out is not None and np.isinf(out[0][0])


@pytest.mark.parametrize(
    ("op", "inputs"),
    [
        ("ConstantOfShape", [np.array([4096, 4096], np.int64)]),
        ("Expand", [np.ones((1, 1), np.float32), np.array([1024, 1024], np.int64)]),
        ("Tile", [np.ones((256, 256), np.float32), np.array([2, 2], np.int64)]),
        ("Range", [np.array(0, np.int64), np.array(10**9, np.int64), np.array(1, np.int64)]),
    ],
)
def test_weight_sized_results_are_not_folded(op: str, inputs: list[np.ndarray]) -> None:
    assert fold(op, inputs) is None


def test_small_growing_ops_still_fold() -> None:
    out = fold("ConstantOfShape", [np.array([2, 3], np.int64)])
    assert out is not None and out[0].shape == (2, 3)
    out = fold("Range", [np.array(0, np.int64), np.array(6, np.int64), np.array(2, np.int64)])
    assert out is not None and out[0].tolist() == [0, 2, 4]
    assert MAX_VALUE_ELEMENTS >= 6
