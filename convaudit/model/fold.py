"""Constant folding of shape arithmetic in plain Python, so the lite scan needs no numpy: the
table of pure folds (arithmetic in ``foldmath.py``, moves in ``foldshape.py``) and its entry.

Each fold here gives what ``model/evaluate.py``'s numpy fold gives, value for value and type for
type (the tests hold it to numpy and to onnx's reference): integers wrap as numpy's do, float32
results are rounded from the exact double result (one rounding, as float32 arithmetic), and
ONNX's integer Div truncates toward zero. Anything unusual (mixed element types, a NaN in a
Min/Max, an index out of range, a float16 sum, an op not here) raises ``NotPure`` and the
caller folds with numpy instead, so no case is decided differently: it only costs the import.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from convaudit.model.foldmath import (
    NUMBERS,
    Attrs,
    Node,
    NotPure,
    absolute,
    arange,
    arith,
    broadcast_shape,
    cast,
    compare,
    div,
    extreme,
    ints_of,
    logic,
    mod,
    need,
    negate,
    range_length,
    rounder,
    scalar_of,
    unary,
    where,
)
from convaudit.model.foldshape import (
    concat,
    constant_of_shape,
    expand,
    gather,
    identity,
    nonzero,
    reshape,
    slice_,
    squeeze,
    transpose,
    unsqueeze,
)
from convaudit.model.tensors import MAX_VALUE_ELEMENTS
from convaudit.model.values import FLOAT_TYPES, INT64, Value, wrap

__all__ = ["NOT_FOLDABLE", "NUMPY_FAST", "PURE", "NotPure", "fold_pure"]

if TYPE_CHECKING:
    import onnx

    from convaudit.model.liteproto import LiteNode

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


class TooLarge(Exception):
    """The result would be weight-sized: not folded at all (as evaluate's size check)."""


PURE: dict[str, Callable[[Sequence[Value], Attrs, Node], list[Value]]] = {
    "Identity": identity,
    "Add": arith(lambda p, q: p + q),
    "Sub": arith(lambda p, q: p - q),
    "Mul": arith(lambda p, q: p * q),
    "Div": div,
    "Mod": mod,
    "Equal": compare(lambda p, q: p == q),
    "Less": compare(lambda p, q: p < q),
    "LessOrEqual": compare(lambda p, q: p <= q),
    "Greater": compare(lambda p, q: p > q),
    "GreaterOrEqual": compare(lambda p, q: p >= q),
    "Not": logic(lambda p: not p),
    "And": logic(lambda p, q: p and q),
    "Or": logic(lambda p, q: p or q),
    "Min": extreme(min),
    "Max": extreme(max),
    "Neg": unary(NUMBERS, negate),
    "Abs": unary(NUMBERS, absolute),
    "Floor": unary(FLOAT_TYPES, rounder(math.floor)),
    "Ceil": unary(FLOAT_TYPES, rounder(math.ceil)),
    "Gather": gather,
    "Unsqueeze": unsqueeze,
    "Squeeze": squeeze,
    "Concat": concat,
    "Cast": cast,
    "Reshape": reshape,
    "Slice": slice_,
    "Transpose": transpose,
    "Where": where,
    "Range": arange,
    "Expand": expand,
    "ConstantOfShape": constant_of_shape,
    "NonZero": nonzero,
}


def _grown_elements(op: str, x: Sequence[Value]) -> int:
    """evaluate's ``_output_elements`` (weight-sized results are not folded), on Values."""
    if op == "ConstantOfShape" and x:
        return math.prod(wrap(int(d), INT64) for d in ints_of(x[0]))
    if op == "Expand" and len(x) == 2:
        dims = [max(int(d), 1) for d in ints_of(x[1])]
        return math.prod(broadcast_shape(x[0].shape, dims))
    if op == "Range" and len(x) == 3:
        start, limit, delta = (float(scalar_of(v)) for v in x)
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
    need(fn is not None and "" not in node.input)
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
