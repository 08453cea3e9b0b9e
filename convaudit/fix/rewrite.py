"""Graph surgery: Conv(W, b) -> Conv 1x1 (U, stride 1, no pads, no bias) -> Conv KxK (V, b),
or, for the spatial kind, Conv Kh x 1 (V, vertical stride/pads/dilation, no bias) -> Conv 1 x Kw
(H, horizontal stride/pads/dilation, b).

Placement matters: the KxK conv keeps the original strides, pads / auto_pad, dilations and bias.
A stride on the 1x1 gives the right shape and a wrong result; a bias on the 1x1 is wrong at the
borders, where the KxK's zero padding must see zeros, not the bias. The spatial pair splits each
attribute by axis, so the composition is the original conv exactly at full rank; auto_pad is kept
on both (each conv then pads only along its own axis, by the original's amount).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from convaudit.errors import FixError
from convaudit.model.tensor_users import node_inputs


@dataclass(frozen=True, kw_only=True)
class ConvRewrite:
    """Everything the surgery needs for one conv (factors already computed)."""

    conv_output: str  # first output of the conv: identifies the node
    u: np.ndarray  # [r, Cin, 1, ...]
    v: np.ndarray  # [Cout, r, *K]
    bias: np.ndarray | None = None  # a new bias (after folding BN); None keeps the node's own
    bn_output: str | None = None  # output of the BatchNormalization folded into this conv
    groups: int = 1  # a grouped conv's pair is grouped the same way
    kind: str = "bottleneck"  # or "spatial": u is [r, Cin, Kh, 1], v [Cout, r, 1, Kw]


class _Names:
    """Fresh tensor and node names that collide with nothing in the graph."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.used = {t.name for t in graph.initializer}
        self.used |= {v.name for v in (*graph.input, *graph.output, *graph.value_info)}
        self.used |= {o for n in graph.node for o in (*n.input, *n.output)}
        self.nodes = {n.name for n in graph.node}

    def tensor(self, base: str) -> str:
        return self._fresh(base, self.used)

    def node(self, base: str) -> str:
        return self._fresh(base, self.nodes)

    @staticmethod
    def _fresh(base: str, taken: set[str]) -> str:
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        return name


def _uses(graph: onnx.GraphProto, name: str) -> int:
    count = sum(node_inputs(n).count(name) for n in graph.node)
    return count + sum(1 for o in graph.output if o.name == name)


def _drop_tensor(graph: onnx.GraphProto, name: str) -> None:
    """Remove an initializer (or the Constant node that makes it) once nothing reads it."""
    if not name or _uses(graph, name):
        return
    for i in reversed(range(len(graph.initializer))):
        if graph.initializer[i].name == name:
            del graph.initializer[i]
            # An IR < 4 model also lists the initializer as a graph input.
            for k in reversed(range(len(graph.input))):
                if graph.input[k].name == name:
                    del graph.input[k]
    for i in reversed(range(len(graph.node))):
        node = graph.node[i]
        if node.op_type == "Constant" and list(node.output) == [name]:
            del graph.node[i]


def _drop_value_info(graph: onnx.GraphProto, name: str) -> None:
    for i in reversed(range(len(graph.value_info))):
        if graph.value_info[i].name == name:
            del graph.value_info[i]


def _copy(node: onnx.NodeProto) -> onnx.NodeProto:
    out = onnx.NodeProto()
    out.CopyFrom(node)
    return out


def _find(graph: onnx.GraphProto, output: str) -> int:
    for i, node in enumerate(graph.node):
        if node.output and node.output[0] == output:
            return i
    raise FixError(f"no node in the main graph produces {output!r}")


def attribute(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    """``node``'s attribute ``name`` as a Python value (text decoded), else ``default``."""
    for a in node.attribute:
        if a.name == name:
            value = helper.get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _attr(node: onnx.NodeProto, name: str) -> onnx.AttributeProto | None:
    return next((a for a in node.attribute if a.name == name), None)


def split_spatial(
    conv: onnx.NodeProto, second: onnx.NodeProto, kh: int, kw: int
) -> tuple[onnx.NodeProto, onnx.NodeProto]:
    """(the Kh x 1 conv, ``second`` made the 1 x Kw conv) from a 2-D ``conv``'s attributes:
    the vertical one takes the vertical stride, dilation and pads, the horizontal one the
    horizontal ones and the bias (inputs and names are the caller's)."""

    def ints(name: str, default: list[int]) -> list[int]:
        a = _attr(conv, name)
        return list(a.ints) if a is not None and len(a.ints) else default

    strides, dilations = ints("strides", [1, 1]), ints("dilations", [1, 1])
    pads = ints("pads", [0, 0, 0, 0])  # [top, left, bottom, right]
    auto = _attr(conv, "auto_pad")
    first = helper.make_node(
        "Conv",
        ["x", "w"],
        ["y"],
        kernel_shape=[kh, 1],
        strides=[strides[0], 1],
        dilations=[dilations[0], 1],
    )
    horizontal = {
        "kernel_shape": [1, kw],
        "strides": [1, strides[1]],
        "dilations": [1, dilations[1]],
    }
    if auto is not None and auto.s not in (b"NOTSET", b""):
        first.attribute.append(helper.make_attribute("auto_pad", auto.s.decode()))
    else:
        first.attribute.append(helper.make_attribute("pads", [pads[0], 0, pads[2], 0]))
        horizontal["pads"] = [0, pads[1], 0, pads[3]]
    kept = [a for a in second.attribute if a.name not in horizontal]
    del second.attribute[:]
    second.attribute.extend(kept)
    second.attribute.extend(helper.make_attribute(k, v) for k, v in horizontal.items())
    return first, second


def rewrite_conv(
    graph: onnx.GraphProto,
    rw: ConvRewrite,
    dtype: np.dtype[np.generic],
    *,
    declare_inputs: bool = False,
) -> None:
    """Replace one Conv (and its folded BatchNormalization) by the 1x1 + KxK pair, in place.

    ``declare_inputs``: list the new initializers as graph inputs too (IR < 4 requires it).
    """
    names = _Names(graph)
    i = _find(graph, rw.conv_output)
    conv = graph.node[i]
    if conv.op_type != "Conv":
        raise FixError(f"node producing {rw.conv_output!r} is {conv.op_type}, not Conv")
    x, w = conv.input[0], conv.input[1]
    old_bias = conv.input[2] if len(conv.input) > 2 else ""
    base = conv.name or conv.output[0]
    spatial = rw.kind == "spatial"
    tag = "spatial" if spatial else "bottleneck"
    u_name = names.tensor(f"{w}.{tag}_vertical" if spatial else f"{w}.bottleneck_reduce")
    v_name = names.tensor(f"{w}.{tag}_horizontal" if spatial else f"{w}.bottleneck_kxk")
    mid = names.tensor(f"{conv.output[0]}.{tag}")
    kxk = onnx.NodeProto()
    kxk.CopyFrom(conv)
    kxk.input[0] = mid
    kxk.input[1] = v_name
    if spatial:
        reduce, kxk = split_spatial(conv, kxk, rw.u.shape[2], rw.v.shape[3])
        reduce.input[:] = [x, u_name]
        reduce.output[:] = [mid]
        reduce.name = names.node(f"{base}/spatial_kx1")
        kxk.input[0] = mid
    else:
        reduce = helper.make_node(
            "Conv",
            [x, u_name],
            [mid],
            name=names.node(f"{base}/bottleneck_1x1"),
            kernel_shape=[1] * (rw.u.ndim - 2),
        )
        if rw.groups > 1:
            reduce.attribute.append(helper.make_attribute("group", rw.groups))
    new_inits = [
        numpy_helper.from_array(np.asarray(rw.u).astype(dtype), u_name),
        numpy_helper.from_array(np.asarray(rw.v).astype(dtype), v_name),
    ]
    if rw.bias is not None:
        b_name = names.tensor(f"{w}.bottleneck_bias")
        new_inits.append(numpy_helper.from_array(np.asarray(rw.bias).astype(dtype), b_name))
        if len(kxk.input) > 2:
            kxk.input[2] = b_name
        else:
            kxk.input.append(b_name)
    bn_index = None
    bn_inputs: list[str] = []
    if rw.bn_output is not None:
        bn_index = _find(graph, rw.bn_output)
        bn_inputs = list(graph.node[bn_index].input[1:])
        kxk.output[0] = rw.bn_output
    nodes = [_copy(n) for n in graph.node]
    nodes[i : i + 1] = [reduce, kxk]
    if bn_index is not None:
        nodes.pop(bn_index + 1 if bn_index > i else bn_index)
        _drop_value_info(graph, conv.output[0])
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(new_inits)
    if declare_inputs:
        graph.input.extend(
            helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in new_inits
        )
    for name in [w, *(bn_inputs if rw.bias is not None else []), old_bias]:
        _drop_tensor(graph, name)
