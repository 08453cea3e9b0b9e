"""Real exporters' graphs: every conv gets onnxruntime's actual output shape, nothing is unknown.

The fixtures in tests/data/real/ reproduce what PyTorch (legacy and dynamo exporters),
paddle2onnx, tf2onnx and onnxruntime's optimiser and quantiser write (build.py and README.md
there say how each was made). The oracle is onnxruntime running each fixture on random inputs
of the scanned shape, with every conv output exposed as a graph output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from convaudit.errors import ShapeError
from convaudit.model.analyse import analyse
from convaudit.records import ModelFacts

REAL = Path(__file__).resolve().parents[1] / "data" / "real"
MANIFEST: dict[str, dict[str, Any]] = json.loads((REAL / "manifest.json").read_text())
ERROR_KINDS = {"unknown-op", "unknown-domain"}


def _feeds(
    model: onnx.ModelProto, shapes: dict[str, list[int]], values: dict[str, Any]
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    init = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in init:
            continue
        dtype = helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
        if vi.name in values:  # an input that selects a branch (a sample rate)
            feeds[vi.name] = np.asarray(values[vi.name], dtype=dtype)
        else:
            feeds[vi.name] = rng.standard_normal(shapes[vi.name]).astype(dtype)
    return feeds


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray], names: list[str]) -> dict[str, Any]:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    m.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in have)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(m.SerializeToString(), options, ["CPUExecutionProvider"])
    outs = [o.name for o in session.get_outputs()]
    return dict(zip(outs, session.run(None, feeds), strict=True))


def _inline_taken_ifs(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> onnx.ModelProto:
    """The model with each main-graph If replaced by the branch onnxruntime takes on ``feeds``,
    so the convs inside it can be exposed as graph outputs."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    while ifs := [n for n in m.graph.node if n.op_type == "If"]:
        conds = _run(m, feeds, [n.input[0] for n in ifs])
        nodes: list[onnx.NodeProto] = []
        for n in m.graph.node:
            if n.op_type != "If":
                nodes.append(n)
                continue
            taken = bool(np.asarray(conds[n.input[0]]).reshape(-1)[0])
            attr = "then_branch" if taken else "else_branch"
            branch = next(a.g for a in n.attribute if a.name == attr)
            m.graph.initializer.extend(branch.initializer)
            nodes.extend(branch.node)
            nodes.extend(
                helper.make_node("Identity", [o.name], [actual])
                for o, actual in zip(branch.output, n.output, strict=True)
            )
        del m.graph.node[:]
        m.graph.node.extend(nodes)
    return m


def _ort_conv_shapes(path: Path, shapes: dict[str, list[int]], facts: ModelFacts) -> dict:
    model = onnx.load(str(path))
    feeds = _feeds(model, shapes, MANIFEST[path.name].get("values", {}))
    model = _inline_taken_ifs(model, feeds)
    names = [layer.outputs[0] for layer in facts.layers]
    produced = {o for n in model.graph.node for o in n.output}
    values = _run(model, feeds, [n for n in names if n in produced])
    out = {k: tuple(np.asarray(v).shape) for k, v in values.items()}
    # Layers report channels-last convs (onnxruntime's NHWC QLinearConv) in NCHW order.
    for node in model.graph.node:
        nhwc = node.op_type == "NhwcConv" or any(
            a.name == "channels_last" and a.i for a in node.attribute
        )
        if nhwc and node.domain == "com.microsoft" and node.output[0] in out:
            s = out[node.output[0]]
            out[node.output[0]] = (s[0], s[-1], *s[1:-1])
    return out


def _scan(name: str) -> tuple[ModelFacts, dict[str, list[int]]]:
    shapes = MANIFEST[name]["inputs"]
    facts = analyse(REAL / name, input_shapes={k: tuple(v) for k, v in shapes.items()})
    return facts, shapes


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_every_layer_is_known(name: str) -> None:
    facts, _ = _scan(name)
    assert [p.message for p in facts.problems if p.kind in ERROR_KINDS] == []
    assert facts.layers, "a real export has convs"
    # Only a branch that cannot run on these inputs may hold a conv without a shape.
    unrunnable = {p.graph for p in facts.problems if p.kind == "unshapeable-branch"}
    unknown = [
        (layer.name, layer.note)
        for layer in facts.layers
        if layer.macs is None and not (not layer.counted and unrunnable)
    ]
    assert unknown == []
    assert facts.totals.unknown_layers == 0
    assert facts.totals.macs > 0


def _reoptimised_here(name: str, tmp_path: Path) -> Path:
    """An ``ORT_ENABLE_ALL`` fixture made again from its source by this machine's onnxruntime.

    NCHWc graphs are blocked to the CPU's vector width (8 channels with AVX2, 16 with AVX-512),
    and onnxruntime refuses to run a graph blocked for another width. The committed fixture stays
    covered by the scan-only tests; the onnxruntime oracle runs on the graph this CPU makes."""
    exporter = MANIFEST[name]["exporter"]
    if "ORT_ENABLE_ALL of " not in exporter:
        return REAL / name
    source = REAL / exporter.rsplit(" of ", 1)[1]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / name)
    options.log_severity_level = 3
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    return tmp_path / name


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_conv_shapes_equal_onnxruntime(name: str, tmp_path: Path) -> None:
    path = _reoptimised_here(name, tmp_path)
    shapes = MANIFEST[name]["inputs"]
    facts = analyse(path, input_shapes={k: tuple(v) for k, v in shapes.items()})
    actual = _ort_conv_shapes(path, shapes, facts)
    convs = [layer for layer in facts.layers if layer.category != "matmul"]
    assert convs
    checked = 0
    for layer in convs:
        if layer.outputs[0] not in actual:
            assert layer.graph != "main", f"{layer.name}: onnxruntime never produced it"
            continue  # inside the branch onnxruntime did not take
        assert layer.output_shape == actual[layer.outputs[0]], layer.name
        checked += 1
    assert checked >= 1


def _input_dims(name: str) -> dict[str, list[int | str | None]]:
    model = onnx.load(str(REAL / name), load_external_data=False)
    init = {t.name for t in model.graph.initializer}
    out: dict[str, list[int | str | None]] = {}
    for vi in model.graph.input:
        if vi.name in init:
            continue
        dims = vi.type.tensor_type.shape.dim
        out[vi.name] = [d.dim_param if d.HasField("dim_param") else d.dim_value for d in dims]
    return out


def _symbol_values(name: str) -> dict[str, int] | None:
    """The --dim values that give the manifest's shapes, if every free dim has a real name."""
    values: dict[str, int] = {}
    for inp, dims in _input_dims(name).items():
        for d, want in zip(dims, MANIFEST[name]["inputs"][inp], strict=True):
            if isinstance(d, str) and d and d != "?":
                if values.setdefault(d, want) != want:
                    return None
            elif d != want:
                return None  # -1 or "?" (paddle2onnx): only --input-shape can set it
    return values


NAMED = [n for n in sorted(MANIFEST) if _symbol_values(n)]


@pytest.mark.parametrize("name", NAMED)
def test_dims_alone_give_the_input_shape_scan(name: str) -> None:
    # --dim must reach every place the symbol is written (inputs, value_info, subgraphs).
    by_dims = analyse(REAL / name, dims=_symbol_values(name))
    by_shape, _ = _scan(name)
    assert by_dims.totals == by_shape.totals
    assert [x.output_shape for x in by_dims.layers] == [x.output_shape for x in by_shape.layers]


@pytest.mark.parametrize("name", NAMED)
def test_without_shapes_the_scan_asks_for_the_input_symbols(name: str) -> None:
    with pytest.raises(ShapeError) as err:
        analyse(REAL / name)
    message = str(err.value)
    for symbol in _symbol_values(name) or {}:
        assert f"--dim {symbol}=" in message


@pytest.mark.parametrize("name", ["mobilenet_se.paddle.onnx", "ppocr_cls_cut.paddle.onnx"])
def test_paddle_dynamic_dims_are_unknown_not_values(name: str) -> None:
    # paddle2onnx writes x as (-1, 3, "?", "?"): -1 is no size and the two "?" are not one
    # symbol, so only --input-shape can set them (a --dim ?=N would make H == W silently).
    assert _input_dims(name)["x"] == [-1, 3, "?", "?"]
    with pytest.raises(ShapeError, match=r"--input-shape x=<\?>x3x<\?>x<\?>"):
        analyse(REAL / name)
    facts = analyse(REAL / name, input_shapes={"x": (2, 3, 48, 192)})
    assert facts.layers[0].input_shape == (2, 3, 48, 192)


def test_a_branch_that_cannot_run_on_the_inputs_is_not_the_cost() -> None:
    # silero VAD's pattern: the If on the sample rate holds a 16 kHz and an 8 kHz stack, and a
    # 128-sample window only fits the 16 kHz one (onnxruntime rejects it at 8 kHz).
    name = "vad_sample_rate.spox.onnx"
    model = onnx.load(str(REAL / name))
    x = np.zeros((1, 128), np.float32)
    _run(model, {"x": x, "sr": np.array(16000)}, [])
    with pytest.raises(Exception, match=r"(?i)squeeze"):
        _run(model, {"x": x, "sr": np.array(8000)}, [])
    facts, _ = _scan(name)
    # 16 kHz: STFT conv 1->18, k16 s8 over 128 samples: 15 frames, 18*15*16 = 4,320 MACs;
    # encoder 18->4, k15: 1 frame, 4*18*15 = 1,080 MACs; decoder 4->2, k1: 8 MACs.
    assert facts.totals.macs == 4_320 + 1_080 + 8
    assert facts.totals.unknown_layers == 0
    (problem,) = [p for p in facts.problems if p.kind == "unshapeable-branch"]
    assert problem.node == "If_0" and "else_branch" in problem.message
    assert [x.counted for x in facts.layers if "else" in x.graph] == [False] * 3


def test_matmul_integer_to_float_gets_onnxruntime_shape(tmp_path: Path) -> None:
    # onnxruntime fuses DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul into this op.
    rng = np.random.default_rng(5)
    inits = [
        numpy_helper.from_array(rng.integers(0, 255, (8, 3)).astype(np.uint8), "B"),
        numpy_helper.from_array(np.array([0.1], np.float32), "a_scale"),
        numpy_helper.from_array(np.full(3, 0.2, np.float32), "b_scale"),
    ]
    node = helper.make_node(
        "MatMulIntegerToFloat", ["A", "B", "a_scale", "b_scale"], ["Y"], domain="com.microsoft"
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("A", onnx.TensorProto.UINT8, [2, "t", 8])],
        [helper.make_tensor_value_info("Y", onnx.TensorProto.FLOAT, None)],
        initializer=inits,
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    path = tmp_path / "mmitf.onnx"
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    a = rng.integers(0, 255, (2, 5, 8)).astype(np.uint8)
    (y,) = _run(onnx.load(str(path)), {"A": a}, []).values()
    facts = analyse(path, input_shapes={"A": (2, 5, 8)})
    (layer,) = facts.layers
    assert layer.output_shape == y.shape == (2, 5, 3)
    assert layer.macs == 2 * 5 * 3 * 8


def test_scripted_loop_counts_its_body_once_per_trip() -> None:
    # for _ in range(x.size(3) // 4): the trip count comes from Shape->Gather->Div->Cast.
    facts, _ = _scan("loop.legacy.onnx")
    pre, step = facts.layers
    assert pre.macs == 4 * 8 * 12 * 3 * 3 * 3  # 3->4, 3x3, same padding on 8x12
    assert step.macs == 4 * 8 * 12 * 4 * 3 * 3  # 4->4 inside the Loop body
    assert step.multiplier == 12 // 4
    assert facts.totals.macs == pre.macs + 3 * step.macs
    # the body's condition is the outer constant True passed through an Identity: no early exit
    assert not [p for p in facts.problems if p.kind in ("dynamic-trip-count", "loop-upper-bound")]


@pytest.mark.parametrize(
    ("name", "concat"),
    [("tiny_yolo.legacy.onnx", "/Concat_1"), ("tiny_yolo.dynamo.onnx", "node_cat_1")],
)
def test_shapes_the_model_cannot_run_on_name_the_node(name: str, concat: str) -> None:
    # 17x17: the x2 upsample of the stride-4 map (5 -> 10) no longer matches the stride-2 map
    # (9), so the neck's Concat fails in onnxruntime, and the scan says so instead of
    # reporting the convs before it and leaving the rest unknown.
    model = onnx.load(str(REAL / name))
    x = np.zeros((1, 3, 17, 17), np.float32)
    with pytest.raises(Exception, match="Concat"):
        _run(model, {"x": x}, [])
    with pytest.raises(ShapeError, match=rf"node '{concat}' \(Concat\) cannot run on inputs"):
        analyse(REAL / name, input_shapes={"x": (1, 3, 17, 17)})


def test_a_baked_reshape_target_refuses_other_input_sizes(tmp_path: Path) -> None:
    # tf2onnx bakes Keras' Reshape((11, 11, 4)) into a constant target. With the input's H and
    # W left free (Keras Input((None, None, 3))), 30x30 gives 15x15x4 before it: onnxruntime
    # refuses the Reshape, while ONNX's own inference would take the target on trust and cost
    # the head conv at 11x11.
    model = onnx.load(str(REAL / "keras_nhwc.tf2onnx.onnx"))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[1].dim_param, dims[2].dim_param = "unk__44", "unk__45"
    path = tmp_path / "keras_free_hw.onnx"
    onnx.save(model, str(path))
    x = np.zeros((2, 30, 30, 3), np.float32)
    with pytest.raises(Exception, match=r"(?i)reshape"):
        _run(model, {"input_1": x}, [])
    assert _run(model, {"input_1": x[:, :21, :21]}, [])  # the size it was built for runs
    with pytest.raises(ShapeError, match=r"\(Reshape\) cannot run on inputs .* differ in size"):
        analyse(path, input_shapes={"input_1": (2, 30, 30, 3)})


def test_named_and_unnamed_dims_together_ask_for_the_whole_shape(tmp_path: Path) -> None:
    # PP-OCRv4 rec's input: (p2o.DynamicDimension.0, 3, "?", p2o.DynamicDimension.1). --dim
    # alone cannot set the "?" height, so the one retry that works is a whole --input-shape.
    model = onnx.load(str(REAL / "mobilenet_se.paddle.onnx"))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_param, dims[3].dim_param = "p2o.DynamicDimension.0", "p2o.DynamicDimension.1"
    path = tmp_path / "rec_like.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ShapeError) as err:
        analyse(path)
    message = str(err.value)
    assert message.endswith(
        "set them with --input-shape x=<p2o.DynamicDimension.0>x3x<?>x<p2o.DynamicDimension.1>"
    )
    assert "None" not in message
