"""Constant folding of shape arithmetic in plain Python, so the lite scan needs no numpy.

Each fold here gives what ``model/evaluate.py``'s numpy fold gives, value for value and type for
type (the tests hold it to numpy and to onnx's reference): integers wrap as numpy's do, float32
results are rounded from the exact double result (one rounding, as float32 arithmetic), and
ONNX's integer Div truncates toward zero. Anything unusual (mixed element types, a NaN in a
Min/Max, an index out of range, a float16 sum, an op not here) raises ``NotPure`` and the
caller folds with numpy instead, so no case is decided differently: it only costs the import.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from convaudit.model.tensors import MAX_VALUE_ELEMENTS
from convaudit.model.values import (
    BOOL,
    FLOAT32,
    FLOAT64,
    FLOAT_TYPES,
    INT64,
    INT_TYPES,
    Items,
    Value,
    wrap,
)

if TYPE_CHECKING:
    import onnx

    from convaudit.model.liteproto import LiteNode

# Ops whose output is not a function of their inputs, or that are not worth folding.
NOT_FOLDABLE = frozenset(
    {
        "RandomNormal",
        "RandomNormalLike",
        "RandomUniform",
        "RandomUniformLike",
        "Multinomial",
        "Bernoulli",
        "If",
        "Loop",
        "Scan",
        "SequenceConstruct",
        "SequenceEmpty",
        "SequenceInsert",
        "SequenceAt",
        "SplitToSequence",
        "ConcatFromSequence",
        "Optional",
        "OptionalGetElement",
        "OptionalHasElement",
    }
)
# The ops evaluate.py folds in numpy (its FAST table; a test keeps the two equal): the others
# go to onnx's ReferenceEvaluator.
NUMPY_FAST = frozenset(
    {
        "Identity",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Equal",
        "Gather",
        "Unsqueeze",
        "Squeeze",
        "Concat",
        "Cast",
        "Neg",
        "Floor",
        "Ceil",
        "Reshape",
        "Slice",
        "Range",
        "Expand",
        "Transpose",
        "Mod",
        "Not",
        "And",
        "Or",
        "Less",
        "LessOrEqual",
        "Greater",
        "GreaterOrEqual",
        "Where",
        "Min",
        "Max",
        "Abs",
        "NonZero",
    }
)

Attrs = dict[str, Any]
Node = Any  # onnx.NodeProto | LiteNode: only ConstantOfShape reads the node itself


class NotPure(Exception):
    """This fold is left to numpy (the case is not one the pure folds cover)."""


class TooLarge(Exception):
    """The result would be weight-sized: not folded at all (as evaluate's size check)."""


_F32 = struct.Struct("<f")


def f32(x: float) -> float:
    """``x`` rounded to float32, as numpy's float32 arithmetic rounds (overflow gives inf)."""
    try:
        return float(_F32.unpack(_F32.pack(x))[0])
    except OverflowError:
        return math.copysign(math.inf, x)


def _need(ok: bool) -> None:
    if not ok:
        raise NotPure


def _strides(shape: Sequence[int]) -> list[int]:
    out = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        out[d] = out[d + 1] * shape[d + 1]
    return out


def _take(items: Items, shape: Sequence[int], picks: Sequence[Sequence[int]]) -> Items:
    """The elements at the cross product of per-axis source indices, row-major."""
    strides = _strides(shape)
    flat = [0]
    for stride, pick in zip(strides, picks, strict=True):
        flat = [base + k * stride for base in flat for k in pick]
    return tuple(items[i] for i in flat)


def broadcast_shape(*shapes: Sequence[int]) -> tuple[int, ...]:
    """numpy's broadcast of shapes (dims equal, or one of them 1)."""
    rank = max(len(s) for s in shapes)
    out = []
    for k in range(rank):
        dims = {s[k - rank + len(s)] for s in shapes if k - rank + len(s) >= 0}
        _need(all(d >= 0 for d in dims))
        dims.discard(1)
        _need(len(dims) <= 1)
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def _broadcast_to(x: Value, shape: tuple[int, ...]) -> Items:
    if x.shape == shape:
        return x.items
    src = (1,) * (len(shape) - x.ndim) + x.shape
    picks = [range(n) if s != 1 else [0] * n for s, n in zip(src, shape, strict=True)]
    return _take(x.items, src, picks)


def _same_type(x: Sequence[Value], allowed: frozenset[int] | dict[int, Any]) -> int:
    elem = x[0].elem_type
    _need(elem in allowed and all(v.elem_type == elem for v in x))
    return elem


_NUMBERS = frozenset({*INT_TYPES, *FLOAT_TYPES})
_INTS = frozenset(INT_TYPES)
_ORDERED = frozenset({*INT_TYPES, *FLOAT_TYPES, BOOL})


def _round(elem: int) -> Callable[[Any], Any]:
    """The element type's rounding of an exact Python result."""
    if elem == FLOAT32:
        return f32
    if elem == FLOAT64:
        return float
    return lambda n: wrap(n, elem)


def _elementwise(
    x: Sequence[Value], elem: int, out_elem: int, fn: Callable[..., Any]
) -> list[Value]:
    shape = broadcast_shape(*(v.shape for v in x))
    columns = [_broadcast_to(v, shape) for v in x]
    return [Value(out_elem, shape, tuple(fn(*args) for args in zip(*columns, strict=True)))]


def _arith(op: Callable[[Any, Any], Any]) -> Callable[[Sequence[Value], Attrs, Node], list[Value]]:
    def run(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
        _need(len(x) == 2)
        elem = _same_type(x, _NUMBERS)
        rnd = _round(elem)
        return _elementwise(x, elem, elem, lambda p, q: rnd(op(p, q)))

    return run


def _div(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    _need(len(x) == 2)
    elem = _same_type(x, _NUMBERS)
    _need(all(q != 0 for q in x[1].items))  # numpy: no fold (ints) or an inf (floats)
    if elem in INT_TYPES:
        bits, signed = INT_TYPES[elem]
        low = -(1 << (bits - 1)) if signed else -1
        # numpy's abs() of the minimum overflows (and then floors a negative quotient)
        _need(all(p != low for p in (*x[0].items, *x[1].items)))

        def trunc(p: int, q: int) -> int:
            r = abs(p) // abs(q)
            return wrap(-r if (p < 0) != (q < 0) else r, elem)

        return _elementwise(x, elem, elem, trunc)
    rnd = _round(elem)
    return _elementwise(x, elem, elem, lambda p, q: rnd(p / q))


def _mod(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    _need(len(x) == 2)
    elem = _same_type(x, _INTS)
    _need(all(q != 0 for q in x[1].items))
    bits, signed = INT_TYPES[elem]
    _need(not signed or all(p != -(1 << (bits - 1)) for p in (*x[0].items, *x[1].items)))
    if int(a.get("fmod", 0)):  # C's remainder: the sign of the dividend

        def rem(p: int, q: int) -> int:
            r = abs(p) % abs(q)
            return -r if p < 0 else r

        return _elementwise(x, elem, elem, rem)
    return _elementwise(x, elem, elem, lambda p, q: wrap(p % q, elem))  # the divisor's sign


def _compare(
    op: Callable[[Any, Any], bool],
) -> Callable[[Sequence[Value], Attrs, Node], list[Value]]:
    def run(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
        _need(len(x) == 2)
        elem = _same_type(x, _ORDERED)
        return _elementwise(x, elem, BOOL, op)

    return run


def _logic(op: Callable[..., bool]) -> Callable[[Sequence[Value], Attrs, Node], list[Value]]:
    def run(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
        _same_type(x, frozenset({BOOL}))
        return _elementwise(x, BOOL, BOOL, op)

    return run


def _extreme(
    pick: Callable[[int, int], int],
) -> Callable[[Sequence[Value], Attrs, Node], list[Value]]:
    def run(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
        elem = _same_type(x, _INTS)  # floats: numpy's NaN rules, not Python's
        out = x[0]
        for v in x[1:]:
            (out,) = _elementwise([out, v], elem, elem, pick)
        return [out]

    return run


def _unary(
    allowed: frozenset[int], fn: Callable[[Any, int], Any]
) -> Callable[[Sequence[Value], Attrs, Node], list[Value]]:
    def run(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
        _need(len(x) == 1)
        elem = _same_type(x, allowed)
        return [Value(elem, x[0].shape, tuple(fn(p, elem) for p in x[0].items))]

    return run


def _negate(p: Any, elem: int) -> Any:
    return -p if elem in FLOAT_TYPES else wrap(-p, elem)


def _absolute(p: Any, elem: int) -> Any:
    return abs(p) if elem in FLOAT_TYPES else wrap(abs(p), elem)


def _rounder(fn: Callable[[float], int]) -> Callable[[Any, int], Any]:
    def run(p: float, elem: int) -> float:
        _need(math.isfinite(p))
        return math.copysign(0.0, p) if fn(p) == 0 else float(fn(p))  # ceil(-0.5) is -0.0

    return run


def _ints_of(v: Value, *, vector: bool = False) -> list[int]:
    """An integer input's values; ``vector``: a 1-D one (evaluate iterates over it)."""
    _need(v.elem_type in INT_TYPES and (v.ndim == 1 or not vector))
    return list(v.items)


def _identity(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    _need(len(x) == 1)
    return [x[0]]


def _axis(axis: int, rank: int) -> int:
    _need(-rank <= axis < rank)
    return axis + rank if axis < 0 else axis


def _gather(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    _need(len(x) == 2 and x[0].ndim > 0)
    data, shape = x[0], x[0].shape
    axis = _axis(int(a.get("axis", 0)), data.ndim)
    n = shape[axis]
    picks = []
    for i in _ints_of(x[1]):
        i = wrap(i, INT64)
        _need(-n <= i < n)
        picks.append(i + n if i < 0 else i)
    lead, tail = math.prod(shape[:axis]), math.prod(shape[axis + 1 :])
    flat = data.items
    out: list[Any] = []
    for outer in range(lead):
        for i in picks:
            start = (outer * n + i) * tail
            out += flat[start : start + tail]
    return [Value(data.elem_type, (*shape[:axis], *x[1].shape, *shape[axis + 1 :]), tuple(out))]


def _unsqueeze(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    axes = _ints_of(x[1], vector=True) if len(x) > 1 else [int(v) for v in a["axes"]]
    shape = list(x[0].shape)
    rank = len(shape) + len(axes)
    for ax in sorted(ax % rank for ax in axes):  # as evaluate's loop of np.expand_dims
        _need(ax <= len(shape))
        shape.insert(ax, 1)
    return [Value(x[0].elem_type, tuple(shape), x[0].items)]


def _squeeze(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    shape = x[0].shape
    listed = _ints_of(x[1], vector=True) if len(x) > 1 else a.get("axes")
    if listed is None:
        kept = tuple(d for d in shape if d != 1)
    else:
        axes = [_axis(int(v), len(shape)) for v in listed]
        _need(len(set(axes)) == len(axes) and all(shape[k] == 1 for k in axes))
        kept = tuple(d for k, d in enumerate(shape) if k not in axes)
    return [Value(x[0].elem_type, kept, x[0].items)]


def _concat(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    elem = x[0].elem_type
    rank = x[0].ndim
    _need(rank > 0 and all(v.elem_type == elem and v.ndim == rank for v in x))
    axis = _axis(int(a["axis"]), rank)
    first = x[0].shape
    _need(
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


def _cast(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    _need(len(x) == 1)
    src, to = x[0].elem_type, int(a["to"])
    _need(src in _ORDERED and to in _ORDERED)
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
            _need(all(math.isfinite(p) and low <= math.trunc(p) < high for p in items))
            out = tuple(math.trunc(p) for p in items)
        else:
            out = tuple(wrap(int(p), to) for p in items)
    else:  # to a float type
        if src in INT_TYPES or src == BOOL:  # exact below 2**24 (2**53): one rounding only
            limit = 1 << (24 if to == FLOAT32 else 53)
            _need(all(-limit <= p <= limit for p in items))
            out = tuple(float(p) for p in items)
        else:
            out = tuple(map(f32, items)) if to == FLOAT32 else items
    return [Value(to, x[0].shape, out)]


def _reshape(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    data = x[0]
    target = _ints_of(x[1], vector=True) if len(x) > 1 else [int(d) for d in a["shape"]]
    if not int(a.get("allowzero", 0)):  # 0 copies the input's dim at that position
        _need(len(target) <= data.ndim or 0 not in target[data.ndim :])
        target = [data.shape[i] if d == 0 else d for i, d in enumerate(target)]
    _need(all(d > 0 or d == -1 for d in target) and target.count(-1) <= 1)
    known = math.prod(d for d in target if d != -1)
    if -1 in target:
        _need(data.size % known == 0)
        target = [data.size // known if d == -1 else d for d in target]
    _need(math.prod(target) == data.size)
    return [Value(data.elem_type, tuple(target), data.items)]


def _slice(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    """ONNX Slice clamps like Python slicing, for positive and negative steps alike."""
    data = x[0]
    if len(x) > 1:
        _need(all(v.ndim == 1 for v in x[1:]))
        starts, ends = _ints_of(x[1]), _ints_of(x[2])
        axes = _ints_of(x[3]) if len(x) > 3 else list(range(len(starts)))
        steps = _ints_of(x[4]) if len(x) > 4 else [1] * len(starts)
    else:  # opset < 10: attributes
        starts, ends = [int(v) for v in a["starts"]], [int(v) for v in a["ends"]]
        axes = [int(v) for v in a.get("axes", range(len(starts)))]
        steps = [1] * len(starts)
    _need(len(starts) == len(ends) == len(axes) == len(steps) and 0 not in steps)
    rank = data.ndim
    _need(all(-rank <= axis < rank for axis in axes))
    index: list[slice] = [slice(None)] * rank
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        index[axis] = slice(start, end, step)  # a repeated axis: the last one wins, as numpy's
    picks = [range(*s.indices(n)) for s, n in zip(index, data.shape, strict=True)]
    shape = tuple(len(p) for p in picks)
    return [Value(data.elem_type, shape, _take(data.items, data.shape, picks))]


def _transpose(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    data = x[0]
    rank = data.ndim
    perm = [int(p) for p in a["perm"]] if a.get("perm") is not None else list(range(rank))[::-1]
    _need(sorted(perm) == list(range(rank)))
    strides = _strides(data.shape)
    flat = [0]
    for p in perm:
        flat = [base + k * strides[p] for base in flat for k in range(data.shape[p])]
    items = data.items
    return [
        Value(data.elem_type, tuple(data.shape[p] for p in perm), tuple(items[i] for i in flat))
    ]


def _where(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    _need(len(x) == 3 and x[0].elem_type == BOOL)
    elem = _same_type(x[1:], _ORDERED)
    return _elementwise(x, elem, elem, lambda c, p, q: p if c else q)


def _scalar_of(v: Value) -> Any:
    _need(v.size >= 1)
    return v.items[0]


def range_length(start: float, limit: float, delta: float) -> int:
    """evaluate's size check of a Range: elements it would make (0 for a zero delta)."""
    return max(0, math.ceil((limit - start) / delta)) if delta else 0


def _range(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    """np.arange on the three scalars, as numpy fills it: the first two elements, then
    start + i * (second - first); for float32 inputs numpy computes the length and the
    second element in float32 and the rest in double, then casts to float32."""
    _need(len(x) == 3)
    elem = _same_type(x, _NUMBERS)
    start, limit, delta = (_scalar_of(v) for v in x)
    if elem in INT_TYPES:
        _need(all(abs(v) < 1 << 53 for v in (start, limit, delta)) and delta != 0)
        n = max(0, math.ceil((limit - start) / delta))
        second = start + delta
    else:
        _need(all(math.isfinite(v) for v in (start, limit, delta)) and delta != 0)
        if elem == FLOAT32:
            n = max(0, math.ceil(f32(f32(limit - start) / delta)))
            second = f32(start + delta)
        else:
            n = max(0, math.ceil((limit - start) / delta))
            second = start + delta
    step = second - start
    values = [start, second, *(start + i * step for i in range(2, n))][:n]
    rnd = _round(elem)
    return [Value(elem, (n,), tuple(rnd(v) for v in values))]


def _expand(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    _need(len(x) == 2)
    shape = broadcast_shape(x[0].shape, tuple(_ints_of(x[1])))
    return [Value(x[0].elem_type, shape, _broadcast_to(x[0], shape))]


def _constant_of_shape(x: Sequence[Value], a: Attrs, node: Node) -> list[Value]:
    from convaudit.model.liteproto import LiteAttribute

    _need(len(x) == 1)
    dims = tuple(_ints_of(x[0]))
    _need(x[0].ndim == 1 and all(d >= 0 for d in dims))
    fill: Any = 0.0
    elem = FLOAT32
    for attr in node.attribute:
        if attr.name == "value":
            _need(isinstance(attr, LiteAttribute) and attr.t is not None)
            value = attr.t.value()
            _need(value.size >= 1)
            elem, fill = value.elem_type, value.items[0]
    return [Value(elem, dims, (fill,) * math.prod(dims))]


PURE: dict[str, Callable[[Sequence[Value], Attrs, Node], list[Value]]] = {
    "Identity": _identity,
    "Add": _arith(lambda p, q: p + q),
    "Sub": _arith(lambda p, q: p - q),
    "Mul": _arith(lambda p, q: p * q),
    "Div": _div,
    "Mod": _mod,
    "Equal": _compare(lambda p, q: p == q),
    "Less": _compare(lambda p, q: p < q),
    "LessOrEqual": _compare(lambda p, q: p <= q),
    "Greater": _compare(lambda p, q: p > q),
    "GreaterOrEqual": _compare(lambda p, q: p >= q),
    "Not": _logic(lambda p: not p),
    "And": _logic(lambda p, q: p and q),
    "Or": _logic(lambda p, q: p or q),
    "Min": _extreme(min),
    "Max": _extreme(max),
    "Neg": _unary(_NUMBERS, _negate),
    "Abs": _unary(_NUMBERS, _absolute),
    "Floor": _unary(FLOAT_TYPES, _rounder(math.floor)),
    "Ceil": _unary(FLOAT_TYPES, _rounder(math.ceil)),
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
}


def _grown_elements(op: str, x: Sequence[Value]) -> int:
    """evaluate's ``_output_elements`` (weight-sized results are not folded), on Values."""
    if op == "ConstantOfShape" and x:
        return math.prod(wrap(int(d), INT64) for d in _ints_of(x[0]))
    if op == "Expand" and len(x) == 2:
        dims = [max(int(d), 1) for d in _ints_of(x[1])]
        return math.prod(broadcast_shape(x[0].shape, dims))
    if op == "Range" and len(x) == 3:
        start, limit, delta = (float(_scalar_of(v)) for v in x)
        try:
            return range_length(start, limit, delta)
        except (ValueError, OverflowError):
            raise TooLarge from None
    return 0


def fold_pure(
    node: onnx.NodeProto | LiteNode, inputs: Sequence[Value], attrs: Attrs
) -> list[Value] | None:
    """The node's outputs folded in Python; None: not folded (weight-sized, as evaluate
    decides). Raises NotPure for whatever it leaves to numpy."""
    fn = PURE.get(node.op_type)
    _need(fn is not None and "" not in node.input)
    assert fn is not None
    try:
        if _grown_elements(node.op_type, inputs) > MAX_VALUE_ELEMENTS:
            return None
        out = fn(inputs, attrs, node)
    except TooLarge:
        return None
    except (KeyError, ValueError, TypeError, IndexError, OverflowError, ZeroDivisionError):
        raise NotPure from None  # a malformed attribute or input: numpy decides
    if any(v.size > MAX_VALUE_ELEMENTS for v in out):
        return None
    return out
