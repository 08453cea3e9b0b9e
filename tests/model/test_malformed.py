"""Malformed graphs and inputs that do not fit: each is a typed, one-line error or a noted unknown
layer, never an internal error (IndexError, KeyError, RecursionError)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from convaudit import Config
from convaudit.api import analyse_model
from convaudit.api import fix as fix_model  # convaudit.fix is also the fix/ package
from convaudit.errors import ConfigError, InputShapeError, ModelLoadError, ShapeError
from convaudit.model.analyse import analyse
from convaudit.model.loader import _TOO_DEEP, MissingTensorError, load_model
from convaudit.model.walk import _topological
from convaudit.model.walkstate import MAX_DEPTH
from convaudit.model.wire import VARINT, encode_varint, field_key, len_field

F = TensorProto.FLOAT
TEXTBOOK = Path(__file__).resolve().parents[2] / "sample_models" / "textbook_5x5.onnx"


def save(
    tmp_path: Path,
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[onnx.ValueInfoProto],
    inits: Sequence[TensorProto] = (),
    *,
    functions: Sequence[onnx.FunctionProto] = (),
    opsets: Sequence[tuple[str, int]] = (("", 18),),
) -> Path:
    out = [helper.make_tensor_value_info("y", F, None)]
    graph = helper.make_graph(list(nodes), "main", list(inputs), out, list(inits))
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in opsets],
        functions=list(functions),
    )
    model.ir_version = 9
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    return path


def conv_model(tmp_path: Path) -> Path:
    w = numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "W")
    x = helper.make_tensor_value_info("x", F, [1, 3, 8, 8])
    return save(tmp_path, [helper.make_node("Conv", ["x", "W"], ["y"], name="c")], [x], [w])


def test_input_shapes_that_do_not_fit_are_a_model_level_error(tmp_path: Path) -> None:
    """The model layer knows nothing of config: it raises InputShapeError, naming the file."""
    path = conv_model(tmp_path)
    with pytest.raises(InputShapeError) as caught:
        analyse(path, input_shapes={"images": (1, 3, 8, 8)})
    assert not isinstance(caught.value, ConfigError)
    assert str(caught.value) == (
        f"{path}: --input-shape names unknown input 'images'; the model's inputs are x"
    )
    with pytest.raises(InputShapeError, match="has rank 3 but input 'x' has rank 4"):
        analyse(path, input_shapes={"x": (1, 3, 8)})


def test_the_config_layer_reports_them_as_config_errors(tmp_path: Path) -> None:
    path = conv_model(tmp_path)
    config = Config(input_shapes={"images": (1, 3, 8, 8)})
    with pytest.raises(ConfigError) as caught:
        analyse_model(str(path), config)
    assert str(caught.value) == (
        f"{path}: --input-shape names unknown input 'images'; the model's inputs are x"
    )


# -- a conv whose data input has no channel axis ----------------------------------------------


def _rank_1_range(tmp_path: Path) -> Path:
    nodes = [
        helper.make_node("Range", ["start", "limit", "delta"], ["r"], name="range"),
        helper.make_node("Conv", ["r", "W"], ["y"], name="conv"),
    ]
    inits = [
        numpy_helper.from_array(np.array(v, np.float32), n)
        for n, v in (("start", 0), ("limit", 8), ("delta", 1))
    ]
    inits.append(numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "W"))
    return save(tmp_path, nodes, [], inits)


def _sequence_input(tmp_path: Path) -> Path:
    seq = helper.make_tensor_sequence_value_info("x", F, [1, 3, 8, 8])
    w = numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "W")
    return save(tmp_path, [helper.make_node("Conv", ["x", "W"], ["y"], name="conv")], [seq], [w])


def _nhwc_rank_1(tmp_path: Path) -> Path:
    x = helper.make_tensor_value_info("x", F, [8])
    w = numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "W")
    node = helper.make_node("NhwcConv", ["x", "W"], ["y"], name="conv", domain="com.microsoft")
    return save(tmp_path, [node], [x], [w], opsets=(("", 18), ("com.microsoft", 1)))


@pytest.mark.parametrize("build", [_rank_1_range, _sequence_input, _nhwc_rank_1])
def test_conv_on_an_input_without_channels_is_an_unknown_layer(
    tmp_path: Path, build: Callable[[Path], Path]
) -> None:
    """No IndexError: the conv's cost is unknown and the layer says why."""
    facts = analyse(build(tmp_path))
    (layer,) = facts.layers
    assert layer.macs is None
    assert layer.note == "input shape unknown"
    assert (layer.in_channels, layer.out_channels) == (3, 4)  # from the weight


# -- model-local functions that recurse or nest too deep --------------------------------------


def _calls(name: str, callee: str | None) -> onnx.FunctionProto:
    """Function ``name``(a) -> b: Relu, or a call of ``callee`` when given."""
    node = (
        helper.make_node(callee, ["a"], ["b"], domain="local")
        if callee
        else helper.make_node("Relu", ["a"], ["b"])
    )
    return helper.make_function("local", name, ["a"], ["b"], [node], [helper.make_opsetid("", 18)])


def _function_model(tmp_path: Path, functions: list[onnx.FunctionProto]) -> Path:
    x = helper.make_tensor_value_info("x", F, [1, 3, 8, 8])
    call = helper.make_node(functions[0].name, ["x"], ["y"], name="call", domain="local")
    return save(tmp_path, [call], [x], functions=functions, opsets=(("", 18), ("local", 1)))


def test_a_function_calling_itself_is_refused(tmp_path: Path) -> None:
    path = _function_model(tmp_path, [_calls("f", "f")])
    with pytest.raises(
        ShapeError, match=r"function local\.f calls itself \(local\.f -> local\.f\)"
    ):
        analyse(path)


def test_functions_calling_each_other_are_refused(tmp_path: Path) -> None:
    path = _function_model(tmp_path, [_calls("f", "g"), _calls("g", "h"), _calls("h", "g")])
    with pytest.raises(ShapeError) as caught:
        analyse(path)
    message = str(caught.value)
    assert "function local.g calls itself (local.g -> local.h -> local.g)" in message
    assert message.startswith(f"{path}: ") and "\n" not in message


def test_a_function_chain_2000_deep_stops_at_the_depth_limit(tmp_path: Path) -> None:
    chain = [_calls(f"f{i}", f"f{i + 1}") for i in range(2000)] + [_calls("f2000", None)]
    with pytest.raises(ShapeError, match=f"nest more than {MAX_DEPTH} deep"):
        analyse(_function_model(tmp_path, chain))


def test_a_function_chain_within_the_limit_is_walked(tmp_path: Path) -> None:
    chain = [_calls(f"f{i}", f"f{i + 1}") for i in range(50)] + [_calls("f50", None)]
    facts = analyse(_function_model(tmp_path, chain))
    assert facts.outputs["y"] == (1, 3, 8, 8)  # the Relu at the bottom of 51 calls


# -- If nested deeper than protobuf can parse ---------------------------------------------------


def _nested_if(depth: int) -> bytes:
    """A model whose If nodes nest ``depth`` deep, written at the wire level: protobuf's own
    encoder refuses to build what it could not parse."""

    def text(n: int, value: str) -> bytes:
        return len_field(n, value.encode())

    def graph(nodes: list[bytes], name: str, outs: list[str], ins: Sequence[str] = ()) -> bytes:
        vi = [len_field(11, text(1, i)) for i in ins] + [len_field(12, text(1, o)) for o in outs]
        return b"".join([*(len_field(1, n) for n in nodes), text(2, name), *vi])

    def node(op: str, ins: list[str], outs: list[str], attrs: Sequence[bytes] = ()) -> bytes:
        fields = [text(1, i) for i in ins] + [text(2, o) for o in outs] + [text(4, op)]
        return b"".join([*fields, *(len_field(5, a) for a in attrs)])

    def graph_attr(name: str, g: bytes) -> bytes:  # AttributeProto: name, g, type GRAPH (5)
        return text(1, name) + len_field(6, g) + field_key(20, VARINT) + encode_varint(5)

    g = graph([node("Identity", ["x"], ["y0"])], "b0", ["y0"])
    for d in range(1, depth + 1):
        leaf = graph([node("Identity", ["x"], [f"e{d}"])], f"e{d}", [f"e{d}"])
        attrs = [graph_attr("then_branch", g), graph_attr("else_branch", leaf)]
        top = d == depth
        ins = ["x", "c"] if top else ()
        g = graph([node("If", ["c"], [f"y{d}"], attrs)], "main" if top else f"b{d}", [f"y{d}"], ins)
    opset = text(1, "") + field_key(2, VARINT) + encode_varint(18)
    return field_key(1, VARINT) + encode_varint(9) + len_field(8, opset) + len_field(7, g)


@pytest.mark.parametrize("depth", [40, 200, 2000])
def test_if_nested_too_deep_is_a_clean_load_error(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "deep.onnx"
    path.write_bytes(_nested_if(depth))
    with pytest.raises(ModelLoadError) as caught:
        analyse(path)
    assert str(caught.value) == f"{path}: {_TOO_DEEP}"


def test_if_nested_within_protobuf_s_limit_is_walked(tmp_path: Path) -> None:
    path = tmp_path / "deep.onnx"
    path.write_bytes(_nested_if(30))
    facts = analyse(path)
    assert sum(1 for p in facts.problems if p.kind == "unknown-op") == 0
    assert len(facts.node_graph) == 30 + 30 + 1  # 30 Ifs, 30 else Identities, the innermost


# -- a bias naming a tensor nothing holds -------------------------------------------------------


def test_a_bias_naming_a_missing_tensor_is_a_clean_error(tmp_path: Path) -> None:
    model = onnx.load(str(TEXTBOOK))
    (conv,) = [n for n in model.graph.node if n.op_type == "Conv"]
    conv.input[2] = "missing_bias"
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    with load_model(path) as loaded, pytest.raises(MissingTensorError) as caught:
        loaded.read_tensor("missing_bias")
    assert isinstance(caught.value, ModelLoadError) and isinstance(caught.value, KeyError)
    assert str(caught.value).startswith(f"{path}: tensor 'missing_bias' is not stored")
    with pytest.raises(ModelLoadError, match="'missing_bias' is not stored in the model"):
        fix_model(str(path), str(tmp_path / "out.onnx"))


# -- node order: linear time, the same order as pass-by-pass sorting --------------------------


def _by_passes(nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """The reference: repeated passes in file order, each taking every node ready by then."""
    produced = {o for n in nodes for o in n.output if o}
    ready: set[str] = set()
    ordered: list[onnx.NodeProto] = []
    pending = nodes
    while pending:
        rest = []
        for n in pending:
            if all(i in ready for i in n.input if i and i in produced):
                ordered.append(n)
                ready.update(o for o in n.output if o)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            ordered.extend(rest)
            break
        pending = rest
    return ordered


def test_node_order_matches_pass_by_pass_sorting_on_shuffled_graphs() -> None:
    rng = np.random.default_rng(7)
    for trial in range(200):
        n = int(rng.integers(1, 30))
        nodes = []
        for i in range(n):
            k = int(rng.integers(0, 3))
            ins = [f"t{int(j)}" for j in rng.integers(0, i + 1, size=k)] if i else ["x"]
            if trial % 5 == 0 and rng.random() < 0.1:
                ins.append(f"t{i + 1}")  # its own output: a cycle, left in file order
            if trial % 7 == 0 and rng.random() < 0.2:
                ins.append("")  # an omitted optional input
            outs = [f"t{i + 1}"] if rng.random() > 0.1 else [f"t{i + 1}", f"t{i}"]  # namesakes
            nodes.append(helper.make_node("Add", ins, outs, name=f"n{i}"))
        order = list(rng.permutation(n))
        shuffled = [nodes[i] for i in order]
        assert [x.name for x in _topological(shuffled)] == [x.name for x in _by_passes(shuffled)]


def test_a_chain_stored_in_reverse_is_walked_producer_first(tmp_path: Path) -> None:
    n = 3000
    nodes = [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"], name=f"r{i}") for i in range(n)]
    nodes.append(helper.make_node("Conv", [f"t{n}", "W"], ["y"], name="conv"))
    assert [x.name for x in _topological(nodes[::-1])] == [x.name for x in nodes]
    w = numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "W")
    x = helper.make_tensor_value_info("t0", F, [1, 3, 8, 8])
    facts = analyse(save(tmp_path, nodes[::-1], [x], [w]))
    (layer,) = facts.layers
    assert layer.macs == 4 * 36 * 3 * 9  # the conv sees the chain's 1x3x8x8


# -- attributes of the wrong type: checked against the op's schema, once ----------------------


def _untyped(name: str, **field: object) -> onnx.AttributeProto:
    """An attribute with no type, as IR-1 exports wrote them: its field says what it is."""
    a = onnx.AttributeProto(name=name)
    for key, value in field.items():
        setattr(a, key, value)
    return a


@pytest.mark.parametrize(
    ("node", "message"),
    [
        pytest.param(
            helper.make_node("Shape", ["x"], ["y"], name="n", start="text"),
            "node 'n' (Shape): attribute start 'text' is not an int",
            id="shape-start-text",
        ),
        pytest.param(
            helper.make_node("Relu", ["x"], ["r"], name="n"),
            None,
            id="no-attributes",
        ),
        pytest.param(
            helper.make_node("Transpose", ["x"], ["y"], name="n", perm=1),
            "node 'n' (Transpose): attribute perm 1 is not a list of ints",
            id="transpose-perm-int",
        ),
        pytest.param(
            helper.make_node("Flatten", ["x"], ["y"], name="n", axis=[1, 2]),
            "node 'n' (Flatten): attribute axis [1, 2] is not an int",
            id="flatten-axis-ints",
        ),
        pytest.param(
            helper.make_node("LeakyRelu", ["x"], ["y"], name="n", alpha="0.1"),
            "node 'n' (LeakyRelu): attribute alpha '0.1' is not a float",
            id="leaky-alpha-text",
        ),
    ],
)
def test_an_attribute_of_another_type_than_the_schema_s_is_refused(
    tmp_path: Path, node: onnx.NodeProto, message: str | None
) -> None:
    x = helper.make_tensor_value_info("x", F, [1, 3, 8, 8])
    path = save(tmp_path, [node], [x])
    if message is None:
        analyse(path)
        return
    with pytest.raises(ShapeError) as caught:
        analyse(path)
    assert str(caught.value) == f"{path}: {message}: the model is invalid"


def test_untyped_attributes_are_checked_by_the_field_they_set(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", F, [2, 3, 4])
    good = helper.make_node("Flatten", ["x"], ["y"], name="n")
    good.attribute.append(_untyped("axis", i=2))
    analyse(save(tmp_path, [good], [x]))  # an int in i: accepted
    bad = helper.make_node("Flatten", ["x"], ["y"], name="n")
    bad.attribute.append(_untyped("axis", s=b"2"))
    with pytest.raises(ShapeError, match="attribute axis '2' is not an int"):
        analyse(save(tmp_path, [bad], [x]))


def test_an_attribute_a_later_opset_names_is_checked_with_that_type(tmp_path: Path) -> None:
    """Shape has start only from opset 15; the walker's folding reads it at any opset."""
    node = helper.make_node("Shape", ["x"], ["y"], name="n", start=[1])
    x = helper.make_tensor_value_info("x", F, [1, 3])
    with pytest.raises(ShapeError, match=r"attribute start \[1\] is not an int"):
        analyse(save(tmp_path, [node], [x], opsets=(("", 13),)))


def test_attributes_the_schema_does_not_name_are_left_to_their_readers(tmp_path: Path) -> None:
    """Only a known attribute's type is checked: an extra one (an exporter's note) passes."""
    node = helper.make_node("Relu", ["x"], ["y"], name="n", note="exported by x")
    x = helper.make_tensor_value_info("x", F, [1, 3])
    assert analyse(save(tmp_path, [node], [x])).outputs["y"] == (1, 3)


def test_a_function_body_s_attributes_are_checked_too(tmp_path: Path) -> None:
    body = helper.make_node("Flatten", ["a"], ["b"], axis=1.5)
    fn = helper.make_function("local", "f", ["a"], ["b"], [body], [helper.make_opsetid("", 18)])
    with pytest.raises(ShapeError, match=r"attribute axis 1\.5 is not an int"):
        analyse(_function_model(tmp_path, [fn]))


# -- contractions and folds on operands no runtime accepts -------------------------------------


@pytest.mark.parametrize(
    ("op", "a", "b", "note"),
    [
        ("Gemm", [4], (4, 3), "operand shapes (4,) and (4, 3) do not fit Gemm"),
        ("Gemm", [2, 4], (4,), "operand shapes (2, 4) and (4,) do not fit Gemm"),
        ("Gemm", [1, 2, 4], (4, 3), "operand shapes (1, 2, 4) and (4, 3) do not fit Gemm"),
        ("MatMul", [], (4, 3), "operand shapes () and (4, 3) do not fit MatMul"),
    ],
)
def test_a_contraction_on_operands_of_the_wrong_rank_has_unknown_cost(
    tmp_path: Path, op: str, a: list[int], b: tuple[int, ...], note: str
) -> None:
    """The output is declared, so every shape is known: the ranks alone say it cannot run."""
    w = numpy_helper.from_array(np.ones(b, np.float32), "w")
    x = helper.make_tensor_value_info("x", F, a)
    path = save(tmp_path, [helper.make_node(op, ["x", "w"], ["y"], name="mm")], [x], [w])
    model = onnx.load(str(path))
    model.graph.value_info.append(helper.make_tensor_value_info("y", F, [3]))
    onnx.save(model, str(path))
    (layer,) = analyse(path).layers
    assert (layer.macs, layer.note) == (None, note)


def test_a_matmul_of_a_vector_is_still_counted(tmp_path: Path) -> None:
    """Rank 1 is a valid MatMul operand: [4] @ [4, 3] -> [3], 12 MACs."""
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    x = helper.make_tensor_value_info("x", F, [4])
    path = save(tmp_path, [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [x], [w])
    (layer,) = analyse(path).layers
    assert (layer.macs, layer.note) == (4 * 3, None)


def test_a_fill_value_without_a_data_type_leaves_the_value_unknown(tmp_path: Path) -> None:
    value = onnx.AttributeProto(name="value", type=onnx.AttributeProto.TENSOR)
    value.t.dims.append(1)  # no data_type: numpy_helper cannot read it
    node = helper.make_node("ConstantOfShape", ["s"], ["y"], name="fill")
    node.attribute.append(value)
    shape = numpy_helper.from_array(np.array([2, 3], np.int64), "s")
    facts = analyse(save(tmp_path, [node], [], [shape]))
    assert facts.outputs["y"] is None  # not folded; onnx's inference refuses it too:
    (problem,) = facts.problems
    assert problem.kind == "shape-conflict" and "Invalid tensor data type 0" in problem.message
