"""The lite path's shape rules (model/shaperules.py) against ONNX's own inference as the oracle:
on thousands of random nodes of every op a rule covers (valid and invalid shapes, attributes and
types, at several opsets), whenever a rule answers, its answer must be onnx's.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper

from convaudit.model import schemas
from convaudit.model.infer import infer_outputs
from convaudit.model.lite import types_ok
from convaudit.model.liteproto import LiteNode
from convaudit.model.shaperules import RULES, infer
from convaudit.model.tensors import TensorInfo
from convaudit.model.values import from_array
from convaudit.model.walkstate import node_attrs

TABLE = schemas.SchemaTable(schemas.build())
F, D, H, I64, I32, B, U8 = (
    TensorProto.FLOAT,
    TensorProto.DOUBLE,
    TensorProto.FLOAT16,
    TensorProto.INT64,
    TensorProto.INT32,
    TensorProto.BOOL,
    TensorProto.UINT8,
)
Input = tuple[int, tuple[int, ...], Any]  # elem type, shape, constant value or None
Case = tuple[list[Input | None], dict[str, Any], int]  # inputs (None: omitted), attrs, outputs


def _run(
    op: str, opset: int, case: Case
) -> tuple[list[TensorInfo] | None, list[TensorInfo] | None]:
    """(rule's answer, onnx's answer) for one node."""
    inputs, attrs, n_out = case
    names = [f"i{k}" if x is not None else "" for k, x in enumerate(inputs)]
    node = helper.make_node(op, names, [f"o{k}" for k in range(n_out)], **attrs)
    data = node.SerializeToString()
    lite = LiteNode(data, 0, len(data))
    ins = [
        TensorInfo()
        if x is None
        else TensorInfo(
            elem_type=x[0],
            shape=x[1],
            value=None
            if x[2] is None
            else from_array(np.asarray(x[2], dtype=_np(x[0])).reshape(x[1])),
        )
        for x in inputs
    ]
    schema = TABLE.get(op, "", opset)
    assert schema is not None
    got = None
    if not schema.deprecated and types_ok(TABLE, schema, lite, ins):
        got = infer(lite, schema.since_version, node_attrs(lite), ins)
    want = infer_outputs(node, ins, {"": opset}, [])
    return got, want


def _np(elem: int) -> Any:
    return helper.tensor_dtype_to_np_dtype(elem)


def _shape(r: random.Random, rank: int, low: int = 1, high: int = 6) -> tuple[int, ...]:
    return tuple(r.randint(low, high) for _ in range(rank))


def _float(r: random.Random) -> int:
    return r.choice([F, F, F, D, H, I64])  # now and then a type the op refuses


def _conv(r: random.Random, opset: int) -> Case:
    n_sp = r.randint(1, 3)
    group = r.choice([1, 1, 2])
    cin, cout = r.randint(1, 3) * group, r.randint(1, 3) * group
    kernel = _shape(r, n_sp, 1, 3)
    x = (r.randint(1, 2), cin if r.random() > 0.1 else cin + 1, *_shape(r, n_sp, 1, 12))
    w = (cout, cin // group, *kernel)
    attrs: dict[str, Any] = {}
    if r.random() < 0.5:
        attrs["strides"] = list(_shape(r, n_sp, 1, 3))
    if r.random() < 0.3:
        attrs["dilations"] = list(_shape(r, n_sp, 1, 2))
    if r.random() < 0.5:
        attrs["pads"] = list(_shape(r, 2 * n_sp, 0, 2))
    if r.random() < 0.4:
        attrs["auto_pad"] = r.choice(["SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET"])
        if attrs["auto_pad"] != "NOTSET":
            attrs.pop("pads", None)
    if r.random() < 0.3:
        attrs["kernel_shape"] = list(kernel)
    if group > 1 or r.random() < 0.1:
        attrs["group"] = group
    elem = _float(r)
    ins: list[Input | None] = [(elem, x, None), (elem, w, None)]
    if r.random() < 0.5:
        ins.append((elem, (cout,), None))
    return ins, attrs, 1


def _conv_transpose(r: random.Random, opset: int) -> Case:
    n_sp = r.randint(1, 2)
    group = r.choice([1, 2])
    cin, cout = r.randint(1, 3) * group, r.randint(1, 3)
    kernel = _shape(r, n_sp, 1, 3)
    strides = _shape(r, n_sp, 1, 3)
    attrs: dict[str, Any] = {"strides": list(strides)}
    if r.random() < 0.5:
        attrs["pads"] = list(_shape(r, 2 * n_sp, 0, 1))
    if r.random() < 0.3:
        attrs["output_padding"] = [r.randint(0, s - 1) for s in strides]
    if r.random() < 0.3:
        attrs["dilations"] = list(_shape(r, n_sp, 1, 2))
    if group > 1:
        attrs["group"] = group
    elem = _float(r)
    x = (1, cin, *_shape(r, n_sp, 1, 8))
    return [(elem, x, None), (elem, (cin, cout, *kernel), None)], attrs, 1


def _pool(r: random.Random, opset: int) -> Case:
    n_sp = r.randint(1, 3)
    kernel = _shape(r, n_sp, 1, 3)
    attrs: dict[str, Any] = {"kernel_shape": list(kernel)}
    if r.random() < 0.5:
        attrs["strides"] = list(_shape(r, n_sp, 1, 3))
    if r.random() < 0.5:
        attrs["pads"] = [r.randint(0, k - 1) for k in kernel * 2]
    if r.random() < 0.3:
        attrs["ceil_mode"] = r.randint(0, 1)
    if r.random() < 0.3:
        attrs["auto_pad"] = r.choice(["SAME_UPPER", "VALID"])
        attrs.pop("pads", None)
    if r.random() < 0.2:
        attrs["dilations"] = list(_shape(r, n_sp, 1, 2))
    return [(_float(r), (2, 3, *_shape(r, n_sp, 1, 12)), None)], attrs, 1


def _global_pool(r: random.Random, opset: int) -> Case:
    return [(_float(r), _shape(r, r.randint(1, 5)), None)], {}, 1


def _batch_norm(r: random.Random, opset: int) -> Case:
    x = _shape(r, r.randint(2, 4))
    c = x[1] if r.random() > 0.1 else x[1] + 1
    elem = _float(r)
    return [(elem, x, None)] + [(elem, (c,), None)] * 4, {}, 1


def _unary(r: random.Random, opset: int) -> Case:
    return [(r.choice([F, D, I64, B]), _shape(r, r.randint(0, 4)), None)], {}, 1


def _broadcasting(n_in: int, elem: int = 0) -> Callable[[random.Random, int], Case]:
    def gen(r: random.Random, opset: int) -> Case:
        base = _shape(r, r.randint(0, 4))
        elem_type = elem or r.choice([F, I64, I32, B, D])
        ins: list[Input | None] = []
        for _ in range(n_in):
            rank = r.randint(0, len(base))
            shape = tuple(
                d if r.random() < 0.7 else r.choice([1, d + 1]) for d in base[len(base) - rank :]
            )
            ins.append((elem_type, shape, None))
        if r.random() < 0.1:
            ins[-1] = (F if elem_type != F else I64, ins[-1][1], None)  # type: ignore[index]
        return ins, {}, 1

    return gen


def _where(r: random.Random, opset: int) -> Case:
    ins, attrs, n = _broadcasting(3)(r, opset)
    first = ins[0]
    assert first is not None
    ins[0] = (B, first[1], None)
    return ins, attrs, n


def _cast(r: random.Random, opset: int) -> Case:
    return (
        [(r.choice([F, I64, B]), _shape(r, r.randint(0, 3)), None)],
        {"to": r.choice([F, I64, I32, B, H, U8, TensorProto.STRING])},
        1,
    )


def _softmax(r: random.Random, opset: int) -> Case:
    x = _shape(r, r.randint(1, 4))
    attrs = {"axis": r.randint(-len(x) - 1, len(x))} if r.random() < 0.7 else {}
    return [(_float(r), x, None)], attrs, 1


def _clip(r: random.Random, opset: int) -> Case:
    elem = _float(r)
    ins: list[Input | None] = [(elem, _shape(r, r.randint(0, 4)), None)]
    if opset >= 11:
        ins += [(elem, (), None), (elem, (), None)][: r.randint(0, 2)]
    return ins, {}, 1


def _concat(r: random.Random, opset: int) -> Case:
    base = _shape(r, r.randint(1, 4))
    axis = r.randrange(len(base))
    ins: list[Input | None] = []
    for _ in range(r.randint(1, 3)):
        s = list(base)
        s[axis] = r.randint(0, 5)
        if r.random() < 0.05:
            s[(axis + 1) % len(s)] += 1
        ins.append((F, tuple(s), None))
    return ins, {"axis": axis - (len(base) if r.random() < 0.3 else 0)}, 1


def _reshape(r: random.Random, opset: int) -> Case:
    x = _shape(r, r.randint(1, 4))
    target = list(x)
    r.shuffle(target)
    if r.random() < 0.5:
        target = [int(np.prod(x))]
    for _ in range(r.randint(0, 2)):
        target[r.randrange(len(target))] = r.choice([0, -1, 1, 2])
    attrs = {"allowzero": 1} if opset >= 14 and r.random() < 0.2 else {}
    return [(F, x, None), (I64, (len(target),), target)], attrs, 1


def _flatten(r: random.Random, opset: int) -> Case:
    x = _shape(r, r.randint(1, 4))
    return [(F, x, None)], {"axis": r.randint(-len(x), len(x))}, 1


def _transpose(r: random.Random, opset: int) -> Case:
    x = _shape(r, r.randint(1, 4))
    perm = list(range(len(x)))
    r.shuffle(perm)
    return [(F, x, None)], ({"perm": perm} if r.random() < 0.8 else {}), 1


def _axes_case(r: random.Random, opset: int, x: tuple[int, ...], axes: list[int]) -> Case:
    if opset >= 13:
        return [(F, x, None), (I64, (len(axes),), axes)], {}, 1
    return [(F, x, None)], {"axes": axes}, 1


def _squeeze(r: random.Random, opset: int) -> Case:
    x = tuple(r.choice([1, 1, 3]) for _ in range(r.randint(1, 4)))
    if r.random() < 0.2:
        return [(F, x, None)], {}, 1
    axes = r.sample(range(-len(x), len(x)), r.randint(1, len(x)))
    return _axes_case(r, opset, x, axes)


def _unsqueeze(r: random.Random, opset: int) -> Case:
    x = _shape(r, r.randint(0, 3))
    k = r.randint(1, 2)
    axes = [r.randint(-len(x) - k, len(x) + k - 1) for _ in range(k)]
    return _axes_case(r, opset, x, axes)


def _slice(r: random.Random, opset: int) -> Case:
    x = _shape(r, r.randint(1, 3), 1, 9)
    n = r.randint(1, len(x))
    axes = r.sample(range(-len(x), len(x)), n)
    big = [2**62, -(2**62), 2**63 - 1]
    starts = [r.choice([r.randint(-10, 10), *big]) for _ in range(n)]
    ends = [r.choice([r.randint(-10, 10), *big]) for _ in range(n)]
    steps = [r.choice([1, 1, 2, -1, -3]) for _ in range(n)]
    ins: list[Input | None] = [(F, x, None), (I64, (n,), starts), (I64, (n,), ends)]
    if r.random() < 0.8:
        ins.append((I64, (n,), axes))
        if r.random() < 0.7:
            ins.append((I64, (n,), steps))
    return ins, {}, 1


def _gather(r: random.Random, opset: int) -> Case:
    x = _shape(r, r.randint(1, 3))
    idx = _shape(r, r.randint(0, 2))
    return [(F, x, None), (I64, idx, None)], {"axis": r.randint(-len(x), len(x) - 1)}, 1


def _split(r: random.Random, opset: int) -> Case:
    x = _shape(r, r.randint(1, 3), 1, 8)
    axis = r.randrange(len(x))
    n = r.randint(1, 3)
    attrs: dict[str, Any] = {"axis": axis}
    ins: list[Input | None] = [(F, x, None)]
    if r.random() < 0.5:
        parts = [x[axis] // n] * (n - 1)
        parts.append(x[axis] - sum(parts))
        if opset >= 13:
            ins.append((I64, (n,), parts))
        else:
            attrs["split"] = parts
    elif opset >= 18:
        attrs["num_outputs"] = n
    return ins, attrs, n


def _resize(r: random.Random, opset: int) -> Case:
    x = _shape(r, 4, 1, 20)
    use_sizes = opset > 10 and r.random() < 0.4
    scales = [1.0, 1.0, *(r.choice([0.5, 1.5, 2.0, 3.0, 0.7, 1.33]) for _ in range(2))]
    if opset == 10:
        return [(F, x, None), (F, (4,), scales)], {"mode": "nearest"}, 1
    roi: Input | None = (F, (0,), []) if opset < 13 or r.random() < 0.5 else None
    if use_sizes:
        sizes = [x[0], x[1], r.randint(1, 40), r.randint(1, 40)]
        return (
            [(F, x, None), roi, (F, (0,), []) if r.random() < 0.5 else None, (I64, (4,), sizes)],
            {},
            1,
        )
    return [(F, x, None), roi, (F, (4,), scales)], {}, 1


def _pad(r: random.Random, opset: int) -> Case:
    x = _shape(r, r.randint(1, 4))
    pads = [r.randint(-1, 3) for _ in range(2 * len(x))]
    if opset >= 11:
        return [(F, x, None), (I64, (len(pads),), pads)], {}, 1
    return [(F, x, None)], {"pads": pads}, 1


def _expand(r: random.Random, opset: int) -> Case:
    x = tuple(r.choice([1, 3]) for _ in range(r.randint(0, 3)))
    target = [r.choice([1, 3, 4]) for _ in range(r.randint(0, 4))]
    return [(F, x, None), (I64, (len(target),), target)], {}, 1


def _tile(r: random.Random, opset: int) -> Case:
    x = _shape(r, r.randint(1, 3))
    reps = [r.randint(0, 3) for _ in x]
    return [(F, x, None), (I64, (len(reps),), reps)], {}, 1


def _constant_of_shape(r: random.Random, opset: int) -> Case:
    target = list(_shape(r, r.randint(0, 3), 0, 5))
    attrs = {}
    if r.random() < 0.5:
        attrs["value"] = helper.make_tensor("v", r.choice([F, I64, I32, B]), [1], [1])
    return [(I64, (len(target),), target)], attrs, 1


def _matmul(r: random.Random, opset: int) -> Case:
    k = r.randint(1, 4)
    a = (*_shape(r, r.randint(0, 2), 1, 3), r.randint(1, 4), k)[-r.randint(1, 4) :]
    b = (*_shape(r, r.randint(0, 2), 1, 3), k if r.random() > 0.1 else k + 1, r.randint(1, 4))
    b = b[-r.randint(1, len(b)) :]
    if len(a) == 1:
        a = (k,)
    elem = r.choice([F, D, I64])
    return [(elem, a, None), (elem, b, None)], {}, 1


def _gemm(r: random.Random, opset: int) -> Case:
    m, k, n = r.randint(1, 5), r.randint(1, 5), r.randint(1, 5)
    ta, tb = r.randint(0, 1), r.randint(0, 1)
    a = (k, m) if ta else (m, k)
    b = (n, k) if tb else (k, n)
    elem = _float(r)
    ins: list[Input | None] = [(elem, a, None), (elem, b, None)]
    if r.random() < 0.5:
        ins.append((elem, (n,), None))
    return ins, {"transA": ta, "transB": tb}, 1


def _reduce(input_from: int) -> Callable[[random.Random, int], Case]:
    def gen(r: random.Random, opset: int) -> Case:
        x = _shape(r, r.randint(1, 4))
        axes = r.sample(range(-len(x), len(x)), r.randint(0, len(x)))
        attrs: dict[str, Any] = {"keepdims": r.randint(0, 1)}
        if opset >= input_from:
            if r.random() < 0.3:
                attrs["noop_with_empty_axes"] = 1
            if axes or r.random() < 0.5:
                return [(F, x, None), (I64, (len(axes),), axes)], attrs, 1
            return [(F, x, None)], attrs, 1
        if axes:
            attrs["axes"] = axes
        return [(F, x, None)], attrs, 1

    return gen


def _recurrent(gates: int) -> Callable[[random.Random, int], Case]:
    def gen(r: random.Random, opset: int) -> Case:
        hidden = r.randint(1, 4)
        direction = r.choice(["forward", "reverse", "bidirectional"])
        dirs = 2 if direction == "bidirectional" else 1
        x = _shape(r, 3)
        attrs: dict[str, Any] = {"hidden_size": hidden, "direction": direction}
        layout = r.randint(0, 1) if opset >= 14 else 0
        if layout:
            attrs["layout"] = layout
        inp = x[2]
        ins: list[Input | None] = [
            (F, x, None),
            (F, (dirs, gates * hidden, inp), None),
            (F, (dirs, gates * hidden, hidden), None),
        ]
        return ins, attrs, r.randint(1, 3 if gates == 4 else 2)

    return gen


def _dynamic_quantize(r: random.Random, opset: int) -> Case:
    return [(F, _shape(r, r.randint(0, 3)), None)], {}, 3


GENERATORS: dict[str, tuple[Callable[[random.Random, int], Case], tuple[int, ...]]] = {
    "Conv": (_conv, (1, 11, 22)),
    "ConvTranspose": (_conv_transpose, (1, 11, 22)),
    "MaxPool": (_pool, (8, 11, 12, 22)),
    "AveragePool": (_pool, (7, 11, 19, 22)),
    "GlobalAveragePool": (_global_pool, (1, 22)),
    "GlobalMaxPool": (_global_pool, (1, 22)),
    "BatchNormalization": (_batch_norm, (9, 14, 15)),
    "Relu": (_unary, (6, 14)),
    "Sigmoid": (_unary, (6, 13)),
    "Sqrt": (_unary, (6, 13)),
    "Not": (_unary, (1,)),
    "Neg": (_unary, (6, 13)),
    "Abs": (_unary, (6, 13)),
    "Floor": (_unary, (6, 13)),
    "Identity": (_unary, (1, 14, 21)),
    "HardSwish": (_unary, (14, 22)),
    "HardSigmoid": (_unary, (6, 22)),
    "LeakyRelu": (_unary, (6, 16)),
    "Clip": (_clip, (6, 11, 12, 13)),
    "Cast": (_cast, (6, 13, 19, 21)),
    "Softmax": (_softmax, (1, 11, 13)),
    "LogSoftmax": (_softmax, (11, 13)),
    "Add": (_broadcasting(2), (7, 13, 14)),
    "Sub": (_broadcasting(2), (7, 14)),
    "Mul": (_broadcasting(2), (7, 14)),
    "Div": (_broadcasting(2), (7, 14)),
    "Pow": (_broadcasting(2), (7, 12, 15)),
    "Max": (_broadcasting(3), (8, 13)),
    "Min": (_broadcasting(2), (8, 13)),
    "Equal": (_broadcasting(2), (7, 11, 13, 19)),
    "Less": (_broadcasting(2), (7, 9, 13)),
    "Greater": (_broadcasting(2), (7, 9, 13)),
    "And": (_broadcasting(2, B), (7,)),
    "Or": (_broadcasting(2, B), (7,)),
    "Where": (_where, (9, 16)),
    "Concat": (_concat, (4, 11, 13)),
    "Reshape": (_reshape, (5, 13, 14, 19)),
    "Flatten": (_flatten, (9, 11, 13)),
    "Transpose": (_transpose, (1, 13)),
    "Squeeze": (_squeeze, (1, 11, 13)),
    "Unsqueeze": (_unsqueeze, (1, 11, 13)),
    "Slice": (_slice, (10, 11, 13)),
    "Gather": (_gather, (1, 11, 13)),
    "Split": (_split, (2, 11, 13, 18)),
    "Resize": (_resize, (10, 11, 13, 19)),
    "Pad": (_pad, (2, 11, 13, 18)),
    "Expand": (_expand, (8, 13)),
    "Tile": (_tile, (6, 13)),
    "ConstantOfShape": (_constant_of_shape, (9, 20)),
    "MatMul": (_matmul, (1, 9, 13)),
    "Gemm": (_gemm, (7, 11, 13)),
    "ReduceMean": (_reduce(18), (11, 13, 18)),
    "ReduceMax": (_reduce(18), (13, 18)),
    "ReduceMin": (_reduce(18), (13, 18)),
    "ReduceProd": (_reduce(18), (13, 18)),
    "ReduceSum": (_reduce(13), (11, 13)),
    "LSTM": (_recurrent(4), (7, 14, 22)),
    "GRU": (_recurrent(3), (7, 14)),
    "RNN": (_recurrent(1), (7, 14)),
    "DynamicQuantizeLinear": (_dynamic_quantize, (11,)),
}


def test_every_rule_has_a_generator() -> None:
    assert set(RULES) - {"ConvInteger", "MatMulInteger", "Tanh", "Ceil", "Exp", "Erf"} <= set(
        GENERATORS
    )


@pytest.mark.parametrize("op", sorted(GENERATORS))
def test_rule_answers_as_onnx_infers(op: str) -> None:
    gen, opsets = GENERATORS[op]
    r = random.Random(op)
    answered = 0
    for i in range(200):
        opset = opsets[i % len(opsets)]
        case = gen(r, opset)
        got, want = _run(op, opset, case)
        if got is not None:
            answered += 1
            assert got == want, (op, opset, case)
    assert answered >= 30, f"{op}: the rule answered {answered} of 200 cases"
