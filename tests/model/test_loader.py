"""The loader against onnx itself: same structure with payloads cleared, same values on demand."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from convaudit.errors import ModelLoadError
from convaudit.model.loader import LoadedModel, TensorLocation, load_model

ONNX_DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
CONFORMANCE_MODELS = sorted(ONNX_DATA.glob("light/*.onnx")) + sorted(
    ONNX_DATA.glob("pytorch-converted/test_Conv*/model.onnx")
)
PAYLOAD_FIELDS = (
    "raw_data",
    "float_data",
    "int32_data",
    "string_data",
    "int64_data",
    "double_data",
    "uint64_data",
)
RNG = np.random.default_rng(0)


def _tensors(model: onnx.ModelProto) -> Iterator[tuple[str, TensorProto]]:
    """Every TensorProto under the key the loader promises: Constant values by node output."""

    def graph(g: onnx.GraphProto) -> Iterator[tuple[str, TensorProto]]:
        yield from nodes(g.node)
        for t in g.initializer:
            yield t.name, t

    def nodes(node_list: object) -> Iterator[tuple[str, TensorProto]]:
        for n in node_list:  # type: ignore[attr-defined]
            for a in n.attribute:
                if a.HasField("t"):
                    constant = n.op_type == "Constant" and a.name == "value"
                    yield (n.output[0] if constant else a.t.name), a.t
                if a.HasField("g"):
                    yield from graph(a.g)
                for t in a.tensors:
                    yield t.name, t
                for sub in a.graphs:
                    yield from graph(sub)

    yield from graph(model.graph)
    for f in model.functions:
        yield from nodes(f.node)


def _cleared(model: onnx.ModelProto, names: set[str]) -> onnx.ModelProto:
    """A copy of ``model`` with the payload fields of the named tensors removed."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for key, tensor in _tensors(copy):
        if key in names:
            for field in PAYLOAD_FIELDS:
                tensor.ClearField(field)
    return copy


def _assert_same_values(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    if expected.dtype.kind in "fc":
        np.testing.assert_array_equal(actual, expected)  # NaN == NaN here
    else:
        assert np.array_equal(actual, expected)


def _const(output: str, tensor: TensorProto) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [output], value=tensor)


def _big_model() -> onnx.ModelProto:
    """Every payload encoding, big and small, in the main graph, If/Loop bodies and a function."""
    f32 = RNG.standard_normal(2048).astype(np.float32)
    ints = RNG.integers(-(2**40), 2**40, 4096)
    inits = [
        numpy_helper.from_array(RNG.standard_normal((64, 3, 3, 3)).astype(np.float32), "W"),
        numpy_helper.from_array(RNG.standard_normal(64).astype(np.float32), "B"),  # 256 B: kept
        numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "shape"),  # Reshape: kept
        helper.make_tensor("F", TensorProto.FLOAT, [2, 1024], f32, raw=False),
        helper.make_tensor("I64", TensorProto.INT64, [4096], ints, raw=False),
        helper.make_tensor("I32", TensorProto.INT32, [4096], ints % 2**31, raw=False),
        helper.make_tensor("U64", TensorProto.UINT64, [4096], np.abs(ints), raw=False),
        helper.make_tensor("D", TensorProto.DOUBLE, [1024], f32[:1024].astype(float), raw=False),
        helper.make_tensor("H", TensorProto.FLOAT16, [4096], RNG.standard_normal(4096), raw=False),
        numpy_helper.from_array(RNG.standard_normal(4096).astype(np.float16), "H_raw"),
        helper.make_tensor("BF", TensorProto.BFLOAT16, [4096], RNG.standard_normal(4096)),
        helper.make_tensor("I4", TensorProto.INT4, [9001], RNG.integers(-8, 8, 9001)),
        helper.make_tensor("Z", TensorProto.COMPLEX64, [1024], f32[:1024] + 1j * f32[1024:]),
        helper.make_tensor(
            "S", TensorProto.STRING, [2000], [f"tok{i}".encode() for i in range(2000)]
        ),
        helper.make_tensor("S_small", TensorProto.STRING, [2], [b"a", b"b"]),
        helper.make_tensor("Edge", TensorProto.FLOAT, [1024], f32[:1024]),  # exactly 4096 B
        helper.make_tensor("Below", TensorProto.FLOAT, [1023], f32[:1023]),  # 4092 B: kept
    ]
    then_branch = helper.make_graph(
        [_const("then_c", numpy_helper.from_array(f32, "then_c_value"))],
        "then",
        [],
        [helper.make_tensor_value_info("then_c", TensorProto.FLOAT, [2048])],
        initializer=[numpy_helper.from_array(f32 * 2, "then_w")],
    )
    else_branch = helper.make_graph(
        [helper.make_node("Identity", ["W"], ["else_out"])],
        "else",
        [],
        [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(f32 * 3, "else_w")],
    )
    body = helper.make_graph(
        [
            _const("loop_c", numpy_helper.from_array(f32 * 4, "")),
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("iter", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, [])],
    )
    nodes = [
        helper.make_node("Conv", ["X", "W", "B"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Reshape", ["conv", "shape"], ["flat"]),
        _const("C", numpy_helper.from_array(f32 * 5, "c_value")),
        _const("C_small", numpy_helper.from_array(np.arange(4, dtype=np.int64), "")),
        helper.make_node(
            "If", ["cond"], ["if_out"], then_branch=then_branch, else_branch=else_branch
        ),
        helper.make_node("Loop", ["", "cond"], [], body=body),
        helper.make_node("Scale", ["flat"], ["Y"], domain="local"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 3, 8, 8]),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializer=inits,
        value_info=[helper.make_tensor_value_info("conv", TensorProto.FLOAT, [1, 64, 8, 8])],
    )
    function = helper.make_function(
        "local",
        "Scale",
        ["x"],
        ["y"],
        [
            _const("fn_c", numpy_helper.from_array(f32 * 6, "")),
            helper.make_node("Mul", ["x", "fn_c"], ["y"]),
        ],
        [helper.make_opsetid("", 21)],
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("local", 1)],
        functions=[function],
    )


BIG = {"W", "F", "I64", "I32", "U64", "D", "H", "H_raw", "BF", "I4", "Z", "S", "Edge"}
BIG |= {"then_c", "then_w", "else_w", "loop_c", "C", "fn_c"}


@pytest.fixture(scope="module")
def big_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.onnx"
    onnx.save_model(_big_model(), path)
    return path


def test_stripped_proto_equals_onnx_load_without_payloads(big_path: Path) -> None:
    loaded = load_model(big_path)
    assert set(loaded.stripped) == BIG
    assert loaded.proto == _cleared(onnx.load(big_path), BIG)
    assert loaded.stripped["W"].field == 9 and loaded.stripped["W"].length == 64 * 27 * 4
    assert loaded.stripped["F"].field == 4 and loaded.stripped["I64"].field == 7
    assert loaded.stripped["S"].field == 6


def test_every_tensor_reads_back_as_onnx_decodes_it(big_path: Path) -> None:
    reference = onnx.load(big_path)
    with load_model(big_path) as loaded:
        for key, tensor in _tensors(reference):
            if not key:
                continue
            assert loaded.has_data(key) == (key not in BIG), key
            _assert_same_values(loaded.read_tensor(key), numpy_helper.to_array(tensor))


def test_small_tensors_keep_their_values_inline(big_path: Path) -> None:
    loaded = load_model(big_path)
    shape = next(t for t in loaded.proto.graph.initializer if t.name == "shape")
    assert list(numpy_helper.to_array(shape)) == [1, -1]
    assert loaded.has_data("B") and loaded.has_data("S_small") and loaded.has_data("C_small")
    assert not loaded.has_data("not-a-tensor")
    with pytest.raises(KeyError):
        loaded.read_tensor("not-a-tensor")


def test_keep_bytes_zero_strips_everything_and_huge_strips_nothing(big_path: Path) -> None:
    reference = onnx.load(big_path)
    everything = load_model(big_path, keep_bytes=0)
    assert {"B", "shape", "S_small", "Below", "C_small"} <= set(everything.stripped)
    assert everything.proto == _cleared(reference, set(everything.stripped))
    nothing = load_model(big_path, keep_bytes=2**40)
    assert nothing.stripped == {} and nothing.proto == reference


def test_external_data_is_read_on_demand_only(tmp_path: Path) -> None:
    weights = {n: RNG.standard_normal((32, 64)).astype(np.float32) for n in ("a", "b")}
    weights["c"] = RNG.integers(0, 100, (3, 5)).astype(np.int64)
    graph = helper.make_graph(
        [helper.make_node("Sum", ["a", "b"], ["y"])],
        "g",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(v, n) for n, v in weights.items()],
    )
    path = tmp_path / "ext.onnx"
    onnx.save_model(
        helper.make_model(graph),
        path,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="ext.onnx.data",
        size_threshold=0,
    )
    data = tmp_path / "ext.onnx.data"
    loaded = load_model(path)
    assert loaded.stripped == {}
    for name, values in weights.items():
        assert not loaded.has_data(name)
        _assert_same_values(loaded.read_tensor(name), values)
    loaded.close()

    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match="too short") as short:
        load_model(path).read_tensor("b")
    assert str(data) in str(short.value)
    data.unlink()
    loaded = load_model(path)  # loading never opens the data file
    with pytest.raises(ModelLoadError, match="not found") as missing:
        loaded.read_tensor("a")
    assert str(data) in str(missing.value)


def test_external_location_outside_the_model_directory_is_refused(tmp_path: Path) -> None:
    tensor = numpy_helper.from_array(np.zeros(4, dtype=np.float32), "w")
    onnx.external_data_helper.set_external_data(tensor, location="../secret")
    tensor.ClearField("raw_data")
    graph = helper.make_graph([], "g", [], [], initializer=[tensor])
    path = tmp_path / "m.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    with pytest.raises(ModelLoadError, match="invalid external data location"):
        load_model(path).read_tensor("w")


def test_offsets_beyond_2_gib(tmp_path: Path) -> None:
    """A sparse ~2.1 GB file: the walker skips the hole, the tensor after it reads back."""
    from convaudit.model.wire import encode_varint, len_field

    huge = 2**31 + 123
    after = np.arange(2048, dtype=np.float32)
    head = TensorProto(name="huge", data_type=TensorProto.UINT8, dims=[huge]).SerializeToString()
    huge_msg_head = head + b"\x4a" + encode_varint(huge)  # raw_data (9) tag and length
    after_msg = numpy_helper.from_array(after, "after").SerializeToString()
    rest = helper.make_graph([helper.make_node("Identity", ["after"], ["y"])], "g", [], [])
    rest_bytes = rest.SerializeToString()
    huge_field = b"\x2a" + encode_varint(len(huge_msg_head) + huge)  # initializer (5)
    graph_len = len(huge_field) + len(huge_msg_head) + huge + len(len_field(5, after_msg))
    graph_len += len(rest_bytes)
    model_head = helper.make_model(helper.make_graph([], "g", [], [])).SerializeToString()
    model_head = onnx.ModelProto.FromString(model_head)
    model_head.ClearField("graph")
    path = tmp_path / "sparse.onnx"
    with open(path, "wb") as f:
        f.write(model_head.SerializeToString() + b"\x3a" + encode_varint(graph_len))
        f.write(huge_field + huge_msg_head)
        f.seek(huge, 1)  # a hole: no disk blocks, reads as zeros
        f.write(len_field(5, after_msg) + rest_bytes)
    loaded = load_model(path)
    assert loaded.stripped["after"].offset > 2**31
    assert [t.name for t in loaded.proto.graph.initializer] == ["huge", "after"]
    assert list(loaded.proto.graph.initializer[0].dims) == [huge]
    _assert_same_values(loaded.read_tensor("after"), after)


def test_external_offsets_beyond_2_gib(tmp_path: Path) -> None:
    tensor = numpy_helper.from_array(np.arange(10, dtype=np.float64), "w")
    offset = 2**31 + 4096
    data = tmp_path / "w.bin"
    with open(data, "wb") as f:
        f.seek(offset)
        f.write(tensor.raw_data)
    onnx.external_data_helper.set_external_data(tensor, location="w.bin", offset=offset, length=80)
    tensor.ClearField("raw_data")
    path = tmp_path / "m.onnx"
    path.write_bytes(
        helper.make_model(helper.make_graph([], "g", [], [], [tensor])).SerializeToString()
    )
    _assert_same_values(load_model(path).read_tensor("w"), np.arange(10, dtype=np.float64))


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("empty.onnx", b"", "file is empty"),
        ("notes.onnx", b"hello, this is a text file\n", "not an ONNX model"),
        ("image.onnx", b"\x89PNG\r\n\x1a\n" + bytes(64), "not an ONNX model"),
        (
            "tensor.onnx",
            numpy_helper.from_array(np.ones(3), "t").SerializeToString(),
            "not an ONNX",
        ),
        (
            "nograph.onnx",
            onnx.ModelProto(ir_version=9, producer_name="x").SerializeToString(),
            "no graph",
        ),
    ],
)
def test_bad_files_raise_one_line_errors(
    tmp_path: Path, name: str, content: bytes, problem: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    _assert_load_error(path, problem)


def test_missing_path_and_directory(tmp_path: Path) -> None:
    _assert_load_error(tmp_path / "absent.onnx", "no such file")
    _assert_load_error(tmp_path, "is a directory")


@pytest.mark.parametrize("keep_fraction", [0.001, 0.5, 0.999])
def test_truncated_file(tmp_path: Path, big_path: Path, keep_fraction: float) -> None:
    content = big_path.read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(content[: int(len(content) * keep_fraction)])
    _assert_load_error(path, "truncated")


def _assert_load_error(path: Path, problem: str) -> None:
    with pytest.raises(ModelLoadError) as caught:
        load_model(path)
    message = str(caught.value)
    assert problem in message and str(path) in message and "\n" not in message


def _model_with_text(where: str) -> bytes:
    """A valid model whose text field ``where`` reads QQQQ (replaced with non-UTF-8 bytes)."""
    names = {k: ("QQQQ" if k == where else k) for k in ("node", "input", "dim", "branch")}
    branch = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["b"], name=names["branch"])],
        "then",
        [],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, None)],
    )
    nodes = [
        helper.make_node("Relu", [names["input"]], ["y"], name=names["node"]),
        helper.make_node("If", ["c"], ["z"], then_branch=branch, else_branch=branch),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info(names["input"], TensorProto.FLOAT, [names["dim"], 3]),
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    data = helper.make_model(graph).SerializeToString()
    assert data.count(b"QQQQ") >= 1
    return data.replace(b"QQQQ", b"\xffQ\xfeQ")  # same length: the protobuf stays well-formed


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("node", "node 0 of the graph"),
        ("input", "a name in the graph's input"),
        ("dim", "a dim of the graph's input 'input'"),
        ("branch", "node 0 of node 1 of the graph (else_branch)"),
    ],
)
def test_names_that_are_not_utf8_are_a_load_error(tmp_path: Path, where: str, problem: str) -> None:
    # python-protobuf returns such proto2 text as bytes; the report then crashed on them
    path = tmp_path / "m.onnx"
    path.write_bytes(_model_with_text(where))
    _assert_load_error(path, f"{problem} is not UTF-8 text")


def test_input_file_is_not_modified(big_path: Path) -> None:
    before = hashlib.sha256(big_path.read_bytes()).hexdigest()
    mtime = big_path.stat().st_mtime_ns
    with load_model(big_path, keep_bytes=0) as loaded:
        for name in loaded.stripped:
            loaded.read_tensor(name)
    assert hashlib.sha256(big_path.read_bytes()).hexdigest() == before
    assert big_path.stat().st_mtime_ns == mtime


def test_reading_after_the_file_changed_is_refused(tmp_path: Path, big_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(big_path.read_bytes())
    loaded = load_model(path)
    path.write_bytes(b"x" + big_path.read_bytes())
    with pytest.raises(ModelLoadError, match="changed since it was loaded"):
        loaded.read_tensor("W")


def test_public_types() -> None:
    location = TensorLocation(offset=1, length=2, field=9)
    with pytest.raises(AttributeError):
        location.offset = 3  # type: ignore[misc]
    assert LoadedModel.__name__ == "LoadedModel"


@pytest.mark.parametrize("path", CONFORMANCE_MODELS, ids=lambda p: p.parent.name + "/" + p.name)
def test_onnx_conformance_models(path: Path) -> None:
    reference = onnx.load(path)
    with load_model(path, keep_bytes=0) as loaded:
        assert loaded.proto == _cleared(reference, set(loaded.stripped))
        expected = {key: tensor for key, tensor in _tensors(reference) if key}
        assert set(loaded.stripped) == {k for k, t in expected.items() if _payload_size(t)}
        for name in loaded.stripped:
            _assert_same_values(loaded.read_tensor(name), numpy_helper.to_array(expected[name]))


def _payload_size(tensor: TensorProto) -> int:
    return sum(len(getattr(tensor, f)) for f in PAYLOAD_FIELDS)


def test_conformance_models_are_present() -> None:
    assert len(CONFORMANCE_MODELS) > 20
