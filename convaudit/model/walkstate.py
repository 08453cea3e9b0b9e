"""What a graph walk shares with the handlers it calls: scopes, environments, visits, branch
groups, and the public way for a handler (control flow) to walk a subgraph.

The walker (model/walk.py) implements ``SubgraphWalker``; model/control.py is written against
that protocol, so control flow never reaches into the walker and the two do not import each
other in a circle.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import onnx
from onnx import helper

from convaudit.errors import ShapeError
from convaudit.model.graph import NodeGraph
from convaudit.model.tensors import TensorInfo
from convaudit.records import ScanProblem

Env = ChainMap[str, TensorInfo]
MAX_DEPTH = 100


@dataclass
class Visit:
    """One node in one execution context, with resolved input and output infos."""

    node_id: str
    node: onnx.NodeProto
    name: str
    graph: str
    index: int
    attrs: dict[str, Any]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    multiplier: int
    counted: bool = True
    scope: str = "main"  # name scope: "main" or the function call site's graph label


@dataclass
class BranchGroup:
    """The visits of each branch of one If node; only the costlier branch is counted."""

    node_id: str
    branches: list[range]
    taken: int | None  # index of the branch a constant condition selects


@dataclass
class Scope:
    """Where a graph is being walked: its label, opsets, executions per run and producers."""

    graph: str
    opsets: dict[str, int]
    multiplier: int
    producers: ChainMap[str, str] = field(default_factory=ChainMap)
    root: str = "main"  # name scope: subgraphs share their parent's, a function call has its own
    depth: int = 0  # subgraphs and function calls entered on the way here
    calls: tuple[str, ...] = ()  # the model-local functions being called, outermost first

    def nested(self, node: str) -> int:
        """The depth of a subgraph or function body entered from ``node`` in this scope.

        Bounded so that the walk (which recurses per level) stays far from Python's recursion
        limit: onnx's checker stops nested functions at the same depth, and protobuf cannot
        parse subgraphs nested anywhere near it.
        """
        if self.depth >= MAX_DEPTH:
            raise ShapeError(
                f"node {node!r}: subgraphs and function calls nest more than {MAX_DEPTH} deep:"
                " the model is invalid"
            )
        return self.depth + 1


@dataclass
class WalkResult:
    visits: list[Visit]
    groups: list[BranchGroup]
    graph: NodeGraph  # producer -> consumer; ModelFacts.graph gives it as a networkx.DiGraph
    problems: list[ScanProblem]
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]
    # (scope, tensor) -> the (scope, tensor) it is another name for: Identity outputs of weights
    # and function formals bound to actual inputs. A scope is "main" or one function call site.
    aliases: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    # origin (scope, tensor) -> the stored (quantized) tensor a DequantizeLinear reads
    stored: dict[tuple[str, str], TensorInfo] = field(default_factory=dict)

    def source(self, scope: str, tensor: str) -> tuple[str, str]:
        """The original (scope, name) of a tensor seen in ``scope`` (itself if not an alias)."""
        return resolve_alias(self.aliases, scope, tensor)


class SubgraphWalker(Protocol):
    """What a node handler may use of the walker: its records and a subgraph walk."""

    visits: list[Visit]
    groups: list[BranchGroup]
    problems: list[ScanProblem]
    digraph: NodeGraph
    input_shapes: dict[str, tuple[int, ...]]

    def declared(self, tp: onnx.TypeProto) -> TensorInfo:
        """A type the file declares, with --dim values applied."""

    def walk_subgraph(
        self,
        g: onnx.GraphProto,
        env: Env,
        scope: Scope,
        declared: Mapping[str, onnx.ValueInfoProto],
    ) -> None:
        """Walk ``g``'s initializers and nodes in ``env`` (updated in place) under ``scope``."""


def resolve_alias(
    aliases: Mapping[tuple[str, str], tuple[str, str]], scope: str, tensor: str
) -> tuple[str, str]:
    """Follow alias links from (``scope``, ``tensor``) to the tensor's origin."""
    key = (scope, tensor)
    seen = {key}
    while key in aliases:
        key = aliases[key]
        if key in seen:  # defensive: a malformed graph cannot loop us
            break
        seen.add(key)
    return key


def node_attrs(node: onnx.NodeProto) -> dict[str, Any]:
    """Plain Python attribute values; graphs and tensors are left out (handled where needed)."""
    out: dict[str, Any] = {}
    for a in node.attribute:
        if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            continue
        if a.type in (onnx.AttributeProto.TENSOR, onnx.AttributeProto.SPARSE_TENSOR):
            continue
        value = _attribute_value(a)
        if value is None:  # unreadable: treated as absent (its default), never a crash
            continue
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, list):
            value = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
        out[a.name] = value
    return out


def _attribute_value(a: onnx.AttributeProto) -> Any:
    """``a``'s value; an untyped attribute (IR 1 exports left ``type`` out) by the field it
    sets; None for an unbound function reference or a type this onnx does not know."""
    if a.ref_attr_name:
        return None
    if a.type == onnx.AttributeProto.UNDEFINED:
        for repeated in ("ints", "floats", "strings"):
            if len(getattr(a, repeated)):
                return list(getattr(a, repeated))
        for single in ("i", "f", "s"):
            if a.HasField(single):
                return getattr(a, single)
        return None
    try:
        return helper.get_attribute_value(a)
    except ValueError:
        return None
