"""From an ONNX file to ModelFacts: load without weights, walk, cost, total, share."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from math import prod
from pathlib import Path
from typing import TYPE_CHECKING

from convaudit import cost
from convaudit.errors import ConvauditError, ShapeError
from convaudit.model.layers import cost_visit, is_costed
from convaudit.model.walk import Walker
from convaudit.model.walkstate import Visit, WalkResult
from convaudit.records import (
    CONV_CATEGORIES,
    Category,
    CategoryTotals,
    Layer,
    ModelFacts,
    ScanProblem,
    Totals,
)

if TYPE_CHECKING:
    from convaudit.model.loader import LoadedModel

INT64_MAX = (1 << 63) - 1


def analyse(
    path: str | Path,
    *,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    dims: Mapping[str, int] | None = None,
    loaded: LoadedModel | None = None,
    default_dim: int | None = None,
) -> ModelFacts:
    """Load ``path`` (weights not read), resolve every shape and cost every layer.

    ``loaded`` is ``path`` already opened by the caller (who then reads weights from it too).
    ``default_dim`` sets every input dim nothing else sets; a note lists them.

    Without ``loaded``, the lite path (model/lite.py) tries first: it reads the file without
    onnx and gives the same facts, or defers to the full path below.
    """
    if loaded is None:
        from convaudit.model.lite import analyse_lite

        facts = analyse_lite(
            path, facts_of_walk, input_shapes=input_shapes, dims=dims, default_dim=default_dim
        )
        if facts is not None:
            return facts
        from convaudit.model.loader import load_model

        with load_model(path) as own:
            return analyse(
                path, input_shapes=input_shapes, dims=dims, loaded=own, default_dim=default_dim
            )
    walker = Walker(
        loaded.proto,
        loaded.has_data,
        input_shapes=input_shapes,
        dims=dims,
        default_dim=default_dim,
    )
    return facts_of_walk(path, walker)


def facts_of_walk(path: str | Path, walker: Walker) -> ModelFacts:
    """Walk, cost, total and check one model: the part the full and the lite path share."""
    try:
        result = walker.run()
    except ConvauditError as exc:  # the walker does not know the file: name it here
        if exc.path is not None:
            raise
        raise exc.at(path) from None
    opset = {(o.domain or "ai.onnx"): int(o.version) for o in walker.model.opset_import}
    try:
        layers = _stored_bytes(_cost(result), result)
    except ConvauditError as exc:  # costing does not know the file: name it here
        raise exc.at(path) from None
    _check_resolved(str(path), result, layers)
    _check_positive(str(path), layers)
    totals = _totals(layers, result)
    if totals.macs > INT64_MAX or totals.params > INT64_MAX:
        raise ShapeError("total MACs overflow a 64-bit integer: check the input shapes", path=path)
    layers = _with_shares(layers, totals.macs)
    for layer in layers:
        if layer.node_id in result.graph:
            result.graph.nodes[layer.node_id]["layer"] = layer.index
    return ModelFacts(
        path=str(path),
        opset=dict(sorted(opset.items())),
        inputs={k: v.shape for k, v in result.inputs.items()},
        outputs={k: v.shape for k, v in result.outputs.items()},
        layers=tuple(layers),
        totals=totals,
        problems=tuple(result.problems),
        node_graph=result.graph,
    )


def _cost(result: WalkResult) -> list[Layer]:
    by_visit: dict[int, Layer] = {}
    for v in result.visits:
        if is_costed(v):
            layer = cost_visit(v)
            if layer is not None:
                by_visit[v.index] = layer
    # Inner If nodes complete first, so each branch's sum already excludes inner losers.
    for group in result.groups:
        sums = [
            sum(by_visit[i].total_macs or 0 for i in r if i in by_visit and by_visit[i].counted)
            for r in group.branches
        ]
        # A branch with a conv that cannot be shaped while another branch can, cannot run on
        # these inputs (silero VAD's 8 kHz branch fed a 16 kHz window): it is not the cost.
        broken = [
            any(by_visit[i].macs is None for i in r if i in by_visit and by_visit[i].counted)
            for r in group.branches
        ]
        runnable = [b for b, bad in enumerate(broken) if not bad] or list(range(len(sums)))
        keep = group.taken if group.taken is not None else max(runnable, key=sums.__getitem__)
        if group.taken is None and len(runnable) < len(sums):
            _note_unshapeable(result, group.node_id, [b for b in range(len(sums)) if broken[b]])
        for b, r in enumerate(group.branches):
            if b == keep:
                continue
            for i in r:
                if i in by_visit:
                    by_visit[i] = dataclasses.replace(by_visit[i], counted=False)
    # Renumber layers densely in walk order so ``index`` is a stable graph-order position.
    return [
        dataclasses.replace(layer, index=k)
        for k, layer in enumerate(by_visit[i] for i in sorted(by_visit))
    ]


def _note_unshapeable(result: WalkResult, node_id: str, branches: list[int]) -> None:
    node = result.graph.nodes[node_id]
    which = " and ".join(("then_branch", "else_branch")[b] if b < 2 else str(b) for b in branches)
    result.problems.append(
        ScanProblem(
            kind="unshapeable-branch",
            message=f"node {node['name']!r}: {which} has convs whose shapes do not resolve on "
            "these inputs (it cannot run on them), so the other branch is counted",
            node=node["name"],
            graph=node["graph"],
        )
    )


def _stored_bytes(layers: list[Layer], result: WalkResult) -> list[Layer]:
    """Weight bytes as stored: a dequantized weight costs its quantized bytes, not float's."""
    if not result.stored:
        return layers
    scopes = {v.node_id: v.scope for v in result.visits}
    out = []
    for layer in layers:
        f_bytes = cost.tensor_bytes(layer.weight_shape or (), layer.weight_dtype)
        q_bytes = _weight_bytes(layer, result, scopes.get(layer.node_id, "main"))
        if layer.weight_bytes is not None and f_bytes is not None and q_bytes is not None:
            layer = dataclasses.replace(layer, weight_bytes=layer.weight_bytes - f_bytes + q_bytes)
        out.append(layer)
    return out


def _weight_bytes(layer: Layer, result: WalkResult, scope: str) -> int | None:
    """Bytes of the layer's weight tensor alone, as stored (quantized behind a DQ or not)."""
    if not layer.weight_name or not layer.weight_shape:
        return None
    q = result.stored.get(result.source(scope, layer.weight_name))
    q_shape = q.static_shape if q is not None else None
    if q is not None and q_shape is not None:
        return cost.tensor_bytes(q_shape, q.dtype_name)
    return cost.tensor_bytes(layer.weight_shape, layer.weight_dtype)


def _symbols(v: Visit) -> set[str]:
    out: set[str] = set()
    for info in (*v.inputs, *v.outputs):
        if info.shape is not None:
            out.update(d for d in info.shape if isinstance(d, str))
    return out


def _has_lost_dim(v: Visit) -> bool:
    return any(info.shape is None or None in info.shape for info in v.inputs[:1])


def _check_resolved(path: str, result: WalkResult, layers: list[Layer]) -> None:
    """Refuse to report numbers when a conv's shape hangs on a dim the user must set."""
    by_id = {v.node_id: v for v in result.visits}
    # A branch that a constant condition rules out never runs: its shapes need not resolve.
    dead = {
        result.visits[i].node_id
        for group in result.groups
        if group.taken is not None
        for b, visits in enumerate(group.branches)
        if b != group.taken
        for i in visits
    }
    declared = {
        d for info in result.inputs.values() for d in info.shape or () if isinstance(d, str)
    }
    missing: set[str] = set()
    derived: set[str] = set()
    unexplained = False
    for layer in layers:
        if layer.macs is None and layer.node_id not in dead:
            visit = by_id[layer.node_id]
            own = _symbols(visit)
            missing |= own & declared
            derived |= own - declared
            # A dim lost on the way, or named by the exporter's shape arithmetic ("2*s53",
            # "floor(height/2 - 1/2) + 1"), is set through the input symbols it came from.
            unexplained |= not own or bool(own - declared) or _has_lost_dim(visit)
            if layer.counted:
                _raise_on_conflict(path, result, layer)
    if unexplained:
        # The shape was lost on the way (e.g. a Reshape whose target came from Shape of a
        # symbolic input): the input symbols still unset are what the user can give.
        missing |= {
            d for info in result.inputs.values() for d in info.shape or () if isinstance(d, str)
        }
    if unexplained and not missing:
        _ask_for_anonymous_dims(path, result)
    missing = missing or derived  # sizes only the file names (data-dependent): --dim sets them
    if not missing:
        return
    carriers = sorted(
        name
        for name, info in result.inputs.items()
        if info.shape is not None and any(d in missing for d in info.shape)
    )
    dims = " ".join(f"--dim {s}=<int>" for s in sorted(missing))
    shapes = " ".join(
        f"--input-shape {name}="
        + "x".join(
            "<?>" if d is None else f"<{d}>" if isinstance(d, str) else str(d)
            for d in result.inputs[name].shape or ()
        )
        for name in carriers
    )
    hint = f" (symbols of input {', '.join(carriers)})" if carriers else ""
    # An input that also has a dim with no name (paddle2onnx's "?") is only set whole.
    unnamed = any(None in (result.inputs[name].shape or ()) for name in carriers)
    how = shapes if unnamed else f"{dims}" + (f", or {shapes}" if shapes else "")
    raise ShapeError(
        f"conv shapes depend on unresolved dims {', '.join(sorted(missing))}{hint}; "
        f"--default-dim N sets every one, or set them with {how}",
        path=path,
    )


def _raise_on_conflict(path: str, result: WalkResult, layer: Layer) -> None:
    """A node on the way to an unresolved conv rejected fully known shapes: the model cannot
    run on these inputs (e.g. a YOLO neck concatenating maps of odd sizes), so say where.
    (A costed node that rejects its own inputs stays an unknown layer with its note.)"""
    graph = layer.graph
    for p in result.problems:
        inside = p.graph is not None and (graph == p.graph or graph.startswith(p.graph + "/"))
        if p.kind == "shape-conflict" and inside and p.node != layer.name:
            raise ShapeError(f"{p.message}; check --input-shape and --dim", path=path)


def _ask_for_anonymous_dims(path: str, result: WalkResult) -> None:
    """Inputs whose dims have no name and no value can only be set whole, by --input-shape."""
    unnamed = {
        name: info.shape
        for name, info in sorted(result.inputs.items())
        if info.kind == "tensor" and (info.shape is None or None in info.shape)
    }
    if not unnamed:
        return
    flags = " ".join(
        f"--input-shape {name}="
        + ("x".join("<?>" if d is None else str(d) for d in shape) if shape else "<AxBxC>")
        for name, shape in unnamed.items()
    )
    raise ShapeError(
        f"conv shapes depend on input {', '.join(unnamed)}, whose shape is not fully declared; "
        f"set it with {flags}",
        path=path,
    )


def _check_positive(path: str, layers: list[Layer]) -> None:
    """A conv whose output would have a negative size is an input error, not a negative cost."""
    for layer in layers:
        shape = layer.output_shape or ()
        if any(d < 0 for d in shape) or (layer.macs is not None and layer.macs < 0):
            dims = "x".join(map(str, layer.input_shape or ()))
            raise ShapeError(
                f"node {layer.name!r}: input {dims or '?'} is too small for its "
                f"{'x'.join(map(str, layer.kernel_shape or ()))} kernel (output "
                f"{'x'.join(map(str, shape))}): check --input-shape and --dim",
                path=path,
            )


def _totals(layers: list[Layer], result: WalkResult) -> Totals:
    counted = [layer for layer in layers if layer.counted]
    whole = _category_totals(counted, result)
    conv = _category_totals([x for x in counted if x.category in CONV_CATEGORIES], result)
    by_category = {
        c.value: _category_totals(members, result)
        for c in Category
        if (members := [x for x in counted if x.category == c])
    }
    return Totals(
        macs=whole.macs,
        flops=whole.flops,
        params=whole.params,
        conv_macs=conv.macs,
        conv_params=conv.params,
        layers=whole.layers,
        unknown_layers=whole.unknown_layers,
        weight_bytes=whole.weight_bytes,
        by_category=by_category,
    )


def _category_totals(counted: list[Layer], result: WalkResult) -> CategoryTotals:
    """Totals over counted layers: MACs and FLOPs per run, a shared weight counted once."""
    known = [layer for layer in counted if layer.macs is not None]
    params, weight_bytes = _unique_weights(counted, result)
    return CategoryTotals(
        macs=sum(layer.total_macs or 0 for layer in known),
        flops=sum((layer.flops or 0) * layer.multiplier for layer in known),
        params=params,
        layers=len(counted),
        unknown_layers=len(counted) - len(known),
        weight_bytes=weight_bytes,
    )


def _unique_weights(layers: list[Layer], result: WalkResult) -> tuple[int, int]:
    """Params and weight bytes with a weight shared by several layers counted once.

    Sharing is seen through Identity fan-outs and function call sites (``result.source``).
    """
    scopes = {v.node_id: v.scope for v in result.visits}
    seen: set[tuple[str, str]] = set()
    params = size = 0
    for layer in layers:
        params += layer.params or 0
        size += layer.weight_bytes or 0
        scope = scopes.get(layer.node_id, "main")
        w_elems = prod(layer.weight_shape) if layer.weight_name and layer.weight_shape else 0
        w_bytes = _weight_bytes(layer, result, scope) or 0
        if layer.weight_name:
            key = result.source(scope, layer.weight_name)
            if key in seen and layer.params:
                params -= w_elems
                size -= min(w_bytes, layer.weight_bytes or 0)
            seen.add(key)
        if layer.bias_name and layer.params is not None:
            key = result.source(scope, layer.bias_name)
            if key in seen:  # the rest of the layer's params and bytes are its bias
                params -= max(0, layer.params - w_elems)
                size -= max(0, (layer.weight_bytes or 0) - w_bytes)
            seen.add(key)
    return params, size


def _with_shares(layers: list[Layer], total: int) -> list[Layer]:
    out = []
    for layer in layers:
        share = None
        if layer.total_macs is not None and total:
            share = layer.total_macs / total if layer.counted else 0.0
        out.append(dataclasses.replace(layer, mac_share=share))
    return out


__all__ = ["ScanProblem", "analyse"]
