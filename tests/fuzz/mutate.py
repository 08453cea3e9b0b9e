"""Mutators shared by the Hypothesis properties (test_fuzz_properties.py) and the process-level
campaign (campaign.py): seeds are small real and built models, rule/config/baseline texts;
every mutator is a pure function of its input and a ``random.Random``."""

from __future__ import annotations

import json
import random
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


def mutate_proto(model: onnx.ModelProto, rng: random.Random) -> onnx.ModelProto:
    """One structural edit of a copy of ``model``: attribute values, dims, op types, shapes
    declared on inputs, tensor names, opset versions (what a broken exporter writes)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    nodes = _nodes(m)
    kind = rng.randrange(8)
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


# -- text inputs ------------------------------------------------------------------------------


def mutate_text(text: str, rng: random.Random) -> str:
    """Line-level edits of a rule, config or baseline text: drop, duplicate, swap in edge values."""
    lines = text.splitlines()
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


def config_text(rng: random.Random) -> str:
    """A convaudit.toml drawing keys and values from the valid and the edge."""
    from convaudit.config.records import KEYS

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
