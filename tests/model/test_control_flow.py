"""Subgraphs, functions and computed weights: what is walked, what counts, and how it is labelled.

Numbers are worked out by hand in each test; where onnxruntime can run the model, its output
shapes are the oracle for the shapes resolved inside subgraphs and function bodies.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from convaudit import Config, scan
from convaudit.model.analyse import analyse
from convaudit.records import Layer, ModelFacts
from convaudit.report.json_report import render

F = TensorProto.FLOAT
RNG = np.random.default_rng(1)

# 3x3 conv 8->16 on 10x10 (pad 1): 16*100*8*9; 1x1 conv 8->16: 16*100*8
MACS_3X3 = 16 * 100 * 8 * 9
MACS_1X1 = 16 * 100 * 8


def weight(name: str, shape: Sequence[int], dtype: Any = np.float32) -> TensorProto:
    return numpy_helper.from_array(RNG.standard_normal(shape).astype(dtype), name)


def ints(name: str, values: Any, dtype: Any = np.int64) -> TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=dtype), name)


def save(
    tmp_path: Path,
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: Sequence[str],
    inits: list[TensorProto],
    *,
    functions: Sequence[onnx.FunctionProto] = (),
    extra_opsets: Sequence[tuple[str, int]] = (),
) -> Path:
    graph = helper.make_graph(
        nodes,
        "main",
        inputs,
        [helper.make_tensor_value_info(o, F, None) for o in outputs],
        initializer=inits,
    )
    opsets = [helper.make_opsetid("", 18)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    model = helper.make_model(graph, opset_imports=opsets, functions=list(functions))
    model.ir_version = 9
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    return path


def x_input(name: str = "x", shape: Sequence[int | str] = (1, 8, 10, 10)) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, F, list(shape))


def branch(name: str, kernel: int, out: str) -> onnx.GraphProto:
    """A subgraph with one conv over the outer-scope ``x`` and outer weight ``W<kernel>``."""
    pad = kernel // 2
    node = helper.make_node("Conv", ["x", f"W{kernel}"], [out], name=f"{name}_conv", pads=[pad] * 4)
    return helper.make_graph([node], name, [], [helper.make_tensor_value_info(out, F, None)])


def if_node(name: str, cond: str, out: str) -> onnx.NodeProto:
    return helper.make_node(
        "If",
        [cond],
        [out],
        name=name,
        then_branch=branch("then", 3, "t"),
        else_branch=branch("else", 1, "e"),
    )


def by_name(facts: ModelFacts) -> dict[str, Layer]:
    return {layer.name: layer for layer in facts.layers}


def ort_output_shape(path: Path, feeds: dict[str, np.ndarray]) -> tuple[int, ...]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return tuple(sess.run(None, feeds)[0].shape)


# -- If -----------------------------------------------------------------------------------------
def test_if_walks_both_branches_and_counts_the_costlier(tmp_path: Path) -> None:
    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    path = save(
        tmp_path,
        [if_node("gate", "cond", "y")],
        [x_input(), cond],
        ["y"],
        [weight("W3", (16, 8, 3, 3)), weight("W1", (16, 8, 1, 1))],
    )
    facts = analyse(path)
    layers = by_name(facts)
    assert layers["then_conv"].graph == "main/gate.then_branch"
    assert layers["else_conv"].graph == "main/gate.else_branch"
    assert layers["then_conv"].macs == MACS_3X3
    assert layers["else_conv"].macs == MACS_1X1
    assert layers["then_conv"].counted and not layers["else_conv"].counted
    assert facts.totals.macs == MACS_3X3
    assert facts.totals.layers == 1
    assert layers["else_conv"].mac_share == 0.0
    assert layers["then_conv"].mac_share == 1.0
    # both branches' shapes are the real ones
    feeds = {"x": RNG.standard_normal((1, 8, 10, 10)).astype(np.float32)}
    for value in (True, False):
        shape = ort_output_shape(path, {**feeds, "cond": np.array(value)})
        assert shape == layers["then_conv"].output_shape == layers["else_conv"].output_shape


@pytest.mark.parametrize(("value", "taken"), [(True, "then_conv"), (False, "else_conv")])
def test_if_constant_condition_selects_the_branch(tmp_path: Path, value: bool, taken: str) -> None:
    path = save(
        tmp_path,
        [if_node("gate", "cond", "y")],
        [x_input()],
        ["y"],
        [
            weight("W3", (16, 8, 3, 3)),
            weight("W1", (16, 8, 1, 1)),
            numpy_helper.from_array(np.array(value), "cond"),
        ],
    )
    facts = analyse(path)
    assert [x.name for x in facts.layers if x.counted] == [taken]
    assert facts.totals.macs == (MACS_3X3 if value else MACS_1X1)


def test_if_condition_computed_from_shapes_selects_the_branch(tmp_path: Path) -> None:
    # cond = (Shape(x)[2] == 10): folded to a constant, so the cheaper else is never taken.
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "two"], ["h"]),
        helper.make_node("Equal", ["h", "ten"], ["cond"]),
        if_node("gate", "cond", "y"),
    ]
    inits = [
        weight("W3", (16, 8, 3, 3)),
        weight("W1", (16, 8, 1, 1)),
        ints("two", 2),
        ints("ten", 11),
    ]
    facts = analyse(save(tmp_path, nodes, [x_input()], ["y"], inits))
    assert [x.name for x in facts.layers if x.counted] == ["else_conv"]
    assert facts.totals.macs == MACS_1X1


def test_nested_if_labels_and_costlier_path(tmp_path: Path) -> None:
    inner = helper.make_node(
        "If",
        ["c2"],
        ["t"],
        name="inner",
        then_branch=branch("then", 3, "it"),
        else_branch=branch("else", 1, "ie"),
    )
    # outer then: the inner If (costlier branch 3x3); outer else: a 1x1 conv plus a 3x3 conv
    then_g = helper.make_graph([inner], "then", [], [helper.make_tensor_value_info("t", F, None)])
    else_nodes = [
        helper.make_node("Conv", ["x", "W1"], ["e1"], name="outer_else_1x1"),
        helper.make_node("Conv", ["x", "W3"], ["e"], name="outer_else_3x3", pads=[1] * 4),
        helper.make_node("Add", ["e", "e1"], ["e2"]),
    ]
    else_g = helper.make_graph(
        else_nodes, "else", [], [helper.make_tensor_value_info("e2", F, None)]
    )
    outer = helper.make_node(
        "If", ["c1"], ["y"], name="outer", then_branch=then_g, else_branch=else_g
    )
    inputs = [
        x_input(),
        helper.make_tensor_value_info("c1", TensorProto.BOOL, []),
        helper.make_tensor_value_info("c2", TensorProto.BOOL, []),
    ]
    inits = [weight("W3", (16, 8, 3, 3)), weight("W1", (16, 8, 1, 1))]
    facts = analyse(save(tmp_path, [outer], inputs, ["y"], inits))
    layers = by_name(facts)
    assert layers["then_conv"].graph == "main/outer.then_branch/inner.then_branch"
    assert layers["else_conv"].graph == "main/outer.then_branch/inner.else_branch"
    assert layers["outer_else_3x3"].graph == "main/outer.else_branch"
    # outer then costs max(3x3, 1x1) = 3x3; outer else costs 3x3 + 1x1: the else wins
    assert facts.totals.macs == MACS_3X3 + MACS_1X1
    counted = sorted(x.name for x in facts.layers if x.counted)
    assert counted == ["outer_else_1x1", "outer_else_3x3"]


# -- Loop and Scan --------------------------------------------------------------------------------
def loop_body(extra: Sequence[onnx.NodeProto] = ()) -> onnx.GraphProto:
    """Loop body: a 3x3 conv over the outer x each iteration, emitted as a scan output."""
    nodes = [
        helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        helper.make_node("Conv", ["x", "W3"], ["c"], name="body_conv", pads=[1] * 4),
        *extra,
    ]
    return helper.make_graph(
        nodes,
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("c", F, None),
        ],
    )


def test_loop_static_trip_count_multiplies(tmp_path: Path) -> None:
    node = helper.make_node("Loop", ["M", "keep"], ["ys"], name="repeat", body=loop_body())
    inits = [
        weight("W3", (16, 8, 3, 3)),
        ints("M", 5),
        numpy_helper.from_array(np.array(True), "keep"),
    ]
    path = save(tmp_path, [node], [x_input()], ["ys"], inits)
    facts = analyse(path)
    (layer,) = facts.layers
    assert layer.graph == "main/repeat.body"
    assert layer.macs == MACS_3X3
    assert layer.multiplier == 5
    assert layer.total_macs == 5 * MACS_3X3
    assert facts.totals.macs == 5 * MACS_3X3
    assert facts.totals.params == 16 * 8 * 9  # executions do not multiply weights
    assert not [p for p in facts.problems if p.kind == "dynamic-trip-count"]
    row = json.loads(render(scan(path, Config())))["reports"][0]["layers"][0]
    assert (row["macs"], row["macs_per_execution"], row["executions"]) == (
        5 * MACS_3X3,
        MACS_3X3,
        5,
    )
    # the stacked scan output: 5 iterations of (1, 16, 10, 10)
    feeds = {"x": RNG.standard_normal((1, 8, 10, 10)).astype(np.float32)}
    assert ort_output_shape(path, feeds) == (5, 1, 16, 10, 10)
    assert facts.outputs["ys"] == (5, 1, 16, 10, 10)


def test_loop_trip_count_from_shape_arithmetic(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "one"], ["m"]),  # 8 channels -> 8 trips
        helper.make_node("Loop", ["m", ""], ["ys"], name="per_channel", body=loop_body()),
    ]
    inits = [weight("W3", (16, 8, 3, 3)), ints("one", 1)]
    facts = analyse(save(tmp_path, nodes, [x_input()], ["ys"], inits))
    (layer,) = facts.layers
    assert layer.multiplier == 8
    assert facts.totals.macs == 8 * MACS_3X3


def test_loop_dynamic_trip_count_is_counted_once_with_a_note(tmp_path: Path) -> None:
    node = helper.make_node("Loop", ["M", ""], ["ys"], name="until", body=loop_body())
    trips = helper.make_tensor_value_info("M", TensorProto.INT64, [])
    facts = analyse(
        save(tmp_path, [node], [x_input(), trips], ["ys"], [weight("W3", (16, 8, 3, 3))])
    )
    (layer,) = facts.layers
    assert layer.multiplier == 1
    assert facts.totals.macs == MACS_3X3
    (note,) = [p for p in facts.problems if p.kind == "dynamic-trip-count"]
    assert note.node == "until"
    assert "counted once" in note.message


def test_scan_multiplies_by_sequence_length(tmp_path: Path) -> None:
    # h_t = h_{t-1} + x_t @ W over 7 steps of x_t (1, 4), W (4, 8)
    body = helper.make_graph(
        [
            helper.make_node("MatMul", ["x_t", "W"], ["p"], name="step_proj"),
            helper.make_node("Add", ["h", "p"], ["h2"]),
            helper.make_node("Identity", ["h2"], ["out_t"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("h", F, [1, 8]),
            helper.make_tensor_value_info("x_t", F, [1, 4]),
        ],
        [
            helper.make_tensor_value_info("h2", F, [1, 8]),
            helper.make_tensor_value_info("out_t", F, [1, 8]),
        ],
    )
    node = helper.make_node(
        "Scan", ["h0", "xs"], ["hT", "hs"], name="rnn", body=body, num_scan_inputs=1
    )
    inputs = [
        helper.make_tensor_value_info("h0", F, [1, 8]),
        helper.make_tensor_value_info("xs", F, [7, 1, 4]),
    ]
    path = save(tmp_path, [node], inputs, ["hT", "hs"], [weight("W", (4, 8))])
    facts = analyse(path)
    (layer,) = facts.layers
    assert layer.graph == "main/rnn.body"
    assert layer.output_shape == (1, 8)
    assert layer.macs == 1 * 8 * 4
    assert layer.multiplier == 7
    assert facts.totals.macs == 7 * 32
    assert facts.outputs["hs"] == (7, 1, 8)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {
        "h0": np.zeros((1, 8), np.float32),
        "xs": RNG.standard_normal((7, 1, 4)).astype(np.float32),
    }
    assert sess.run(None, feeds)[1].shape == (7, 1, 8)


def test_if_inside_loop_inherits_the_multiplier(tmp_path: Path) -> None:
    gate = if_node("gate", "flag", "g")
    body = loop_body([gate])
    body.output.append(helper.make_tensor_value_info("g", F, None))
    node = helper.make_node("Loop", ["M", ""], ["ys", "gs"], name="repeat", body=body)
    inits = [weight("W3", (16, 8, 3, 3)), weight("W1", (16, 8, 1, 1)), ints("M", 3)]
    flag = helper.make_tensor_value_info("flag", TensorProto.BOOL, [])
    facts = analyse(save(tmp_path, [node], [x_input(), flag], ["ys", "gs"], inits))
    layers = by_name(facts)
    assert layers["then_conv"].graph == "main/repeat.body/gate.then_branch"
    assert layers["then_conv"].multiplier == 3
    assert layers["body_conv"].multiplier == 3
    assert facts.totals.macs == 3 * (MACS_3X3 + MACS_3X3)


# -- model-local functions ------------------------------------------------------------------------
def conv_block() -> onnx.FunctionProto:
    """custom.ConvBlock(X, W) = Relu(Conv(X, W)) with strides bound from the call's ``stride``."""
    conv = helper.make_node("Conv", ["X", "W"], ["C"], name="block_conv")
    ref = onnx.AttributeProto()
    ref.name, ref.ref_attr_name, ref.type = "strides", "stride", onnx.AttributeProto.INTS
    conv.attribute.append(ref)
    relu = helper.make_node("Relu", ["C"], ["Y"])
    return helper.make_function(
        "custom",
        "ConvBlock",
        ["X", "W"],
        ["Y"],
        [conv, relu],
        [helper.make_opsetid("", 18)],
        attributes=["stride"],
    )


def test_function_per_call_site_with_bound_attributes(tmp_path: Path) -> None:
    nodes = [
        helper.make_node(
            "ConvBlock", ["x", "Wa"], ["a"], name="block1", domain="custom", stride=[1, 1]
        ),
        helper.make_node(
            "ConvBlock", ["a", "Wb"], ["y"], name="block2", domain="custom", stride=[2, 2]
        ),
    ]
    inits = [weight("Wa", (16, 8, 3, 3)), weight("Wb", (4, 16, 1, 1))]
    path = save(
        tmp_path,
        nodes,
        [x_input()],
        ["y"],
        inits,
        functions=[conv_block()],
        extra_opsets=[("custom", 1)],
    )
    facts = analyse(path)
    assert facts.problems == ()
    first, second = facts.layers
    assert first.graph == "function:custom.ConvBlock@block1"
    assert second.graph == "function:custom.ConvBlock@block2"
    assert first.output_shape == (1, 16, 8, 8)
    assert first.strides == (1, 1) and second.strides == (2, 2)
    assert second.output_shape == (1, 4, 4, 4)
    assert first.macs == 16 * 64 * 8 * 9
    assert second.macs == 4 * 16 * 16
    assert facts.totals.params == 16 * 8 * 9 + 4 * 16
    feeds = {"x": RNG.standard_normal((1, 8, 10, 10)).astype(np.float32)}
    assert ort_output_shape(path, feeds) == (1, 4, 4, 4)
    # the DiGraph links the first call's conv, through its Relu, to the second call's conv
    g = facts.graph
    (relu,) = g.successors(first.node_id)
    assert g.nodes[relu]["op_type"] == "Relu"
    assert second.node_id in g.successors(relu)


def test_function_weights_passed_twice_count_once(tmp_path: Path) -> None:
    nodes = [
        helper.make_node(
            "ConvBlock", ["x", "Wa"], ["a"], name="b1", domain="custom", stride=[1, 1]
        ),
        helper.make_node(
            "ConvBlock", ["x", "Wa"], ["b"], name="b2", domain="custom", stride=[1, 1]
        ),
        helper.make_node("Add", ["a", "b"], ["y"]),
    ]
    path = save(
        tmp_path,
        nodes,
        [x_input()],
        ["y"],
        [weight("Wa", (16, 8, 3, 3))],
        functions=[conv_block()],
        extra_opsets=[("custom", 1)],
    )
    facts = analyse(path)
    assert len(facts.layers) == 2
    assert facts.totals.params == 16 * 8 * 9


# -- weights that are not initializers -------------------------------------------------------------
def _conv_on(w: str) -> onnx.NodeProto:
    return helper.make_node("Conv", ["x", w], ["y"], name="conv", pads=[1] * 4)


def test_weight_from_constant_node(tmp_path: Path) -> None:
    w = numpy_helper.from_array(RNG.standard_normal((16, 8, 3, 3)).astype(np.float32))
    nodes = [helper.make_node("Constant", [], ["W"], value=w), _conv_on("W")]
    facts = analyse(save(tmp_path, nodes, [x_input()], ["y"], []))
    (layer,) = facts.layers
    assert layer.weight_shape == (16, 8, 3, 3)
    assert (layer.params, layer.macs) == (16 * 8 * 9, MACS_3X3)
    assert facts.totals.params == 1152
    assert layer.weight_bytes == 1152 * 4


def test_weight_from_constant_of_shape(tmp_path: Path) -> None:
    nodes = [
        helper.make_node(
            "ConstantOfShape", ["wshape"], ["W"], value=helper.make_tensor("v", F, [1], [0.02])
        ),
        _conv_on("W"),
    ]
    facts = analyse(save(tmp_path, nodes, [x_input()], ["y"], [ints("wshape", [16, 8, 3, 3])]))
    (layer,) = facts.layers
    assert (layer.params, layer.macs) == (1152, MACS_3X3)
    assert layer.weight_bytes == 1152 * 4


def test_weight_from_reshape_of_a_constant(tmp_path: Path) -> None:
    nodes = [helper.make_node("Reshape", ["flat", "wshape"], ["W"]), _conv_on("W")]
    inits = [weight("flat", (1152,)), ints("wshape", [16, -1, 3, 3])]
    facts = analyse(save(tmp_path, nodes, [x_input()], ["y"], inits))
    (layer,) = facts.layers
    assert layer.weight_shape == (16, 8, 3, 3)
    assert (layer.params, layer.macs) == (1152, MACS_3X3)


def test_weight_from_dequantize_linear(tmp_path: Path) -> None:
    q = numpy_helper.from_array(RNG.integers(-8, 8, (16, 8, 3, 3)).astype(np.int8), "Wq")
    scale = numpy_helper.from_array(np.full(16, 0.1, np.float32), "ws")
    nodes = [helper.make_node("DequantizeLinear", ["Wq", "ws"], ["W"], axis=0), _conv_on("W")]
    path = save(tmp_path, nodes, [x_input()], ["y"], [q, scale])
    facts = analyse(path)
    (layer,) = facts.layers
    assert layer.weight_shape == (16, 8, 3, 3)
    assert (layer.params, layer.macs) == (1152, MACS_3X3)
    assert layer.weight_dtype == "float32"  # what the conv reads
    assert layer.weight_bytes == 1152  # what the file stores: int8
    assert facts.totals.weight_bytes == 1152
    feeds = {"x": RNG.standard_normal((1, 8, 10, 10)).astype(np.float32)}
    assert ort_output_shape(path, feeds) == layer.output_shape


def test_weight_sized_constant_of_shape_is_never_materialised(tmp_path: Path) -> None:
    # A 25088x4096 classifier built by ConstantOfShape (as in light_vgg19): 411 MB if folded.
    nodes = [
        helper.make_node(
            "ConstantOfShape", ["wshape"], ["W"], value=helper.make_tensor("v", F, [1], [0.02])
        ),
        helper.make_node("MatMul", ["x", "W"], ["y"], name="fc"),
    ]
    inputs = [helper.make_tensor_value_info("x", F, [1, 25088])]
    path = save(tmp_path, nodes, inputs, ["y"], [ints("wshape", [25088, 4096])])
    tracemalloc.start()
    try:
        facts = analyse(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert facts.layers[0].params == 25088 * 4096
    assert facts.layers[0].macs == 25088 * 4096
    assert peak < 50 * 2**20


def test_shared_weight_counts_once(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Conv", ["x", "W3"], ["a"], name="first", pads=[1] * 4),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Conv", ["x", "W3"], ["b"], name="second", pads=[1] * 4),
        helper.make_node("Add", ["r", "b"], ["y"]),
    ]
    facts = analyse(save(tmp_path, nodes, [x_input()], ["y"], [weight("W3", (16, 8, 3, 3))]))
    assert [x.params for x in facts.layers] == [1152, 1152]
    assert facts.totals.params == 1152
    assert facts.totals.weight_bytes == 1152 * 4
    assert facts.totals.conv_params == 1152
    assert facts.totals.macs == 2 * MACS_3X3


def test_shared_weight_through_identity_counts_once(tmp_path: Path) -> None:
    # The legacy PyTorch exporter fans one de-duplicated initializer out through Identity nodes.
    nodes = [
        helper.make_node("Identity", ["W3"], ["W3_copy"]),
        helper.make_node("Conv", ["x", "W3"], ["a"], name="first", pads=[1] * 4),
        helper.make_node("Conv", ["x", "W3_copy"], ["b"], name="second", pads=[1] * 4),
        helper.make_node("Add", ["a", "b"], ["y"]),
    ]
    facts = analyse(save(tmp_path, nodes, [x_input()], ["y"], [weight("W3", (16, 8, 3, 3))]))
    assert facts.totals.params == 1152
    assert facts.totals.weight_bytes == 1152 * 4


def test_shared_weight_in_both_if_branches_and_main(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Conv", ["x", "W3"], ["pre"], name="pre", pads=[1] * 4),
        if_node("gate", "cond", "y"),
    ]
    inits = [weight("W3", (16, 8, 3, 3)), weight("W1", (16, 8, 1, 1))]
    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    facts = analyse(save(tmp_path, nodes, [x_input(), cond], ["y", "pre"], inits))
    # W3 is used by "pre" and the then-branch conv; W1 only by the uncounted else-branch.
    assert facts.totals.params == 1152


def test_function_call_sites_named_like_paths_keep_their_own_weights(tmp_path: Path) -> None:
    # PyTorch names nodes "/blocks/0/..."; call sites must not share a scope through the "/".
    nodes = [
        helper.make_node(
            "ConvBlock", ["x", "Wa"], ["a"], name="/blocks/0", domain="custom", stride=[1, 1]
        ),
        helper.make_node(
            "ConvBlock", ["x", "Wb"], ["b"], name="/blocks/1", domain="custom", stride=[1, 1]
        ),
        helper.make_node("Add", ["a", "b"], ["y"]),
    ]
    inits = [weight("Wa", (16, 8, 3, 3)), weight("Wb", (16, 8, 3, 3))]
    path = save(
        tmp_path,
        nodes,
        [x_input()],
        ["y"],
        inits,
        functions=[conv_block()],
        extra_opsets=[("custom", 1)],
    )
    facts = analyse(path)
    assert [x.graph for x in facts.layers] == [
        "function:custom.ConvBlock@/blocks/0",
        "function:custom.ConvBlock@/blocks/1",
    ]
    assert facts.totals.params == 2 * 1152
    assert facts.totals.weight_bytes == 2 * 1152 * 4


def test_unnamed_call_sites_in_different_graphs_get_distinct_labels(tmp_path: Path) -> None:
    call = helper.make_node("ConvBlock", ["x", "Wa"], ["t"], domain="custom", stride=[1, 1])
    then_g = helper.make_graph([call], "then", [], [helper.make_tensor_value_info("t", F, None)])
    else_g = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["e"])],
        "else",
        [],
        [helper.make_tensor_value_info("e", F, None)],
    )
    nodes = [
        helper.make_node("ConvBlock", ["x", "Wa"], ["a"], domain="custom", stride=[1, 1]),
        helper.make_node(
            "If", ["cond"], ["y"], name="gate", then_branch=then_g, else_branch=else_g
        ),
    ]
    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    path = save(
        tmp_path,
        nodes,
        [x_input(), cond],
        ["a", "y"],
        [weight("Wa", (16, 8, 3, 3))],
        functions=[conv_block()],
        extra_opsets=[("custom", 1)],
    )
    facts = analyse(path)
    first, second = facts.layers
    assert first.node_id != second.node_id
    assert first.graph == "function:custom.ConvBlock@ConvBlock_0"
    assert second.graph == "function:custom.ConvBlock@ConvBlock_0#2"
    assert facts.totals.macs == 2 * 16 * 64 * 8 * 9
    assert facts.totals.params == 1152  # the same Wa both times
    assert len({n for n in facts.graph.nodes if facts.graph.nodes[n]["op_type"] == "Conv"}) == 2


def test_dead_branch_of_a_constant_if_needs_no_dims(tmp_path: Path) -> None:
    # The else branch reads input z, whose dims are symbols; cond is a constant True, so the
    # else branch never runs and its unresolved shapes must not stop the scan.
    def one_conv(name: str, x: str, out: str) -> onnx.GraphProto:
        node = helper.make_node("Conv", [x, "W1"], [out], name=f"{name}_conv")
        return helper.make_graph([node], name, [], [helper.make_tensor_value_info(out, F, None)])

    node = helper.make_node(
        "If",
        ["cond"],
        ["y"],
        name="gate",
        then_branch=one_conv("then", "x", "t"),
        else_branch=one_conv("else", "z", "e"),
    )
    z = helper.make_tensor_value_info("z", F, ["S", 8, "H", 10])
    inits = [weight("W1", (16, 8, 1, 1)), numpy_helper.from_array(np.array(True), "cond")]
    facts = analyse(save(tmp_path, [node], [x_input(), z], ["y"], inits))
    layers = by_name(facts)
    assert layers["then_conv"].macs == MACS_1X1 and layers["then_conv"].counted
    assert layers["else_conv"].macs is None and not layers["else_conv"].counted
    assert facts.totals.macs == MACS_1X1
    assert facts.totals.unknown_layers == 0


def test_loop_with_a_computed_condition_says_the_count_is_an_upper_bound(tmp_path: Path) -> None:
    # cond_out = ReduceMax(c) > 0: the loop may stop early, so M is only an upper bound.
    extra = [
        helper.make_node("ReduceMax", ["c"], ["m"], keepdims=0),
        helper.make_node("Greater", ["m", "zero"], ["go"]),
    ]
    body = loop_body(extra)
    body.output[0].name = "go"
    node = helper.make_node("Loop", ["M", "keep"], ["ys"], name="search", body=body)
    inits = [
        weight("W3", (16, 8, 3, 3)),
        ints("M", 4),
        numpy_helper.from_array(np.array(True), "keep"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
    ]
    facts = analyse(save(tmp_path, [node], [x_input()], ["ys"], inits))
    assert facts.totals.macs == 4 * MACS_3X3
    (note,) = [p for p in facts.problems if p.kind == "loop-upper-bound"]
    assert note.node == "search" and "upper bound" in note.message


def test_loop_with_a_pass_through_condition_is_exact(tmp_path: Path) -> None:
    node = helper.make_node("Loop", ["M", "keep"], ["ys"], name="repeat", body=loop_body())
    inits = [
        weight("W3", (16, 8, 3, 3)),
        ints("M", 2),
        numpy_helper.from_array(np.array(True), "keep"),
    ]
    facts = analyse(save(tmp_path, [node], [x_input()], ["ys"], inits))
    assert facts.problems == ()
    assert facts.totals.macs == 2 * MACS_3X3


def test_nested_functions_are_walked_per_call_site(tmp_path: Path) -> None:
    inner = helper.make_function(
        "custom",
        "Inner",
        ["X", "W"],
        ["Y"],
        [helper.make_node("Conv", ["X", "W"], ["Y"], name="inner_conv", pads=[1] * 4)],
        [helper.make_opsetid("", 18)],
    )
    outer = helper.make_function(
        "custom",
        "Outer",
        ["X", "W"],
        ["Y"],
        [
            helper.make_node("Inner", ["X", "W"], ["T"], name="call_inner", domain="custom"),
            helper.make_node("Relu", ["T"], ["Y"]),
        ],
        [helper.make_opsetid("", 18), helper.make_opsetid("custom", 1)],
    )
    nodes = [
        helper.make_node("Outer", ["x", "W"], ["a"], name="o1", domain="custom"),
        helper.make_node("Outer", ["a", "W"], ["y"], name="o2", domain="custom"),
    ]
    path = save(
        tmp_path,
        nodes,
        [x_input()],
        ["y"],
        [weight("W", (8, 8, 3, 3))],
        functions=[inner, outer],
        extra_opsets=[("custom", 1)],
    )
    facts = analyse(path)
    assert facts.problems == ()
    assert [x.graph for x in facts.layers] == [
        "function:custom.Inner@call_inner",
        "function:custom.Inner@call_inner#2",
    ]
    assert [x.macs for x in facts.layers] == [8 * 100 * 8 * 9] * 2
    assert facts.totals.params == 8 * 8 * 9  # one W, passed down through both levels
    feeds = {"x": RNG.standard_normal((1, 8, 10, 10)).astype(np.float32)}
    assert ort_output_shape(path, feeds) == facts.layers[1].output_shape


def test_digraph_links_producers_to_consumers_across_subgraphs(tmp_path: Path) -> None:
    # reduce (1x1) -> Relu -> If{then: 3x3 conv over the Relu output}: rules ask "what feeds
    # this conv", through activations and into subgraphs.
    then_node = helper.make_node("Conv", ["r", "W3b"], ["t"], name="then_conv", pads=[1] * 4)
    then_g = helper.make_graph(
        [then_node], "then", [], [helper.make_tensor_value_info("t", F, None)]
    )
    else_g = helper.make_graph(
        [helper.make_node("Identity", ["r"], ["e"])],
        "else",
        [],
        [helper.make_tensor_value_info("e", F, None)],
    )
    nodes = [
        helper.make_node("Conv", ["x", "W1"], ["c"], name="reduce"),
        helper.make_node("Relu", ["c"], ["r"], name="act"),
        helper.make_node(
            "If", ["cond"], ["y"], name="gate", then_branch=then_g, else_branch=else_g
        ),
    ]
    inits = [weight("W1", (4, 8, 1, 1)), weight("W3b", (4, 4, 3, 3))]
    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    facts = analyse(save(tmp_path, nodes, [x_input(), cond], ["y"], inits))
    g = facts.graph
    reduce, conv = by_name(facts)["reduce"], by_name(facts)["then_conv"]
    (act,) = g.predecessors(conv.node_id)
    assert g.nodes[act]["op_type"] == "Relu" and g.nodes[act]["name"] == "act"
    assert list(g.predecessors(act)) == [reduce.node_id]
    assert g.edges[act, conv.node_id]["tensor"] == "r"
    assert g.nodes[conv.node_id]["graph"] == "main/gate.then_branch"
    assert g.nodes[conv.node_id]["attrs"]["pads"] == [1, 1, 1, 1]
    for layer in facts.layers:
        assert facts.layers[g.nodes[layer.node_id]["layer"]] == layer
    assert g.nodes[act]["layer"] is None


def test_qdq_weight_dequantized_twice_counts_once(tmp_path: Path) -> None:
    q = numpy_helper.from_array(RNG.integers(-8, 8, (16, 8, 3, 3)).astype(np.int8), "Wq")
    scale = numpy_helper.from_array(np.array(0.1, np.float32), "ws")
    bias = numpy_helper.from_array(np.zeros(16, np.float32), "b")
    nodes = [
        helper.make_node("DequantizeLinear", ["Wq", "ws"], ["W_a"]),
        helper.make_node("DequantizeLinear", ["Wq", "ws"], ["W_b"]),
        helper.make_node("Conv", ["x", "W_a", "b"], ["a"], name="first", pads=[1] * 4),
        helper.make_node("Conv", ["x", "W_b", "b"], ["c"], name="second", pads=[1] * 4),
        helper.make_node("Add", ["a", "c"], ["y"]),
    ]
    facts = analyse(save(tmp_path, nodes, [x_input()], ["y"], [q, scale, bias]))
    assert [x.weight_bytes for x in facts.layers] == [1152 + 64, 1152 + 64]
    assert facts.totals.params == 1152 + 16  # weight and bias shared by both convs
    assert facts.totals.weight_bytes == 1152 + 64


def test_shared_bias_counts_once_but_own_weights_do_not(tmp_path: Path) -> None:
    # Legacy exports de-duplicate bit-identical tensors: two convs, own weights, one zero bias.
    bias = numpy_helper.from_array(np.zeros(16, np.float32), "zeros16")
    nodes = [
        helper.make_node("Identity", ["zeros16"], ["b2"]),
        helper.make_node("Conv", ["x", "Wa", "zeros16"], ["a"], name="first", pads=[1] * 4),
        helper.make_node("Conv", ["x", "Wb", "b2"], ["c"], name="second", pads=[1] * 4),
        helper.make_node("Add", ["a", "c"], ["y"]),
    ]
    inits = [weight("Wa", (16, 8, 3, 3)), weight("Wb", (16, 8, 3, 3)), bias]
    facts = analyse(save(tmp_path, nodes, [x_input()], ["y"], inits))
    assert [x.params for x in facts.layers] == [1152 + 16] * 2
    assert facts.totals.params == 2 * 1152 + 16
    assert facts.totals.weight_bytes == (2 * 1152 + 16) * 4
