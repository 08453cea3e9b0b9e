"""Elementwise ops, activations, normalisation, reductions and matrix products."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx

from convaudit.fix.autodiff.base import Array, Op, Unsupported, arg, attr, pair, unbroadcast


def _bn(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    if int(attr(node, "training_mode", 0)):
        raise Unsupported("BatchNormalization in training mode")
    x, scale, bias, mean, var = ins[:5]
    a = (scale / np.sqrt(var + attr(node, "epsilon", 1e-5))).astype(x.dtype)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    c = (bias - mean * a).astype(x.dtype)
    return [x * a.reshape(shape) + c.reshape(shape)], a.reshape(shape)


def _unary(
    f: Callable[[onnx.NodeProto, Array], Array], df: Callable[[onnx.NodeProto, Array, Array], Array]
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def fwd(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
        return [np.asarray(f(node, ins[0]), ins[0].dtype)], None

    def back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
        return [d[0] * df(node, ins[0], outs[0])]

    return fwd, back


def _sig(x: Array) -> Array:
    with np.errstate(over="ignore"):  # exp(-x) = inf gives 0, the right limit
        return np.asarray(1 / (1 + np.exp(-x)), x.dtype)


def _hs_a(n: onnx.NodeProto) -> tuple[float, float]:
    return float(attr(n, "alpha", 0.2)), float(attr(n, "beta", 0.5))


def _clip_bounds(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[float, float]:
    lo, hi = arg(ins, 1), arg(ins, 2)
    low = float(lo.reshape(-1)[0]) if lo is not None else float(attr(node, "min", -math.inf))
    high = float(hi.reshape(-1)[0]) if hi is not None else float(attr(node, "max", math.inf))
    return low, high


def _clip(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    low, high = _clip_bounds(node, ins)
    return [np.clip(ins[0], low, high).astype(ins[0].dtype)], (low, high)


def _clip_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    low, high = saved
    x = ins[0]
    return [d[0] * ((x >= low) & (x <= high))]


def _binary(op: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def fwd(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
        a, b = ins[0], ins[1]
        r = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op](a, b)
        return [np.asarray(r, np.result_type(a, b))], None

    def back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
        a, b, g = ins[0], ins[1], d[0]
        if op == "Add":
            ga, gb = g, g
        elif op == "Sub":
            ga, gb = g, -g
        elif op == "Mul":
            ga, gb = g * b, g * a
        else:
            ga, gb = g / b, -g * a / (b * b)
        return [unbroadcast(ga, a.shape), unbroadcast(gb, b.shape)]

    return fwd, back


def _softmax(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x = ins[0]
    axis = int(attr(node, "axis", -1))
    e = np.exp(x - x.max(axis, keepdims=True))
    return [(e / e.sum(axis, keepdims=True)).astype(x.dtype)], axis


def _softmax_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    y, g = outs[0], d[0]
    return [y * (g - (g * y).sum(saved, keepdims=True))]


def _matmul(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    a, b = ins[0], ins[1]
    if a.ndim < 2 or b.ndim < 2:
        raise Unsupported("MatMul with a 1-D operand")
    return [np.matmul(a, b)], None


def _matmul_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    a, b, g = ins[0], ins[1], d[0]
    da = np.matmul(g, np.swapaxes(b, -1, -2))
    db = np.matmul(np.swapaxes(a, -1, -2), g)
    return [unbroadcast(da, a.shape), unbroadcast(db, b.shape)]


def _gemm(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    a, b, c = ins[0], ins[1], arg(ins, 2)
    alpha, beta = float(attr(node, "alpha", 1.0)), float(attr(node, "beta", 1.0))
    ta, tb = (
        a.T if int(attr(node, "transA", 0)) else a,
        b.T if int(attr(node, "transB", 0)) else b,
    )
    y = alpha * (ta @ tb)
    if c is not None:
        y = y + beta * c
    return [np.asarray(y, a.dtype)], (alpha, beta)


def _gemm_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    alpha, beta = saved
    a, b, c, g = ins[0], ins[1], arg(ins, 2), d[0]
    trans_a, trans_b = int(attr(node, "transA", 0)), int(attr(node, "transB", 0))
    ta, tb = a.T if trans_a else a, b.T if trans_b else b
    dta, dtb = alpha * (g @ tb.T), alpha * (ta.T @ g)
    dc = None if c is None else unbroadcast(beta * g, c.shape)
    return [dta.T if trans_a else dta, dtb.T if trans_b else dtb, dc]


def _reduce_axes(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[int, ...]:
    x = ins[0]
    given = arg(ins, 1)
    axes = [int(v) for v in given] if given is not None else attr(node, "axes")
    if not axes:
        if int(attr(node, "noop_with_empty_axes", 0)):
            return ()
        return tuple(range(x.ndim))
    return tuple(sorted(a % x.ndim for a in axes))


def _reduce_mean(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    axes = _reduce_axes(node, ins)
    keep = bool(attr(node, "keepdims", 1))
    x = ins[0]
    return [np.asarray(x.mean(axes, keepdims=keep) if axes else x, x.dtype)], (axes, keep)


def _reduce_mean_back(
    node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]
) -> list[Any]:
    axes, keep = saved
    x, g = ins[0], d[0]
    if not axes:
        return [g]
    if not keep:
        g = np.expand_dims(g, axes)
    count = math.prod(x.shape[a] for a in axes)
    return [np.broadcast_to(g / count, x.shape).astype(x.dtype)]


def _pow(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    return [np.asarray(np.power(ins[0], ins[1]), ins[0].dtype)], None


def _pow_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    x, e, y, g = ins[0], ins[1], outs[0], d[0]
    dx = g * e * np.power(x, e - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        de = g * y * np.log(np.where(x > 0, x, 1))
    return [unbroadcast(dx, x.shape), unbroadcast(de, e.shape)]


OPS: dict[str, Op] = {
    "BatchNormalization": Op(_bn, lambda n, i, o, a, d: [d[0] * a]),
    "Relu": pair(_unary(lambda n, x: np.maximum(x, 0), lambda n, x, y: x > 0)),
    "LeakyRelu": pair(
        _unary(
            lambda n, x: np.where(x > 0, x, x * attr(n, "alpha", 0.01)),
            lambda n, x, y: np.where(x > 0, 1.0, attr(n, "alpha", 0.01)),
        )
    ),
    "Sigmoid": pair(_unary(lambda n, x: _sig(x), lambda n, x, y: y * (1 - y))),
    "Tanh": pair(_unary(lambda n, x: np.tanh(x), lambda n, x, y: 1 - y * y)),
    "HardSigmoid": pair(
        _unary(
            lambda n, x: np.clip(_hs_a(n)[0] * x + _hs_a(n)[1], 0, 1),
            lambda n, x, y: ((y > 0) & (y < 1)) * _hs_a(n)[0],
        )
    ),
    "HardSwish": pair(
        _unary(
            lambda n, x: x * np.clip(x / 6 + 0.5, 0, 1),
            lambda n, x, y: np.where(x < -3, 0, np.where(x > 3, 1, x / 3 + 0.5)),
        )
    ),
    "Exp": pair(_unary(lambda n, x: np.exp(x), lambda n, x, y: y)),
    "Sqrt": pair(_unary(lambda n, x: np.sqrt(x), lambda n, x, y: 0.5 / y)),
    "Neg": pair(_unary(lambda n, x: -x, lambda n, x, y: -np.ones_like(x))),
    "Clip": Op(_clip, _clip_back),
    "Add": pair(_binary("Add")),
    "Sub": pair(_binary("Sub")),
    "Mul": pair(_binary("Mul")),
    "Div": pair(_binary("Div")),
    "Pow": Op(_pow, _pow_back),
    "Softmax": Op(_softmax, _softmax_back),
    "ReduceMean": Op(_reduce_mean, _reduce_mean_back),
    "MatMul": Op(_matmul, _matmul_back),
    "Gemm": Op(_gemm, _gemm_back),
}
