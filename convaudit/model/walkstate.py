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
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from convaudit.errors import ShapeError
from convaudit.model.graph import NodeGraph
from convaudit.model.infer import get_schema
from convaudit.model.liteproto import LiteAttribute
from convaudit.model.tensors import TensorInfo
from convaudit.records import ScanProblem

if TYPE_CHECKING:
    import onnx

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


@lru_cache(maxsize=4096)
def schema_attribute_types(op_type: str, domain: str, version: int) -> Mapping[str, int] | None:
    """The attribute types ONNX's schema gives ``op_type`` at this opset (None: no schema);
    ``domain`` as get_schema takes it ("" for ai.onnx).

    An attribute this opset's schema lacks but a later one names (Shape's ``start`` before
    opset 15) gets the later type: readers read it whatever the opset.
    """
    schema = get_schema(op_type, domain, version)
    if schema is None:
        return None
    types = _types(schema)
    latest = get_schema(op_type, domain, 1 << 30)
    if latest is not None and latest.since_version != schema.since_version:
        types = {**_types(latest), **types}
    return types


def _types(schema: onnx.defs.OpSchema) -> dict[str, int]:
    attributes = schema.attributes.items()
    proto_types = _proto_types()
    return {name: proto_types[a.type] for name, a in attributes if a.type in proto_types}


@cache
def _proto_types() -> dict[Any, int]:
    from convaudit.model.schemas import _proto_types as build

    return build()


# AttributeProto.AttributeType numbers (onnx.proto; tests check them against onnx's enum)
UNDEFINED, FLOAT, INT, STRING, TENSOR, GRAPH = 0, 1, 2, 3, 4, 5
FLOATS, INTS, STRINGS, TENSORS, GRAPHS, SPARSE_TENSOR = 6, 7, 8, 9, 10, 11


def node_attrs(node: Any, types: Mapping[str, int] | None = None, name: str = "") -> dict[str, Any]:
    """Plain Python attribute values; graphs and tensors are left out (handled where needed).

    With ``types`` (the op schema's, from ``schema_attribute_types``), an attribute of another
    type is refused here, once for every reader: onnx's checker and onnxruntime refuse such a
    model, and each reader would otherwise meet a string where it reads an int in its own way.
    """
    out: dict[str, Any] = {}
    for a in node.attribute:
        if types is not None and a.name in types:
            _check_type(node, a, types[a.name], name)
        if a.type in (GRAPH, GRAPHS):
            continue
        if a.type in (TENSOR, SPARSE_TENSOR):
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
    if isinstance(a, LiteAttribute):  # the lite reader only keeps typed attributes
        return a.value()
    if a.type == UNDEFINED:
        for repeated in ("ints", "floats", "strings"):
            if len(getattr(a, repeated)):
                return list(getattr(a, repeated))
        for single in ("i", "f", "s"):
            if a.HasField(single):
                return getattr(a, single)
        return None
    from onnx import helper

    try:
        return helper.get_attribute_value(a)
    except ValueError:
        return None


# an untyped attribute (IR 1) has the type of the field it sets
_FIELD_TYPES = (
    ("ints", INTS),
    ("floats", FLOATS),
    ("strings", STRINGS),
    ("tensors", TENSORS),
    ("graphs", GRAPHS),
)
_SINGLE_TYPES = (
    ("i", INT),
    ("f", FLOAT),
    ("s", STRING),
    ("t", TENSOR),
    ("g", GRAPH),
)


def _check_type(node: Any, a: Any, want: int, name: str) -> None:
    if a.ref_attr_name:  # bound at the call site; the bound value is checked there
        return
    have = a.type
    if have == UNDEFINED:
        have = next((t for f, t in _FIELD_TYPES if len(getattr(a, f))), have)
    if have == UNDEFINED:
        have = next((t for f, t in _SINGLE_TYPES if a.HasField(f)), have)
    if have in (want, UNDEFINED):  # an empty untyped one reads as absent
        return
    value = _attribute_value(a) if have in _KINDS and have not in _OBJECTS else None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    shown = f"({_kind(have)})" if value is None else shown_value(value)
    raise bad_attribute(name or node.name or node.op_type, node.op_type, a.name, shown, _kind(want))


def shown_value(value: Any) -> str:
    """An attribute value as a message quotes it: its repr, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def bad_attribute(node: str, op: str, attr: str, shown: str, kind: str) -> ShapeError:
    """The one message for an attribute no runtime would read as ``kind`` (an int, ...)."""
    return ShapeError(
        f"node {node!r} ({op}): attribute {attr} {shown} is not {kind}: the model is invalid"
    )


_KINDS: dict[int, str] = {
    INT: "an int",
    INTS: "a list of ints",
    FLOAT: "a float",
    FLOATS: "a list of floats",
    STRING: "a string",
    STRINGS: "a list of strings",
    TENSOR: "a tensor",
    TENSORS: "a list of tensors",
    GRAPH: "a graph",
    GRAPHS: "a list of graphs",
}
_OBJECTS: set[int] = {TENSOR, TENSORS, GRAPH, GRAPHS}


def _kind(value: int) -> str:
    if value in _KINDS:
        return _KINDS[value]
    import onnx

    try:
        return f"a {onnx.AttributeProto.AttributeType.Name(value)}"
    except ValueError:  # a type number this onnx does not know
        return f"of type {value}"
