"""Constant folding of small tensors, so shape arithmetic (Shape->Gather->Concat) resolves."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper

from convaudit.model.tensors import MAX_VALUE_ELEMENTS

# Ops whose output is not a function of their inputs, or that are not worth folding.
NOT_FOLDABLE = {
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
    return [x[0].astype(helper.tensor_dtype_to_np_dtype(int(a["to"])))]


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
}


def evaluate(
    node: onnx.NodeProto,
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
    node: onnx.NodeProto, inputs: Sequence[np.ndarray | None], opset: int
) -> list[np.ndarray] | None:
    from onnx.reference import ReferenceEvaluator

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
