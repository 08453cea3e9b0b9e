"""The pure folds that move values without arithmetic: Gather, Unsqueeze, Squeeze, Concat,
Reshape, Slice, Transpose, Expand, ConstantOfShape, NonZero (numpy's results, or ``NotPure``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from convaudit.model.foldmath import (
    ORDERED,
    Attrs,
    Node,
    broadcast_shape,
    broadcast_to,
    ints_of,
    need,
    row_strides,
    take,
)
from convaudit.model.values import FLOAT32, INT64, Value, wrap


def identity(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    need(len(x) == 1)
    return [x[0]]


def axis_of(axis: int, rank: int) -> int:
    """A possibly negative axis as numpy normalises it (out of range: numpy's error)."""
    need(-rank <= axis < rank)
    return axis + rank if axis < 0 else axis


def gather(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    need(len(x) == 2 and x[0].ndim > 0)
    data, shape = x[0], x[0].shape
    axis = axis_of(int(a.get("axis", 0)), data.ndim)
    n = shape[axis]
    picks = []
    for i in ints_of(x[1]):
        i = wrap(i, INT64)
        need(-n <= i < n)
        picks.append(i + n if i < 0 else i)
    lead, tail = math.prod(shape[:axis]), math.prod(shape[axis + 1 :])
    flat = data.items
    out: list[Any] = []
    for outer in range(lead):
        for i in picks:
            start = (outer * n + i) * tail
            out += flat[start : start + tail]
    return [Value(data.elem_type, (*shape[:axis], *x[1].shape, *shape[axis + 1 :]), tuple(out))]


def unsqueeze(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    axes = ints_of(x[1], vector=True) if len(x) > 1 else [int(v) for v in a["axes"]]
    shape = list(x[0].shape)
    rank = len(shape) + len(axes)
    for ax in sorted(ax % rank for ax in axes):  # as evaluate's loop of np.expand_dims
        need(ax <= len(shape))
        shape.insert(ax, 1)
    return [Value(x[0].elem_type, tuple(shape), x[0].items)]


def squeeze(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    shape = x[0].shape
    listed = ints_of(x[1], vector=True) if len(x) > 1 else a.get("axes")
    if listed is None:
        kept = tuple(d for d in shape if d != 1)
    else:
        axes = [axis_of(int(v), len(shape)) for v in listed]
        need(len(set(axes)) == len(axes) and all(shape[k] == 1 for k in axes))
        kept = tuple(d for k, d in enumerate(shape) if k not in axes)
    return [Value(x[0].elem_type, kept, x[0].items)]


def concat(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    elem = x[0].elem_type
    rank = x[0].ndim
    need(rank > 0 and all(v.elem_type == elem and v.ndim == rank for v in x))
    axis = axis_of(int(a["axis"]), rank)
    first = x[0].shape
    need(
        all(v.shape[:axis] == first[:axis] and v.shape[axis + 1 :] == first[axis + 1 :] for v in x)
    )
    lead, tail = math.prod(first[:axis]), math.prod(first[axis + 1 :])
    out: list[Any] = []
    for outer in range(lead):
        for v in x:
            chunk = v.shape[axis] * tail
            out += v.items[outer * chunk : (outer + 1) * chunk]
    total = sum(v.shape[axis] for v in x)
    return [Value(elem, (*first[:axis], total, *first[axis + 1 :]), tuple(out))]


def reshape(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    data = x[0]
    target = ints_of(x[1], vector=True) if len(x) > 1 else [int(d) for d in a["shape"]]
    if not int(a.get("allowzero", 0)):  # 0 copies the input's dim at that position
        need(len(target) <= data.ndim or 0 not in target[data.ndim :])
        target = [data.shape[i] if d == 0 else d for i, d in enumerate(target)]
    need(all(d > 0 or d == -1 for d in target) and target.count(-1) <= 1)
    known = math.prod(d for d in target if d != -1)
    if -1 in target:
        need(data.size % known == 0)
        target = [data.size // known if d == -1 else d for d in target]
    need(math.prod(target) == data.size)
    return [Value(data.elem_type, tuple(target), data.items)]


def slice_(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    """ONNX Slice clamps like Python slicing, for positive and negative steps alike."""
    data = x[0]
    if len(x) > 1:
        need(all(v.ndim == 1 for v in x[1:]))
        starts, ends = ints_of(x[1]), ints_of(x[2])
        axes = ints_of(x[3]) if len(x) > 3 else list(range(len(starts)))
        steps = ints_of(x[4]) if len(x) > 4 else [1] * len(starts)
    else:  # opset < 10: attributes
        starts, ends = [int(v) for v in a["starts"]], [int(v) for v in a["ends"]]
        axes = [int(v) for v in a.get("axes", range(len(starts)))]
        steps = [1] * len(starts)
    need(len(starts) == len(ends) == len(axes) == len(steps) and 0 not in steps)
    rank = data.ndim
    need(all(-rank <= axis < rank for axis in axes))
    index: list[slice] = [slice(None)] * rank
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        index[axis] = slice(start, end, step)  # a repeated axis: the last one wins, as numpy's
    picks = [range(*s.indices(n)) for s, n in zip(index, data.shape, strict=True)]
    shape = tuple(len(p) for p in picks)
    return [Value(data.elem_type, shape, take(data.items, data.shape, picks))]


def transpose(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    data = x[0]
    rank = data.ndim
    perm = [int(p) for p in a["perm"]] if a.get("perm") is not None else list(range(rank))[::-1]
    need(sorted(perm) == list(range(rank)))
    steps = row_strides(data.shape)
    flat = [0]
    for p in perm:
        flat = [base + k * steps[p] for base in flat for k in range(data.shape[p])]
    items = data.items
    return [
        Value(data.elem_type, tuple(data.shape[p] for p in perm), tuple(items[i] for i in flat))
    ]


def expand(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    need(len(x) == 2)
    shape = broadcast_shape(x[0].shape, tuple(ints_of(x[1])))
    return [Value(x[0].elem_type, shape, broadcast_to(x[0], shape))]


def constant_of_shape(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    from convaudit.model.liteproto import LiteAttribute

    need(len(x) == 1)
    dims = tuple(ints_of(x[0]))
    need(x[0].ndim == 1 and all(d >= 0 for d in dims))
    fill: Any = 0.0
    elem = FLOAT32
    for attr in node.attribute:
        if attr.name == "value":
            need(isinstance(attr, LiteAttribute) and attr.t is not None)
            value = attr.t.value()
            need(value.size >= 1)
            elem, fill = value.elem_type, value.items[0]
    return [Value(elem, dims, (fill,) * math.prod(dims))]


def nonzero(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    """The indices of the elements that are not zero, one row per axis (opset-9 exports build
    arange as NonZero(ConstantOfShape(n)))."""
    need(len(x) == 1 and x[0].ndim > 0 and x[0].elem_type in ORDERED)  # numpy refuses 0-d
    shape = x[0].shape
    steps = row_strides(shape)
    found = [k for k, p in enumerate(x[0].items) if p != 0]  # NaN is not zero
    rows = [wrap(k // step % n, INT64) for step, n in zip(steps, shape, strict=True) for k in found]
    return [Value(INT64, (len(shape), len(found)), tuple(rows))]
