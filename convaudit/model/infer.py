"""Per-node shape inference: ONNX's own operator schemas, fed every type and constant we know."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from functools import lru_cache
from math import prod
from typing import TYPE_CHECKING

from convaudit.model.tensors import UNKNOWN, TensorInfo, info_from_type, type_from_info

if TYPE_CHECKING:
    import onnx

    from convaudit.model.shaperules import NodeLike

# Domains whose ops onnx.defs knows; anything else needs a handler or stays unknown.
ONNX_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training")


@lru_cache(maxsize=4096)
def get_schema(op_type: str, domain: str, version: int) -> onnx.defs.OpSchema | None:
    """The schema ONNX would use for this op at this opset (None if unknown)."""
    import onnx

    try:
        return onnx.defs.get_schema(op_type, max_inclusive_version=version, domain=domain)
    except Exception:
        pass
    if domain != "":
        return None
    # onnxruntime's optimiser writes some ONNX-domain ops into graphs whose opset predates them
    # (it fuses LayerNormalization into opset-12 exports): its current schema describes it.
    try:
        return onnx.defs.get_schema(op_type, domain=domain)
    except Exception:
        return None


# Unary ops whose output has the input's type and shape whatever their attributes (ONNX's
# inference for them copies the input's). On a float tensor the answer needs no protobuf round
# trip through onnx, which is most of the walk's time on long activation chains; any other input
# (an int tensor some of them refuse, a sequence) still goes through ONNX's own inference.
_SAME_AS_INPUT = frozenset(
    {"Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu"}
    | {"Softplus", "Softsign", "Mish", "ThresholdedRelu", "Abs", "Neg", "Exp", "Log", "Sqrt"}
    | {"Reciprocal", "Floor", "Ceil", "Erf", "Sin", "Cos", "Identity"}
)
# the types every listed op accepts at every opset (bfloat16 came later, and not to all)
_FLOATS = frozenset({1, 10, 11})  # TensorProto FLOAT, FLOAT16, DOUBLE
# Binary float arithmetic with numpy-style broadcasting from opset 7 (earlier opsets had the
# `broadcast`/`axis` attributes): a third of the remaining nodes of small trained models.
_BROADCAST = frozenset({"Add", "Sub", "Mul", "Div"})


def _broadcast(a: TensorInfo, b: TensorInfo) -> TensorInfo | None:
    """The output of a float Add/Sub/Mul/Div on two known static shapes, as ONNX infers it;
    None (ONNX's own inference decides, and names a conflict) for anything else."""
    if a.kind != "tensor" or a.elem_type not in _FLOATS or b.elem_type != a.elem_type:
        return None
    x, y = a.static_shape, b.static_shape
    if x is None or y is None or b.kind != "tensor" or min((*x, *y, 0)) < 0:
        return None
    n = max(len(x), len(y))
    x, y = (1,) * (n - len(x)) + x, (1,) * (n - len(y)) + y
    out = []
    for p, q in zip(x, y, strict=True):
        if p != q and p != 1 and q != 1:
            return None
        out.append(q if p == 1 else p)
    return TensorInfo(elem_type=a.elem_type, shape=tuple(out))


def fast_outputs(
    node: onnx.NodeProto | NodeLike, inputs: Sequence[TensorInfo], opsets: dict[str, int]
) -> list[TensorInfo] | None:
    """The outputs of the ops whose answer needs no round trip through onnx (an op with a
    schema at this opset); None when onnx's own inference must decide."""
    domain = "" if node.domain == "ai.onnx" else node.domain
    if domain == "" and node.op_type in _SAME_AS_INPUT and len(node.output) == 1:
        x = inputs[0] if len(inputs) == 1 and node.input[0] else UNKNOWN
        shape = x.shape if x.kind == "tensor" and x.elem_type in _FLOATS else None
        # a negative dim goes the slow way, to the check that refuses it
        if shape is not None and all(not isinstance(d, int) or d >= 0 for d in shape):
            return [TensorInfo(elem_type=x.elem_type, shape=shape)]
    if (
        domain == ""
        and node.op_type in _BROADCAST
        and len(inputs) == 2
        and all(node.input)
        and len(node.output) == 1
        and opsets.get("", opsets.get("ai.onnx", 1)) >= 7
    ):
        fast = _broadcast(inputs[0], inputs[1])
        if fast is not None:
            return [fast]
    return None


def infer_outputs(
    node: onnx.NodeProto,
    inputs: Sequence[TensorInfo],
    opsets: dict[str, int],
    conflicts: list[str] | None = None,
) -> list[TensorInfo] | None:
    """Output infos by ONNX's schema inference; None when the op has no schema here.

    When inference rejects inputs whose shapes are all known, the node cannot run on them:
    ONNX's reason is appended to ``conflicts``.
    """
    domain = "" if node.domain == "ai.onnx" else node.domain
    schema = get_schema(node.op_type, domain, opsets.get(domain, opsets.get("ai.onnx", 1)))
    if schema is None:
        return None
    fast = fast_outputs(node, inputs, opsets)
    if fast is not None:
        return fast
    import onnx
    from onnx import numpy_helper

    types: dict[str, onnx.TypeProto] = {}
    data: dict[str, onnx.TensorProto] = {}
    for name, info in zip(node.input, inputs, strict=True):
        if not name:
            continue
        tp = type_from_info(info)
        if tp is None:
            continue
        types[name] = tp
        if info.value is not None:
            with contextlib.suppress(Exception):  # exotic dtypes: shape inference still runs
                data[name] = numpy_helper.from_array(info.value.array(), name)
    opset_protos = [onnx.helper.make_opsetid(d, v) for d, v in opsets.items()]
    try:
        out = onnx.shape_inference.infer_node_outputs(
            schema, node, types, input_data=data, opset_imports=opset_protos
        )
    except Exception as exc:
        # Inference rejects partial information (an input with unknown type, a symbol clash):
        # the outputs stay unknown rather than guessed.
        present = [info for name, info in zip(node.input, inputs, strict=True) if name]
        if conflicts is not None and all(i.static_shape is not None for i in present):
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            conflicts.append(reason.removeprefix("[ShapeInferenceError] ")[:200])
        return [UNKNOWN for _ in node.output]
    outs = [info_from_type(out[name]) if name in out else UNKNOWN for name in node.output]
    if node.op_type == "Reshape" and domain == "" and outs:
        # ONNX's inference takes a constant target shape on trust; a runtime refuses a target
        # that does not hold the input's elements (a Reshape baked at another input size).
        a, b = inputs[0].static_shape, outs[0].static_shape
        if a is not None and b is not None and prod(a) != prod(b):
            if conflicts is not None:
                conflicts.append(f"{a} and {b} differ in size")
            return [UNKNOWN for _ in node.output]
    return outs
