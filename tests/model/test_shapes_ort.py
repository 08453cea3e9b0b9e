"""Resolved shapes against onnxruntime's actual output shapes on synthetic models.

Each model is built with onnx.helper in tmp_path; every costed layer's output is exposed as a
graph output and the model is run with seeded random inputs. The shape onnxruntime produces is
the oracle for the shape convaudit resolved statically; MACs are checked against hand formulas.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from math import prod
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from convaudit.errors import ShapeError
from convaudit.model.analyse import analyse
from convaudit.records import Layer, ModelFacts

F = TensorProto.FLOAT
RNG = np.random.default_rng(0)
NP_TYPES = {F: np.float32, TensorProto.UINT8: np.uint8, TensorProto.INT8: np.int8}


def weight(name: str, shape: Sequence[int], dtype: Any = np.float32) -> TensorProto:
    if np.issubdtype(dtype, np.integer):
        return numpy_helper.from_array(RNG.integers(0, 5, size=shape).astype(dtype), name)
    return numpy_helper.from_array(RNG.standard_normal(shape).astype(dtype), name)


def const(name: str, values: Sequence[Any], dtype: Any = np.int64) -> TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=dtype), name)


def build(
    tmp_path: Path,
    nodes: list[onnx.NodeProto],
    inputs: Mapping[str, Sequence[int | str]],
    inits: list[TensorProto],
    *,
    elem: int = F,
    opset: int = 19,
    extra_opsets: Sequence[tuple[str, int]] = (),
    name: str = "model.onnx",
    out_elem: int | None = None,
) -> Path:
    """A model whose last node's output is the graph output (typed, shape left open)."""
    outs = [o for n in nodes for o in n.output if o]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(k, elem, list(v)) for k, v in inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs[-1:]],
        initializer=inits,
    )
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 9
    # Type the output (onnxruntime needs its element type; its shape is left for ORT to find).
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type.tensor_type.elem_type for vi in inferred.graph.value_info}
    types.update({vi.name: vi.type.tensor_type.elem_type for vi in inferred.graph.output})
    model.graph.output[0].type.tensor_type.elem_type = out_elem or types.get(outs[-1]) or elem
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def ort_shapes(
    path: Path, tensors: Sequence[str], feeds: Mapping[str, tuple[int, ...]]
) -> dict[str, tuple[int, ...]]:
    """onnxruntime's actual shapes of the named tensors, on seeded random inputs."""
    model = onnx.load(str(path))
    # Element types only (onnxruntime needs them on outputs); the shapes stay for ORT to find.
    inferred = onnx.shape_inference.infer_shapes(model)
    elem = {vi.name: vi.type.tensor_type.elem_type for vi in inferred.graph.value_info}
    elem.update({vi.name: vi.type.tensor_type.elem_type for vi in inferred.graph.output})
    wanted = list(dict.fromkeys([*tensors, *(o.name for o in model.graph.output)]))
    del model.graph.output[:]
    for name in wanted:
        model.graph.output.append(helper.make_tensor_value_info(name, elem.get(name) or F, None))
    inputs = {vi.name: vi.type.tensor_type.elem_type for vi in model.graph.input}
    data = {}
    for name, shape in feeds.items():
        dtype = NP_TYPES[inputs[name]]
        if np.issubdtype(dtype, np.integer):
            data[name] = RNG.integers(0, 255, size=shape).astype(dtype)
        else:
            data[name] = RNG.standard_normal(shape).astype(dtype)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    results = sess.run(names, data)
    return {n: tuple(r.shape) for n, r in zip(names, results, strict=True)}


def check_against_ort(
    path: Path,
    feeds: Mapping[str, tuple[int, ...]],
    *,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    dims: Mapping[str, int] | None = None,
) -> ModelFacts:
    """Scan ``path`` and assert every layer's output shape is what onnxruntime produces."""
    facts = analyse(path, input_shapes=input_shapes, dims=dims)
    assert facts.layers, "no costed layer found"
    actual = ort_shapes(path, [x.outputs[0] for x in facts.layers], feeds)
    for layer in facts.layers:
        assert layer.note is None, f"{layer.name}: {layer.note}"
        assert layer.output_shape == actual[layer.outputs[0]], layer.name
        assert layer.macs is not None
    return facts


def conv_hand_macs(layer: Layer) -> int:
    """N * Cout * prod(out spatial) * Cin/g * prod(kernel), from the layer's own shapes."""
    assert layer.output_shape and layer.weight_shape
    return prod(layer.output_shape) * prod(layer.weight_shape[1:])


def conv(name: str, x: str, w: str, b: str | None = None, **attrs: Any) -> onnx.NodeProto:
    inputs = [x, w] + ([b] if b else [])
    return helper.make_node("Conv", inputs, [name], name=name, **attrs)


# -- Conv variants --------------------------------------------------------------------------
CONV_CASES = {
    "1d_stride_dilation_pads": (
        (1, 4, 50),
        (8, 4, 5),
        {"strides": [2], "pads": [1, 2], "dilations": [2]},
    ),
    "2d_groups_asym": (
        (2, 8, 15, 17),
        (12, 2, 3, 3),
        {"group": 4, "strides": [2, 1], "pads": [1, 0, 2, 1]},
    ),
    "2d_depthwise": (
        (1, 16, 20, 20),
        (16, 1, 3, 3),
        {"group": 16, "strides": [2, 2], "pads": [1, 1, 1, 1]},
    ),
    "2d_depthwise_multiplier": ((1, 4, 9, 9), (8, 1, 3, 3), {"group": 4}),
    "2d_dilated": ((1, 3, 33, 31), (5, 3, 3, 3), {"dilations": [2, 3], "pads": [2, 3, 2, 3]}),
    "2d_strided_even_kernel": ((1, 3, 31, 31), (8, 3, 4, 4), {"strides": [3, 2]}),
    "2d_no_attrs": ((1, 3, 12, 10), (4, 3, 3, 3), {}),
    "3d": ((1, 4, 6, 9, 10), (6, 4, 2, 3, 3), {"strides": [1, 2, 2], "pads": [0, 1, 1, 1, 0, 1]}),
    "3d_groups_dilated": ((1, 4, 9, 9, 9), (4, 2, 3, 3, 3), {"group": 2, "dilations": [2, 1, 2]}),
    "same_upper": ((1, 3, 15, 16), (4, 3, 4, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 3]}),
    "same_lower": ((1, 3, 15, 16), (4, 3, 4, 3), {"auto_pad": "SAME_LOWER", "strides": [2, 3]}),
    "valid": ((1, 3, 15, 16), (4, 3, 4, 3), {"auto_pad": "VALID", "strides": [2, 3]}),
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv_variants_match_onnxruntime(tmp_path: Path, case: str) -> None:
    x_shape, w_shape, attrs = CONV_CASES[case]
    inits = [weight("W", w_shape), weight("B", (w_shape[0],))]
    path = build(tmp_path, [conv("y", "x", "W", "B", **attrs)], {"x": x_shape}, inits)
    facts = check_against_ort(path, {"x": x_shape})
    (layer,) = facts.layers
    assert layer.macs == conv_hand_macs(layer)
    assert layer.params == prod(w_shape) + w_shape[0]
    assert layer.bias_adds == prod(layer.output_shape or ())


def test_auto_pad_reports_the_resolved_pads(tmp_path: Path) -> None:
    # 15 rows, k4, s2: out 8, total pad (8-1)*2+4-15 = 3; 16 cols, k3, s3: out 6, total 2.
    for mode, pads in (("SAME_UPPER", (1, 1, 2, 1)), ("SAME_LOWER", (2, 1, 1, 1))):
        x_shape, w_shape, attrs = CONV_CASES[mode.lower()]
        path = build(
            tmp_path, [conv("y", "x", "W", **attrs)], {"x": x_shape}, [weight("W", w_shape)]
        )
        (layer,) = analyse(path).layers
        assert layer.pads == pads, mode
        assert layer.output_shape == (1, 4, 8, 6)


# -- ConvTranspose ----------------------------------------------------------------------------
CONVT_CASES = {
    "textbook_64_32_k4_s2_p1": (
        (1, 64, 28, 28),
        (64, 32, 4, 4),
        {"strides": [2, 2], "pads": [1, 1, 1, 1]},
    ),
    "output_padding": (
        (1, 4, 7, 9),
        (4, 3, 3, 3),
        {"strides": [3, 2], "pads": [1, 0, 1, 1], "output_padding": [2, 1]},
    ),
    "grouped_dilated": (
        (2, 6, 5, 5),
        (6, 2, 3, 3),
        {"group": 3, "dilations": [2, 2], "strides": [2, 2]},
    ),
    "output_shape": ((1, 4, 7, 7), (4, 2, 3, 3), {"strides": [2, 2], "output_shape": [15, 14]}),
    "auto_pad_same_upper": (
        (1, 4, 7, 6),
        (4, 2, 3, 3),
        {"strides": [2, 2], "auto_pad": "SAME_UPPER"},
    ),
    "1d": ((1, 3, 10), (3, 5, 4), {"strides": [3]}),
    "3d": ((1, 2, 3, 4, 5), (2, 3, 2, 2, 2), {"strides": [2, 2, 2]}),
}


@pytest.mark.parametrize("case", sorted(CONVT_CASES))
def test_conv_transpose_matches_onnxruntime(tmp_path: Path, case: str) -> None:
    x_shape, w_shape, attrs = CONVT_CASES[case]
    cout = w_shape[1] * int(attrs.get("group", 1))
    inits = [weight("W", w_shape), weight("B", (cout,))]
    node = helper.make_node("ConvTranspose", ["x", "W", "B"], ["y"], name="up", **attrs)
    path = build(tmp_path, [node], {"x": x_shape}, inits)
    facts = check_against_ort(path, {"x": x_shape})
    (layer,) = facts.layers
    # every input element is scattered through Cout/g filters of prod(kernel) taps
    assert layer.macs == prod(x_shape) * prod(w_shape[1:])
    assert (layer.in_channels, layer.out_channels) == (w_shape[0], cout)
    assert layer.params == prod(w_shape) + cout


def test_conv_transpose_textbook_is_25_690_112(tmp_path: Path) -> None:
    x_shape, w_shape, attrs = CONVT_CASES["textbook_64_32_k4_s2_p1"]
    node = helper.make_node("ConvTranspose", ["x", "W"], ["y"], **attrs)
    path = build(tmp_path, [node], {"x": x_shape}, [weight("W", w_shape)])
    (layer,) = analyse(path).layers
    assert layer.output_shape == (1, 32, 56, 56)
    assert layer.macs == 25_690_112


# -- quantized convs --------------------------------------------------------------------------
def test_qlinearconv_matches_onnxruntime(tmp_path: Path) -> None:
    inits = [
        weight("W", (8, 2, 3, 3), np.uint8),
        const("xs", 0.1, np.float32),
        const("xz", 3, np.uint8),
        const("ws", 0.05, np.float32),
        const("wz", 2, np.uint8),
        const("ys", 0.2, np.float32),
        const("yz", 1, np.uint8),
        const("B", list(range(8)), np.int32),
    ]
    node = helper.make_node(
        "QLinearConv",
        ["x", "xs", "xz", "W", "ws", "wz", "ys", "yz", "B"],
        ["y"],
        group=2,
        strides=[2, 2],
        pads=[1, 1, 1, 1],
    )
    path = build(tmp_path, [node], {"x": (1, 4, 11, 11)}, inits, elem=TensorProto.UINT8)
    facts = check_against_ort(path, {"x": (1, 4, 11, 11)})
    (layer,) = facts.layers
    assert layer.output_shape == (1, 8, 6, 6)
    assert layer.macs == 8 * 36 * 2 * 9
    assert layer.params == 8 * 2 * 9 + 8
    assert layer.weight_bytes == 144 + 32  # uint8 weights, int32 bias
    assert layer.dtype == "uint8"


def test_convinteger_matches_onnxruntime(tmp_path: Path) -> None:
    inits = [weight("W", (6, 3, 3, 3), np.uint8), const("xz", 1, np.uint8)]
    node = helper.make_node("ConvInteger", ["x", "W", "xz"], ["y"], pads=[0, 1, 0, 1])
    path = build(tmp_path, [node], {"x": (1, 3, 9, 8)}, inits, elem=TensorProto.UINT8)
    facts = check_against_ort(path, {"x": (1, 3, 9, 8)})
    (layer,) = facts.layers
    assert layer.output_shape == (1, 6, 7, 8)
    assert layer.macs == 6 * 56 * 27
    assert layer.params == 162


# -- matmul-like ------------------------------------------------------------------------------
@pytest.mark.parametrize(("ta", "tb"), [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_gemm_transposes(tmp_path: Path, ta: int, tb: int) -> None:
    m, k, n = 3, 20, 7
    a_shape = (k, m) if ta else (m, k)
    b_shape = (n, k) if tb else (k, n)
    node = helper.make_node("Gemm", ["a", "B", "C"], ["y"], transA=ta, transB=tb)
    inits = [weight("B", b_shape), weight("C", (n,))]
    path = build(tmp_path, [node], {"a": a_shape}, inits)
    facts = check_against_ort(path, {"a": a_shape})
    (layer,) = facts.layers
    assert layer.output_shape == (m, n)
    assert layer.macs == m * k * n
    assert layer.params == k * n + n
    assert (layer.in_channels, layer.out_channels) == (k, n)


def test_batched_matmul_and_activation_product(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("MatMul", ["a", "W"], ["h"], name="proj"),  # (2,3,5,8) x (8,6)
        helper.make_node("Transpose", ["h"], ["ht"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["h", "ht"], ["s"], name="scores"),  # (2,3,5,6) x (2,3,6,5)
    ]
    path = build(tmp_path, nodes, {"a": (2, 3, 5, 8)}, [weight("W", (8, 6))])
    facts = check_against_ort(path, {"a": (2, 3, 5, 8)})
    proj, scores = facts.layers
    assert proj.macs == 2 * 3 * 5 * 6 * 8
    assert proj.params == 48
    assert scores.output_shape == (2, 3, 5, 5)
    assert scores.macs == 2 * 3 * 5 * 5 * 6
    assert scores.params == 0  # activation x activation: no weights


def test_einsum_contraction(tmp_path: Path) -> None:
    nodes = [helper.make_node("Einsum", ["a", "W"], ["y"], equation="bij,jk->bik")]
    path = build(tmp_path, nodes, {"a": (2, 3, 4)}, [weight("W", (4, 5))], opset=12)
    facts = check_against_ort(path, {"a": (2, 3, 4)})
    (layer,) = facts.layers
    assert layer.output_shape == (2, 3, 5)
    assert layer.macs == 2 * 3 * 4 * 5


def test_einsum_elementwise_is_not_costed(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Einsum", ["a", "a"], ["e"], equation="ij,ij->ij"),
        helper.make_node("MatMul", ["e", "W"], ["y"]),
    ]
    path = build(tmp_path, nodes, {"a": (3, 4)}, [weight("W", (4, 2))], opset=12)
    facts = check_against_ort(path, {"a": (3, 4)})
    assert [x.op_type for x in facts.layers] == ["MatMul"]


# -- shape arithmetic -------------------------------------------------------------------------
def test_shape_gather_concat_reshape_channel_shuffle(tmp_path: Path) -> None:
    """ShuffleNet-v2 style: reshape to (N, g, C/g, H, W) with shapes computed from Shape."""
    nodes = [
        conv("c1", "x", "W1"),
        helper.make_node("Shape", ["c1"], ["s"]),
        helper.make_node("Gather", ["s", "i0"], ["n"]),
        helper.make_node("Gather", ["s", "i1"], ["c"]),
        helper.make_node("Gather", ["s", "i23"], ["hw"]),
        helper.make_node("Div", ["c", "two"], ["cg"]),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
        helper.make_node("Unsqueeze", ["cg", "ax0"], ["cg1"]),
        helper.make_node("Unsqueeze", ["c", "ax0"], ["c1d"]),
        helper.make_node("Concat", ["n1", "two1", "cg1", "hw"], ["shape5"], axis=0),
        helper.make_node("Reshape", ["c1", "shape5"], ["r5"]),
        helper.make_node("Transpose", ["r5"], ["t5"], perm=[0, 2, 1, 3, 4]),
        helper.make_node("Concat", ["n1", "c1d", "hw"], ["shape4"], axis=0),
        helper.make_node("Reshape", ["t5", "shape4"], ["shuf"]),
        helper.make_node("Split", ["shuf", "halves"], ["left", "right"], axis=1),
        conv("branch", "right", "W2", pads=[1, 1, 1, 1], group=4),
        conv("merge", "left", "W3"),
    ]
    inits = [
        weight("W1", (16, 3, 3, 3)),
        weight("W2", (8, 2, 3, 3)),
        weight("W3", (12, 8, 1, 1)),
        const("i0", 0),
        const("i1", 1),
        const("i23", [2, 3]),
        const("two", 2),
        const("two1", [2]),
        const("ax0", [0]),
        const("halves", [8, 8]),
    ]
    path = build(tmp_path, nodes, {"x": ("N", 3, 18, 18)}, inits)
    facts = check_against_ort(path, {"x": (2, 3, 18, 18)}, dims={"N": 2})
    by_name = {x.name: x for x in facts.layers}
    assert by_name["branch"].output_shape == (2, 8, 16, 16)
    assert by_name["branch"].macs == 2 * 8 * 256 * 2 * 9
    assert by_name["merge"].output_shape == (2, 12, 16, 16)


def test_slice_channels_with_computed_ends(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Slice", ["s", "one", "two"], ["c"]),  # [C]
        helper.make_node("Div", ["c", "three"], ["third"]),
        helper.make_node("Slice", ["x", "third", "c", "one"], ["tail"]),  # channels C/3 .. C
        conv("y", "tail", "W", strides=[2, 2]),
    ]
    inits = [
        const("one", [1]),
        const("two", [2]),
        const("three", [3]),
        weight("W", (5, 8, 3, 3)),
    ]
    path = build(tmp_path, nodes, {"x": (1, 12, 13, 13)}, inits)
    facts = check_against_ort(path, {"x": (1, 12, 13, 13)})
    (layer,) = facts.layers
    assert layer.input_shape == (1, 8, 13, 13)
    assert layer.macs == 5 * 36 * 8 * 9


def test_pad_with_computed_pads(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i3"], ["w"]),
        helper.make_node("Sub", ["eight", "w"], ["missing"]),  # pad width up to 8
        helper.make_node("Concat", ["zeros6", "missing", "zeros1"], ["pads"], axis=0),
        helper.make_node("Reshape", ["pads", "flat"], ["pads8"]),
        helper.make_node("Pad", ["x", "pads8"], ["p"], mode="constant"),
        conv("y", "p", "W"),
    ]
    inits = [
        const("i3", [3]),
        const("eight", [8]),
        const("zeros6", [0, 0, 0, 1, 0, 0]),  # begins: one row on top
        const("zeros1", [0]),
        const("flat", [8]),
        weight("W", (4, 2, 3, 3)),
    ]
    # pads = [0,0,0,1, 0,0,8-5,0]: one column on the left, three rows at the bottom
    path = build(tmp_path, nodes, {"x": (1, 2, 5, 5)}, inits)
    facts = check_against_ort(path, {"x": (1, 2, 5, 5)})
    (layer,) = facts.layers
    assert layer.input_shape == (1, 2, 8, 6)
    assert layer.output_shape == (1, 4, 6, 4)


def test_resize_with_constant_scales(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Resize", ["x", "", "scales"], ["r"], mode="nearest"),
        conv("y", "r", "W", pads=[1, 1, 1, 1]),
    ]
    inits = [const("scales", [1.0, 1.0, 2.0, 1.5], np.float32), weight("W", (4, 3, 3, 3))]
    path = build(tmp_path, nodes, {"x": (1, 3, 7, 8)}, inits)
    facts = check_against_ort(path, {"x": (1, 3, 7, 8)})
    (layer,) = facts.layers
    assert layer.input_shape == (1, 3, 14, 12)


def test_resize_with_computed_sizes(tmp_path: Path) -> None:
    """FPN-style: upsample a coarse map to the spatial size of a finer one, read by Shape."""
    nodes = [
        conv("down", "x", "W1", strides=[2, 2]),
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Slice", ["s", "two", "four"], ["hw"]),
        helper.make_node("Shape", ["down"], ["sd"]),
        helper.make_node("Slice", ["sd", "zero", "two"], ["nc"]),
        helper.make_node("Concat", ["nc", "hw"], ["sizes"], axis=0),
        helper.make_node("Resize", ["down", "", "", "sizes"], ["up"], mode="linear"),
        conv("y", "up", "W2"),
    ]
    inits = [
        const("zero", [0]),
        const("two", [2]),
        const("four", [4]),
        weight("W1", (6, 3, 3, 3)),
        weight("W2", (2, 6, 1, 1)),
    ]
    path = build(tmp_path, nodes, {"x": (1, 3, "H", "W")}, inits)
    facts = check_against_ort(path, {"x": (1, 3, 21, 16)}, input_shapes={"x": (1, 3, 21, 16)})
    by_name = {x.name: x for x in facts.layers}
    assert by_name["y"].input_shape == (1, 6, 21, 16)
    assert by_name["y"].macs == 2 * 21 * 16 * 6


def test_upsample_with_computed_scales(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Concat", ["ones", "factor", "factor"], ["scales"], axis=0),
        helper.make_node("Resize", ["x", "", "scales"], ["r"], mode="nearest"),
        conv("y", "r", "W"),
    ]
    inits = [
        const("ones", [1.0, 1.0], np.float32),
        const("factor", [3.0], np.float32),
        weight("W", (2, 3, 1, 1)),
    ]
    path = build(tmp_path, nodes, {"x": (1, 3, 4, 5)}, inits)
    facts = check_against_ort(path, {"x": (1, 3, 4, 5)})
    assert facts.layers[0].output_shape == (1, 2, 12, 15)


# -- symbolic input dims ----------------------------------------------------------------------
def _symbolic(tmp_path: Path) -> Path:
    nodes = [
        conv("stem", "x", "W1", strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Reshape", ["stem", "keep2"], ["f"]),  # (N, 8, H/2*W/2)
        conv("mix", "f", "W2"),  # a 1D conv over the flattened map
    ]
    inits = [weight("W1", (8, 3, 3, 3)), weight("W2", (4, 8, 3)), const("keep2", [0, 0, -1])]
    return build(tmp_path, nodes, {"x": ("batch", 3, "height", "width")}, inits)


def test_symbolic_dims_set_by_dim(tmp_path: Path) -> None:
    path = _symbolic(tmp_path)
    facts = check_against_ort(
        path, {"x": (2, 3, 10, 12)}, dims={"batch": 2, "height": 10, "width": 12}
    )
    stem, mix = facts.layers
    assert stem.output_shape == (2, 8, 5, 6)
    assert mix.output_shape == (2, 4, 28)
    assert mix.macs == 2 * 4 * 28 * 8 * 3


def test_symbolic_dims_set_by_input_shape(tmp_path: Path) -> None:
    path = _symbolic(tmp_path)
    facts = check_against_ort(path, {"x": (1, 3, 17, 9)}, input_shapes={"x": (1, 3, 17, 9)})
    assert facts.layers[0].output_shape == (1, 8, 9, 5)


def test_symbolic_dims_mixed_flags(tmp_path: Path) -> None:
    # --dim fills what --input-shape leaves: here only the batch symbol is given by --dim.
    path = _symbolic(tmp_path)
    facts = analyse(path, dims={"batch": 3, "height": 8, "width": 8})
    assert facts.layers[0].input_shape == (3, 3, 8, 8)
    assert facts.inputs["x"] == (3, 3, 8, 8)


# -- onnxruntime contrib ops ------------------------------------------------------------------
def _fusable(tmp_path: Path, c: int) -> Path:
    """Conv+Relu, depthwise Conv+Relu (stride 2), 1x1 Conv: what ORT fuses and blocks."""
    nodes = [
        conv("c1", "x", "W1", "B1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        conv("dw", "r1", "W2", "B2", group=2 * c, pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["dw"], ["r2"]),
        conv("pw", "r2", "W3", "B3"),
    ]
    inits = [
        weight("W1", (2 * c, c, 3, 3)),
        weight("B1", (2 * c,)),
        weight("W2", (2 * c, 1, 3, 3)),
        weight("B2", (2 * c,)),
        weight("W3", (c, 2 * c, 1, 1)),
        weight("B3", (c,)),
    ]
    return build(tmp_path, nodes, {"x": (1, c, 14, 14)}, inits, opset=17, name=f"orig{c}.onnx")


def _optimised(path: Path, level: ort.GraphOptimizationLevel, tag: str) -> Path:
    out = path.with_name(f"{path.stem}.{tag}.onnx")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = level
    opts.optimized_model_filepath = str(out)
    opts.log_severity_level = 3  # the nchwc "hardware specific" warning is expected
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return out


def _ops(path: Path) -> list[tuple[str, str]]:
    return [(n.domain, n.op_type) for n in onnx.load(str(path)).graph.node]


def _blocked(path: Path) -> Path:
    """The ORT_ENABLE_ALL graph; onnxruntime only blocks to NCHWc on CPUs with those kernels
    (x86-64 with AVX2 or AVX-512), elsewhere there is nothing of ours to test."""
    out = _optimised(path, ort.GraphOptimizationLevel.ORT_ENABLE_ALL, "all")
    if ("com.microsoft.nchwc", "Conv") not in _ops(out):
        # On x86-64 (this project's CI) onnxruntime always blocks: a missing NCHWc graph there
        # is a failure, never a skip. Elsewhere (ARM) the committed NCHWc fixtures in
        # tests/data/real still cover the ops.
        assert platform.machine().lower() not in ("x86_64", "amd64"), "no NCHWc Conv on x86-64"
        pytest.skip("onnxruntime has no NCHWc kernels on this CPU")
    return out


def test_ort_fusedconv_graph_costs_like_the_original(tmp_path: Path) -> None:
    orig = _fusable(tmp_path, 16)
    fused = _optimised(orig, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "extended")
    assert ("com.microsoft", "FusedConv") in _ops(fused)
    before, after = analyse(orig), analyse(fused)
    assert {x.op_type for x in after.layers} == {"FusedConv", "Conv"}
    assert after.problems == ()
    assert after.totals.macs == before.totals.macs == 16 * 32 * 196 * 9 + 32 * 49 * 9 + 16 * 32 * 49
    assert after.totals.params == before.totals.params
    check_against_ort(orig, {"x": (1, 16, 14, 14)})
    shapes = {x.name: x.output_shape for x in before.layers}
    assert {x.name: x.output_shape for x in after.layers} == shapes


def test_ort_nchwc_graph_costs_like_the_original(tmp_path: Path) -> None:
    # Channel counts that are multiples of 16 (the widest NCHWc block) need no padding.
    orig = _fusable(tmp_path, 16)
    blocked = _blocked(orig)
    ops = _ops(blocked)
    assert ops.count(("com.microsoft.nchwc", "Conv")) == 3
    before, after = analyse(orig), analyse(blocked)
    assert after.problems == ()
    assert after.totals.macs == before.totals.macs
    assert after.totals.params == before.totals.params
    assert sorted(x.macs for x in after.layers) == sorted(x.macs for x in before.layers)
    (out,) = after.outputs.values()
    assert out == (1, 16, 7, 7)  # ReorderOutput back to NCHW


def test_ort_nchwc_channel_padding_is_counted_as_computed(tmp_path: Path) -> None:
    """With 12 channels, NCHWc pads 24 to the block size: the blocked graph really computes
    (and convaudit reports) the padded convolutions, so its MACs exceed the original's."""
    orig = _fusable(tmp_path, 12)
    blocked = _blocked(orig)
    before, after = analyse(orig), analyse(blocked)
    assert after.problems == ()
    assert after.totals.unknown_layers == 0
    assert after.totals.macs >= before.totals.macs
    first = next(x for x in after.layers if x.input_shape == (1, 12, 14, 14))
    assert first.weight_shape is not None
    # The block is 8 channels with AVX2 and 16 with AVX-512: the weight holds the channels the
    # blocked conv computes (24 -> 24 or 32 out; 12 in, or 16 once ReorderInput pads it).
    cout_padded, cin_computed = first.weight_shape[0], first.weight_shape[1]
    assert cout_padded % 8 == 0 and cout_padded >= 24
    assert cin_computed in (12, 16)
    assert first.macs == cout_padded * 196 * cin_computed * 9  # the channels as computed
    (out,) = after.outputs.values()
    assert out == (1, 12, 7, 7)  # ReorderOutput drops the padding again


def test_nhwcconv_hand_built(tmp_path: Path) -> None:
    # onnxruntime has no CPU kernel for NhwcConv: the oracle is the hand computation.
    node = helper.make_node(
        "NhwcConv",
        ["x", "W", "B"],
        ["y"],
        domain="com.microsoft",
        pads=[1, 1, 1, 1],
        strides=[2, 2],
    )
    inits = [weight("W", (8, 4, 3, 3)), weight("B", (8,))]
    path = build(tmp_path, [node], {"x": (1, 9, 9, 4)}, inits, extra_opsets=[("com.microsoft", 1)])
    facts = analyse(path)
    (layer,) = facts.layers
    assert facts.problems == ()
    assert (layer.in_channels, layer.out_channels) == (4, 8)
    assert layer.macs == 8 * 5 * 5 * 4 * 9  # (9 + 2 - 3) // 2 + 1 = 5
    assert layer.params == 8 * 4 * 9 + 8
    assert facts.outputs["y"] == (1, 5, 5, 8)  # the tensor stays channels-last
    assert layer.note == "channels-last tensors: shapes shown in NCHW order"
    assert (layer.input_shape, layer.output_shape) == ((1, 4, 9, 9), (1, 8, 5, 5))


def test_com_microsoft_qlinearconv_channels_last(tmp_path: Path) -> None:
    inits = [
        weight("W", (8, 4, 3, 3), np.uint8),
        const("xs", 0.1, np.float32),
        const("xz", 3, np.uint8),
        const("ws", 0.05, np.float32),
        const("wz", 2, np.uint8),
        const("ys", 0.2, np.float32),
        const("yz", 1, np.uint8),
    ]
    node = helper.make_node(
        "QLinearConv",
        ["x", "xs", "xz", "W", "ws", "wz", "ys", "yz"],
        ["y"],
        domain="com.microsoft",
        channels_last=1,
        pads=[1, 1, 1, 1],
        strides=[2, 2],
    )
    path = build(
        tmp_path,
        [node],
        {"x": (1, 9, 9, 4)},
        inits,
        elem=TensorProto.UINT8,
        extra_opsets=[("com.microsoft", 1)],
    )
    facts = analyse(path)
    (layer,) = facts.layers
    assert layer.note == "channels-last tensors: shapes shown in NCHW order"
    assert (layer.input_shape, layer.output_shape) == ((1, 4, 9, 9), (1, 8, 5, 5))
    assert (layer.in_channels, layer.out_channels) == (4, 8)
    assert layer.macs == 8 * 25 * 4 * 9
    assert layer.params == 8 * 4 * 9
    actual = ort_shapes(path, ["y"], {"x": (1, 9, 9, 4)})
    assert facts.outputs["y"] == actual["y"] == (1, 5, 5, 8)


@pytest.mark.parametrize("case", sorted(CONVT_CASES))
def test_conv_transpose_shape_without_inference(tmp_path: Path, case: str) -> None:
    """When inference leaves a ConvTranspose's output unknown, the attributes still give it."""
    from convaudit.model.layers import cost_visit
    from convaudit.model.loader import load_model
    from convaudit.model.tensors import UNKNOWN
    from convaudit.model.walk import Walker

    x_shape, w_shape, attrs = CONVT_CASES[case]
    node = helper.make_node("ConvTranspose", ["x", "W"], ["y"], name="up", **attrs)
    path = build(tmp_path, [node], {"x": x_shape}, [weight("W", w_shape)])
    with load_model(path) as loaded:
        (visit,) = Walker(loaded.proto, loaded.has_data).run().visits
    visit.outputs = [UNKNOWN]
    layer = cost_visit(visit)
    assert layer is not None
    actual = ort_shapes(path, ["y"], {"x": x_shape})["y"]
    assert layer.output_shape == actual
    assert layer.bias_adds == 0
    assert layer.activation_bytes == (prod(x_shape) + prod(actual)) * 4  # float32 in and out


@pytest.mark.parametrize(
    ("equation", "a_shape", "w_shape", "macs"),
    [
        ("...ij,...jk->...ik", (2, 3, 4, 5), (1, 3, 5, 6), 2 * 3 * 4 * 5 * 6),  # broadcast
        ("b...j,jk->b...k", (2, 3, 4, 5), (5, 6), 2 * 3 * 4 * 5 * 6),  # ellipsis in the middle
        ("bij,bjk", (2, 3, 4), (2, 4, 6), 2 * 3 * 4 * 6),  # implicit output "bik"
        ("ij,j", (3, 4), (4,), 12),  # matrix-vector, implicit output "i"
    ],
)
def test_einsum_broadcast_and_implicit_forms(
    tmp_path: Path, equation: str, a_shape: tuple[int, ...], w_shape: tuple[int, ...], macs: int
) -> None:
    nodes = [helper.make_node("Einsum", ["a", "W"], ["y"], equation=equation)]
    path = build(tmp_path, nodes, {"a": a_shape}, [weight("W", w_shape)], opset=12)
    facts = check_against_ort(path, {"a": a_shape})
    (layer,) = facts.layers
    assert layer.macs == macs
    assert layer.params == prod(w_shape)  # the constant operand is a weight


def test_single_operand_einsum_is_not_a_layer(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Einsum", ["a"], ["t"], equation="bij->bji"),
        helper.make_node("MatMul", ["t", "W"], ["y"]),
    ]
    path = build(tmp_path, nodes, {"a": (2, 4, 3)}, [weight("W", (4, 5))], opset=12)
    facts = check_against_ort(path, {"a": (2, 4, 3)})
    assert [x.op_type for x in facts.layers] == ["MatMul"]
    assert facts.totals.unknown_layers == 0


def test_split_num_outputs_and_negative_step_slice(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Split", ["x"], ["s0", "s1", "s2"], axis=1, num_outputs=3),
        helper.make_node("Slice", ["s2", "starts", "ends", "axes", "steps"], ["rev"]),
        conv("y", "rev", "W", pads=[1, 1, 1, 1]),
    ]
    inits = [
        const("starts", [-1]),
        const("ends", [-1000]),
        const("axes", [3]),
        const("steps", [-2]),  # every other column, reversed: 9 -> 5
        weight("W", (4, 2, 3, 3)),
    ]
    # num_outputs=3 splits 6 channels into 2 + 2 + 2
    path = build(tmp_path, nodes, {"x": (1, 6, 8, 9)}, inits, opset=18)
    facts = check_against_ort(path, {"x": (1, 6, 8, 9)})
    assert facts.layers[0].input_shape == (1, 2, 8, 5)


def test_pad_with_axes_input_and_reflect_stft_framing(tmp_path: Path) -> None:
    """An STFT-style front end: reflect-pad the signal by n_fft/2 on its last axis, then a
    strided 1D conv with n_fft taps and 2 * n_bins output channels."""
    n_fft, hop = 64, 16
    nodes = [
        helper.make_node("Unsqueeze", ["audio", "ax1"], ["a3"]),  # (N, 1, T)
        helper.make_node("Pad", ["a3", "pads", "", "ax2"], ["padded"], mode="reflect"),
        conv("stft", "padded", "basis", strides=[hop]),
    ]
    inits = [
        const("ax1", [1]),
        const("ax2", [2]),
        const("pads", [n_fft // 2, n_fft // 2]),
        weight("basis", (2 * (n_fft // 2 + 1), 1, n_fft)),
    ]
    path = build(tmp_path, nodes, {"audio": (2, "samples")}, inits, opset=18)
    facts = check_against_ort(path, {"audio": (2, 1000)}, dims={"samples": 1000})
    (layer,) = facts.layers
    frames = (1000 + n_fft - n_fft) // hop + 1
    assert layer.output_shape == (2, 66, frames)
    assert layer.macs == 2 * 66 * frames * n_fft


def test_expand_and_depth_to_space_chain(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Mul", ["s", "grow"], ["target"]),  # (N, C, H, W) * (1, 1, 1, 1) ...
        helper.make_node("Expand", ["x", "target"], ["e"]),
        helper.make_node(
            "DepthToSpace", ["e"], ["d"], blocksize=2
        ),  # (1, 8, 5, 5) -> (1, 2, 10, 10)
        conv("y", "d", "W", strides=[3, 3]),
    ]
    inits = [const("grow", [1, 1, 1, 1]), weight("W", (3, 2, 2, 2))]
    path = build(tmp_path, nodes, {"x": (1, 8, 5, 5)}, inits)
    facts = check_against_ort(path, {"x": (1, 8, 5, 5)})
    assert facts.layers[0].input_shape == (1, 2, 10, 10)
    assert facts.layers[0].output_shape == (1, 3, 3, 3)


def test_deform_conv_is_costed_like_its_sampled_conv(tmp_path: Path) -> None:
    node = helper.make_node(
        "DeformConv",
        ["x", "W", "off", "B"],
        ["y"],
        kernel_shape=[3, 3],
        pads=[1, 1, 1, 1],
        strides=[2, 2],
        group=2,
    )
    inits = [weight("W", (6, 2, 3, 3)), weight("B", (6,))]
    nodes = [node]
    path = build(tmp_path, nodes, {"x": (1, 4, 9, 9), "off": (1, 18, 5, 5)}, inits)
    facts = check_against_ort(path, {"x": (1, 4, 9, 9), "off": (1, 18, 5, 5)})
    (layer,) = facts.layers
    assert layer.output_shape == (1, 6, 5, 5)
    assert layer.macs == 6 * 25 * 2 * 9
    assert layer.params == 6 * 2 * 9 + 6


def test_shape_lost_through_symbolic_arithmetic_asks_for_the_input_symbols(
    tmp_path: Path,
) -> None:
    # Reshape(x, Concat(Shape(x)[0], [3, 8, 8])): with N unset the conv's input shape is lost
    # entirely; the scan must name N rather than report an unknown layer and succeed.
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i0"], ["n"]),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
        helper.make_node("Concat", ["n1", "rest"], ["shp"], axis=0),
        helper.make_node("Reshape", ["x", "shp"], ["r"]),
        conv("y", "r", "W"),
    ]
    inits = [const("i0", 0), const("ax0", [0]), const("rest", [3, 8, 8]), weight("W", (4, 3, 3, 3))]
    path = build(tmp_path, nodes, {"x": ("N", 192)}, inits)
    with pytest.raises(ShapeError, match=r"unresolved dims N \(symbols of input x\)"):
        analyse(path)
    facts = check_against_ort(path, {"x": (5, 192)}, dims={"N": 5})
    assert facts.layers[0].output_shape == (5, 4, 6, 6)


def test_declared_value_info_gets_the_dim_values(tmp_path: Path) -> None:
    # Nothing can infer through a custom op; the export's value_info says ("N", 8, 6, 6).
    # With --dim N=2 the conv after it must resolve, not ask for N again.
    nodes = [
        helper.make_node("Mystery", ["x"], ["m"], domain="com.example"),
        conv("y", "m", "W"),
    ]
    path = build(
        tmp_path,
        nodes,
        {"x": ("N", 8, 6, 6)},
        [weight("W", (4, 8, 3, 3))],
        extra_opsets=[("com.example", 1)],
    )
    model = onnx.load(str(path))
    model.graph.value_info.append(helper.make_tensor_value_info("m", F, ["N", 8, 6, 6]))
    onnx.save(model, str(path))
    facts = analyse(path, dims={"N": 2})
    (layer,) = facts.layers
    assert layer.input_shape == (2, 8, 6, 6)
    assert layer.macs == 2 * 4 * 16 * 8 * 9
    assert [p.kind for p in facts.problems] == ["unknown-domain"]


def test_resize_with_scales_computed_from_shapes(tmp_path: Path) -> None:
    # scales = [1, 1] ++ float(Shape(skip)[2:]) / float(Shape(x)[2:]): upsample x onto skip.
    nodes = [
        helper.make_node("Shape", ["x"], ["sx"]),
        helper.make_node("Shape", ["skip"], ["ss"]),
        helper.make_node("Slice", ["sx", "two", "four"], ["hx"]),
        helper.make_node("Slice", ["ss", "two", "four"], ["hs"]),
        helper.make_node("Cast", ["hx"], ["fx"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["hs"], ["fs"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["fs", "fx"], ["ratio"]),
        helper.make_node("Concat", ["ones", "ratio"], ["scales"], axis=0),
        helper.make_node("Resize", ["x", "", "scales"], ["up"], mode="nearest"),
        helper.make_node("Concat", ["up", "skip"], ["cat"], axis=1),
        conv("y", "cat", "W", pads=[1, 1, 1, 1]),
    ]
    inits = [
        const("two", [2]),
        const("four", [4]),
        const("ones", [1.0, 1.0], np.float32),
        weight("W", (4, 6, 3, 3)),
    ]
    shapes = {"x": (1, 3, 5, 7), "skip": (1, 3, 20, 14)}
    path = build(tmp_path, nodes, shapes, inits)
    facts = check_against_ort(path, shapes)
    assert facts.layers[0].input_shape == (1, 6, 20, 14)


@pytest.mark.parametrize(
    ("attrs", "a_shape", "w_shape", "out", "k"),
    [
        ({"transA": 1, "transB": 1}, (2, 20, 3), (7, 20), (2, 3, 7), 20),
        ({"transBatchA": 1}, (3, 2, 5), (2, 5, 4), (2, 3, 4), 5),  # A read as (2, 3, 5)
        ({"transA": 1, "transBatchA": 1}, (6, 2, 4), (2, 6, 3), (2, 4, 3), 6),  # (2, 4, 6)
    ],
)
def test_fused_matmul_transposes(
    tmp_path: Path,
    attrs: dict[str, int],
    a_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    out: tuple[int, ...],
    k: int,
) -> None:
    node = helper.make_node("FusedMatMul", ["a", "W"], ["y"], domain="com.microsoft", **attrs)
    path = build(
        tmp_path,
        [node],
        {"a": a_shape},
        [weight("W", w_shape)],
        extra_opsets=[("com.microsoft", 1)],
    )
    facts = check_against_ort(path, {"a": a_shape})
    (layer,) = facts.layers
    assert layer.output_shape == out
    assert layer.macs == prod(out) * k
    assert layer.in_channels == k


def test_fused_matmul_with_transposed_operands(tmp_path: Path) -> None:
    # A is (2, 20, 3) read as (2, 3, 20); B is (7, 20) read as (20, 7): K = 20
    node = helper.make_node(
        "FusedMatMul", ["a", "W"], ["y"], domain="com.microsoft", transA=1, transB=1, alpha=0.5
    )
    path = build(
        tmp_path,
        [node],
        {"a": (2, 20, 3)},
        [weight("W", (7, 20))],
        extra_opsets=[("com.microsoft", 1)],
    )
    facts = check_against_ort(path, {"a": (2, 20, 3)})
    (layer,) = facts.layers
    assert layer.output_shape == (2, 3, 7)
    assert layer.macs == 2 * 3 * 7 * 20
    assert layer.params == 140


def test_matmul_nbits_counts_the_logical_weight(tmp_path: Path) -> None:
    k, n, block = 64, 8, 32
    packed = numpy_helper.from_array(
        RNG.integers(0, 255, size=(n, k // block, block // 2)).astype(np.uint8), "Wq"
    )
    scales = numpy_helper.from_array(np.full(n * k // block, 0.1, np.float32), "scales")
    node = helper.make_node(
        "MatMulNBits",
        ["a", "Wq", "scales"],
        ["y"],
        domain="com.microsoft",
        K=k,
        N=n,
        bits=4,
        block_size=block,
    )
    path = build(
        tmp_path, [node], {"a": (3, k)}, [packed, scales], extra_opsets=[("com.microsoft", 1)]
    )
    facts = check_against_ort(path, {"a": (3, k)})
    (layer,) = facts.layers
    assert layer.output_shape == (3, n)
    assert layer.macs == 3 * k * n
    assert layer.params == k * n  # logical 4-bit weights, not the packed bytes
    assert layer.weight_bytes == n * (k // block) * (block // 2)  # 256 packed bytes


def test_activation_matmul_shares_no_weight(tmp_path: Path) -> None:
    # The same activation feeds two Gemms sharing one bias: the activation is not a weight (the
    # shared-weight logic must not subtract what was never counted); the bias counts once.
    nodes = [
        helper.make_node("Relu", ["a"], ["h"]),
        helper.make_node("Gemm", ["a", "h", "C"], ["y1"], transB=1),
        helper.make_node("Gemm", ["a", "h", "C"], ["y2"], transB=1),
        helper.make_node("Add", ["y1", "y2"], ["y"]),
    ]
    path = build(tmp_path, nodes, {"a": (4, 6)}, [weight("C", (4,))])
    facts = check_against_ort(path, {"a": (4, 6)})
    assert [x.params for x in facts.layers] == [4, 4]
    assert [x.weight_bytes for x in facts.layers] == [16, 16]  # the float bias
    assert facts.totals.params == 4
    assert facts.totals.weight_bytes == 16


def _random_conv_case(seed: int) -> tuple[str, tuple[int, ...], tuple[int, ...], dict[str, Any]]:
    """A valid random Conv / ConvTranspose configuration (seeded: the same cases every run)."""
    rng = np.random.default_rng(seed)
    n_sp = int(rng.integers(1, 4))
    group = int(rng.choice([1, 2, 3]))
    cin, cout = group * int(rng.integers(1, 4)), group * int(rng.integers(1, 4))
    kernel = [int(rng.integers(1, 4)) for _ in range(n_sp)]
    strides = [int(rng.integers(1, 4)) for _ in range(n_sp)]
    dil = [int(rng.integers(1, 3)) for _ in range(n_sp)]
    spatial = [int(rng.integers(6, 12)) for _ in range(n_sp)]
    x_shape = (int(rng.integers(1, 3)), cin, *spatial)
    attrs: dict[str, Any] = {"strides": strides, "group": group}
    if rng.random() < 0.5:
        op = "Conv"
        w_shape = (cout, cin // group, *kernel)
        mode = str(rng.choice(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
        if mode.startswith("SAME"):
            attrs["auto_pad"] = mode  # onnxruntime rejects dilations with SAME_*
        else:
            attrs["dilations"] = dil
            if mode == "VALID":
                attrs["auto_pad"] = mode
            else:
                attrs["pads"] = [int(rng.integers(0, k)) for k in kernel * 2]
    else:
        op = "ConvTranspose"
        w_shape = (cin, cout // group, *kernel)
        attrs["dilations"] = dil
        attrs["pads"] = [int(rng.integers(0, k)) for k in kernel * 2]
        attrs["output_padding"] = [int(rng.integers(0, s)) for s in strides]  # ORT: < stride
    return op, x_shape, w_shape, attrs


@pytest.mark.parametrize("seed", range(40))
def test_random_convs_match_onnxruntime(tmp_path: Path, seed: int) -> None:
    op, x_shape, w_shape, attrs = _random_conv_case(seed)
    node = helper.make_node(op, ["x", "W"], ["y"], name="c", **attrs)
    path = build(tmp_path, [node], {"x": x_shape}, [weight("W", w_shape)])
    facts = check_against_ort(path, {"x": x_shape})
    (layer,) = facts.layers
    group = attrs["group"]
    if op == "Conv":
        assert layer.output_shape is not None
        assert layer.macs == prod(layer.output_shape) * prod(w_shape[1:])
    else:
        assert layer.macs == prod(x_shape) * prod(w_shape[1:])
        assert layer.out_channels == w_shape[1] * group


@pytest.mark.parametrize("quantized_out", [False, True])
def test_qgemm_reads_its_weight_from_input_3(tmp_path: Path, quantized_out: bool) -> None:
    m, k, n = 3, 16, 5
    inits = [
        const("as", 0.1, np.float32),
        const("az", 3, np.uint8),
        weight("B", (n, k), np.uint8),
        const("bs", 0.05, np.float32),
        const("bz", 2, np.uint8),
        const("C", [1] * n, np.int32),
    ]
    names = ["a", "as", "az", "B", "bs", "bz", "C"]
    if quantized_out:
        inits += [const("ys", 0.2, np.float32), const("yz", 1, np.uint8)]
        names += ["ys", "yz"]
    node = helper.make_node("QGemm", names, ["y"], domain="com.microsoft", transB=1)
    path = build(
        tmp_path,
        [node],
        {"a": (m, k)},
        inits,
        elem=TensorProto.UINT8,
        extra_opsets=[("com.microsoft", 1)],
        out_elem=TensorProto.UINT8 if quantized_out else F,
    )
    facts = check_against_ort(path, {"a": (m, k)})
    (layer,) = facts.layers
    assert facts.problems == ()
    assert layer.output_shape == (m, n)
    assert layer.macs == m * k * n
    assert layer.params == k * n + n
    assert layer.weight_name == "B"


SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"


@pytest.mark.parametrize("name", ["textbook_5x5", "textbook_bottleneck", "inception_block"])
def test_sample_models_match_onnxruntime(name: str) -> None:
    path = SAMPLES / f"{name}.onnx"
    (x,) = onnx.load(str(path)).graph.input
    shape = tuple(d.dim_value for d in x.type.tensor_type.shape.dim)
    facts = check_against_ort(path, {x.name: shape})
    for layer in facts.layers:
        assert layer.macs == conv_hand_macs(layer)
    expected = {
        "textbook_5x5": 112_896_000,
        "textbook_bottleneck": 1_505_280 + 3_763_200,
        # 1x1 480->192, 1x1 480->96 -> 3x3 96->208, 1x1 480->16 -> 5x5 16->48, pool -> 1x1 480->64
        "inception_block": 196
        * (480 * 192 + 480 * 96 + 96 * 208 * 9 + 480 * 16 + 16 * 48 * 25 + 480 * 64),
    }[name]
    assert facts.totals.macs == expected


def test_einsum_with_an_output_index_no_operand_has_is_unknown(tmp_path: Path) -> None:
    # "q" names no operand dim: no runtime accepts it, and no MAC count is made up for it.
    nodes = [helper.make_node("Einsum", ["a", "W"], ["y"], equation="ij,jk->ikq")]
    path = build(tmp_path, nodes, {"a": (2, 3)}, [weight("W", (3, 4))], opset=12)
    (layer,) = analyse(path).layers
    assert layer.macs is None
    assert layer.note == "einsum equation does not match its operands"


def test_matmul_with_the_weight_on_the_left(tmp_path: Path) -> None:
    # W @ x (a projection written weight-first): the constant operand is still the weight.
    nodes = [helper.make_node("MatMul", ["W", "x"], ["y"], name="proj")]
    path = build(tmp_path, nodes, {"x": (2, 8, 5)}, [weight("W", (6, 8))])
    facts = check_against_ort(path, {"x": (2, 8, 5)})
    (layer,) = facts.layers
    assert layer.output_shape == (2, 6, 5)
    assert layer.macs == 2 * 6 * 5 * 8
    assert layer.params == 48
    assert layer.weight_name == "W"
    assert layer.weight_bytes == 48 * 4


@pytest.mark.parametrize(
    "how",
    [
        {"auto_pad": "SAME_UPPER"},
        {"auto_pad": "SAME_LOWER"},
        {"output_shape": "in*stride-1"},  # odd total padding: where does the extra pixel go
        {"output_shape": "in*stride-2"},
    ],
    ids=["same_upper", "same_lower", "output_shape_odd", "output_shape_even"],
)
@pytest.mark.parametrize(
    ("x_shape", "w_shape", "strides"),
    [((1, 2, 7), (2, 3, 3), [2]), ((1, 2, 5, 6), (2, 1, 4, 3), [3, 2])],
)
def test_conv_transpose_auto_pad_reports_the_pads_onnxruntime_uses(
    tmp_path: Path,
    how: dict[str, str],
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    strides: list[int],
) -> None:
    """The reported pads, given explicitly instead of auto_pad or output_shape, must compute
    the same tensor in onnxruntime."""
    w = weight("W", w_shape)
    attrs: dict[str, Any] = dict(how)
    if "output_shape" in attrs:
        less = int(attrs["output_shape"][-1])
        attrs["output_shape"] = [d * s - less for d, s in zip(x_shape[2:], strides, strict=True)]
    auto = helper.make_node("ConvTranspose", ["x", "W"], ["y"], strides=strides, **attrs)
    (layer,) = analyse(build(tmp_path, [auto], {"x": x_shape}, [w], name="auto.onnx")).layers
    assert layer.pads is not None
    explicit = helper.make_node(
        "ConvTranspose", ["x", "W"], ["y"], strides=strides, pads=list(layer.pads)
    )
    x = RNG.standard_normal(x_shape).astype(np.float32)
    results = []
    for name, node in (("auto.onnx", auto), ("explicit.onnx", explicit)):
        path = build(tmp_path, [node], {"x": x_shape}, [w], name=name)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        results.append(sess.run(None, {"x": x})[0])
    assert results[0].shape == results[1].shape == layer.output_shape
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["SAME_UPPER", "SAME_LOWER", "VALID"])
def test_conv_auto_pad_reports_the_pads_onnxruntime_uses(tmp_path: Path, mode: str) -> None:
    x_shape, w_shape, strides = (1, 3, 15, 16), (4, 3, 4, 3), [2, 3]
    w = weight("W", w_shape)
    auto = conv("y", "x", "W", strides=strides, auto_pad=mode)
    (layer,) = analyse(build(tmp_path, [auto], {"x": x_shape}, [w], name="auto.onnx")).layers
    assert layer.pads is not None
    explicit = conv("y", "x", "W", strides=strides, pads=list(layer.pads))
    x = RNG.standard_normal(x_shape).astype(np.float32)
    results = []
    for name, node in (("auto.onnx", auto), ("explicit.onnx", explicit)):
        path = build(tmp_path, [node], {"x": x_shape}, [w], name=name)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        results.append(sess.run(None, {"x": x})[0])
    assert results[0].shape == results[1].shape == layer.output_shape
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-5)


def test_resize_opset11_with_empty_scales_and_sizes(tmp_path: Path) -> None:
    # The opset-11 exporter idiom: roi and scales given as empty tensors, sizes computed.
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Slice", ["s", "zero", "two"], ["nc"]),
        helper.make_node("Concat", ["nc", "hw"], ["sizes"], axis=0),
        helper.make_node("Resize", ["x", "roi", "scales", "sizes"], ["r"], mode="nearest"),
        conv("y", "r", "W"),
    ]
    inits = [
        const("zero", [0]),
        const("two", [2]),
        const("hw", [9, 11]),
        const("roi", [], np.float32),
        const("scales", [], np.float32),
        weight("W", (2, 3, 3, 3)),
    ]
    path = build(tmp_path, nodes, {"x": (1, 3, 4, 5)}, inits, opset=11)
    facts = check_against_ort(path, {"x": (1, 3, 4, 5)})
    assert facts.layers[0].input_shape == (1, 3, 9, 11)
