"""Control flow: If branches (the costlier one counts), Loop and Scan bodies (times trip count)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from convaudit.errors import ShapeError
from convaudit.model.tensors import UNKNOWN, Dim, TensorInfo, merge
from convaudit.model.walkstate import BranchGroup, Env, Scope, SubgraphWalker, node_attrs
from convaudit.records import ScanProblem

if TYPE_CHECKING:
    import onnx

_GRAPH = 5  # AttributeProto.GRAPH
_INT64, _BOOL = 7, 9  # TensorProto.DataType
# Exporters write INT64_MAX as the trip count of a while-loop: that is "no static count".
MAX_STATIC_TRIPS = 1 << 31


def visit(
    w: SubgraphWalker,
    node: onnx.NodeProto,
    node_id: str,
    name: str,
    ins: list[TensorInfo],
    env: Env,
    scope: Scope,
) -> list[TensorInfo]:
    """Walk the node's subgraphs and return the node's output infos."""
    graphs = {a.name: a.g for a in node.attribute if a.type == _GRAPH}
    needed = ("then_branch", "else_branch") if node.op_type == "If" else ("body",)
    missing = [g for g in needed if g not in graphs]
    if missing:
        raise ShapeError(
            f"node {name!r} ({node.op_type}) has no {' or '.join(missing)} graph: "
            "the model is invalid"
        )
    if node.op_type == "If":
        return _if(w, node_id, name, ins, env, scope, graphs)
    if node.op_type == "Loop":
        return _loop(w, node, node_id, name, ins, env, scope, graphs["body"])
    return _scan(w, node, node_id, name, ins, env, scope, graphs["body"])


def _walk_body(
    w: SubgraphWalker,
    g: onnx.GraphProto,
    env: Env,
    scope: Scope,
    label: str,
    bound: dict[str, TensorInfo],
    multiplier: int,
    node_id: str,
) -> list[TensorInfo]:
    sub_env = env.new_child()
    sub_env.update(bound)
    sub = Scope(
        graph=f"{scope.graph}/{label}",
        opsets=scope.opsets,
        multiplier=multiplier,
        producers=scope.producers.new_child(),
        root=scope.root,
        depth=scope.nested(label.rsplit(".", 1)[0]),
        calls=scope.calls,
    )
    for name in bound:  # body inputs shadow outer producers
        sub.producers.pop(name, None)
    declared = {} if w.input_shapes else {vi.name: vi for vi in g.value_info}
    w.walk_subgraph(g, sub_env, sub, declared)
    outs = []
    for o in g.output:
        outs.append(merge(sub_env.get(o.name, UNKNOWN), w.declared(o.type)))
        src = sub.producers.get(o.name)
        if src is not None and src != node_id:
            w.digraph.add_edge(src, node_id, tensor=o.name)
    return outs


def _if(
    w: SubgraphWalker,
    node_id: str,
    name: str,
    ins: list[TensorInfo],
    env: Env,
    scope: Scope,
    graphs: dict[str, onnx.GraphProto],
) -> list[TensorInfo]:
    cond = ins[0].value if ins else None
    taken = None if cond is None or cond.size != 1 else (0 if bool(cond.items[0]) else 1)
    branches, results = [], []
    for attr in ("then_branch", "else_branch"):
        start = len(w.visits)
        outs = _walk_body(
            w, graphs[attr], env, scope, f"{name}.{attr}", {}, scope.multiplier, node_id
        )
        branches.append(range(start, len(w.visits)))
        results.append(outs)
    w.groups.append(BranchGroup(node_id=node_id, branches=branches, taken=taken))
    if taken is not None:
        return results[taken]
    return [_join(a, b) for a, b in zip(results[0], results[1], strict=False)]


def _join(a: TensorInfo, b: TensorInfo) -> TensorInfo:
    """What both branches agree on."""
    if a.shape is None or b.shape is None or len(a.shape) != len(b.shape):
        return TensorInfo(elem_type=a.elem_type or b.elem_type, kind=a.kind)
    pairs = zip(a.shape, b.shape, strict=True)
    shape: tuple[Dim, ...] = tuple(x if x == y else None for x, y in pairs)
    return TensorInfo(elem_type=a.elem_type or b.elem_type, shape=shape, kind=a.kind)


def _trips(w: SubgraphWalker, value: object, name: str, scope: Scope, what: str) -> int | None:
    trips = None
    if isinstance(value, int) and 0 <= value < MAX_STATIC_TRIPS:
        trips = value
    if trips is None:
        w.problems.append(
            ScanProblem(
                kind="dynamic-trip-count",
                message=f"node {name!r}: {what} has no static trip count; its body is counted once",
                node=name,
                graph=scope.graph,
            )
        )
    return trips


def _loop(
    w: SubgraphWalker,
    node: onnx.NodeProto,
    node_id: str,
    name: str,
    ins: list[TensorInfo],
    env: Env,
    scope: Scope,
    body: onnx.GraphProto,
) -> list[TensorInfo]:
    m = ins[0].value if ins and node.input[0] else None
    trip_value = int(m.items[0]) if m is not None and m.size == 1 else None
    trips = _trips(w, trip_value, name, scope, "Loop")
    carried = ins[2:]
    bound: dict[str, TensorInfo] = {}
    b_in = [i.name for i in body.input]
    if b_in:
        bound[b_in[0]] = TensorInfo(elem_type=_INT64, shape=())
    if len(b_in) > 1:
        bound[b_in[1]] = TensorInfo(elem_type=_BOOL, shape=())
    for formal, info in zip(b_in[2:], carried, strict=False):
        # Loop-carried values change between iterations: keep the type, drop the value.
        bound[formal] = TensorInfo(elem_type=info.elem_type, shape=info.shape, kind=info.kind)
    mult = scope.multiplier * (trips if trips is not None else 1)
    outs = _walk_body(w, body, env, scope, f"{name}.body", bound, mult, node_id)
    # PyTorch's scripted for-loops pass an outer constant True through an Identity as the
    # body's condition: that loop always runs its full trip count.
    conditional = len(node.input) > 1 and bool(node.input[1])
    always = bool(outs) and _always_true(outs[0])
    if trips is not None and conditional and not always and _may_exit_early(body):
        w.problems.append(
            ScanProblem(
                kind="loop-upper-bound",
                message=f"node {name!r}: Loop may stop before its trip count {trips} (its "
                f"condition is computed); its body is counted {trips} times, an upper bound",
                node=name,
                graph=scope.graph,
            )
        )
    n_carried = len(carried)
    results = []
    for k, info in enumerate(carried):
        out = outs[1 + k] if 1 + k < len(outs) else UNKNOWN
        results.append(_join(info, out) if out.shape != info.shape else out)
    for out in outs[1 + n_carried :]:
        lead: Dim = trips
        shape = None if out.shape is None else (lead, *out.shape)
        results.append(TensorInfo(elem_type=out.elem_type, shape=shape))
    return results


def _always_true(cond: TensorInfo) -> bool:
    return cond.value is not None and cond.value.size == 1 and bool(cond.value.items[0])


def _may_exit_early(body: onnx.GraphProto) -> bool:
    """False when the body's condition output just passes its condition input through."""
    if len(body.input) < 2 or not body.output:
        return True
    cond_in, cond_out = body.input[1].name, body.output[0].name
    if cond_out == cond_in:
        return False
    for n in body.node:
        if cond_out in n.output:
            return not (n.op_type == "Identity" and list(n.input) == [cond_in])
    return True


def _scan(
    w: SubgraphWalker,
    node: onnx.NodeProto,
    node_id: str,
    name: str,
    ins: list[TensorInfo],
    env: Env,
    scope: Scope,
    body: onnx.GraphProto,
) -> list[TensorInfo]:
    attrs = node_attrs(node)
    n_scan = int(attrs.get("num_scan_inputs", 0))
    n_state = len(ins) - n_scan
    in_axes = list(attrs.get("scan_input_axes", [0] * n_scan))
    if not 0 < n_scan <= len(ins) or len(in_axes) != n_scan:
        raise ShapeError(
            f"node {name!r} (Scan): num_scan_inputs {n_scan} and scan_input_axes {in_axes} do "
            f"not fit its {len(ins)} inputs: the model is invalid"
        )
    seq: Dim = None
    for k, info in enumerate(ins[n_state:]):
        if info.shape is not None and info.shape:
            axis = in_axes[k] % len(info.shape)
            seq = info.shape[axis]
            break
    trips = _trips(w, seq if isinstance(seq, int) else None, name, scope, "Scan")
    bound: dict[str, TensorInfo] = {}
    b_in = [i.name for i in body.input]
    for k, formal in enumerate(b_in):
        info = ins[k] if k < len(ins) else UNKNOWN
        if k >= n_state and info.shape is not None and info.shape:
            axis = in_axes[k - n_state] % len(info.shape)
            info = TensorInfo(
                elem_type=info.elem_type, shape=info.shape[:axis] + info.shape[axis + 1 :]
            )
        else:
            info = TensorInfo(elem_type=info.elem_type, shape=info.shape, kind=info.kind)
        bound[formal] = info
    mult = scope.multiplier * (trips if trips is not None else 1)
    outs = _walk_body(w, body, env, scope, f"{name}.body", bound, mult, node_id)
    out_axes = list(attrs.get("scan_output_axes", [0] * max(0, len(outs) - n_state)))
    results = list(outs[:n_state])
    for k, out in enumerate(outs[n_state:]):
        if out.shape is None:
            results.append(TensorInfo(elem_type=out.elem_type))
            continue
        axis = out_axes[k] % (len(out.shape) + 1) if k < len(out_axes) else 0
        shape = (*out.shape[:axis], seq, *out.shape[axis:])
        results.append(TensorInfo(elem_type=out.elem_type, shape=shape))
    return results
