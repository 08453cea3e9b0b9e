"""The facts a rule can test, per layer: the record's figures, graph context, recommendations.

Each fact has a type (for load-time checks of rule values and message specs) and a one-line
doc (for ``convaudit rules explain`` and the JSON Schema). Unknown values are None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from math import prod
from typing import Any

from convaudit.records import Layer, ModelFacts
from convaudit.rules.context import GraphContext

QUANTIZED_OPS = frozenset({"QLinearConv", "ConvInteger", "QLinearMatMul", "MatMulInteger", "QGemm"})
# Params read by the recommendation arithmetic (besides those a rule's match refers to).
RECOMMENDATION_PARAMS: dict[str, str] = {
    "width_policy": "str",
    "width_ratio": "float",
    "target_saving": "float",
    "mac_budget": "int",
}
DEFAULTS: dict[str, Any] = {
    "width_policy": "ratio",
    "width_ratio": 0.0333,
    "target_saving": 4.0,
    "mac_budget": None,
}


class Subject:
    """One layer in its model, with lazily computed and cached facts."""

    def __init__(self, layer: Layer, model: ModelFacts, graph: GraphContext) -> None:
        self.layer = layer
        self.model = model
        self.graph = graph
        self.cache: dict[str, Any] = {}


class Bound:
    """A subject seen by one rule: recommendation facts depend on that rule's params."""

    def __init__(self, subject: Subject, params: Mapping[str, Any]) -> None:
        self.subject = subject
        self.params = params
        self.cache: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        fact = FACTS[name]
        cache = self.cache if fact.uses_params else self.subject.cache
        if name not in cache:
            cache[name] = fact.fn(self)
        return cache[name]

    def param(self, name: str) -> Any:
        return self.params.get(name, DEFAULTS.get(name))

    @property
    def layer(self) -> Layer:
        return self.subject.layer


@dataclass(frozen=True)
class Fact:
    name: str
    type: str  # "int" | "float" | "bool" | "str" | "ints"
    doc: str
    fn: Callable[[Bound], Any]
    uses_params: bool = False


FACTS: dict[str, Fact] = {}


def _fact(
    name: str, type_: str, doc: str, *, uses_params: bool = False
) -> Callable[[Callable[[Bound], Any]], Callable[[Bound], Any]]:
    def register(fn: Callable[[Bound], Any]) -> Callable[[Bound], Any]:
        FACTS[name] = Fact(name, type_, doc, fn, uses_params)
        return fn

    return register


def _dims(shape: tuple[int, ...] | None) -> str | None:
    return None if shape is None else "x".join(str(d) for d in shape)


def _spatial(shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
    return None if shape is None or len(shape) < 3 else tuple(shape[2:])


# -- the layer record -------------------------------------------------------------------------
_fact("op", "str", "ONNX op type: Conv, Gemm, MatMul, ...")(lambda b: b.layer.op_type)
_fact("domain", "str", 'op domain ("" for the default ONNX domain)')(lambda b: b.layer.domain)
_fact("category", "str", "conv, conv_transpose or matmul")(lambda b: b.layer.category)
_fact("node", "str", "node name")(lambda b: b.layer.name)
_fact("graph", "str", '"main", a subgraph or a function call site')(lambda b: b.layer.graph)
_fact("kernel", "ints", "kernel shape, one entry per spatial axis")(lambda b: b.layer.kernel_shape)
_fact("kernel_size", "str", 'kernel as text, "5x5"')(lambda b: _dims(b.layer.kernel_shape))
_fact("kernel_max", "int", "largest kernel extent")(
    lambda b: max(b.layer.kernel_shape) if b.layer.kernel_shape else None
)
_fact("kernel_min", "int", "smallest kernel extent")(
    lambda b: min(b.layer.kernel_shape) if b.layer.kernel_shape else None
)
_fact("kernel_area", "int", "product of the kernel extents")(
    lambda b: prod(b.layer.kernel_shape) if b.layer.kernel_shape else None
)
_fact("kernel_square", "bool", "every kernel extent is the same")(
    lambda b: None if not b.layer.kernel_shape else len(set(b.layer.kernel_shape)) == 1
)
_fact("spatial_rank", "int", "number of spatial axes (2 for images)")(
    lambda b: None if b.layer.kernel_shape is None else len(b.layer.kernel_shape)
)
_fact("in_channels", "int", "Cin (K for a matmul)")(lambda b: b.layer.in_channels)
_fact("out_channels", "int", "Cout (N for a matmul)")(lambda b: b.layer.out_channels)
_fact("group", "int", "conv group count")(lambda b: b.layer.group)
_fact("strides", "ints", "strides per spatial axis")(lambda b: b.layer.strides)
_fact("stride_max", "int", "largest stride")(
    lambda b: max(b.layer.strides) if b.layer.strides else None
)
_fact("dilations", "ints", "dilations per spatial axis")(lambda b: b.layer.dilations)
_fact("dilation_max", "int", "largest dilation")(
    lambda b: max(b.layer.dilations) if b.layer.dilations else None
)
_fact("input_shape", "ints", "data input shape")(lambda b: b.layer.input_shape)
_fact("output_shape", "ints", "output shape")(lambda b: b.layer.output_shape)
_fact("in_size", "str", 'input spatial size as text, "14x14"')(
    lambda b: _dims(_spatial(b.layer.input_shape))
)
_fact("out_size", "str", 'output spatial size as text, "14x14"')(
    lambda b: _dims(_spatial(b.layer.output_shape))
)
_fact("batch", "int", "batch size N")(
    lambda b: b.layer.input_shape[0] if b.layer.input_shape else None
)
_fact("macs", "int", "MACs per model run")(lambda b: b.layer.total_macs)
_fact("params", "int", "weight + bias elements")(lambda b: b.layer.params)
_fact("mac_share", "float", "share of the model's MACs, 0..1")(lambda b: b.layer.mac_share)
_fact("model_macs", "int", "the model's total MACs")(lambda b: b.subject.model.totals.macs)
_fact("has_bias", "bool", "the layer has a bias input")(lambda b: b.layer.has_bias)
_fact("dtype", "str", 'activation element type, "float32"')(lambda b: b.layer.dtype)
_fact("counted", "bool", "false inside the cheaper branch of an If")(lambda b: b.layer.counted)
_fact("is_grouped", "bool", "group > 1")(lambda b: (b.layer.group or 1) > 1)
_fact("is_depthwise", "bool", "one group per input channel (group == Cin > 1)")(
    lambda b: (b.layer.group or 1) > 1 and b.layer.group == b.layer.in_channels
)
_fact("is_pointwise", "bool", "every kernel extent is 1")(
    lambda b: None if not b.layer.kernel_shape else all(k == 1 for k in b.layer.kernel_shape)
)
_fact("is_quantized", "bool", "a quantized op or an 8-bit activation")(
    lambda b: b.layer.op_type in QUANTIZED_OPS or b.layer.dtype in ("int8", "uint8")
)

# -- graph context ----------------------------------------------------------------------------
_fact(
    "fed_by_1x1",
    "bool",
    "the data input comes from a 1x1 conv (through BN, activations, ...)",
)(lambda b: b.subject.graph.feeding_1x1(b.layer) is not None)
_fact(
    "fed_by_1x1_reduction",
    "bool",
    "the data input comes from a 1x1 conv that reduces channels (an existing bottleneck)",
)(lambda b: b.subject.graph.fed_by_1x1_reduction(b.layer))

_fact(
    "in_reduced_branch",
    "bool",
    "fed by a 1x1 reduction directly or through a few convs no wider than this one",
)(lambda b: b.subject.graph.in_reduced_branch(b.layer))


@_fact("reduction_width", "int", "output channels of the 1x1 conv feeding this layer")
def _reduction_width(b: Bound) -> int | None:
    prev = b.subject.graph.feeding_1x1(b.layer)
    return None if prev is None else prev.out_channels


_fact(
    "followed_by_1x1_expansion",
    "bool",
    "the output feeds a 1x1 conv that expands channels (a ResNet-style bottleneck)",
)(lambda b: b.subject.graph.followed_by_1x1_expansion(b.layer))
_fact("fan_out", "int", "nodes reading the output (through pass-through ops)")(
    lambda b: b.subject.graph.fan_out(b.layer)
)
_fact("after_flatten", "bool", "the data input comes from a Flatten or Reshape of a map")(
    lambda b: b.subject.graph.flatten_source(b.layer) is not None
)
_fact("flatten_channels", "int", "channels of the map flattened into this layer")(
    lambda b: getattr(b.subject.graph.flatten_source(b.layer), "channels", None)
)


@_fact("flatten_area", "int", "spatial positions of the map flattened into this layer")
def _flatten_area(b: Bound) -> int | None:
    src = b.subject.graph.flatten_source(b.layer)
    return None if src is None else prod(src.spatial)


@_fact("flatten_size", "str", 'spatial size of the flattened map, "7x7"')
def _flatten_size(b: Bound) -> str | None:
    src = b.subject.graph.flatten_source(b.layer)
    return None if src is None else _dims(src.spatial)


# The recommendation figures register themselves into FACTS (they need Bound and _fact above).
from convaudit.rules import plan_facts  # noqa: E402, F401

FACT_NAMES = tuple(sorted(FACTS))
