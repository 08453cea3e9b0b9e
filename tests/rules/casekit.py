"""Build ModelFacts (layer records + producer/consumer graph) from a rule case's node list.

A case node is ``{op, name, inputs, outputs}`` plus, for a costed op, its figures: ``kernel``,
``cin``, ``cout``, ``group``, ``input`` and ``output`` shapes (convs) or ``input``/``output``
(Gemm/MatMul, weight K x N). MACs and params come from the cost formulas; shares from the
case's total. Non-costed nodes may give ``input_shapes`` (a Flatten's input map).
"""

from __future__ import annotations

from math import prod
from typing import Any

import networkx as nx

from convaudit import cost
from convaudit.records import Layer, ModelFacts, Totals

CONV_OPS = {"Conv", "QLinearConv", "ConvInteger"}
MATMUL_OPS = {"Gemm", "MatMul"}


def _layer(node: dict[str, Any], node_id: str, index: int) -> Layer:
    base: dict[str, Any] = {
        "node_id": node_id,
        "name": node["name"],
        "op_type": node["op"],
        "domain": "",
        "graph": "main",
        "index": index,
        "inputs": tuple(node["inputs"]),
        "outputs": tuple(node["outputs"]),
        "has_bias": bool(node.get("bias", False)),
    }
    xs, ys = tuple(node["input"]), tuple(node["output"])
    if node["op"] in CONV_OPS:
        kernel = tuple(node["kernel"])
        group = int(node.get("group", 1))
        cin, cout = int(node["cin"]), int(node["cout"])
        n = len(kernel)
        return Layer(
            **base,
            category="conv",
            kernel_shape=kernel,
            strides=tuple(node.get("strides", (1,) * n)),
            dilations=(1,) * n,
            pads=(0,) * (2 * n),
            group=group,
            in_channels=cin,
            out_channels=cout,
            input_shape=xs,
            output_shape=ys,
            weight_shape=(cout, cin // group, *kernel),
            macs=cost.conv_macs(xs[0], cout, ys[2:], cin, group, kernel),
            params=cost.conv_params(cout, cin, group, kernel, bias=base["has_bias"]),
        )
    k, n_out = xs[-1], ys[-1]
    return Layer(
        **base,
        category="matmul",
        in_channels=k,
        out_channels=n_out,
        input_shape=xs,
        output_shape=ys,
        weight_shape=(k, n_out),
        macs=prod(ys) * k,
        params=k * n_out + (n_out if base["has_bias"] else 0),
    )


def build(nodes: list[dict[str, Any]], path: str = "case.onnx") -> ModelFacts:
    """ModelFacts for a case: costed layers in node order, the DiGraph wired by tensor names."""
    g = nx.DiGraph()
    producers: dict[str, str] = {}
    layers: list[Layer] = []
    graph_inputs: set[str] = set()
    for i, node in enumerate(nodes):
        node_id = f"main/{i}"
        g.add_node(
            node_id,
            op_type=node["op"],
            domain="",
            name=node["name"],
            graph="main",
            attrs=dict(node.get("attrs", {})),
            layer=None,
            inputs=tuple(node["inputs"]),
            outputs=tuple(node["outputs"]),
            input_shapes=tuple(
                tuple(s) if s is not None else None for s in node.get("input_shapes", ())
            ),
        )
        for name in node["inputs"]:
            if name in producers:
                g.add_edge(producers[name], node_id, tensor=name)
            elif i == 0 or name == "x":
                graph_inputs.add(name)
        for name in node["outputs"]:
            producers[name] = node_id
        if node["op"] in CONV_OPS | MATMUL_OPS:
            g.nodes[node_id]["layer"] = len(layers)
            layers.append(_layer(node, node_id, len(layers)))
    total = int(sum(layer.macs or 0 for layer in layers))
    extra = int(nodes[0].get("model_macs", 0)) if nodes else 0  # cost elsewhere in the model
    total += extra
    shared = [
        Layer(**{**layer.__dict__, "mac_share": (layer.macs or 0) / total if total else None})
        for layer in layers
    ]
    totals = Totals(
        macs=total,
        flops=2 * total,
        params=sum(layer.params or 0 for layer in layers),
        conv_macs=total,
        conv_params=0,
        layers=len(layers),
        unknown_layers=0,
        weight_bytes=0,
    )
    return ModelFacts(
        path=path,
        opset={"ai.onnx": 17},
        inputs={name: None for name in sorted(graph_inputs)},
        outputs={},
        layers=tuple(shared),
        totals=totals,
        node_graph=g,
    )
