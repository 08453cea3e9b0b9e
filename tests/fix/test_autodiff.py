"""fix.autodiff: each op's forward against onnxruntime, its gradient against finite differences."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from convaudit.fix import autodiff

F32 = np.float32


def _region(model: onnx.ModelProto, params: tuple[str, ...]) -> autodiff.Region:
    g = model.graph
    consts = {
        t.name: numpy_helper.to_array(t).copy() for t in g.initializer if t.name not in params
    }
    return autodiff.Region(
        nodes=tuple(g.node),
        consts=consts,
        boundary=tuple(i.name for i in g.input),
        outputs=tuple(o.name for o in g.output),
    )


def _model(
    nodes: list[onnx.NodeProto], inits: dict[str, np.ndarray], x_shape: tuple[int, ...]
) -> Any:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v.astype(v.dtype), k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return np.asarray(s.run(["y"], {"x": x})[0])


def _loss(
    region: autodiff.Region, params: dict[str, np.ndarray], x: np.ndarray, r: np.ndarray
) -> float:
    y = autodiff.forward(region, params, {"x": x}).values["y"]
    return float((y * r).sum())


def _check(
    nodes: list[onnx.NodeProto],
    inits: dict[str, np.ndarray],
    x_shape: tuple[int, ...],
    params: tuple[str, ...] = (),
) -> None:
    """Forward equals onnxruntime; the gradient of <y, r> w.r.t. x and every param matches a
    central difference along a random direction."""
    rng = np.random.default_rng(0)
    model = _model(nodes, inits, x_shape)
    x = rng.standard_normal(x_shape).astype(F32)
    region = _region(model, params)
    p = {k: inits[k].astype(F32) for k in params}
    tape = autodiff.forward(region, p, {"x": x})
    y = tape.values["y"]
    ref = _ort(model, x)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    # gradients in float64, so that a small central difference is exact enough
    r = rng.standard_normal(y.shape)
    consts = {k: v.astype(np.float64) if v.dtype == F32 else v for k, v in region.consts.items()}
    region = autodiff.Region(region.nodes, consts, (), region.outputs)
    p = {k: v.astype(np.float64) for k, v in p.items()}
    x64 = x.astype(np.float64)
    tape = autodiff.forward(region, p, {"x": x64})
    grads = autodiff.backward(region, tape, {"y": r}, ("x", *params))
    for name in ("x", *params):
        assert (
            grads[name].dtype == np.float64
            and grads[name].shape == (x if name == "x" else p[name]).shape
        )
        base = x64 if name == "x" else p[name]
        v = rng.standard_normal(base.shape)
        eps = 1e-6

        def at(t: float, name: str = name, base: np.ndarray = base, v: np.ndarray = v) -> float:
            moved = base + t * v
            if name == "x":
                return _loss(region, p, moved, r)
            return _loss(region, {**p, name: moved}, x64, r)

        numeric = (at(eps) - at(-eps)) / (2 * eps)
        analytic = float((grads[name] * v).sum())
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-7), name
    # a boundary tensor is fed, not differentiated
    fed = autodiff.Region(region.nodes, consts, ("x",), region.outputs)
    assert "x" not in autodiff.backward(fed, autodiff.forward(fed, p, {"x": x64}), {"y": r}, ("x",))


def _w(*shape: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(F32) * 0.3


CONVS = [
    ({"pads": [1, 1, 1, 1]}, (2, 4, 7, 6), (5, 4, 3, 3)),
    ({"strides": [2, 1], "pads": [0, 1, 2, 1]}, (1, 4, 9, 8), (3, 4, 3, 3)),
    ({"dilations": [2, 2], "pads": [2, 2, 2, 2]}, (1, 3, 8, 8), (4, 3, 3, 3)),
    ({"auto_pad": "SAME_UPPER", "strides": [2, 2]}, (1, 3, 7, 8), (2, 3, 3, 3)),
    ({"auto_pad": "SAME_LOWER", "strides": [2, 2]}, (1, 3, 7, 8), (2, 3, 4, 4)),
    ({"group": 2, "pads": [1, 0, 1, 0]}, (1, 4, 6, 6), (6, 2, 3, 1)),
    ({"group": 4, "pads": [1, 1, 1, 1]}, (1, 4, 6, 6), (4, 1, 3, 3)),  # depthwise
    ({"pads": [2, 1]}, (2, 3, 10), (4, 3, 5)),  # 1-D
]


@pytest.mark.parametrize(("attrs", "x_shape", "w_shape"), CONVS)
def test_conv(attrs: dict[str, Any], x_shape: tuple[int, ...], w_shape: tuple[int, ...]) -> None:
    inits = {"w": _w(*w_shape), "b": _w(w_shape[0], seed=2)}
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)
    _check([node], inits, x_shape, ("w", "b"))


CONVTS = [
    ({"strides": [2, 2]}, (1, 4, 5, 6), (4, 3, 2, 2)),
    (
        {"strides": [2, 2], "pads": [1, 0, 0, 1], "output_padding": [1, 1]},
        (2, 3, 4, 4),
        (3, 2, 3, 3),
    ),
    ({"strides": [1, 2], "dilations": [2, 1], "group": 2}, (1, 4, 5, 5), (4, 3, 3, 2)),
    ({"strides": [3]}, (1, 2, 6), (2, 3, 4)),  # 1-D
]


@pytest.mark.parametrize(("attrs", "x_shape", "w_shape"), CONVTS)
def test_conv_transpose(
    attrs: dict[str, Any], x_shape: tuple[int, ...], w_shape: tuple[int, ...]
) -> None:
    group = attrs.get("group", 1)
    inits = {"w": _w(*w_shape), "b": _w(w_shape[1] * group, seed=2)}
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], **attrs)
    _check([node], inits, x_shape, ("w", "b"))


UNARY = [
    ("Relu", {}),
    ("LeakyRelu", {"alpha": 0.1}),
    ("Sigmoid", {}),
    ("Tanh", {}),
    ("HardSigmoid", {"alpha": 0.25, "beta": 0.4}),
    ("HardSwish", {}),
    ("Softmax", {"axis": 1}),
    ("GlobalAveragePool", {}),
    ("Identity", {}),
    ("Flatten", {"axis": 2}),
    ("Transpose", {"perm": [0, 2, 3, 1]}),
]


@pytest.mark.parametrize(("op", "attrs"), UNARY)
def test_unary(op: str, attrs: dict[str, Any]) -> None:
    # a conv in front gives the check a parameter to differentiate through the op
    conv = helper.make_node("Conv", ["x", "w"], ["h"], pads=[1, 1, 1, 1])
    node = helper.make_node(op, ["h"], ["y"], **attrs)
    _check([conv, node], {"w": _w(3, 2, 3, 3)}, (2, 2, 5, 4), ("w",))


def test_batchnorm_clip_and_binary_ops_with_broadcast() -> None:
    c = 3
    inits = {
        "w": _w(c, 2, 3, 3),
        "s": _w(c, seed=3) + 1,
        "bb": _w(c, seed=4),
        "m": _w(c, seed=5),
        "v": np.abs(_w(c, seed=6)) + 0.5,
        "lo": np.array(-0.5, F32),
        "hi": np.array(0.7, F32),
        "k": _w(1, c, 1, 1, seed=7) + 2,
    }
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["h"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["h", "s", "bb", "m", "v"], ["n"], epsilon=1e-3),
        helper.make_node("Clip", ["n", "lo", "hi"], ["c"]),
        helper.make_node("Mul", ["c", "k"], ["m1"]),
        helper.make_node("Div", ["m1", "k"], ["d"]),
        helper.make_node("Sub", ["d", "h"], ["s1"]),
        helper.make_node("Add", ["s1", "n"], ["y"]),
    ]
    _check(nodes, inits, (2, 2, 5, 4), ("w", "k"))


def test_concat_split_pools_resize_and_reshapes() -> None:
    inits = {
        "w": _w(4, 2, 3, 3),
        "w2": _w(2, 2, 1, 1, seed=3),
        "sc": np.array([1, 1, 2, 2], F32),
        "sh": np.array([0, 8, -1], np.int64),
        "ax": np.array([1], np.int64),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["h"], pads=[1, 1, 1, 1]),
        helper.make_node("Split", ["h"], ["a", "b"], axis=1),
        helper.make_node("MaxPool", ["a"], ["p"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["b", "w2"], ["q"]),
        helper.make_node("Concat", ["p", "q", "a"], ["c"], axis=1),
        helper.make_node("Resize", ["c", "", "sc"], ["r"], mode="nearest"),
        helper.make_node("Reshape", ["r", "sh"], ["f"]),
        helper.make_node("Unsqueeze", ["f", "ax"], ["u"]),
        helper.make_node("Squeeze", ["u", "ax"], ["y"]),
    ]
    _check(nodes, inits, (2, 2, 4, 5), ("w", "w2"))


@pytest.mark.parametrize(
    ("mode", "rounding"),
    [
        ("asymmetric", "floor"),
        ("half_pixel", "round_prefer_ceil"),
        ("align_corners", "round_prefer_floor"),
    ],
)
def test_resize_nearest_modes_and_non_integer_scales(mode: str, rounding: str) -> None:
    inits = {"w": _w(2, 2, 3, 3), "sz": np.array([2, 2, 7, 13], np.int64)}
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["h"], pads=[1, 1, 1, 1]),
        helper.make_node(
            "Resize",
            ["h", "", "", "sz"],
            ["y"],
            mode="nearest",
            coordinate_transformation_mode=mode,
            nearest_mode=rounding,
        ),
    ]
    _check(nodes, inits, (2, 2, 4, 5), ("w",))


def test_unsupported_op_is_named() -> None:
    node = helper.make_node("LpNormalization", ["x"], ["y"], name="norm7")
    region = autodiff.Region((node,), {}, ("x",), ("y",))
    with pytest.raises(autodiff.Unsupported, match=r"LpNormalization \(norm7\)"):
        autodiff.check(region)


def test_dense_layers_matmul_and_gemm() -> None:
    inits = {
        "w": _w(3, 2, 3, 3),
        "gb": _w(8, 60, seed=3),
        "gc": _w(8, seed=4),
        "sh": np.array([2, 2, 4], np.int64),
        "mw": _w(4, 3, seed=5),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["h"], pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["h"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "gb", "gc"], ["g"], transB=1, alpha=0.7, beta=1.3),
        helper.make_node("Reshape", ["g", "sh"], ["r"]),
        helper.make_node("MatMul", ["r", "mw"], ["y"]),
    ]
    _check(nodes, inits, (2, 2, 4, 5), ("w", "gb", "gc", "mw"))


def test_a_layer_norm_spelled_in_primitives() -> None:
    inits = {
        "w": _w(3, 2, 3, 3),
        "two": np.array(2.0, F32),
        "eps": np.array(1e-3, F32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["h"], pads=[1, 1, 1, 1]),
        helper.make_node("ReduceMean", ["h"], ["mu"], axes=[1]),
        helper.make_node("Sub", ["h", "mu"], ["c"]),
        helper.make_node("Pow", ["c", "two"], ["sq"]),
        helper.make_node("ReduceMean", ["sq"], ["var"], axes=[1, -1], keepdims=1),
        helper.make_node("Add", ["var", "eps"], ["ve"]),
        helper.make_node("Sqrt", ["ve"], ["sd"]),
        helper.make_node("Div", ["c", "sd"], ["n"]),
        helper.make_node("Neg", ["n"], ["m"]),
        helper.make_node("Exp", ["m"], ["e"]),
        helper.make_node("ReduceMean", ["e"], ["y"], axes=[2], keepdims=0),
    ]
    _check(nodes, inits, (2, 2, 4, 5), ("w",))


@pytest.mark.parametrize("include_pad", [0, 1])
def test_average_pool(include_pad: int) -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["h"], pads=[1, 1, 1, 1]),
        helper.make_node(
            "AveragePool",
            ["h"],
            ["y"],
            kernel_shape=[3, 2],
            strides=[2, 1],
            pads=[1, 1, 1, 0],
            count_include_pad=include_pad,
        ),
    ]
    _check(nodes, {"w": _w(3, 2, 3, 3)}, (2, 2, 7, 5), ("w",))


def test_slices_gathers_and_shape_arithmetic() -> None:
    inits = {
        "w": _w(3, 2, 3, 3),
        "st": np.array([5, 1], np.int64),
        "en": np.array([0, 100], np.int64),
        "ax": np.array([2, -1], np.int64),
        "sp": np.array([-2, 1], np.int64),
        "gi": np.array([[0, 2], [1, 1]], np.int64),
        "e": _w(1, 3, 1, 1, seed=3),
        "r0": np.array(0, np.int64),
        "r1": np.array(3, np.int64),
        "rd": np.array(1, np.int64),
        "rs": np.array([1, 3, 1, 1], np.int64),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["h"], pads=[1, 1, 1, 1]),
        helper.make_node("Slice", ["h", "st", "en", "ax", "sp"], ["s"]),
        helper.make_node("Gather", ["s", "gi"], ["g"], axis=-1),
        helper.make_node("ReduceMean", ["g"], ["gc"], axes=[-1], keepdims=0),
        helper.make_node("Shape", ["h"], ["shp"]),
        helper.make_node("Expand", ["e", "shp"], ["ee"]),
        helper.make_node(
            "ConstantOfShape",
            ["shp"],
            ["ones"],
            value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.5]),
        ),
        helper.make_node("Range", ["r0", "r1", "rd"], ["rg"]),
        helper.make_node("Cast", ["rg"], ["rf"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["rf", "rs"], ["rr"]),
        helper.make_node("Mul", ["h", "ee"], ["he"]),
        helper.make_node("Mul", ["he", "ones"], ["ho"]),
        helper.make_node("Add", ["ho", "rr"], ["hr"]),
        helper.make_node("ReduceMean", ["hr"], ["hm"], axes=[2, 3], keepdims=1),
        helper.make_node("Mul", ["gc", "hm"], ["y"]),
    ]
    _check(nodes, inits, (2, 2, 7, 5), ("w", "e"))


def test_a_cast_between_floats_passes_the_gradient_and_one_to_integers_stops_it() -> None:
    to_half = helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT16)
    to_int = helper.make_node("Cast", ["x"], ["y"], to=TensorProto.INT64)
    x = np.array([1.25, -2.5], np.float32)
    g = np.array([0.5, 3.0], np.float16)
    for node, expect in ((to_half, g.astype(np.float32)), (to_int, None)):
        region = autodiff.Region((node,), {}, (), ("y",))
        tape = autodiff.forward(region, {}, {"x": x})
        assert tape.values["y"].dtype == (np.float16 if expect is not None else np.int64)
        grads = autodiff.backward(region, tape, {"y": g}, ("x",))
        if expect is None:
            assert "x" not in grads
        else:
            assert grads["x"].dtype == np.float32
            np.testing.assert_array_equal(grads["x"], expect)
