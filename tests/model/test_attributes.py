"""Node attributes as old or odd files store them: untyped (IR 1), empty, references."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from convaudit.errors import ShapeError
from convaudit.model.analyse import analyse


def _grouped_conv(path: Path, edit: str) -> None:
    """Conv 3x3, 16 -> 32, group 4, stride 2, pad 1 on 1x16x8x8, with its attributes edited."""
    w = numpy_helper.from_array(np.zeros((32, 4, 3, 3), np.float32), "w")
    node = helper.make_node(
        "Conv", ["x", "w"], ["y"], name="c", group=4, strides=[2, 2], pads=[1, 1, 1, 1]
    )
    for a in node.attribute:
        if edit == "untyped":
            a.ClearField("type")  # as IR-1 exporters wrote them
        elif edit == "empty" and a.name == "group":
            a.ClearField("type")  # an enum value this onnx does not know also reads as this
            a.ClearField("i")
        elif edit == "reference" and a.name == "strides":
            a.ref_attr_name = "stride"  # only meaningful in a function body
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_untyped_attributes_are_read_by_the_field_they_set(tmp_path: Path) -> None:
    _grouped_conv(tmp_path / "m.onnx", "untyped")
    (layer,) = analyse(tmp_path / "m.onnx").layers
    assert (layer.group, layer.strides, layer.output_shape) == (4, (2, 2), (1, 32, 4, 4))
    # N*Cout*Ho*Wo*(Cin/group)*Kh*Kw = 32*16*4*9
    assert layer.macs == 18_432


def test_unreadable_attributes_fall_back_to_the_default_not_a_crash(tmp_path: Path) -> None:
    _grouped_conv(tmp_path / "a.onnx", "empty")
    # group falls back to 1, against a weight of 4 input channels: a one-line input error
    with pytest.raises(ShapeError, match=r"a\.onnx: node 'c' \(Conv\): its weight .* group 1"):
        analyse(tmp_path / "a.onnx")
    _grouped_conv(tmp_path / "b.onnx", "reference")
    # a function reference outside a function: strides unknown to the formula, while onnx's
    # inference read them; the cost is left unknown with a note, never a made-up number
    (layer,) = analyse(tmp_path / "b.onnx").layers
    assert (layer.group, layer.macs) == (4, None)
    assert layer.note is not None and "differs" in layer.note


@pytest.mark.parametrize(
    ("name", "value", "kind"),
    [
        ("strides", 2, "a list of ints"),
        ("group", [4], "an int"),
        ("group", "SAME_UPPER", "an int"),
        ("dilations", "S", "a list of ints"),
        ("pads", [1.5, 1.5, 1.5, 1.5], "a list of ints"),
    ],
)
def test_attributes_of_the_wrong_type_are_an_invalid_model(
    tmp_path: Path, name: str, value: object, kind: str
) -> None:
    _grouped_conv(tmp_path / "m.onnx", "none")
    model = onnx.load(str(tmp_path / "m.onnx"))
    (node,) = model.graph.node
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend([*kept, helper.make_attribute(name, value)])
    onnx.save(model, str(tmp_path / "m.onnx"))
    pattern = rf"m\.onnx: node 'c' \(Conv\): attribute {name} .* is not {kind}: the model is"
    with pytest.raises(ShapeError, match=pattern):
        analyse(tmp_path / "m.onnx")


def test_an_empty_list_attribute_on_a_contrib_conv_means_absent(tmp_path: Path) -> None:
    # com.microsoft FusedConv is shaped through the standard Conv schema; an empty kernel_shape
    # (a valid INTS attribute) crashed rebuilding that node
    w = numpy_helper.from_array(np.zeros((8, 4, 3, 3), np.float32), "w")
    node = helper.make_node(
        "FusedConv", ["x", "w"], ["y"], name="f", domain="com.microsoft", activation="Relu"
    )
    node.attribute.append(onnx.AttributeProto(name="kernel_shape", type=onnx.AttributeProto.INTS))
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [w],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(tmp_path / "m.onnx"))
    (layer,) = analyse(tmp_path / "m.onnx").layers
    assert layer.output_shape == (1, 8, 4, 4)
    assert layer.macs == 8 * 16 * 4 * 9  # N*Cout*Ho*Wo*Cin*Kh*Kw


def test_a_contrib_conv_attribute_of_the_wrong_type_is_an_invalid_model(tmp_path: Path) -> None:
    w = numpy_helper.from_array(np.zeros((8, 8, 3, 3), np.float32), "w")
    node = helper.make_node(
        "Conv", ["x", "w"], ["y"], name="n", domain="com.microsoft.nchwc", group=[1]
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [w],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft.nchwc", 1)]
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(tmp_path / "m.onnx"))
    pattern = r"m\.onnx: node 'n' \(Conv\): attribute group \[1\] is not an int: the model is"
    with pytest.raises(ShapeError, match=pattern):
        analyse(tmp_path / "m.onnx")


def test_a_computed_dim_beyond_64_bits_is_an_error_not_a_crash(tmp_path: Path) -> None:
    # an NCHWc conv's channels are the weight's times group: 8 * 2**62 > INT64_MAX
    w = numpy_helper.from_array(np.zeros((8, 8, 3, 3), np.float32), "w")
    node = helper.make_node(
        "Conv", ["x", "w"], ["y"], name="n", domain="com.microsoft.nchwc", group=2**62
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [w],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft.nchwc", 1)]
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(tmp_path / "m.onnx"))
    with pytest.raises(ShapeError, match=r"m\.onnx: a computed tensor dim \d+ overflows"):
        analyse(tmp_path / "m.onnx")


def test_a_negative_computed_dim_is_an_invalid_model(tmp_path: Path) -> None:
    # ReorderOutput's channels = -5 gives a (1, -5, 6, 6) tensor; fed to onnx's C++ inference
    # further on, a negative dim aborted the whole process on a std::clamp assertion
    nodes = [
        helper.make_node(
            "ReorderOutput", ["x"], ["r"], name="re", domain="com.microsoft.nchwc", channels=-5
        ),
        helper.make_node("Relu", ["r"], ["y"], name="relu"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft.nchwc", 1)]
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(tmp_path / "m.onnx"))
    with pytest.raises(ShapeError, match=r"m\.onnx: a computed tensor dim -5 is negative"):
        analyse(tmp_path / "m.onnx")
