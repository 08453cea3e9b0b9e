"""Graph context of a layer, from the networkx producer/consumer graph.

A conv already "has a bottleneck" when its data input comes from a 1x1 conv that reduces
channels, possibly through per-element ops (BatchNormalization, activations, quantisation).
A dense layer "follows a flatten" when its data input is a Flatten/Reshape of a spatial map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from convaudit.records import Layer, ModelFacts

# Ops that keep the tensor's meaning channel for channel: looking through them is safe.
PASS_THROUGH = frozenset(
    {
        "BatchNormalization",
        "InstanceNormalization",
        "Relu",
        "LeakyRelu",
        "PRelu",
        "Clip",
        "Sigmoid",
        "HardSigmoid",
        "HardSwish",
        "Tanh",
        "Elu",
        "Selu",
        "Celu",
        "Mish",
        "Gelu",
        "Softplus",
        "ThresholdedRelu",
        "Identity",
        "Dropout",
        "Cast",
        "QuantizeLinear",
        "DequantizeLinear",
        "LRN",
    }
)
# Elementwise binary ops pass through when their other operand is a constant or a gate computed
# from the same tensor (x * sigmoid(x): SiLU / Swish).
ELEMENTWISE = frozenset({"Mul", "Add", "Sub", "Div"})
FLATTENS = frozenset({"Flatten", "Reshape"})
MAX_HOPS = 16


@dataclass(frozen=True, kw_only=True)
class FlattenSource:
    """The spatial map a dense layer's input was flattened from."""

    channels: int
    spatial: tuple[int, ...]


class GraphContext:
    """Queries over one model's DiGraph; results are cached per node."""

    def __init__(self, facts: ModelFacts) -> None:
        self.facts = facts
        # The walk's NodeGraph (networkx's API subset, without its 0.1 s import) or a DiGraph.
        self.g: Any = facts.node_graph
        self._producer: dict[tuple[str, str], str] = {}
        self._constant: set[str] | None = None
        if self.g is not None:
            for src, dst, data in self.g.edges(data=True):
                self._producer[(dst, data.get("tensor", ""))] = src
            # A DiGraph keeps one edge per pair: recover tensors a producer feeds twice.
            for node, data in self.g.nodes(data=True):
                outputs = data.get("outputs") or ()
                for succ in self.g.successors(node):
                    for name in self.g.nodes[succ].get("inputs") or ():
                        if name in outputs:
                            self._producer[(succ, name)] = node

    # -- primitives ---------------------------------------------------------------------------
    def node(self, node_id: str) -> dict[str, Any]:
        if self.g is None or node_id not in self.g:
            return {}
        data: dict[str, Any] = self.g.nodes[node_id]
        return data

    def producer(self, node_id: str, index: int = 0) -> str | None:
        """The node producing input ``index`` of ``node_id`` (None for graph inputs/weights)."""
        inputs = self.node(node_id).get("inputs") or ()
        if index >= len(inputs) or not inputs[index]:
            return None
        return self._producer.get((node_id, inputs[index]))

    def layer(self, node_id: str) -> Layer | None:
        idx = self.node(node_id).get("layer")
        return self.facts.layers[idx] if isinstance(idx, int) else None

    def _is_constant(self, node_id: str | None) -> bool:
        """A weight, a Constant node or a constant-only subgraph (shape arithmetic)."""
        if node_id is None:
            return True
        if self._constant is None:
            self._constant = self._constant_nodes()
        return node_id in self._constant

    def _constant_nodes(self) -> set[str]:
        """Nodes whose outputs depend on no model input (shapes count as constants)."""
        graph_inputs = set(self.facts.inputs)
        out: set[str] = set()
        order = _topological_order(self.g) if self.g is not None else []
        for n in order:
            data = self.g.nodes[n]
            op = data.get("op_type")
            if op in ("Constant", "ConstantOfShape", "Shape", "Size"):
                out.add(n)
                continue
            inputs = [i for i in data.get("inputs") or () if i]
            if not inputs:
                continue
            if all(
                (p := self._producer.get((n, name))) in out
                or (p is None and name not in graph_inputs)
                for name in inputs
            ):
                out.add(n)
        return out

    def _data_operand(self, node_id: str) -> str | None:
        """For a pass-through node, the producer of the tensor it passes on (None if none)."""
        data = self.node(node_id)
        op = data.get("op_type")
        if op in PASS_THROUGH:
            return self.producer(node_id, 0)
        if op in ELEMENTWISE:
            graph_inputs = self.facts.inputs
            live: list[str | None] = []
            for i, name in enumerate(data.get("inputs") or ()):
                p = self.producer(node_id, i)
                if (p is None and name in graph_inputs) or (
                    p is not None and not self._is_constant(p)
                ):
                    live.append(p)  # a model input (None) or a value computed from one
            if len(live) == 1:
                return live[0]
            if len(live) == 2 and None not in live:
                a, b = live
                for gate, x in ((a, b), (b, a)):
                    gop = self.node(gate or "").get("op_type")
                    if gop in ("Sigmoid", "HardSigmoid", "Tanh") and self.producer(gate or "") == x:
                        return x
        return None

    def source(self, node_id: str) -> str | None:
        """Walk up from ``node_id``'s data input through pass-through ops to the real producer."""
        current = self.producer(node_id, 0)
        for _ in range(MAX_HOPS):
            if current is None:
                return None
            if not self._passes(current):
                return current
            current = self._data_operand(current)
        return None

    def _passes(self, node_id: str) -> bool:
        op = self.node(node_id).get("op_type")
        return op in PASS_THROUGH or (op in ELEMENTWISE and self._data_operand(node_id) is not None)

    def consumers(self, node_id: str) -> list[str]:
        """Nodes that read ``node_id``'s first output, looking through pass-through ops."""
        out: list[str] = []
        outputs = self.node(node_id).get("outputs") or ()
        first = outputs[0] if outputs else None
        frontier = [(node_id, first)]
        seen: set[str] = set()
        for _ in range(MAX_HOPS):
            nxt: list[tuple[str, str | None]] = []
            for src, tensor in frontier:
                if self.g is None or src not in self.g:
                    continue
                for succ in sorted(self.g.successors(src)):
                    if succ in seen or tensor not in (self.node(succ).get("inputs") or ()):
                        continue
                    seen.add(succ)
                    if self._passes(succ) and self._data_operand(succ) == src:
                        succ_out = self.node(succ).get("outputs") or ()
                        nxt.append((succ, succ_out[0] if succ_out else None))
                    else:
                        out.append(succ)
            if not nxt:
                break
            frontier = nxt
        return out

    # -- facts --------------------------------------------------------------------------------
    def feeding_1x1(self, layer: Layer) -> Layer | None:
        """The 1x1 group-1 conv whose output feeds this layer's data input, if any."""
        src = self.source(layer.node_id)
        prev = self.layer(src) if src is not None else None
        if prev is None or prev.category != "conv" or not _is_pointwise(prev):
            return None
        return prev if (prev.group or 1) == 1 else None

    def fed_by_1x1_reduction(self, layer: Layer) -> bool:
        prev = self.feeding_1x1(layer)
        return (
            prev is not None
            and prev.in_channels is not None
            and prev.out_channels is not None
            and prev.out_channels < prev.in_channels
        )

    def in_reduced_branch(self, layer: Layer, depth: int = 3) -> bool:
        """Fed by a 1x1 reduction directly or through up to ``depth`` group-1 convs that are
        no wider than this one (Inception v2's double 3x3 after its 1x1 reduction)."""
        current: Layer | None = layer
        for _ in range(depth + 1):
            if current is None:
                return False
            if self.fed_by_1x1_reduction(current):
                return True
            src = self.source(current.node_id)
            prev = self.layer(src) if src is not None else None
            if (
                prev is None
                or prev.category != "conv"
                or (prev.group or 1) != 1
                or prev.out_channels is None
                or layer.in_channels is None
                or prev.out_channels > layer.in_channels
            ):
                return False
            current = prev
        return False

    def followed_by_1x1_expansion(self, layer: Layer) -> bool:
        for c in self.consumers(layer.node_id):
            nxt = self.layer(c)
            if (
                nxt is not None
                and nxt.category == "conv"
                and _is_pointwise(nxt)
                and nxt.in_channels is not None
                and nxt.out_channels is not None
                and nxt.out_channels > nxt.in_channels
            ):
                return True
        return False

    def fan_out(self, layer: Layer) -> int:
        return len(self.consumers(layer.node_id))

    def flatten_source(self, layer: Layer) -> FlattenSource | None:
        """For a dense layer, the NCHW map its input was flattened from (None if not one)."""
        src = self.source(layer.node_id)
        if src is None or self.node(src).get("op_type") not in FLATTENS:
            return None
        shapes = self.node(src).get("input_shapes") or ()
        shape = shapes[0] if shapes else None
        if shape is None or len(shape) < 3:
            return None
        return FlattenSource(channels=shape[1], spatial=tuple(shape[2:]))


def _is_pointwise(layer: Layer) -> bool:
    return layer.kernel_shape is not None and all(k == 1 for k in layer.kernel_shape)


def _topological_order(g: Any) -> list[str]:
    """Producers before consumers, for a NodeGraph or a networkx DiGraph (Kahn's algorithm)."""
    if hasattr(g, "topological_order"):
        order: list[str] = g.topological_order()
        return order
    indegree = {n: 0 for n in g.nodes}
    for _, dst in g.edges():
        indegree[dst] += 1
    ready = [n for n, d in indegree.items() if d == 0]
    out: list[str] = []
    while ready:
        n = ready.pop()
        out.append(n)
        for m in g.successors(n):
            indegree[m] -= 1
            if indegree[m] == 0:
                ready.append(m)
    return out
