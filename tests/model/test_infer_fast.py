"""The unary ops answered without onnx's inference give exactly what onnx's inference gives."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from convaudit.model.infer import _SAME_AS_INPUT, infer_outputs
from convaudit.model.tensors import TensorInfo, info_from_type, type_from_info


@pytest.mark.parametrize("op", sorted(_SAME_AS_INPUT))
@pytest.mark.parametrize("elem", [TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE])
@pytest.mark.parametrize("shape", [(1, 3, 8, 8), ("n", 16), (None, 4), ()])
def test_fast_answer_equals_onnx_inference(op: str, elem: int, shape: tuple[object, ...]) -> None:
    x = TensorInfo(elem_type=elem, shape=shape)  # type: ignore[arg-type]
    node = helper.make_node(op, ["x"], ["y"])
    opset = 20  # every listed op has a schema by then
    (fast,) = infer_outputs(node, [x], {"": opset}) or [None]
    schema = onnx.defs.get_schema(op, opset, "")
    tp = type_from_info(x)
    assert tp is not None
    out = onnx.shape_inference.infer_node_outputs(
        schema, node, {"x": tp}, opset_imports=[helper.make_opsetid("", opset)]
    )
    assert fast == info_from_type(out["y"])


BROADCAST_CASES = [
    ((1, 3, 8, 8), (1, 3, 8, 8)),
    ((1, 3, 8, 8), (3, 1, 1)),
    ((1, 3, 8, 8), ()),
    ((), (2, 5)),
    ((4, 1), (1, 6)),
    ((2, 1, 7), (5, 1)),
    ((0, 3), (1, 3)),
    ((1, 3, 8, 8), (1, 4, 8, 8)),  # incompatible: ONNX's inference decides (a conflict)
    (("n", 3), (1, 3)),  # symbolic: ONNX's inference decides
]


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("elem", [TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE])
@pytest.mark.parametrize(("a", "b"), BROADCAST_CASES)
def test_broadcast_answer_equals_onnx_inference(
    op: str, elem: int, a: tuple[object, ...], b: tuple[object, ...]
) -> None:
    x = TensorInfo(elem_type=elem, shape=a)  # type: ignore[arg-type]
    y = TensorInfo(elem_type=elem, shape=b)  # type: ignore[arg-type]
    node = helper.make_node(op, ["x", "y"], ["z"])
    opset = 17
    conflicts: list[str] = []
    (fast,) = infer_outputs(node, [x, y], {"": opset}, conflicts) or [None]
    schema = onnx.defs.get_schema(op, opset, "")
    tx, ty = type_from_info(x), type_from_info(y)
    assert tx is not None and ty is not None
    try:
        out = onnx.shape_inference.infer_node_outputs(
            schema, node, {"x": tx, "y": ty}, opset_imports=[helper.make_opsetid("", opset)]
        )
    except Exception:
        assert conflicts and fast is not None and fast.shape is None
        return
    assert not conflicts
    assert fast == info_from_type(out["z"])


def test_broadcast_answer_is_hand_computed() -> None:
    x = TensorInfo(elem_type=TensorProto.FLOAT, shape=(2, 1, 7))
    y = TensorInfo(elem_type=TensorProto.FLOAT, shape=(5, 1))
    node = helper.make_node("Mul", ["x", "y"], ["z"])
    assert infer_outputs(node, [x, y], {"": 17}) == [
        TensorInfo(elem_type=TensorProto.FLOAT, shape=(2, 5, 7))
    ]
