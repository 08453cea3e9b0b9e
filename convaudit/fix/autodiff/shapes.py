"""Ops that move values without arithmetic (concatenation, slicing, gathering, nearest resizing,
reshapes), casts, and shape arithmetic, which has no gradient."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx

from convaudit.fix.autodiff.base import F32, Array, Op, Unsupported, arg, attr, unbroadcast


def _concat(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    return [np.concatenate(list(ins), int(attr(node, "axis")))], None


def _concat_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    axis = int(attr(node, "axis")) % ins[0].ndim
    edges = np.cumsum([a.shape[axis] for a in ins])[:-1]
    return list(np.split(d[0], edges, axis))


def _split(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x = ins[0]
    axis = int(attr(node, "axis", 0)) % x.ndim
    sizes = arg(ins, 1)
    parts = [int(v) for v in sizes] if sizes is not None else attr(node, "split")
    if parts is None:
        n = len(node.output)
        parts = [x.shape[axis] // n] * n
    return list(np.split(x, np.cumsum(parts)[:-1], axis)), axis


def _split_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    grads = [g if g is not None else np.zeros_like(o) for g, o in zip(d, outs, strict=True)]
    return [np.concatenate(grads, saved)]


def _nearest_index(node: onnx.NodeProto, size_in: int, size_out: int, scale: float) -> Array:
    """The source index of every output index along one axis (Resize, mode nearest)."""
    mode = attr(node, "coordinate_transformation_mode", "half_pixel")
    rounding = attr(node, "nearest_mode", "round_prefer_floor")
    i = np.arange(size_out, dtype=np.float64)
    if mode == "asymmetric":
        src = i / scale
    elif mode == "half_pixel":
        src = (i + 0.5) / scale - 0.5
    elif mode == "pytorch_half_pixel":
        src = (i + 0.5) / scale - 0.5 if size_out > 1 else np.zeros_like(i)
    elif mode == "align_corners":
        src = i * (size_in - 1) / (size_out - 1) if size_out > 1 else np.zeros_like(i)
    elif mode == "tf_half_pixel_for_nn":
        src = (i + 0.5) / scale
    else:
        raise Unsupported(f"Resize coordinate_transformation_mode {mode}")
    if rounding == "floor":
        idx = np.floor(src)
    elif rounding == "ceil":
        idx = np.ceil(src)
    elif rounding == "round_prefer_ceil":
        idx = np.floor(src + 0.5)
    else:  # round_prefer_floor
        idx = np.ceil(src - 0.5)
    return np.clip(idx, 0, size_in - 1).astype(np.int64)


def _resize(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x = ins[0]
    if attr(node, "mode", "nearest") != "nearest" or attr(node, "axes") is not None:
        raise Unsupported("Resize other than nearest on every axis")
    scales, sizes = arg(ins, 2), arg(ins, 3)
    if sizes is not None and sizes.size:
        out = [int(v) for v in sizes]
        sc = [o / i for o, i in zip(out, x.shape, strict=True)]
    elif scales is not None and scales.size:
        sc = [float(v) for v in scales]
        out = [math.floor(i * s) for i, s in zip(x.shape, sc, strict=True)]
    else:
        raise Unsupported("Resize without scales or sizes")
    index = [
        None if o == i else _nearest_index(node, i, o, s)
        for i, o, s in zip(x.shape, out, sc, strict=True)
    ]
    y = x
    for axis, idx in enumerate(index):
        if idx is not None:
            y = np.take(y, idx, axis)
    return [np.ascontiguousarray(y)], index


def _resize_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    g = d[0]
    x = ins[0]
    for axis in reversed(range(x.ndim)):
        idx = saved[axis]
        if idx is None:
            continue
        moved = np.moveaxis(g, axis, 0)
        acc = np.zeros((x.shape[axis], *moved.shape[1:]), g.dtype)
        np.add.at(acc, idx, moved)
        g = np.moveaxis(acc, 0, axis)
    return [g]


def _reshape_like(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x = ins[0]
    op = node.op_type
    if op == "Reshape":
        shape = [int(v) for v in ins[1]]
        if not int(attr(node, "allowzero", 0)):
            shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
        y = x.reshape(shape)
    elif op == "Flatten":
        axis = int(attr(node, "axis", 1)) % max(x.ndim, 1)
        y = x.reshape(math.prod(x.shape[:axis]), -1)
    elif op in ("Squeeze", "Unsqueeze"):
        axes = arg(ins, 1)
        ax = [int(v) for v in axes] if axes is not None else attr(node, "axes")
        if op == "Squeeze":
            ax = ax if ax is not None else [i for i, s in enumerate(x.shape) if s == 1]
            y = np.squeeze(x, tuple(a % x.ndim for a in ax))
        else:
            rank = x.ndim + len(ax)
            y = np.expand_dims(x, tuple(sorted(a % rank for a in ax)))
    else:  # Identity
        y = x
    return [y], None


def _reshape_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    return [d[0].reshape(ins[0].shape)]


def _transpose(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x = ins[0]
    perm = attr(node, "perm") or list(reversed(range(x.ndim)))
    return [x.transpose(perm)], perm


def _transpose_back(
    node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]
) -> list[Any]:
    return [d[0].transpose(np.argsort(saved))]


def _no_grad(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    """Shape arithmetic and constants: their outputs do not depend smoothly on any input."""
    return [None] * len(ins)


def _shape(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    dims = ins[0].shape
    start, end = int(attr(node, "start", 0)), attr(node, "end")
    return [np.array(dims[start : None if end is None else int(end)], np.int64)], None


def _constant_of_shape(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    value = attr(node, "value")
    fill = np.zeros(1, F32) if value is None else onnx.numpy_helper.to_array(value).reshape(-1)
    return [np.full([int(v) for v in ins[0]], fill[0], fill.dtype)], None


def _range(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    start, limit, delta = (np.asarray(v).reshape(()) for v in ins[:3])
    kind = np.result_type(start, limit, delta)
    return [np.arange(start.item(), limit.item(), delta.item()).astype(kind)], None


_CASTS: dict[int, type[np.generic]] = {
    onnx.TensorProto.FLOAT: np.float32,
    onnx.TensorProto.DOUBLE: np.float64,
    onnx.TensorProto.FLOAT16: np.float16,
    onnx.TensorProto.INT64: np.int64,
    onnx.TensorProto.INT32: np.int32,
    onnx.TensorProto.INT8: np.int8,
    onnx.TensorProto.UINT8: np.uint8,
    onnx.TensorProto.BOOL: np.bool_,
}


def _cast(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    to = _CASTS.get(int(attr(node, "to")))
    if to is None:
        raise Unsupported(f"Cast to element type {attr(node, 'to')}")
    return [ins[0].astype(to)], None


def _cast_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    smooth = ins[0].dtype.kind == "f" and outs[0].dtype.kind == "f"
    return [d[0].astype(ins[0].dtype) if smooth else None]


def _slices(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[Any, ...]:
    x = ins[0]
    if len(ins) > 1:
        starts, ends = [int(v) for v in ins[1]], [int(v) for v in ins[2]]
        axes_in, steps_in = arg(ins, 3), arg(ins, 4)
        axes = [int(v) for v in axes_in] if axes_in is not None else list(range(len(starts)))
        steps = [int(v) for v in steps_in] if steps_in is not None else [1] * len(starts)
    else:  # opset < 10: attributes
        starts, ends = list(attr(node, "starts")), list(attr(node, "ends"))
        axes = list(attr(node, "axes", range(len(starts))))
        steps = [1] * len(starts)
    index: list[Any] = [slice(None)] * x.ndim
    for a, b, e, st in zip(axes, starts, ends, steps, strict=True):
        index[a % x.ndim] = slice(b, e, st)  # Python's clamping is ONNX's
    return tuple(index)


def _slice(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    index = _slices(node, ins)
    return [ins[0][index]], index


def _slice_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    dx = np.zeros_like(ins[0])
    dx[saved] = d[0]
    return [dx]


def _gather(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x, idx = ins[0], np.asarray(ins[1], np.int64)
    axis = int(attr(node, "axis", 0)) % x.ndim
    idx = np.where(idx < 0, idx + x.shape[axis], idx)
    return [np.take(x, idx, axis)], (axis, idx)


def _gather_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    axis, idx = saved
    x = ins[0]
    if x.dtype.kind != "f":
        return [None]
    g = np.moveaxis(d[0], list(range(axis, axis + idx.ndim)), list(range(idx.ndim)))
    acc = np.zeros((x.shape[axis], *np.moveaxis(x, axis, 0).shape[1:]), x.dtype)
    np.add.at(acc, idx, g)
    return [np.moveaxis(acc, 0, axis)]


def _expand(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x = ins[0]
    shape = np.broadcast_shapes(x.shape, tuple(int(v) for v in ins[1]))
    return [np.array(np.broadcast_to(x, shape))], None


def _expand_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    return [unbroadcast(d[0], ins[0].shape) if ins[0].dtype.kind == "f" else None]


OPS: dict[str, Op] = {
    "Concat": Op(_concat, _concat_back),
    "Split": Op(_split, _split_back),
    "Resize": Op(_resize, _resize_back),
    "Reshape": Op(_reshape_like, _reshape_back),
    "Flatten": Op(_reshape_like, _reshape_back),
    "Squeeze": Op(_reshape_like, _reshape_back),
    "Unsqueeze": Op(_reshape_like, _reshape_back),
    "Identity": Op(_reshape_like, _reshape_back),
    "Transpose": Op(_transpose, _transpose_back),
    "Slice": Op(_slice, _slice_back),
    "Gather": Op(_gather, _gather_back),
    "Expand": Op(_expand, _expand_back),
    "Cast": Op(_cast, _cast_back),
    "Shape": Op(_shape, _no_grad),
    "ConstantOfShape": Op(_constant_of_shape, _no_grad),
    "Range": Op(_range, _no_grad),
}
