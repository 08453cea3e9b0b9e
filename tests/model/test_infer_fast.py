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
