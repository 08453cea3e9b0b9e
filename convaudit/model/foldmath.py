"""The pure folds' arithmetic: element types, broadcasting, element-wise ops, casts, Range.

Each gives numpy's result exactly (model/fold.py says how) or raises ``NotPure``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from typing import Any

from convaudit.model.values import (
    BOOL,
    FLOAT32,
    FLOAT64,
    FLOAT_TYPES,
    INT_TYPES,
    Items,
    Value,
    wrap,
)

Attrs = dict[str, Any]
Node = Any  # onnx.NodeProto | LiteNode: only ConstantOfShape reads the node itself


class NotPure(Exception):
    """This fold is left to numpy (the case is not one the pure folds cover)."""


_F32 = struct.Struct("<f")


def f32(x: float) -> float:
    """``x`` rounded to float32, as numpy's float32 arithmetic rounds (overflow gives inf)."""
    try:
        return float(_F32.unpack(_F32.pack(x))[0])
    except OverflowError:
        return math.copysign(math.inf, x)


def need(ok: bool) -> None:
    """Leave this fold to numpy unless ``ok``."""
    if not ok:
        raise NotPure


def row_strides(shape: Sequence[int]) -> list[int]:
    """Elements between neighbours along each axis of a row-major tensor."""
    out = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        out[d] = out[d + 1] * shape[d + 1]
    return out


def take(items: Items, shape: Sequence[int], picks: Sequence[Sequence[int]]) -> Items:
    """The elements at the cross product of per-axis source indices, row-major."""
    steps = row_strides(shape)
    flat = [0]
    for stride, pick in zip(steps, picks, strict=True):
        flat = [base + k * stride for base in flat for k in pick]
    return tuple(items[i] for i in flat)


def broadcast_shape(*shapes: Sequence[int]) -> tuple[int, ...]:
    """numpy's broadcast of shapes (dims equal, or one of them 1)."""
    rank = max(len(s) for s in shapes)
    out = []
    for k in range(rank):
        dims = {s[k - rank + len(s)] for s in shapes if k - rank + len(s) >= 0}
        need(all(d >= 0 for d in dims))
        dims.discard(1)
        need(len(dims) <= 1)
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def broadcast_to(x: Value, shape: tuple[int, ...]) -> Items:
    """``x``'s items repeated out to ``shape`` (a shape broadcast_shape gave)."""
    if x.shape == shape:
        return x.items
    src = (1,) * (len(shape) - x.ndim) + x.shape
    picks = [range(n) if s != 1 else [0] * n for s, n in zip(src, shape, strict=True)]
    return take(x.items, src, picks)


def same_type(x: Sequence[Value], allowed: frozenset[int] | dict[int, Any]) -> int:
    """The one element type of all inputs, one of ``allowed`` (numpy would promote a mix)."""
    elem = x[0].elem_type
    need(elem in allowed and all(v.elem_type == elem for v in x))
    return elem


NUMBERS = frozenset({*INT_TYPES, *FLOAT_TYPES})
INTS = frozenset(INT_TYPES)
ORDERED = frozenset({*INT_TYPES, *FLOAT_TYPES, BOOL})


def f32_all(values: Sequence[float]) -> Items:
    """Each value rounded as ``f32`` does, in one pack (one by one past an overflow)."""
    try:
        layout = struct.Struct(f"<{len(values)}f")
        return tuple(layout.unpack(layout.pack(*values)))
    except OverflowError:
        return tuple(map(f32, values))


def rounded(elem: int, values: Sequence[Any]) -> Items:
    """Exact Python results as the element type stores them."""
    if elem == FLOAT32:
        return f32_all(values)
    if elem == FLOAT64:
        return tuple(map(float, values))
    return tuple(wrap(v, elem) for v in values)


def _elementwise(
    x: Sequence[Value], elem: int, out_elem: int, fn: Callable[..., Any], *, exact: bool = False
) -> list[Value]:
    """``fn`` over the broadcast inputs; ``exact``: its results are rounded to ``out_elem``."""
    shape = broadcast_shape(*(v.shape for v in x))
    columns = [broadcast_to(v, shape) for v in x]
    items = [fn(*args) for args in zip(*columns, strict=True)]
    return [Value(out_elem, shape, rounded(out_elem, items) if exact else tuple(items))]


def arith(op: Callable[[Any, Any], Any]) -> Callable[[Sequence[Value], Attrs, Node], list[Value]]:
    def run(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
        need(len(x) == 2)
        elem = same_type(x, NUMBERS)
        return _elementwise(x, elem, elem, op, exact=True)

    return run


def div(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    need(len(x) == 2)
    elem = same_type(x, NUMBERS)
    need(all(q != 0 for q in x[1].items))  # numpy: no fold (ints) or an inf (floats)
    if elem in INT_TYPES:
        bits, signed = INT_TYPES[elem]
        low = -(1 << (bits - 1)) if signed else -1
        # numpy's abs() of the minimum overflows (and then floors a negative quotient)
        need(all(p != low for p in (*x[0].items, *x[1].items)))

        def trunc(p: int, q: int) -> int:
            r = abs(p) // abs(q)
            return wrap(-r if (p < 0) != (q < 0) else r, elem)

        return _elementwise(x, elem, elem, trunc)
    return _elementwise(x, elem, elem, lambda p, q: p / q, exact=True)


def mod(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    need(len(x) == 2)
    elem = same_type(x, INTS)
    need(all(q != 0 for q in x[1].items))
    bits, signed = INT_TYPES[elem]
    need(not signed or all(p != -(1 << (bits - 1)) for p in (*x[0].items, *x[1].items)))
    if int(a.get("fmod", 0)):  # C's remainder: the sign of the dividend

        def rem(p: int, q: int) -> int:
            r = abs(p) % abs(q)
            return -r if p < 0 else r

        return _elementwise(x, elem, elem, rem)
    return _elementwise(x, elem, elem, lambda p, q: wrap(p % q, elem))  # the divisor's sign


def compare(
    op: Callable[[Any, Any], bool],
) -> Callable[[Sequence[Value], Attrs, Node], list[Value]]:
    def run(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
        need(len(x) == 2)
        elem = same_type(x, ORDERED)
        return _elementwise(x, elem, BOOL, op)

    return run


def logic(op: Callable[..., bool]) -> Callable[[Sequence[Value], Attrs, Node], list[Value]]:
    def run(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
        same_type(x, frozenset({BOOL}))
        return _elementwise(x, BOOL, BOOL, op)

    return run


def extreme(
    pick: Callable[[int, int], int],
) -> Callable[[Sequence[Value], Attrs, Node], list[Value]]:
    def run(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
        elem = same_type(x, INTS)  # floats: numpy's NaN rules, not Python's
        out = x[0]
        for v in x[1:]:
            (out,) = _elementwise([out, v], elem, elem, pick)
        return [out]

    return run


def unary(
    allowed: frozenset[int], fn: Callable[[Any, int], Any]
) -> Callable[[Sequence[Value], Attrs, Node], list[Value]]:
    def run(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
        need(len(x) == 1)
        elem = same_type(x, allowed)
        return [Value(elem, x[0].shape, tuple(fn(p, elem) for p in x[0].items))]

    return run


def negate(p: Any, elem: int) -> Any:
    return -p if elem in FLOAT_TYPES else wrap(-p, elem)


def absolute(p: Any, elem: int) -> Any:
    return abs(p) if elem in FLOAT_TYPES else wrap(abs(p), elem)


def rounder(fn: Callable[[float], int]) -> Callable[[Any, int], Any]:
    def run(p: float, elem: int) -> float:
        need(math.isfinite(p))
        return math.copysign(0.0, p) if fn(p) == 0 else float(fn(p))  # ceil(-0.5) is -0.0

    return run


def ints_of(v: Value, *, vector: bool = False) -> list[int]:
    """An integer input's values; ``vector``: a 1-D one (evaluate iterates over it)."""
    need(v.elem_type in INT_TYPES and (v.ndim == 1 or not vector))
    return list(v.items)


def cast(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    need(len(x) == 1)
    src, to = x[0].elem_type, int(a["to"])
    need(src in ORDERED and to in ORDERED)
    items = x[0].items
    out: Items
    if to == src:
        out = items
    elif to == BOOL:
        out = tuple(p != 0 for p in items)
    elif to in INT_TYPES:
        if src in FLOAT_TYPES:  # truncation; numpy's cast of NaN, inf or out-of-range is C's
            bits, signed = INT_TYPES[to]
            low, high = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
            need(all(math.isfinite(p) and low <= math.trunc(p) < high for p in items))
            out = tuple(math.trunc(p) for p in items)
        else:
            out = tuple(wrap(int(p), to) for p in items)
    else:  # to a float type
        if src in INT_TYPES or src == BOOL:  # exact below 2**24 (2**53): one rounding only
            limit = 1 << (24 if to == FLOAT32 else 53)
            need(all(-limit <= p <= limit for p in items))
            out = tuple(float(p) for p in items)
        else:
            out = f32_all(items) if to == FLOAT32 else items
    return [Value(to, x[0].shape, out)]


def where(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    need(len(x) == 3 and x[0].elem_type == BOOL)
    elem = same_type(x[1:], ORDERED)
    return _elementwise(x, elem, elem, lambda c, p, q: p if c else q)


def scalar_of(v: Value) -> Any:
    need(v.size >= 1)
    return v.items[0]


def range_length(start: float, limit: float, delta: float) -> int:
    """evaluate's size check of a Range: elements it would make (0 for a zero delta)."""
    return max(0, math.ceil((limit - start) / delta)) if delta else 0


def arange(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    """np.arange on the three scalars, as numpy fills it: the first two elements, then
    start + i * (second - first); for float32 inputs numpy computes the length and the
    second element in float32 and the rest in double, then casts to float32."""
    need(len(x) == 3)
    elem = same_type(x, NUMBERS)
    start, limit, delta = (scalar_of(v) for v in x)
    if elem in INT_TYPES:
        need(all(abs(v) < 1 << 53 for v in (start, limit, delta)) and delta != 0)
        n = max(0, math.ceil((limit - start) / delta))
        second = start + delta
    else:
        need(all(math.isfinite(v) for v in (start, limit, delta)) and delta != 0)
        if elem == FLOAT32:
            n = max(0, math.ceil(f32(f32(limit - start) / delta)))
            second = f32(start + delta)
        else:
            n = max(0, math.ceil((limit - start) / delta))
            second = start + delta
    step = second - start
    values = [start, second, *(start + i * step for i in range(2, n))][:n]
    return [Value(elem, (n,), rounded(elem, values))]
