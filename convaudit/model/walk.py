"""Walk every node of the main graph, its subgraphs and model-local functions, resolving shapes.

Each node is visited once per execution context (a function body once per call site), in
topological order, with the types and small constant values of its inputs known as far as
they can be: ONNX schema inference, fed constant-folded shape arithmetic, plus our own handlers
for control flow and for contrib convolutions that ONNX has no schema for.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections import ChainMap
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from convaudit.errors import InputShapeError, ShapeError, UnknownDimError, UnknownInputError
from convaudit.model.fold import NOT_FOLDABLE, NotPure, fold_pure
from convaudit.model.graph import NodeGraph
from convaudit.model.infer import ONNX_DOMAINS, infer_outputs
from convaudit.model.tensors import (
    UNKNOWN,
    TensorInfo,
    info_from_type,
    info_from_value,
    merge,
    tensor_info,
)
from convaudit.model.values import INT64, Value, from_array, wrap
from convaudit.model.walkstate import (
    BranchGroup,
    Env,
    Scope,
    Visit,
    WalkResult,
    node_attrs,
    resolve_alias,
    schema_attribute_types,
)
from convaudit.records import ScanProblem

if TYPE_CHECKING:
    import onnx

    from convaudit.model import contrib

__all__ = ["BranchGroup", "Env", "Scope", "Visit", "WalkResult", "Walker", "node_attrs"]

_V = TypeVar("_V")
_W = TypeVar("_W")
INT64_MAX = (1 << 63) - 1
MAX_VISITS = 4_000_000


def _need_int64(dims: tuple[int, ...]) -> None:
    """numpy's refusal of a dim no int64 holds, kept where the shape values are built."""
    for d in dims:
        if not -(1 << 63) <= d <= INT64_MAX:
            raise OverflowError(f"Python int too large to convert to C long: {d}")


class Walker:
    """Resolves shapes node by node and records visits, the DiGraph and problems.

    ``pure_fold``: fold shape arithmetic in Python first (model/fold.py), numpy only for what it
    leaves (listed in ``numpy_folds``); the full path folds in numpy, as it has it loaded."""

    pure_fold = False

    def __init__(
        self,
        model: onnx.ModelProto,
        has_data: Callable[[str], bool],
        *,
        input_shapes: Mapping[str, tuple[int, ...]] | None = None,
        dims: Mapping[str, int] | None = None,
        default_dim: int | None = None,
    ) -> None:
        self.model = model
        self.has_data = has_data
        self.input_shapes = dict(input_shapes or {})
        self.dims = dict(dims or {})
        self.default_dim = default_dim
        self.defaulted: list[str] = []  # symbols (or "input x dim k") the default dim set
        self.visits: list[Visit] = []
        self.groups: list[BranchGroup] = []
        self.problems: list[ScanProblem] = []
        self.numpy_folds: list[str] = []
        self.aliases: dict[tuple[str, str], tuple[str, str]] = {}
        self.labels: dict[str, int] = {}  # function call-site labels -> times used
        self.stored: dict[tuple[str, str], TensorInfo] = {}  # quantized weights behind a DQ
        self.digraph = NodeGraph()
        self.functions = {(f.domain, f.name, f.overload): f for f in model.functions}
        self.opsets = {
            ("" if o.domain == "ai.onnx" else o.domain): o.version for o in model.opset_import
        }

    # -- entry -------------------------------------------------------------------------------
    def run(self) -> WalkResult:
        g = self.model.graph
        init_names = {t.name for t in g.initializer}
        env: Env = ChainMap()
        inputs: dict[str, TensorInfo] = {}
        for vi in g.input:
            if vi.name in init_names:
                continue
            info = self._graph_input(vi)
            env[vi.name] = info
            inputs[vi.name] = info
        unknown = set(self.input_shapes) - set(inputs)
        if unknown:
            raise UnknownInputError(sorted(unknown)[0], inputs)
        self._check_dims(g)
        if self.default_dim is not None:
            self._default_dims(g, init_names, inputs, env)
        declared = {} if self.input_shapes else {vi.name: vi for vi in g.value_info}
        scope = Scope(graph="main", opsets=self.opsets, multiplier=1)
        self.walk_subgraph(g, env, scope, declared)
        outputs = {o.name: env.get(o.name, UNKNOWN) for o in g.output}
        return WalkResult(
            self.visits,
            self.groups,
            self.digraph,
            self.problems,
            inputs,
            outputs,
            self.aliases,
            self.stored,
        )

    def _check_dims(self, g: onnx.GraphProto) -> None:
        """A dim value for a symbol the model lacks is a slip (``Batch`` for ``batch``); a model
        without symbols has nothing to set, so blanket values (a fleet's ``batch = 1``) pass."""
        symbols = _symbols(g)
        unknown = sorted(d for d in self.dims if d not in symbols)
        if unknown and symbols:
            raise UnknownDimError(unknown[0], symbols)

    def _default_dims(
        self,
        g: onnx.GraphProto,
        init_names: set[str],
        inputs: dict[str, TensorInfo],
        env: Env,
    ) -> None:
        """Give every input dim nothing else set (a symbol, or a dim with no name) the default
        dim, and note which: the figures then hold for that size only."""
        assert self.default_dim is not None
        n = self.default_dim
        for vi in g.input:
            if vi.name in init_names or vi.name in self.input_shapes:
                continue
            info = inputs[vi.name]
            if info.shape is None:
                continue
            shape: list[int | str | None] = []
            for k, d in enumerate(info.shape):
                if isinstance(d, int):
                    shape.append(d)
                    continue
                if isinstance(d, str) and d not in self.dims:
                    self.dims[d] = n  # value_info and other inputs naming it agree
                    self.defaulted.append(d)
                elif d is None:
                    self.defaulted.append(f"input {vi.name!r} dim {k}")
                shape.append(self.dims[d] if isinstance(d, str) else n)
            fixed = _checked(vi.name, dataclasses.replace(info, shape=tuple(shape)))
            inputs[vi.name] = env[vi.name] = fixed
        if self.defaulted:
            names = ", ".join(dict.fromkeys(self.defaulted))
            self.problems.append(
                ScanProblem(
                    kind="default-dim",
                    message=f"default dim {n} set {names} (figures hold for that size)",
                    graph="main",
                )
            )

    def declared(self, tp: onnx.TypeProto) -> TensorInfo:
        """A type the file declares (value_info, subgraph outputs), with --dim values applied."""
        info = info_from_type(tp)
        if info.shape is None or not self.dims:
            return info
        dims = tuple(self.dims.get(d, d) if isinstance(d, str) else d for d in info.shape)
        return dataclasses.replace(info, shape=dims)

    def _graph_input(self, vi: onnx.ValueInfoProto) -> TensorInfo:
        info = info_from_type(vi.type)
        if vi.name in self.input_shapes:
            shape = self.input_shapes[vi.name]
            if info.shape is not None and len(info.shape) != len(shape):
                raise InputShapeError(
                    f"--input-shape {vi.name}={'x'.join(map(str, shape))} has rank {len(shape)}"
                    f" but input {vi.name!r} has rank {len(info.shape)}"
                )
            return _checked(vi.name, TensorInfo(elem_type=info.elem_type, shape=tuple(shape)))
        if info.shape is not None:
            dims = tuple(self.dims.get(d, d) if isinstance(d, str) else d for d in info.shape)
            info = TensorInfo(elem_type=info.elem_type, shape=dims)
        return _checked(vi.name, info)

    # -- graphs ------------------------------------------------------------------------------
    def walk_subgraph(
        self,
        g: onnx.GraphProto,
        env: Env,
        scope: Scope,
        declared: Mapping[str, onnx.ValueInfoProto],
    ) -> None:
        for t in g.initializer:
            env[t.name] = tensor_info(t, self.has_data(t.name))
        for t in g.sparse_initializer:
            env[t.values.name] = TensorInfo(elem_type=t.values.data_type, shape=tuple(t.dims))
        for i, node in enumerate(_topological(g.node)):
            self._visit(node, i, env, scope, declared)

    def _visit(
        self,
        node: onnx.NodeProto,
        i: int,
        env: Env,
        scope: Scope,
        declared: Mapping[str, onnx.ValueInfoProto],
    ) -> None:
        if len(self.visits) >= MAX_VISITS:
            # Each call site walks its function body again: functions calling functions twice
            # per level multiply (2 ** depth); stop before time and memory run out.
            raise ShapeError(
                f"the graph expands to more than {MAX_VISITS:,} node visits (functions calling"
                " functions multiply their bodies): the model is too large to analyse"
            )
        node_id = f"{scope.graph}/{i}"
        op_type, inputs, outputs = node.op_type, tuple(node.input), tuple(node.output)
        name = node.name or f"{op_type}_{i}"
        attrs = node_attrs(node, self._attribute_types(node, scope), name)
        ins = [_lookup(env, n, UNKNOWN) if n else UNKNOWN for n in inputs]
        self.digraph.add_node(
            node_id,
            op_type=op_type,
            domain=node.domain,
            name=name,
            graph=scope.graph,
            attrs=attrs,
            layer=None,
            # Input order and static input shapes let rules follow a node's data input.
            inputs=inputs,
            outputs=outputs,
            input_shapes=tuple(i.static_shape for i in ins),
        )
        for n in inputs:
            src = _lookup(scope.producers, n, None) if n else None
            if src is not None:
                self.digraph.add_edge(src, node_id, tensor=n)
        for n in outputs:
            if n:
                scope.producers[n] = node_id
        outs = self._resolve(node, node_id, name, attrs, ins, env, scope)
        std = node.domain in ("", "ai.onnx", "com.microsoft")
        if std and op_type in ("Identity", "DequantizeLinear") and ins and ins[0].constant:
            # Exporters fan one de-duplicated weight out through Identity nodes; a QDQ model
            # stores its weights quantized and dequantizes them on the way to the conv.
            origin = resolve_alias(self.aliases, scope.root, inputs[0])
            self.aliases[(scope.root, outputs[0])] = origin
            if op_type == "DequantizeLinear":
                self.stored.setdefault(origin, ins[0])
        real = [i for n, i in zip(inputs, ins, strict=True) if n]
        if real and all(i.constant for i in real) and op_type not in NOT_FOLDABLE:
            outs = [o if o.constant else dataclasses.replace(o, constant=True) for o in outs]
        resolved = []
        for k, out_name in enumerate(outputs):
            if not out_name:
                resolved.append(UNKNOWN)
                continue
            info = outs[k] if k < len(outs) else UNKNOWN
            vi = declared.get(out_name)
            if vi is not None:
                info = merge(info, self.declared(vi.type))
            env[out_name] = info
            resolved.append(info)
        self.visits.append(
            Visit(
                node_id=node_id,
                node=node,
                name=name,
                graph=scope.graph,
                index=len(self.visits),
                attrs=attrs,
                inputs=ins,
                outputs=resolved,
                multiplier=scope.multiplier,
                scope=scope.root,
            )
        )

    def _attribute_types(self, node: onnx.NodeProto, scope: Scope) -> Mapping[str, int] | None:
        """The attribute types of the op's ONNX schema, for node_attrs to check against."""
        domain = "" if node.domain == "ai.onnx" else node.domain
        if (
            domain not in ONNX_DOMAINS
            or (node.domain, node.op_type, node.overload) in self.functions
        ):
            return None
        version = scope.opsets.get(domain, scope.opsets.get("ai.onnx", 1))
        return schema_attribute_types(node.op_type, domain, version)

    def _resolve(
        self,
        node: onnx.NodeProto,
        node_id: str,
        name: str,
        attrs: dict[str, Any],
        ins: list[TensorInfo],
        env: Env,
        scope: Scope,
    ) -> list[TensorInfo]:
        op, domain = node.op_type, ("" if node.domain == "ai.onnx" else node.domain)
        if domain == "" and op == "Constant":
            return [self._constant(node)]
        if domain == "" and op in ("If", "Loop", "Scan"):
            from convaudit.model import control

            return control.visit(self, node, node_id, name, ins, env, scope)
        key = (node.domain, node.op_type, node.overload)
        if key in self.functions:
            return self._call_function(self.functions[key], node, name, ins, env, scope)
        values = self._shape_values(op, domain, ins, attrs)
        if values is None and domain == "":
            values = self._fold(node, ins, attrs, scope.opsets.get("", 1))
        if values is not None:
            return [info_from_value(v) for v in values]
        if domain in ONNX_DOMAINS:
            conflicts: list[str] = []
            outs = self._infer(node, ins, attrs, scope, conflicts)
            if conflicts:
                shapes = ", ".join(
                    "x".join(map(str, i.static_shape or ()))
                    for n, i in zip(node.input, ins, strict=True)
                    if n
                )
                self.problems.append(
                    ScanProblem(
                        kind="shape-conflict",
                        message=f"node {name!r} ({op}) cannot run on inputs of shape {shapes}: "
                        f"{conflicts[0]}",
                        node=name,
                        graph=scope.graph,
                    )
                )
            if outs is not None:
                return outs
        from convaudit.model import contrib

        try:
            handled = contrib.infer(op, domain, attrs, ins, len(node.output), rules=self._rules())
        except contrib.AttributeTypeError as exc:
            raise ShapeError(f"node {name!r} ({op}): {exc}: the model is invalid") from None
        if handled is not None:
            return handled
        if domain not in ONNX_DOMAINS and domain not in contrib.KNOWN_DOMAINS:
            kind, why = "unknown-domain", f"op domain {domain!r} is unknown"
        else:
            kind, why = "unknown-op", f"op {domain + '.' if domain else ''}{op} is unknown"
        self.problems.append(
            ScanProblem(
                kind=kind,
                message=f"node {name!r}: {why}; its outputs have unknown shapes",
                node=name,
                graph=scope.graph,
            )
        )
        return [UNKNOWN for _ in node.output]

    def _infer(
        self,
        node: onnx.NodeProto,
        ins: list[TensorInfo],
        attrs: dict[str, Any],
        scope: Scope,
        conflicts: list[str],
    ) -> list[TensorInfo] | None:
        """Output infos of an op of the ONNX domains by its schema (None: it has none)."""
        return infer_outputs(node, ins, scope.opsets, conflicts)

    def _rules(self) -> contrib.StandardShapes | None:
        """Shape rules a contrib op's standard op tries before onnx (the lite path's)."""
        return None

    def _fold(
        self, node: onnx.NodeProto, ins: list[TensorInfo], attrs: dict[str, Any], opset: int
    ) -> list[Value] | None:
        """The node's outputs when its inputs are all known constants (None: not folded)."""
        if node.op_type in NOT_FOLDABLE or node.domain not in ("", "ai.onnx"):
            return None
        values = [i.value for i in ins]
        known = [v for v in values if v is not None]
        if len(known) != len(values):
            return None
        if self.pure_fold:
            try:
                return fold_pure(node, known, attrs)
            except NotPure:
                self.numpy_folds.append(node.op_type)
        from convaudit.model.evaluate import evaluate

        out = evaluate(node, [v.array() for v in known], attrs, opset)
        return None if out is None else [from_array(a) for a in out]

    @staticmethod
    def _shape_values(
        op: str, domain: str, ins: list[TensorInfo], attrs: dict[str, Any]
    ) -> list[Value] | None:
        """Shape and Size need only the input's static shape, not its value."""
        if domain != "" or op not in ("Shape", "Size") or not ins:
            return None
        shape = ins[0].static_shape
        if shape is None:
            return None
        _need_int64(shape)
        if op == "Size":  # an int64 product, wrapping as numpy's did
            return [Value(INT64, (), (wrap(math.prod(shape), INT64),))]
        rank = len(shape)
        start = int(attrs.get("start", 0))
        end = int(attrs.get("end", rank))
        start, end = (max(0, min(rank, s + rank if s < 0 else s)) for s in (start, end))
        kept = shape[start:end]
        return [Value(INT64, (len(kept),), kept)]

    def _constant(self, node: onnx.NodeProto) -> TensorInfo:
        for a in node.attribute:
            if a.name == "value":
                return tensor_info(a.t, self.has_data(node.output[0]))
            if a.name == "sparse_value":
                return TensorInfo(
                    elem_type=a.sparse_tensor.values.data_type, shape=tuple(a.sparse_tensor.dims)
                )
            if a.name in ("value_float", "value_int", "value_floats", "value_ints"):
                from onnx import helper

                return tensor_info(helper.make_tensor("c", *_const_attr(a)), True)
            if a.name in ("value_string", "value_strings"):
                n = 1 if a.name == "value_string" else len(a.strings)
                shape: tuple[int, ...] = () if a.name == "value_string" else (n,)
                return TensorInfo(elem_type=_STRING, shape=shape)
        return UNKNOWN

    def _call_function(
        self,
        fn: onnx.FunctionProto,
        node: onnx.NodeProto,
        name: str,
        ins: list[TensorInfo],
        env: Env,
        scope: Scope,
    ) -> list[TensorInfo]:
        from convaudit.model.functions import instantiate

        called = f"{fn.domain}.{fn.name}" + (f":{fn.overload}" if fn.overload else "")
        if called in scope.calls:
            chain = " -> ".join((*scope.calls[scope.calls.index(called) :], called))
            raise ShapeError(
                f"node {name!r}: function {called} calls itself ({chain}): the model is invalid"
            )
        depth = scope.nested(name)
        label = f"function:{fn.domain}.{fn.name}@{name}"
        uses = self.labels[label] = self.labels.get(label, 0) + 1
        if uses > 1:  # call nodes that share a name (or have none) in different graphs
            label = f"{label}#{uses}"
        body = instantiate(fn, node)
        local: Env = ChainMap()
        producers: ChainMap[str, str] = ChainMap()
        for formal, actual, info in zip(fn.input, node.input, ins, strict=False):
            local[formal] = info
            if actual:
                self.aliases[(label, formal)] = resolve_alias(self.aliases, scope.root, actual)
            src = scope.producers.get(actual) if actual else None
            if src is not None:
                producers[formal] = src
        opsets = dict(scope.opsets)
        opsets.update(
            {("" if o.domain == "ai.onnx" else o.domain): o.version for o in fn.opset_import}
        )
        inner = Scope(
            graph=label,
            opsets=opsets,
            multiplier=scope.multiplier,
            producers=producers,
            root=label,
            depth=depth,
            calls=(*scope.calls, called),
        )
        for i, n in enumerate(_topological(body)):
            self._visit(n, i, local, inner, {})
        for formal, actual in zip(fn.output, node.output, strict=False):
            if actual and formal in inner.producers:
                scope.producers[actual] = inner.producers[formal]
        return [local.get(o, UNKNOWN) for o in fn.output]


def _lookup(chain: ChainMap[str, _V], key: str, default: _W) -> _V | _W:
    """``chain.get(key, default)`` without ChainMap's generator: the walk's hottest call."""
    for m in chain.maps:
        if key in m:
            return m[key]
    return default


def _symbols(g: onnx.GraphProto) -> set[str]:
    """Every symbolic dim the main graph's inputs, outputs and value_info name."""
    out: set[str] = set()
    for vi in (*g.input, *g.output, *g.value_info):
        t = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
        if t is not None and t.HasField("shape"):
            out.update(d.dim_param for d in t.shape.dim if d.HasField("dim_param") and d.dim_param)
    return out


def _checked(name: str, info: TensorInfo) -> TensorInfo:
    """Refuse input dims an ONNX shape cannot hold (they would overflow every count after)."""
    for d in info.shape or ():
        if isinstance(d, int) and not 0 <= d <= INT64_MAX:
            raise ShapeError(
                f"input {name!r} dim {d} is outside 0..{INT64_MAX} (64-bit): check --input-shape"
                " and --dim"
            )
    return info


_FLOAT, _INT64, _STRING = 1, 7, 8  # TensorProto.DataType


def _const_attr(a: onnx.AttributeProto) -> tuple[int, tuple[int, ...], list[Any]]:
    if a.name == "value_float":
        return _FLOAT, (), [a.f]
    if a.name == "value_int":
        return _INT64, (), [a.i]
    if a.name == "value_floats":
        return _FLOAT, (len(a.floats),), list(a.floats)
    return _INT64, (len(a.ints),), list(a.ints)


def _topological(nodes: Any) -> list[onnx.NodeProto]:
    """Nodes in an order where producers come first (exports are usually sorted already).

    The order is that of repeated passes over the nodes in file order, each pass taking every
    node whose inputs are ready by then; a cycle or a missing producer leaves the rest in file
    order at the end. It is computed in O(n log n): a node's pass is the latest of its inputs'
    ready times, one pass later for an input whose first producer comes after it in the file.
    """
    nodes = list(nodes)
    producers: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        for o in n.output:
            if o:
                producers.setdefault(o, []).append(i)
    consumers: dict[str, list[int]] = {}
    waiting = [0] * len(nodes)  # distinct produced inputs not yet ready
    for i, n in enumerate(nodes):
        for name in {x for x in n.input if x and x in producers}:
            consumers.setdefault(name, []).append(i)
            waiting[i] += 1
    passes = [0] * len(nodes)  # the earliest pass each node can join
    heap = [(0, i) for i, count in enumerate(waiting) if count == 0]  # already sorted
    ordered: list[onnx.NodeProto] = []
    placed = [False] * len(nodes)
    while heap:
        p, i = heapq.heappop(heap)
        ordered.append(nodes[i])
        placed[i] = True
        for o in nodes[i].output:
            # The first producer placed makes the tensor ready; later namesakes change nothing.
            for c in consumers.pop(o, ()) if o else ():
                passes[c] = max(passes[c], p + (1 if i > c else 0))
                waiting[c] -= 1
                if waiting[c] == 0:
                    heapq.heappush(heap, (passes[c], c))
    if len(ordered) < len(nodes):  # a cycle or a missing producer: keep file order
        ordered.extend(n for n, done in zip(nodes, placed, strict=True) if not done)
    return ordered
