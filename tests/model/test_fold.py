"""The pure-Python folds (model/fold.py) against numpy's (model/evaluate.py) and onnx's reference.

The lite path folds shape arithmetic without numpy; the full path folds it in numpy. Every fold
the pure folder makes must equal numpy's value for value, with the same element type and shape
(a float32 compared bit for bit, -0.0 and NaN included), and decline exactly where numpy
declines. Random small tensors of every op and attribute form it covers, negative axes and
indices, overflow, and the opsets' attribute-versus-input forms; a fold it leaves to numpy
(``NotPure``) is fine, and each op must still fold most of its cases itself.
"""

from __future__ import annotations

import math
import random
import struct
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from convaudit.model import evaluate as evaluate_module
from convaudit.model.evaluate import evaluate
from convaudit.model.fold import NUMPY_FAST, PURE, NotPure, fold_pure
from convaudit.model.foldmath import f32
from convaudit.model.liteproto import LiteNode, LiteTensor
from convaudit.model.values import Value, from_array, np_elem_type
from convaudit.model.walkstate import node_attrs

I64, I32, I8, U8, F32, F64, BOOL = (
    np.int64,
    np.int32,
    np.int8,
    np.uint8,
    np.float32,
    np.float64,
    np.bool_,
)
INTS = (I64, I32, I8, U8)
FLOATS = (F32, F64)


def _lite(op: str, n_inputs: int, attrs: dict[str, Any]) -> LiteNode:
    node = helper.make_node(op, [f"i{k}" for k in range(n_inputs)], ["o"], **attrs)
    data = node.SerializeToString()
    return LiteNode(data, 0, len(data))


def _plain(array: np.ndarray) -> Value:
    """A Value with Python items only: the pure fold must never need the array."""
    return Value(np_elem_type(array.dtype), array.shape, tuple(array.reshape(-1).tolist()))


def _bits(items: Any) -> list[str]:
    """Items compared exactly: type and repr (so -0.0, NaN, True and 1 all differ)."""
    return [f"{type(x).__name__}:{x!r}" for x in items]


def check(op: str, arrays: list[np.ndarray], attrs: dict[str, Any], opset: int = 18) -> str:
    """Fold with both folders and compare; returns "pure", "numpy" or "none" (not folded)."""
    lite = _lite(op, len(arrays), attrs)
    plain = node_attrs(lite)
    want = evaluate(lite, [a.copy() for a in arrays], plain, opset)
    try:
        got = fold_pure(lite, [_plain(a) for a in arrays], plain)
    except NotPure:
        return "numpy"
    if got is None:
        assert want is None, (op, arrays, attrs)
        return "none"
    assert want is not None, (op, arrays, attrs, got)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.elem_type == np_elem_type(w.dtype), (op, arrays, attrs, g, w)
        assert g.shape == w.shape, (op, arrays, attrs, g, w)
        assert _bits(g.items) == _bits(w.reshape(-1).tolist()), (op, arrays, attrs, g, w)
        # the pure result crosses back to numpy intact (the lite path's later numpy folds)
        assert g.array().dtype == w.dtype
        np.testing.assert_array_equal(g.array(), w)
    return "pure"


# -- random inputs ---------------------------------------------------------------------------
SPECIAL_F = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.5, -2.5, math.inf, -math.inf, math.nan, 3e38, 1e-45]


def _ints(r: random.Random, dtype: Any, shape: tuple[int, ...], wide: bool = True) -> np.ndarray:
    info = np.iinfo(dtype)
    picks = []
    for _ in range(math.prod(shape)):
        roll = r.random()
        if wide and roll < 0.15:
            picks.append(r.choice([info.min, info.max, info.min + 1, info.max - 1, 0]))
        elif wide and roll < 0.3:
            picks.append(r.randint(int(info.min), int(info.max)))
        else:
            picks.append(max(int(info.min), min(int(info.max), r.randint(-9, 9))))
    return np.array(picks, dtype=dtype).reshape(shape)


def _floats(r: random.Random, dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
    picks = [
        r.choice(SPECIAL_F) if r.random() < 0.2 else r.uniform(-50, 50)
        for _ in range(math.prod(shape))
    ]
    with np.errstate(over="ignore"):  # 3e38 is inf in float16, as intended
        return np.array(picks, dtype=dtype).reshape(shape)


def _values(r: random.Random, dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
    if dtype is BOOL:
        return np.array([r.random() < 0.5 for _ in range(math.prod(shape))]).reshape(shape)
    if np.dtype(dtype).kind == "f":
        return _floats(r, dtype, shape)
    return _ints(r, dtype, shape)


def _shape(r: random.Random, low: int = 0, high: int = 3) -> tuple[int, ...]:
    return tuple(r.randint(1, 4) for _ in range(r.randint(low, high)))


def _broadcastable(r: random.Random, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape numpy broadcasts with ``shape`` (mostly): dims dropped from the front or set
    to 1; now and then one that does not fit."""
    out = list(shape[r.randint(0, len(shape)) :]) if shape else []
    out = [1 if r.random() < 0.3 else d for d in out]
    if out and r.random() < 0.05:
        out[0] += 1
    if r.random() < 0.2:
        out = [1] * r.randint(0, 2) + out
    return tuple(out)


def _i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=I64)


Gen = Callable[[random.Random], tuple[list[np.ndarray], dict[str, Any], int]]


def _binary(dtypes: tuple[Any, ...]) -> Gen:
    def gen(r: random.Random) -> tuple[list[np.ndarray], dict[str, Any], int]:
        dtype = r.choice(dtypes)
        shape = _shape(r)
        other = _broadcastable(r, shape)
        pair = [_values(r, dtype, shape), _values(r, dtype, other)]
        if r.random() < 0.5:
            pair.reverse()
        if r.random() < 0.05:  # mixed element types: numpy promotes, so numpy folds
            pair[1] = _values(r, r.choice([d for d in INTS if d is not dtype]), pair[1].shape)
        return pair, {}, 18

    return gen


def _unary(dtypes: tuple[Any, ...]) -> Gen:
    return lambda r: ([_values(r, r.choice(dtypes), _shape(r))], {}, 18)


def _variadic(r: random.Random) -> tuple[list[np.ndarray], dict[str, Any], int]:
    dtype = r.choice(INTS)
    shape = _shape(r)
    return [_values(r, dtype, _broadcastable(r, shape)) for _ in range(r.randint(1, 3))], {}, 18


def _mod(r: random.Random) -> tuple[list[np.ndarray], dict[str, Any], int]:
    arrays, _, _ = _binary(INTS)(r)
    return arrays, {"fmod": r.choice([0, 1])}, 18


def _where(r: random.Random) -> tuple[list[np.ndarray], dict[str, Any], int]:
    dtype = r.choice((*INTS, *FLOATS, BOOL))
    shape = _shape(r)
    cond = _values(r, BOOL, _broadcastable(r, shape))
    return [cond, _values(r, dtype, shape), _values(r, dtype, _broadcastable(r, shape))], {}, 18


def _gather(r: random.Random) -> tuple[list[np.ndarray], dict[str, Any], int]:
    data = _values(r, r.choice((I64, F32, BOOL)), _shape(r, 1))
    axis = r.randint(-data.ndim, data.ndim - 1)
    n = data.shape[axis]
    index_shape = _shape(r, 0, 2)
    picks = [
        r.randint(-n - (r.random() < 0.1), n - 1 + (r.random() < 0.1))
        for _ in range(math.prod(index_shape))
    ]
    indices = np.array(picks, dtype=r.choice((I64, I32))).reshape(index_shape)
    return [data, indices], {"axis": axis} if r.random() < 0.8 else {}, 13


def _unsqueeze(r: random.Random) -> tuple[list[np.ndarray], dict[str, Any], int]:
    data = _values(r, I64, _shape(r))
    rank = data.ndim + r.randint(1, 2)
    axes = r.sample(range(-rank, rank), rank - data.ndim)
    if r.random() < 0.5:  # opset 13: the axes are an input
        return [data, _i64(*axes)], {}, 13
    return [data], {"axes": axes}, 11


def _squeeze(r: random.Random) -> tuple[list[np.ndarray], dict[str, Any], int]:
    shape = tuple(r.choice([1, 1, 2, 3]) for _ in range(r.randint(0, 4)))
    data = _values(r, r.choice((I64, F32)), shape)
    ones = [k - len(shape) * r.randint(0, 1) for k, d in enumerate(shape) if d == 1]
    axes = r.sample(ones, r.randint(0, len(ones))) if ones else []
    if r.random() < 0.1 and shape:
        axes.append(r.randrange(len(shape)))  # maybe not a 1: numpy refuses
    if r.random() < 0.3:
        return [data], {}, 13  # every 1 goes
    if r.random() < 0.5 or not axes:
        return [data, _i64(*axes)], {}, 13
    return [data], {"axes": axes}, 11


def _concat(r: random.Random) -> tuple[list[np.ndarray], dict[str, Any], int]:
    dtype = r.choice((I64, F32))
    shape = _shape(r, 1)
    axis = r.randint(-len(shape), len(shape) - 1)
    arrays = []
    for _ in range(r.randint(1, 4)):
        s = list(shape)
        s[axis] = r.randint(0, 3)
        arrays.append(_values(r, dtype, tuple(s)))
    return arrays, {"axis": axis}, 13


CAST_TYPES = (I64, I32, I8, U8, F32, F64, BOOL, np.uint64, np.int16, np.float16)


def _cast(r: random.Random) -> tuple[list[np.ndarray], dict[str, Any], int]:
    src = r.choice(CAST_TYPES[:7])
    to = helper.np_dtype_to_tensor_dtype(np.dtype(r.choice(CAST_TYPES)))
    data = _values(r, src, _shape(r))
    if src in FLOATS and r.random() < 0.5:  # mostly values every integer type holds
        data = np.trunc(np.clip(data, -100, 100)).astype(src) + (0.25 if r.random() < 0.5 else 0)
        data = data.astype(src)
    return [data], {"to": to}, 13


def _reshape(r: random.Random) -> tuple[list[np.ndarray], dict[str, Any], int]:
    data = _values(r, r.choice((I64, F32)), _shape(r, 0, 4))
    dims = list(data.shape)
    r.shuffle(dims)
    target = list(dims)
    if target and r.random() < 0.4:
        target[r.randrange(len(target))] = -1
    if target and r.random() < 0.3:
        k = r.randrange(min(len(target), data.ndim)) if data.ndim else 0
        if data.ndim:
            target[k] = 0  # copies the input's dim (allowzero 0)
    if r.random() < 0.2:
        target = [math.prod(data.shape)]
    if r.random() < 0.05:
        target.append(2)  # a size that does not fit
    attrs = {"allowzero": r.choice([0, 1])} if r.random() < 0.5 else {}
    return [data, _i64(*target)], attrs, 14


BIG = np.iinfo(np.int64).max


def _slice(r: random.Random) -> tuple[list[np.ndarray], dict[str, Any], int]:
    data = _values(r, r.choice((I64, F32, I32)), _shape(r, 1))
    rank = data.ndim
    picked = r.sample(range(rank), r.randint(1, rank))
    axes = [a - rank if r.random() < 0.5 else a for a in picked]  # negative axes too
    bounds = [BIG, -BIG - 1, 0, -1, 1, 2, -2, 5, -5]
    starts = [r.choice(bounds) if r.random() < 0.3 else r.randint(-5, 5) for _ in axes]
    ends = [r.choice(bounds) if r.random() < 0.3 else r.randint(-5, 5) for _ in axes]
    steps = [r.choice([1, 1, 2, -1, -2, 3]) for _ in axes]
    if r.random() < 0.2:  # opset 9: attributes, step 1, the axes maybe left to their default
        attrs: dict[str, Any] = {"starts": starts, "ends": ends}
        if r.random() < 0.7:
            attrs["axes"] = picked
        return [data], attrs, 9
    ins = [data, _i64(*starts), _i64(*ends)]
    roll = r.random()
    if roll < 0.8:
        ins.append(_i64(*axes))
        if roll < 0.6:
            ins.append(_i64(*steps))
    return ins, {}, 13


def _transpose(r: random.Random) -> tuple[list[np.ndarray], dict[str, Any], int]:
    data = _values(r, r.choice((I64, F32, BOOL)), _shape(r, 0, 4))
    if r.random() < 0.3 or not data.ndim:
        return [data], {}, 13
    perm = list(range(data.ndim))
    r.shuffle(perm)
    return [data], {"perm": perm}, 13


def _range(r: random.Random) -> tuple[list[np.ndarray], dict[str, Any], int]:
    dtype = r.choice((I64, I32, F32, F64))
    if dtype in FLOATS:
        start, delta = r.uniform(-20, 20), r.choice([-1, 1]) * r.uniform(0.05, 4)
        limit = start + delta * r.uniform(-2, 60)
        if r.random() < 0.3:
            start, limit, delta = float(r.randint(-9, 9)), float(r.randint(-9, 30)), 0.5
    else:
        start, delta = r.randint(-20, 20), r.choice([-3, -2, -1, 1, 2, 3, 7, 0])
        limit = start + delta * r.randint(-2, 40) + r.randint(-1, 1)
    return [np.array(v, dtype=dtype) for v in (start, limit, delta)], {}, 11


def _expand(r: random.Random) -> tuple[list[np.ndarray], dict[str, Any], int]:
    shape = _shape(r)
    data = _values(r, r.choice((I64, F32, BOOL)), _broadcastable(r, shape))
    target = list(shape)
    if target and r.random() < 0.3:
        target[r.randrange(len(target))] = 1  # a 1 in the target keeps the input's dim
    return [data, _i64(*target)], {}, 13


def _constant_of_shape(r: random.Random) -> tuple[list[np.ndarray], dict[str, Any], int]:
    shape = _i64(*_shape(r, 0, 3))
    if r.random() < 0.3:
        return [shape], {}, 9
    fill = _values(r, r.choice((I64, I32, F32, BOOL, U8)), (1,))
    return [shape], {"value": numpy_helper.from_array(fill, "v")}, 9


def _nonzero(r: random.Random) -> tuple[list[np.ndarray], dict[str, Any], int]:
    data = _values(r, r.choice((I64, I32, F32, BOOL)), _shape(r, 0, 3))
    if data.dtype != BOOL and r.random() < 0.7:
        data = data if r.random() < 0.5 else np.zeros_like(data)  # all zeros, now and then
    return [data], {}, 9


GENERATORS: dict[str, Gen] = {
    "Identity": _unary((*INTS, *FLOATS, BOOL)),
    "Add": _binary((*INTS, *FLOATS)),
    "Sub": _binary((*INTS, *FLOATS)),
    "Mul": _binary((*INTS, *FLOATS)),
    "Div": _binary((*INTS, *FLOATS)),
    "Mod": _mod,
    "Equal": _binary((*INTS, *FLOATS, BOOL)),
    "Less": _binary((*INTS, *FLOATS)),
    "LessOrEqual": _binary((*INTS, *FLOATS)),
    "Greater": _binary((*INTS, *FLOATS)),
    "GreaterOrEqual": _binary((*INTS, *FLOATS)),
    "Not": _unary((BOOL,)),
    "And": _binary((BOOL,)),
    "Or": _binary((BOOL,)),
    "Min": _variadic,
    "Max": _variadic,
    "Neg": _unary((*INTS, *FLOATS)),
    "Abs": _unary((*INTS, *FLOATS)),
    "Floor": _unary(FLOATS),
    "Ceil": _unary(FLOATS),
    "Gather": _gather,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": _concat,
    "Cast": _cast,
    "Reshape": _reshape,
    "Slice": _slice,
    "Transpose": _transpose,
    "Where": _where,
    "Range": _range,
    "Expand": _expand,
    "ConstantOfShape": _constant_of_shape,
    "NonZero": _nonzero,
}


def test_every_pure_fold_has_a_generator() -> None:
    assert set(GENERATORS) == set(PURE)
    assert set(PURE) - {"ConstantOfShape"} <= NUMPY_FAST


def test_the_numpy_fast_table_is_listed_without_numpy() -> None:
    assert set(evaluate_module.FAST) == NUMPY_FAST


@pytest.mark.parametrize("op", sorted(GENERATORS))
def test_pure_fold_equals_numpy_on_random_cases(op: str) -> None:
    r = random.Random(f"fold-{op}")
    outcomes: Counter[str] = Counter()
    for _ in range(300):
        arrays, attrs, opset = GENERATORS[op](r)
        outcomes[check(op, arrays, attrs, opset)] += 1
    # the pure folder must do most of the work itself, or the lite path imports numpy
    assert outcomes["pure"] >= 0.5 * sum(outcomes.values()), outcomes


# -- hand-picked cases, also against onnx's reference implementation --------------------------
def _reference(op: str, arrays: list[np.ndarray], attrs: dict[str, Any], opset: int) -> Any:
    names = [f"i{k}" for k in range(len(arrays))]
    graph = helper.make_graph(
        [helper.make_node(op, names, ["o"], **attrs)],
        "g",
        [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
            for n, a in zip(names, arrays, strict=True)
        ],
        [helper.make_tensor_value_info("o", 0, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    with np.errstate(over="ignore"):  # float32 overflow to inf is one of the cases
        (out,) = ReferenceEvaluator(model).run(None, dict(zip(names, arrays, strict=True)))
    return np.asarray(out)


HAND: list[tuple[str, list[np.ndarray], dict[str, Any], int]] = [
    # exporters' shape arithmetic: Shape -> Gather -> Unsqueeze -> Concat -> Reshape
    ("Gather", [_i64(1, 3, 224, 224), np.array(-1, I64)], {"axis": 0}, 13),
    ("Unsqueeze", [np.array(224, I64), _i64(0)], {}, 13),
    ("Unsqueeze", [np.array(224, I64)], {"axes": [-1]}, 11),
    ("Concat", [_i64(1), _i64(-1), _i64(224)], {"axis": 0}, 13),
    ("Reshape", [_i64(1, 3, 4, 5), _i64(0, -1)], {}, 14),
    ("Slice", [_i64(1, 3, 224, 224), _i64(-2), _i64(BIG), _i64(0)], {}, 13),
    ("Slice", [np.arange(6, dtype=I64), _i64(BIG), _i64(-BIG - 1), _i64(0), _i64(-1)], {}, 13),
    ("Slice", [np.arange(10, dtype=I64)], {"starts": [-4], "ends": [BIG], "axes": [0]}, 9),
    ("Squeeze", [np.ones((1, 3, 1), I64), _i64(-1)], {}, 13),
    ("Squeeze", [np.ones((1, 3, 1), I64)], {"axes": [0]}, 11),
    ("Div", [_i64(7, -7, 7, -7), _i64(2, 2, -2, -2)], {}, 13),
    ("Div", [_i64(2**62 + 1), _i64(3)], {}, 13),  # exact beyond float precision
    ("Mul", [_i64(2**62), _i64(4)], {}, 13),  # wraps as int64 does
    ("Mod", [_i64(7, -7, 7, -7), _i64(3, 3, -3, -3)], {}, 13),
    ("Mod", [_i64(7, -7, 7, -7), _i64(3, 3, -3, -3)], {"fmod": 1}, 13),
    ("Cast", [_i64(300, -1, 5)], {"to": onnx.TensorProto.UINT8}, 13),
    ("Cast", [np.array([2.7, -2.7], F32)], {"to": onnx.TensorProto.INT64}, 13),
    ("Cast", [_i64(0, 3)], {"to": onnx.TensorProto.BOOL}, 13),
    ("Cast", [_i64(16777217)], {"to": onnx.TensorProto.DOUBLE}, 13),
    ("Range", [np.array(0, I64), np.array(7, I64), np.array(2, I64)], {}, 11),
    ("Range", [np.array(5, I64), np.array(0, I64), np.array(-2, I64)], {}, 11),
    ("Range", [np.array(v, F32) for v in (0.5, 3.0, 0.5)], {}, 11),
    ("Range", [np.array(v, F32) for v in (0.3, 5.1, 0.7)], {}, 11),
    ("Add", [np.array([0.1, 1e38], F32), np.array([0.2, 3e38], F32)], {}, 13),  # overflow: inf
    ("Mul", [np.array([0.1, 3.0], F32), np.array([0.7, 1 / 3], F32)], {}, 13),
    ("Div", [np.array([1.0, 2.0], F32), np.array([3.0, 7.0], F32)], {}, 13),
    ("Ceil", [np.array([-0.5, 0.5, -0.0], F32)], {}, 13),
    ("Floor", [np.array([-0.5, 0.5, -0.0], F64)], {}, 13),
    ("Expand", [np.array([[1], [2]], I64), _i64(1, 3)], {}, 13),
    ("Expand", [np.array([1, 2, 3], F32), _i64(2, 1, 1)], {}, 13),
    ("Transpose", [np.arange(6, dtype=I64).reshape(1, 2, 3)], {"perm": [2, 0, 1]}, 13),
    ("Where", [np.array([True, False]), _i64(1, 2), np.array([[9], [8]], I64)], {}, 13),
    ("Equal", [np.array([math.nan, 1.0], F32), np.array([math.nan, 1.0], F32)], {}, 13),
    ("Not", [np.array([True, False])], {}, 13),
    ("Min", [_i64(4, 1), _i64(2), _i64(3, 0)], {}, 13),
    ("ConstantOfShape", [_i64(2, 3)], {"value": numpy_helper.from_array(_i64(7), "v")}, 13),
    ("ConstantOfShape", [_i64(2, 0)], {}, 13),
    ("NonZero", [np.array([[1, 0, 2], [0, 0, 3]], I64)], {}, 13),
    ("NonZero", [np.array([0.0, math.nan, -0.0, 2.5], F32)], {}, 13),
    ("NonZero", [np.zeros((2, 2), I64)], {}, 13),
]


@pytest.mark.parametrize(("op", "arrays", "attrs", "opset"), HAND, ids=[c[0] for c in HAND])
def test_pure_fold_equals_the_reference_evaluator(
    op: str, arrays: list[np.ndarray], attrs: dict[str, Any], opset: int
) -> None:
    assert check(op, arrays, attrs, opset) == "pure"
    lite = _lite(op, len(arrays), attrs)
    got = fold_pure(lite, [_plain(a) for a in arrays], node_attrs(lite))
    assert got is not None
    want = _reference(op, arrays, attrs, opset)
    assert got[0].shape == want.shape
    assert got[0].elem_type == np_elem_type(want.dtype)
    np.testing.assert_array_equal(got[0].array(), want)


@pytest.mark.parametrize(
    ("op", "arrays", "attrs"),
    [
        ("Div", [_i64(7), _i64(0)], {}),  # numpy declines: division by zero
        ("Mod", [_i64(7), _i64(0)], {}),
        ("Div", [_i64(-(2**63)), _i64(-3)], {}),  # numpy's abs() of the minimum
        ("Add", [np.array([1.0], np.float16), np.array([2.0], np.float16)], {}),
        ("Min", [np.array([1.0, math.nan], F32), np.array([2.0, 0.0], F32)], {}),
        ("Cast", [np.array([math.nan], F32)], {"to": onnx.TensorProto.INT64}),
        ("Cast", [_i64(2**25 + 1)], {"to": onnx.TensorProto.FLOAT}),  # two roundings
        ("Gather", [_i64(1, 2), _i64(2)], {}),  # out of range: numpy raises
        ("Slice", [_i64(1, 2), _i64(0), _i64(2), _i64(0), _i64(0)], {}),  # step 0
        ("Reshape", [_i64(1, 2, 3), _i64(4)], {}),
        ("Add", [_i64(1), np.array([1], I32)], {}),  # mixed types: numpy promotes
    ],
)
def test_what_the_pure_folder_leaves_to_numpy(
    op: str, arrays: list[np.ndarray], attrs: dict[str, Any]
) -> None:
    assert check(op, arrays, attrs) == "numpy"


def test_float32_range_fills_as_numpy_does() -> None:
    # numpy's arange: the length and the second element in float32, the rest in double from
    # (second - first); onnx's reference accumulates otherwise, and the numpy fold is the one
    # the lite path must equal
    arrays = [np.array(v, F32) for v in (-73.12715148925781, -359.6387939453125, -2.55814)]
    assert check("Range", arrays, {}, 11) == "pure"


def test_weight_sized_results_are_not_folded_by_either() -> None:
    assert check("ConstantOfShape", [_i64(512, 512)], {}) == "none"
    assert check("Expand", [np.ones(1, F32), _i64(300, 300)], {}) == "none"
    assert check("Range", [np.array(v, I64) for v in (0, 10**6, 1)], {}) == "none"


def test_float32_rounding_is_one_rounding_of_the_exact_result() -> None:
    # 0.1f + 0.2f in float32 is 0.3000000119..., not the double 0.30000000000000004 rounded
    a, b = f32(0.1), f32(0.2)
    assert f32(a + b) == float(np.float32(a) + np.float32(b))
    assert f32(1e39) == math.inf and f32(-1e39) == -math.inf
    assert struct.pack("<f", f32(1.0000001)) == np.float32(1.0000001).tobytes()


# -- tensors read from the file ------------------------------------------------------------
ENCODED = [I64, I32, np.int16, I8, U8, np.uint16, np.uint32, np.uint64, F32, F64, np.float16]


@pytest.mark.parametrize("dtype", [*ENCODED, BOOL], ids=lambda d: np.dtype(d).name)
def test_lite_tensor_values_equal_numpy_helpers(dtype: Any) -> None:
    r = random.Random(f"tensor-{np.dtype(dtype).name}")
    for _ in range(20):
        array = _values(r, dtype, _shape(r, 0, 3))
        for raw in (True, False):
            t = helper.make_tensor(
                "t",
                helper.np_dtype_to_tensor_dtype(array.dtype),
                array.shape,
                array.tobytes() if raw else array.reshape(-1).tolist(),
                raw=raw,
            )
            data = t.SerializeToString()
            value = LiteTensor(data, 0, len(data)).value()
            want = numpy_helper.to_array(t)
            assert value.elem_type == np_elem_type(want.dtype)
            assert value.shape == want.shape
            assert _bits(value.items) == _bits(want.reshape(-1).tolist())


def test_a_bool_byte_other_than_0_or_1_is_read_by_numpy() -> None:
    t = onnx.TensorProto(name="t", data_type=onnx.TensorProto.BOOL, dims=[3], raw_data=b"\0\1\2")
    data = t.SerializeToString()
    value = LiteTensor(data, 0, len(data)).value()
    assert value._array is not None  # went through to_array
    assert value.items == tuple(numpy_helper.to_array(t).tolist())


def test_from_array_keeps_the_array_and_reads_items_lazily() -> None:
    array = np.arange(4, dtype=I32).reshape(2, 2)
    value = from_array(array)
    assert value.array() is array
    assert (value.elem_type, value.shape, value.items) == (6, (2, 2), (0, 1, 2, 3))
