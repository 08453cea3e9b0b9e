"""Mutators shared by the Hypothesis properties (test_fuzz_properties.py) and the process-level
campaign (campaign.py): seeds are small real and built models, rule/config/baseline texts;
every mutator is a pure function of its input and a ``random.Random``."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "tests" / "data" / "real"
RULES = ROOT / "rules"

# Integers that break arithmetic: zero, signs, 32/64-bit edges, beyond 64 bits.
EDGE_INTS = (0, 1, -1, 2, 3, 7, 255, 2**31 - 1, 2**31, 2**32, 2**62, 2**63 - 1, -(2**63))
EDGE_TEXT = ("", "0", "-1", "abc", "1e3", "1_0", " 7", "\x00", "9" * 40, "../x", "/etc/passwd")


def small_real_models(limit_bytes: int = 30_000) -> list[Path]:
    """The exported models under tests/data/real small enough to mutate many times."""
    return sorted(p for p in REAL.glob("*.onnx") if p.stat().st_size <= limit_bytes)


def seed_model(path: Path) -> onnx.ModelProto:
    """A real model with its symbolic input dims pinned (batch 1, others 128), so that the walker
    goes past the inputs: a mutation of an unresolved model only tests the dim check."""
    model = onnx.load(str(path))
    for vi in model.graph.input:
        for i, d in enumerate(vi.type.tensor_type.shape.dim):
            if not d.HasField("dim_value") or d.dim_value <= 0:
                d.dim_value = 1 if i == 0 else 128
    return model


def conv_chain(channels: int = 8, size: int = 6) -> onnx.ModelProto:
    """input -> Conv 3x3 (+bias) -> Relu -> Conv 1x1 -> output: a small model that CA rules see."""
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((channels, channels, 3, 3)).astype(np.float32)
    b1 = rng.standard_normal(channels).astype(np.float32)
    w2 = rng.standard_normal((channels, channels, 1, 1)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv", pads=[1] * 4),
            helper.make_node("Relu", ["c1"], ["r"], name="relu"),
            helper.make_node("Conv", ["r", "w2"], ["y"], name="pw"),
        ],
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, size, size])],
        initializer=[
            numpy_helper.from_array(w1, "w1"),
            numpy_helper.from_array(b1, "b1"),
            numpy_helper.from_array(w2, "w2"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


# -- bytes -------------------------------------------------------------------------------------


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """One to four byte-level edits: flips, truncation, insertion, chunk copy, varint bloat."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not out:
            out = bytearray(rng.randbytes(rng.randint(1, 16)))
            continue
        kind = rng.randrange(6)
        i = rng.randrange(len(out))
        if kind == 0:
            out[i] ^= 1 << rng.randrange(8)
        elif kind == 1:
            out[i] = rng.choice((0x00, 0x7F, 0x80, 0xFF))
        elif kind == 2:
            del out[i:]
        elif kind == 3:
            out[i:i] = rng.randbytes(rng.randint(1, 8))
        elif kind == 4:
            j = rng.randrange(len(out))
            out[i:i] = out[j : j + rng.randint(1, 64)]
        else:  # a maximal varint: lengths and dims read as 2^63-1
            out[i:i] = b"\xff" * 9 + b"\x7f"
    return bytes(out)


# -- protobuf ----------------------------------------------------------------------------------


def _nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    out: list[onnx.NodeProto] = []
    stack = [model.graph]
    while stack:
        g = stack.pop()
        for n in g.node:
            out.append(n)
            stack.extend(a.g for a in n.attribute if a.HasField("g"))
    for f in model.functions:
        out.extend(f.node)
    return out


def _tensors(m: onnx.ModelProto) -> list[str]:
    """Every tensor name the main graph has: inputs, initializers, node outputs."""
    names = [vi.name for vi in m.graph.input] + [t.name for t in m.graph.initializer]
    return names + [o for n in m.graph.node for o in n.output if o]


def _attribute_of_another_type(name: str, rng: random.Random) -> onnx.AttributeProto:
    """``name`` holding a value of any attribute type (the schema wants one of them)."""
    value = rng.choice(
        (
            rng.choice(EDGE_INTS),
            rng.choice((0.0, -1.5, float("nan"), float("inf"), 1e300)),
            rng.choice(EDGE_TEXT),
            [rng.choice(EDGE_INTS) for _ in range(rng.randint(0, 5))],
            [0.5, float("nan")],
            ["a", "b"],
            numpy_helper.from_array(np.zeros(rng.choice(((), (0,), (2,))), np.int64)),
            helper.make_graph([], "empty", [], []),
        )
    )
    if isinstance(value, list) and not value:
        return onnx.AttributeProto(name=name, type=onnx.AttributeProto.INTS)
    a = helper.make_attribute(name, value)
    if rng.random() < 0.2:  # as an IR-1 exporter wrote it: the field says what it is
        a.ClearField("type")
    return a


# Ops that compute shapes and small constants: the walker folds them, so wrong attributes and
# inputs reach the evaluator, not just onnx's inference.
SHAPE_OPS = (
    ("Shape", ("start", "end")),
    ("Size", ()),
    ("Gather", ("axis",)),
    ("Reshape", ("allowzero",)),
    ("ConstantOfShape", ("value",)),
    ("Range", ()),
    ("Slice", ()),
    ("Concat", ("axis",)),
    ("Expand", ()),
    ("Tile", ()),
    ("Squeeze", ("axes",)),
    ("Unsqueeze", ("axes",)),
    ("Transpose", ("perm",)),
    ("Cast", ("to",)),
    ("Split", ("axis", "num_outputs")),
    ("Where", ()),
    ("NonZero", ()),
    ("Einsum", ("equation",)),
    ("Resize", ("mode",)),
    ("Pad", ("mode",)),
    ("Flatten", ("axis",)),
    ("TopK", ("axis",)),
    ("ReduceSum", ("keepdims",)),
)


def _inject_op(m: onnx.ModelProto, rng: random.Random) -> None:
    """A shape/constant op fed from existing tensors (or new small constants), its output
    replacing an input of a later node: malformed arithmetic reaches the walker's folding."""
    op, attr_names = rng.choice(SHAPE_OPS)
    names = _tensors(m)
    consts = []
    for k in range(rng.randint(0, 3)):
        shape = rng.choice(((), (1,), (2,), (4,), (0,), (2, 2)))
        dtype = rng.choice((np.int64, np.int32, np.float32, np.bool_, np.uint8))
        values = np.array([rng.choice(EDGE_INTS[:9]) for _ in range(int(np.prod(shape)))])
        with np.errstate(all="ignore"):
            array = values.astype(dtype).reshape(shape)
        name = f"fuzz_c{len(m.graph.node)}_{k}"
        t = numpy_helper.from_array(array, name)
        if rng.random() < 0.1:
            t.data_type = rng.choice((0, 8, 99))  # a type the bytes do not have
        consts.append(t)
    m.graph.initializer.extend(consts)
    pool = names + [t.name for t in consts]
    inputs = [rng.choice([*pool, ""]) for _ in range(rng.randint(0, 4))]
    out = f"fuzz_{op}_{len(m.graph.node)}"
    node = helper.make_node(op, inputs, [out], name=out)
    for a in attr_names:
        if rng.random() < 0.5:
            node.attribute.append(_attribute_of_another_type(a, rng))
    at = rng.randrange(len(m.graph.node) + 1)
    m.graph.node.insert(at, node)
    later = list(m.graph.node)[at + 1 :]
    if later and rng.random() < 0.8:
        user = rng.choice(later)
        if user.input:
            user.input[rng.randrange(len(user.input))] = out


def _wrap_in_if(m: onnx.ModelProto, rng: random.Random) -> None:
    """Move a node into both branches of an If on a condition that may be constant, unknown,
    or not a boolean at all."""
    if not m.graph.node:
        return
    i = rng.randrange(len(m.graph.node))
    inner = onnx.NodeProto()
    inner.CopyFrom(m.graph.node[i])
    outs = [helper.make_tensor_value_info(o, 0, None) for o in inner.output if o]
    branch = helper.make_graph([inner], "then", [], outs)
    other = helper.make_graph([inner] if rng.random() < 0.5 else [], "else", [], outs)
    cond = rng.choice([*_tensors(m), "fuzz_cond"])
    if cond == "fuzz_cond":
        m.graph.initializer.append(numpy_helper.from_array(np.array(rng.random() < 0.5), cond))
    node = helper.make_node(
        "If", [cond], list(inner.output), then_branch=branch, else_branch=other, name="fuzz_if"
    )
    m.graph.node.remove(m.graph.node[i])
    m.graph.node.insert(i, node)


def _call_function(m: onnx.ModelProto, rng: random.Random) -> None:
    """Move a node into a model-local function and call it; the body may call the function
    itself, another local function, or nest calls."""
    if not m.graph.node:
        return
    i = rng.randrange(len(m.graph.node))
    node = m.graph.node[i]
    n_in, n_out = len(node.input), len(node.output)
    body = onnx.NodeProto()
    body.CopyFrom(node)
    del body.input[:]
    del body.output[:]
    body.input.extend(f"i{k}" if node.input[k] else "" for k in range(n_in))
    body.output.extend(f"o{k}" for k in range(n_out))
    existing = [f.name for f in m.functions]
    name = f"fuzz_f{len(existing)}"
    if rng.random() < 0.3:  # the body calls a local function: itself or another
        body.op_type = rng.choice([name, *existing])
        body.domain = "fuzz.local"
    fn = helper.make_function(
        "fuzz.local",
        name,
        [f"i{k}" for k in range(n_in)],
        [f"o{k}" for k in range(n_out)],
        [body],
        [helper.make_opsetid("", m.opset_import[0].version if m.opset_import else 17)],
        attributes=[a.name for a in node.attribute if rng.random() < 0.2],
    )
    m.functions.append(fn)
    if not any(o.domain == "fuzz.local" for o in m.opset_import):
        m.opset_import.append(helper.make_opsetid("fuzz.local", 1))
    call = helper.make_node(name, list(node.input), list(node.output), domain="fuzz.local")
    m.graph.node.remove(node)
    m.graph.node.insert(i, call)


def _retype(vi: onnx.ValueInfoProto, rng: random.Random) -> None:
    """A declared type changed to another kind or element type, or its dims to edge values."""
    elem = rng.choice((0, 1, 7, 8, 9, 16, 99))
    kind = rng.randrange(5)
    if kind == 0:
        vi.type.CopyFrom(helper.make_sequence_type_proto(helper.make_tensor_type_proto(elem, None)))
    elif kind == 1:
        vi.type.CopyFrom(helper.make_optional_type_proto(helper.make_tensor_type_proto(elem, [1])))
    elif kind == 2:
        vi.type.CopyFrom(helper.make_sparse_tensor_type_proto(elem, [2, 2]))
    elif kind == 3:
        dims = [rng.choice((*EDGE_INTS[:9], "n", "")) for _ in range(rng.randint(0, 6))]
        vi.type.CopyFrom(helper.make_tensor_type_proto(elem or 1, dims))
    else:
        vi.type.tensor_type.elem_type = elem


def mutate_proto(model: onnx.ModelProto, rng: random.Random) -> onnx.ModelProto:
    """One structural edit of a copy of ``model``: attribute values and types, dims, op types,
    declared types, tensor names and dtypes, opset versions, nodes moved into If branches and
    local functions, shape ops injected (what a broken exporter or a hostile author writes)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    nodes = _nodes(m)
    kind = rng.randrange(15)
    if kind >= 8:
        _mutate_more(m, nodes, kind, rng)
        return m
    if kind == 0 and nodes:  # an int/ints attribute set to an edge value
        node = rng.choice(nodes)
        ints = [
            a
            for a in node.attribute
            if a.type in (onnx.AttributeProto.INT, onnx.AttributeProto.INTS)
        ]
        name = rng.choice(("group", "kernel_shape", "pads", "strides", "dilations", "axis"))
        attr = rng.choice(ints) if ints and rng.random() < 0.7 else None
        value = rng.choice(EDGE_INTS)
        if attr is not None and attr.type == onnx.AttributeProto.INTS and attr.ints:
            attr.ints[rng.randrange(len(attr.ints))] = value
        elif attr is not None:
            attr.i = value
        else:
            node.attribute.append(helper.make_attribute(name, value))
    elif kind == 1:  # a declared input dim
        dims = [d for vi in m.graph.input for d in vi.type.tensor_type.shape.dim]
        if dims:
            d = rng.choice(dims)
            if rng.random() < 0.5:
                d.dim_value = rng.choice(EDGE_INTS[:-1]) % 2**63
            else:
                d.dim_param = rng.choice(EDGE_TEXT)
    elif kind == 2 and m.graph.initializer:  # an initializer's dims
        t = rng.choice(list(m.graph.initializer))
        if t.dims:
            t.dims[rng.randrange(len(t.dims))] = rng.choice(EDGE_INTS)
        else:
            t.dims.append(rng.choice(EDGE_INTS))
    elif kind == 3 and nodes:  # op type swap among ops with weights and shapes
        rng.choice(nodes).op_type = rng.choice(
            ("Conv", "ConvTranspose", "MatMul", "Gemm", "Reshape", "Pad", "Resize", "Concat")
        )
    elif kind == 4 and nodes:  # an input renamed to a tensor that exists elsewhere
        node = rng.choice(nodes)
        names = [o for n in nodes for o in n.output] + [t.name for t in m.graph.initializer]
        if node.input and names:
            node.input[rng.randrange(len(node.input))] = rng.choice(names)
    elif kind == 5 and m.opset_import:  # another opset version
        m.opset_import[0].version = rng.choice((1, 6, 9, 11, 13, 17, 21, 99))
    elif kind == 6 and m.graph.initializer:  # weights moved to external data, entries hostile
        t = rng.choice(list(m.graph.initializer))
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        for key in ("location", "offset", "length"):
            entry = t.external_data.add()
            entry.key = key
            entry.value = rng.choice((*EDGE_TEXT, "w.bin", str(rng.choice(EDGE_INTS))))
    elif nodes:  # an attribute of the wrong type
        node = rng.choice(nodes)
        if node.attribute:
            a = rng.choice(list(node.attribute))
            value = rng.choice((1.5, "text", [1, 2, 3], [0.5]))
            node.attribute.remove(a)
            node.attribute.append(helper.make_attribute(a.name, value))
    return m


def _mutate_more(
    m: onnx.ModelProto, nodes: list[onnx.NodeProto], kind: int, rng: random.Random
) -> None:
    if kind == 8 and nodes:  # a schema attribute of another type
        node = rng.choice(nodes)
        try:
            schema = onnx.defs.get_schema(node.op_type, 17, node.domain)
            names = list(schema.attributes) or ["axis"]
        except Exception:
            names = [a.name for a in node.attribute] or ["axis"]
        name = rng.choice(names)
        for a in [a for a in node.attribute if a.name == name]:
            node.attribute.remove(a)
        node.attribute.append(_attribute_of_another_type(name, rng))
    elif kind == 9:
        _inject_op(m, rng)
    elif kind == 10:
        _wrap_in_if(m, rng)
    elif kind == 11:
        _call_function(m, rng)
    elif kind == 12:  # a declared type: graph input, output, or value_info for a node output
        outs = [o for n in m.graph.node for o in n.output if o]
        if outs and rng.random() < 0.5:
            vi = m.graph.value_info.add()
            vi.name = rng.choice(outs)
            vi.type.CopyFrom(helper.make_tensor_type_proto(1, [2, 3]))
            _retype(vi, rng)
        elif m.graph.input:
            _retype(rng.choice(list(m.graph.input)), rng)
    elif kind == 13 and m.graph.initializer:  # a tensor's data type or bytes
        t = rng.choice(list(m.graph.initializer))
        if rng.random() < 0.5:
            t.data_type = rng.choice((0, 2, 8, 10, 16, 17, 23, 99))
        elif t.raw_data:
            t.raw_data = t.raw_data[: rng.randrange(len(t.raw_data))]
        else:
            t.dims.append(rng.choice((0, 3, 2**40)))
    elif kind == 14 and nodes:  # graph structure: a cycle, a duplicate, a removed node
        node = rng.choice(nodes)
        edit = rng.randrange(3)
        if edit == 0 and node.output and node.input:
            node.input[rng.randrange(len(node.input))] = node.output[0]
        elif edit == 1:
            m.graph.node.append(m.graph.node[rng.randrange(len(m.graph.node))])
        elif m.graph.node:
            m.graph.node.remove(m.graph.node[rng.randrange(len(m.graph.node))])


# -- text inputs ------------------------------------------------------------------------------


_KEY_VALUE = re.compile(r"^(\s*(?:- )?[A-Za-z_]+:) (?![>|]).+$")  # `key: value` (no block)
# YAML scalars that keep a rule file parseable while its values go to the edge
YAML_EDGES = (
    ".nan",
    ".inf",
    "-.inf",
    "-1",
    "0",
    "1e400",
    "''",
    "null",
    "[]",
    "{}",
    "true",
    "x" * 300,
)


def mutate_text(text: str, rng: random.Random) -> str:
    """Line-level edits of a rule, config or baseline text: drop, duplicate, swap in edge values."""
    lines = text.splitlines()
    values = [(i, m.group(1)) for i, line in enumerate(lines) if (m := _KEY_VALUE.match(line))]
    if values and rng.random() < 0.4:  # one value swapped, the file still parses
        i, head = rng.choice(values)
        lines[i] = f"{head} {rng.choice(YAML_EDGES)}"
        return "\n".join(lines) + "\n"
    for _ in range(rng.randint(1, 3)):
        if not lines:
            lines = [rng.choice(EDGE_TEXT)]
            continue
        i = rng.randrange(len(lines))
        kind = rng.randrange(5)
        if kind == 0:
            del lines[i]
        elif kind == 1:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif kind == 2:
            head, _, _ = lines[i].partition(":") if ":" in lines[i] else lines[i].partition("=")
            sep = ":" if ":" in lines[i] else " ="
            lines[i] = f"{head}{sep} {rng.choice((*EDGE_TEXT, *map(str, EDGE_INTS)))!s}"
        elif kind == 3:
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
        else:
            lines.insert(
                i, rng.choice(("[", "{", "- *a", "&a [", "]]", "'", '"')) * rng.randint(1, 50)
            )
    return "\n".join(lines) + "\n"


# Values of the right shape for each key, valid or at the edge of valid: a config that loads,
# then meets the scan (a 0 dim, a NaN rule param, a budget of 0).
PLAUSIBLE: dict[str, tuple[str, ...]] = {
    "select": ('["CA1"]', '["CA101", "CA9"]', '["ALL"]', "[]"),
    "ignore": ('["CA900"]', '["CA"]', '["CA101"]'),
    "severity": ('{ CA101 = "error" }', '{ CA900 = "info" }', '{ CA101 = "loud" }'),
    "params": (
        "{ CA101 = { min_in_channels = 0 } }",
        "{ CA101 = { min_share = -1.0, min_saving = 0.0 } }",
        "{ CA101 = { width_ratio = 1e308 } }",
        "{ CA101 = { min_saving = nan } }",
        "{ CA101 = { large_kernel_ratio = 0.0, small_kernel_ratio = inf } }",
        '{ CA101 = { width_policy = "budget", mac_budget = 0 } }',
        '{ CA101 = { width_policy = "saving", target_saving = 1.0 } }',
        "{ CA101 = { drop_in_error = -1.0 } }",
    ),
    "input-shapes": ('{ x = "1x8x6x6" }', '{ x = "0x8x6x6" }', '{ x = "1x8x2147483647x1" }'),
    "dims": ("{ batch = 1 }", '{ "*" = 0 }', '{ "*" = 9223372036854775807 }'),
    "fail-on": ('"never"', '"info"', '"error"'),
    "baseline": ('"baseline.json"', '"."', '"m.onnx"'),
    "rule-dirs": ('["."]', '["outside"]'),
    "suppressions": ('[{ rule = "CA101", reason = "r", node = "*" }]', '[{ rule = "CA1" }]'),
    "max-macs": ('"0"', '"1"', '"4.1G"', "0", "1e400"),
    "max-params": ('"0"', '"25.6M"', "-1"),
    "max-increase": ('"0%"', '"200%"', "0"),
    "exclude": ('["*.onnx"]', '["["]', '["outside/**"]'),
    "extend-exclude": ('["**/"]', '["!m.onnx"]'),
    "respect-gitignore": ("false", "true"),
    "default-dim": ("1", "0", "2147483647"),
}


def config_text(rng: random.Random) -> str:
    """A convaudit.toml drawing keys and values from the valid and the edge."""
    from convaudit.config.records import KEYS

    if rng.random() < 0.5:  # a few keys, each with a value of its own shape
        chosen = rng.sample(KEYS, rng.randint(1, 3))
        return "".join(f"{k} = {rng.choice(PLAUSIBLE[k])}\n" for k in chosen)

    keys = (*KEYS, "unknown-key")
    out = []
    for key in rng.sample(keys, rng.randint(1, len(keys))):
        value = rng.choice(
            (
                json.dumps(rng.choice(EDGE_TEXT)),
                str(rng.choice(EDGE_INTS)),
                '["CA101"]',
                '"4.1G"',
                "[" * 20 + "]" * 20,
                "{ a = 1 }",
                '{ conv = "CA1" }',
                "[[suppressions]]",
                "true",
            )
        )
        out.append(f"{key} = {value}")
    return "\n".join(out) + "\n"


def baseline_text(rng: random.Random) -> str:
    """A baseline document with edge values in its fields (JSON, sometimes broken)."""
    entry = {
        "fingerprint": rng.choice(("abc", 1, None, "x" * 300)),
        "rule": rng.choice(("CA101", "", 5)),
        "model": rng.choice(("m.onnx", "../../etc", 7)),
        "node": rng.choice(("conv", None, [], {})),
    }
    doc = {"schema_version": rng.choice((1, 2, "1", None)), "tool": "convaudit"}
    doc["findings"] = rng.choice(([entry] * rng.randint(0, 3), {}, "x", None))
    text = json.dumps(doc)
    return mutate_text(text, rng) if rng.random() < 0.3 else text
