"""Constant folding of small tensors in numpy, so shape arithmetic (Shape->Gather->Concat)
resolves: the full path's folder, and the lite path's for what ``model/fold.py`` leaves it."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from convaudit.model.fold import NOT_FOLDABLE
from convaudit.model.tensors import MAX_VALUE_ELEMENTS
from convaudit.model.values import np_dtype

if TYPE_CHECKING:
    import onnx

    from convaudit.model.liteproto import LiteNode


Attrs = dict[str, Any]


def _binary(fn: Callable[[Any, Any], Any]) -> Callable[[Sequence[np.ndarray], Attrs], list[Any]]:
    return lambda x, a: [fn(x[0], x[1])]


def _int_div(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if np.issubdtype(x.dtype, np.integer):
        if np.any(y == 0):
            raise ZeroDivisionError("integer division by zero")
        # ONNX integer Div truncates toward zero; integer ops keep int64 exact (no float trip)
        q = np.abs(x) // np.abs(y)
        return np.asarray(np.where((x < 0) != (y < 0), -q, q).astype(x.dtype))
    return np.asarray(x / y, dtype=x.dtype)


def _gather(x: Sequence[np.ndarray], a: Attrs) -> list[Any]:
    return [np.take(x[0], x[1].astype(np.int64), axis=int(a.get("axis", 0)))]


def _unsqueeze(x: Sequence[np.ndarray], a: Attrs) -> list[Any]:
    axes = [int(v) for v in (x[1] if len(x) > 1 else a["axes"])]
    out = x[0]
    rank = out.ndim + len(axes)
    for ax in sorted(ax % rank for ax in axes):
        out = np.expand_dims(out, ax)
    return [out]


def _squeeze(x: Sequence[np.ndarray], a: Attrs) -> list[Any]:
    axes = x[1] if len(x) > 1 else a.get("axes")
    if axes is None:
        return [np.squeeze(x[0])]
    return [np.squeeze(x[0], axis=tuple(int(v) for v in axes))]


def _concat(x: Sequence[np.ndarray], a: Attrs) -> list[Any]:
    return [np.concatenate(list(x), axis=int(a["axis"]))]


def _cast(x: Sequence[np.ndarray], a: Attrs) -> list[Any]:
    return [x[0].astype(np_dtype(int(a["to"])))]


def _reshape(x: Sequence[np.ndarray], a: Attrs) -> list[Any]:
    target = [int(d) for d in (x[1] if len(x) > 1 else a["shape"])]
    if not int(a.get("allowzero", 0)):  # 0 copies the input's dim at that position
        target = [x[0].shape[i] if d == 0 else d for i, d in enumerate(target)]
    return [np.reshape(x[0], target)]


def _slice(x: Sequence[np.ndarray], a: Attrs) -> list[Any]:
    """ONNX Slice clamps like Python slicing, for positive and negative steps alike."""
    if len(x) > 1:
        starts, ends = x[1].tolist(), x[2].tolist()
        axes = x[3].tolist() if len(x) > 3 else list(range(len(starts)))
        steps = x[4].tolist() if len(x) > 4 else [1] * len(starts)
    else:  # opset < 10: attributes
        starts, ends = list(a["starts"]), list(a["ends"])
        axes, steps = list(a.get("axes", range(len(starts)))), [1] * len(starts)
    if 0 in steps:
        raise ValueError("Slice step 0")
    index = [slice(None)] * x[0].ndim
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        index[int(axis)] = slice(int(start), int(end), int(step))
    return [x[0][tuple(index)]]


def _range(x: Sequence[np.ndarray], a: Attrs) -> list[Any]:
    start, limit, delta = (v.reshape(-1)[0] for v in x)
    return [np.arange(start, limit, delta).astype(x[0].dtype)]


def _expand(x: Sequence[np.ndarray], a: Attrs) -> list[Any]:
    shape = np.broadcast_shapes(x[0].shape, tuple(int(d) for d in x[1].reshape(-1)))
    return [np.broadcast_to(x[0], shape).copy()]


def _mod(x: Sequence[np.ndarray], a: Attrs) -> list[Any]:
    if np.issubdtype(x[1].dtype, np.integer) and np.any(x[1] == 0):
        raise ZeroDivisionError("integer modulo by zero")
    # fmod=0 (integers only): the result takes the divisor's sign, as numpy's mod
    return [(np.fmod if int(a.get("fmod", 0)) else np.mod)(x[0], x[1])]


def _variadic(fn: Callable[[Any, Any], Any]) -> Callable[[Sequence[np.ndarray], Attrs], list[Any]]:
    def run(x: Sequence[np.ndarray], a: Attrs) -> list[Any]:
        out = x[0]
        for v in x[1:]:
            out = fn(out, v)
        return [out]

    return run


def _constant_of_shape(
    node: onnx.NodeProto | LiteNode,
) -> Callable[[Sequence[np.ndarray], Attrs], list[Any]]:
    from convaudit.model.liteproto import LiteAttribute

    value = np.zeros(1, np.float32)
    for attr in node.attribute:
        if attr.name == "value":
            if isinstance(attr, LiteAttribute):
                if attr.t is None:
                    raise ValueError("ConstantOfShape value is not a tensor")
                value = attr.t.to_array().reshape(-1)
            else:
                from onnx import numpy_helper

                value = numpy_helper.to_array(attr.t).reshape(-1)
    return lambda x, a: [np.full(tuple(int(d) for d in x[0].reshape(-1)), value[0], value.dtype)]


FAST: dict[str, Callable[[Sequence[np.ndarray], Attrs], list[Any]]] = {
    "Identity": lambda x, a: [x[0]],
    "Add": _binary(np.add),
    "Sub": _binary(np.subtract),
    "Mul": _binary(np.multiply),
    "Div": _binary(_int_div),
    "Equal": _binary(np.equal),
    "Gather": _gather,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": _concat,
    "Cast": _cast,
    "Neg": lambda x, a: [np.negative(x[0])],
    "Floor": lambda x, a: [np.floor(x[0])],
    "Ceil": lambda x, a: [np.ceil(x[0])],
    # the rest of what exporters' shape arithmetic uses (a ReferenceEvaluator per node would
    # cost milliseconds each, and importing it a tenth of a second per scan)
    "Reshape": _reshape,
    "Slice": _slice,
    "Range": _range,
    "Expand": _expand,
    "Transpose": lambda x, a: [np.transpose(x[0], a.get("perm"))],
    "Mod": _mod,
    "Not": lambda x, a: [np.logical_not(x[0])],
    "And": _binary(np.logical_and),
    "Or": _binary(np.logical_or),
    "Less": _binary(np.less),
    "LessOrEqual": _binary(np.less_equal),
    "Greater": _binary(np.greater),
    "GreaterOrEqual": _binary(np.greater_equal),
    "Where": lambda x, a: [np.where(x[0], x[1], x[2])],
    "Min": _variadic(np.minimum),
    "Max": _variadic(np.maximum),
    "Abs": lambda x, a: [np.abs(x[0])],
    # opset-9 exports build arange as NonZero(ConstantOfShape(n)) (tiny YOLO anchors)
    "NonZero": lambda x, a: [np.array(np.nonzero(x[0]), dtype=np.int64).reshape(x[0].ndim, -1)],
}


def evaluate(
    node: onnx.NodeProto | LiteNode,
    inputs: Sequence[np.ndarray | None],
    attrs: Attrs,
    opset: int,
) -> list[np.ndarray] | None:
    """Outputs of ``node`` on constant inputs, or None when it cannot or should not be folded."""
    if node.op_type in NOT_FOLDABLE or node.domain not in ("", "ai.onnx"):
        return None
    if any(v is None for v in inputs):
        return None
    arrays = [v for v in inputs if v is not None]
    if _output_elements(node.op_type, arrays, attrs) > MAX_VALUE_ELEMENTS:
        return None  # a weight-sized result: its shape comes from inference, never its bytes
    fast = FAST.get(node.op_type)
    out: list[np.ndarray] | None
    try:
        # numpy's divide-by-zero / overflow warnings would break the one-line stderr contract
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            if node.op_type == "ConstantOfShape":  # its fill value is a tensor attribute
                fast = _constant_of_shape(node)  # inside the try: the tensor may be malformed
            if fast is not None and all(k != "" for k in node.input):
                out = [np.asarray(v) for v in fast(arrays, attrs)]
            else:
                out = _reference(node, inputs, opset)
    except Exception:  # folding is an optimisation: unknown stays unknown, never a guess
        return None
    if out is None or any(o.size > MAX_VALUE_ELEMENTS for o in out):
        return None
    return out


def _output_elements(op: str, x: Sequence[np.ndarray], attrs: Attrs) -> int:
    """Elements an op that grows its input would produce (0 for ops that do not grow).

    Checked before folding: ConstantOfShape / Expand / Tile / Range build weight-sized
    tensors from a few integers (the light/ models make every weight this way).
    """
    try:
        if op == "ConstantOfShape" and x:
            return int(np.prod(x[0].astype(np.int64), dtype=object))
        if op == "Expand" and len(x) == 2:
            dims = [int(d) for d in x[1].reshape(-1)]
            shape = np.broadcast_shapes(x[0].shape, tuple(max(d, 1) for d in dims))
            return int(np.prod(shape, dtype=object))
        if op == "Tile" and len(x) == 2:
            reps = [int(r) for r in x[1].reshape(-1)]
            return int(x[0].size * np.prod(reps, dtype=object))
        if op == "Range" and len(x) == 3:
            start, limit, delta = (float(v.reshape(-1)[0]) for v in x)
            return max(0, int(np.ceil((limit - start) / delta))) if delta else 0
    except (ValueError, TypeError, OverflowError):
        return MAX_VALUE_ELEMENTS + 1  # malformed: let inference, not folding, decide
    return 0


def _reference(
    node: onnx.NodeProto | LiteNode, inputs: Sequence[np.ndarray | None], opset: int
) -> list[np.ndarray] | None:
    import onnx
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    from convaudit.model.liteproto import LiteNode

    if isinstance(node, LiteNode):
        node = node.to_proto()
    names = [f"i{k}" if name else "" for k, name in enumerate(node.input)]
    outs = [f"o{k}" if name else "" for k, name in enumerate(node.output)]
    local = onnx.NodeProto()
    local.CopyFrom(node)
    del local.input[:]
    local.input.extend(names)
    del local.output[:]
    local.output.extend(outs)
    graph_inputs = []
    feeds = {}
    for name, value in zip(names, inputs, strict=True):
        if not name or value is None:
            continue
        elem = helper.np_dtype_to_tensor_dtype(value.dtype)
        graph_inputs.append(helper.make_tensor_value_info(name, elem, value.shape))
        feeds[name] = value
    graph = helper.make_graph(
        [local],
        "fold",
        graph_inputs,
        [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in outs if o],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    result = ReferenceEvaluator(model).run(None, feeds)
    return [np.asarray(r) for r in result]
