"""Who produces and consumes each tensor of a model's main graph, read from its proto: what
``scan --weights`` and ``fix`` ask before touching a conv's weights (stored? shared? BN after?)."""

from __future__ import annotations

import onnx

from convaudit.records import Layer


class TensorIndex:
    """Producers, consumers, initializers and graph inputs/outputs of the main graph's tensors."""

    def __init__(self, graph: onnx.GraphProto, ir_version: int = 8) -> None:
        self.initializers = {t.name for t in graph.initializer}
        # Before IR 4 every initializer had to be listed as a graph input too: such an input is
        # still a constant. From IR 4 on, an initializer that is also an input can be overridden.
        self.graph_inputs = {v.name for v in graph.input}
        if ir_version < 4:
            self.graph_inputs -= self.initializers
        self.graph_outputs = {v.name for v in graph.output}
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for o in node.output:
                if o:
                    self.producer[o] = node
            for name in node_inputs(node):
                self.consumers.setdefault(name, []).append(node)


def node_inputs(node: onnx.NodeProto) -> list[str]:
    """The node's inputs plus names its subgraphs read from the outer scope."""
    names = [i for i in node.input if i]
    for attr in node.attribute:
        subs = [attr.g] if attr.HasField("g") else list(attr.graphs)
        for g in subs:
            for sub in g.node:
                names.extend(node_inputs(sub))
    return names


def foldable_bn(layer: Layer, index: TensorIndex) -> str | None:
    """The output name of a BatchNormalization that alone consumes the conv's output."""
    out = layer.outputs[0] if layer.outputs else ""
    users = index.consumers.get(out, [])
    if len(users) != 1 or out in index.graph_outputs:
        return None
    bn = users[0]
    if bn.op_type != "BatchNormalization" or bn.domain not in ("", "ai.onnx"):
        return None
    if len([o for o in bn.output if o]) != 1 or bn.input[0] != out:
        return None
    training = [a.i for a in bn.attribute if a.name == "training_mode"]
    if training and training[0]:
        return None
    params = list(bn.input[1:5])
    ok = len(params) == 4 and all(
        p in index.initializers and p not in index.graph_inputs for p in params
    )
    return bn.output[0] if ok else None


def bn_epsilon(node: onnx.NodeProto) -> float:
    """The node's epsilon attribute (ONNX default 1e-5)."""
    for a in node.attribute:
        if a.name == "epsilon":
            return float(a.f)
    return 1e-5
