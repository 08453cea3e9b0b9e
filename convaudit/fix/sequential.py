"""fit_layerwise: the calibrated fit, layer after layer in graph order (replaces probe+factorise).

For each planned conv, in topological order: run the model with every earlier planned conv
already rewritten, to see x̂, the input this conv gets in the rewritten network; take U from the
SVD whitened by x̂'s second moment; refit the KxK V and bias by least squares so that the pair
reproduces the ORIGINAL conv's response y on its original input (``layerfit``); then rewrite it
before moving on. Errors do not pile up: each layer corrects what the layers before it changed.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from convaudit.fix import layerfit, plan, validate
from convaudit.fix.context import Feeds, Fitted, FixContext, Selection
from convaudit.fix.factorize import (
    SecondMoment,
    column_moment,
    factorize,
    finite_as,
    spatial_factorize,
)
from convaudit.fix.result import LayerFix
from convaudit.fix.rewrite import ConvRewrite, attribute, rewrite_conv
from convaudit.fix.stages import effective_weights, layer_result
from convaudit.model.loader import load_model
from convaudit.model.tensor_users import node_inputs

# Sampled output positions per layer, over all calibration runs: enough rows for r·K² + 1
# unknowns per output channel (576 + 1 at r = 64, 3x3), bounded by memory below.
SAMPLES = 16_384
SAMPLE_BYTES = 256 * 2**20  # the float32 patches of one layer, and the float64 design matrix


def activation_after(graph: onnx.GraphProto, tensor: str) -> layerfit.Activation | None:
    """The clipping activation that alone reads ``tensor`` (Relu, or Clip from 0), else None.

    LeakyRelu, SiLU and the like are invertible: every value of y matters, so there is nothing
    to relax and the plain least squares is already the right objective.
    """
    if any(o.name == tensor for o in graph.output):
        return None
    users = [n for n in graph.node if tensor in node_inputs(n)]
    if len(users) != 1:
        return None
    user = users[0]
    if user.op_type == "Relu" and user.domain in ("", "ai.onnx"):
        return layerfit.Activation(name="Relu")
    if user.op_type != "Clip" or user.domain not in ("", "ai.onnx"):
        return None
    inits = {t.name: t for t in graph.initializer}

    def bound(i: int, attr: str, default: float) -> float | None:
        if len(user.input) > i and user.input[i]:
            t = inits.get(user.input[i])
            return None if t is None else float(numpy_helper.to_array(t).reshape(-1)[0])
        return float(attribute(user, attr, default))

    low, high = bound(1, "min", -math.inf), bound(2, "max", math.inf)
    if low is None or high is None or low != 0.0:
        return None
    return layerfit.Activation(name="Clip", low=low, high=high)


def _truncated(model: onnx.ModelProto, output: str) -> onnx.ModelProto:
    """A copy of ``model`` computing only ``output`` (nodes it does not need are dropped, so each
    layer's pass costs the depth up to it); unpruned when a node holds a subgraph."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    has_subgraphs = any(a.type in (5, 10) for n in g.node for a in n.attribute)  # GRAPH(S)
    if not has_subgraphs:
        needed, keep = {output}, []
        for node in reversed(g.node):
            if any(o in needed for o in node.output):
                keep.append(node)
                needed.update(node_inputs(node))
        kept = [n for n in g.node if any(n is k for k in keep)]
        nodes = [_copy(n) for n in kept]
        del g.node[:]
        g.node.extend(nodes)
    del g.output[:]
    g.output.extend([helper.make_empty_tensor_value_info(output)])
    return out


def _copy(node: onnx.NodeProto) -> onnx.NodeProto:
    c = onnx.NodeProto()
    c.CopyFrom(node)
    return c


def _session(model: onnx.ModelProto, work: Path, external: bool, ctx: FixContext) -> Any:
    if not external:
        return validate.session(model.SerializeToString(), shown_as=ctx.src)
    path = work / "layer.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location=path.name + ".data")
    return validate.session(path, shown_as=ctx.src)


def fit_layerwise(ctx: FixContext, sel: Selection, feeds: Feeds, work: Path) -> Fitted:
    """Each planned conv fitted on what the partially rewritten network feeds it (see above)."""
    full = validate.load_full(ctx.src)
    graph = full.graph
    position = {n.output[0]: i for i, n in enumerate(graph.node) if n.output}
    plans = sorted(sel.plans, key=lambda p: position.get(p.layer.outputs[0], 0))
    targets = [p.bn_name or p.layer.outputs[0] for p in plans]
    rng = np.random.default_rng(ctx.options.seed)
    runs = feeds.runs

    # 1. The original responses y at sampled output positions, from one pass of the original.
    index: dict[int, list[np.ndarray]] = {k: [] for k in range(len(plans))}
    responses: dict[int, list[np.ndarray]] = {k: [] for k in range(len(plans))}
    probe = onnx.ModelProto()
    probe.CopyFrom(full)
    validate.write_probe(probe, targets, work / "targets.onnx")
    del probe
    session = validate.session(work / "targets.onnx", shown_as=ctx.src)
    for values in validate.capture(session, targets, runs):
        for k, (p, t) in enumerate(zip(plans, targets, strict=True)):
            y = values[t]
            per_run = _samples(p) // len(runs) + 1
            idx = layerfit.sample_positions(rng, y.size // y.shape[1], per_run)
            index[k].append(idx)
            responses[k].append(layerfit.gather_responses(y.astype(np.float64), idx))
    del session
    _clear(work)

    # 2. Layer by layer: x̂ from the partially rewritten model, then fit and rewrite.
    inputs = {i.name for i in graph.input}
    results: list[LayerFix] = []
    rewrites: list[ConvRewrite] = []
    skipped: list[LayerFix] = []
    with load_model(ctx.src) as loaded:
        for k, p in enumerate(plans):
            x_name = p.layer.inputs[0]
            conv = next(n for n in graph.node if n.output and n.output[0] == p.layer.outputs[0])
            y_shape = p.layer.output_shape or ()
            geo = conv_geometry(conv, p)
            groups = plan.groups(p.layer)
            refit_ok = geo is not None and groups == 1
            moment = SecondMoment()
            patches: list[np.ndarray] = []
            finite = True
            xs = _inputs_of(full, x_name, runs, inputs, work, sel.external, ctx)
            for r, x in enumerate(xs):
                if not np.all(np.isfinite(x)):
                    finite = False
                    break
                moment.add(x)
                if refit_ok and geo is not None:
                    x2 = layerfit.as_2d(x.astype(np.float64))
                    out_hw = (1, y_shape[2]) if len(y_shape) == 3 else (y_shape[2], y_shape[3])
                    patches.append(
                        layerfit.gather_patches(x2, geo, out_hw, index[k][r]).astype(np.float32)
                    )
            if not finite:
                skipped.append(
                    replace(
                        plan.original(p.layer),
                        reason="its input is not finite (NaN or inf) in the partly rewritten "
                        "model: not rewritten",
                    )
                )
                continue
            w, b, new_bias = effective_weights(loaded, p, sel.structure.graph)
            if p.kind == plan.SPATIAL:
                assert geo is not None and refit_ok  # plan.spatial_reason: 2-D, group 1
                # Jaderberg et al.'s scheme 2 as the same bilinear fit: each horizontal tap of
                # the 1 x Kw conv reads the Kh x 1 conv's output, a map of the input's columns.
                kh, kw = geo.kernel
                seen = np.concatenate(patches)
                factors = spatial_factorize(w, p.width, column_moment(seen, kh))
                x_fit: np.ndarray = seen.reshape(len(seen), -1, kw)  # [P, Cin·Kh, Kw]
                del seen
            else:
                factors = factorize(w, p.width, moment.covariance(), groups)
                x_fit = np.concatenate(patches) if refit_ok else np.empty(0)
            u, v = factors.u, factors.v
            bias = new_bias
            act = activation_after(graph, targets[k])
            notes = list(p.notes)
            if refit_ok:
                cout = v.shape[0]
                fit = layerfit.checked_refit(
                    u.reshape(p.width, -1),
                    v.reshape(cout, p.width, -1),
                    b,
                    x_fit,
                    np.concatenate(responses[k]),
                    act,
                )
                u = fit.u.reshape(u.shape)
                v, bias, measured = fit.v.reshape(v.shape), fit.bias, fit.error
                what = "responses" if act is None else f"responses after its {act.name}"
                notes.append(
                    f"fitted to the original layer's {what} on what the rewritten layers before "
                    f"it feed it: {100 * fit.error_before:.1f}% -> {100 * fit.error:.1f}% "
                    "on the calibration samples"
                )
            else:
                measured = None
            dtype = np.dtype(p.layer.weight_dtype or "float32")
            if not finite_as(dtype, u, v, *(() if bias is None else (bias,))):
                skipped.append(
                    replace(
                        plan.original(p.layer),
                        reason=f"its fitted weights are not finite in {dtype}: not rewritten",
                    )
                )
                continue
            rw = ConvRewrite(
                conv_output=p.layer.outputs[0],
                u=u,
                v=v,
                bias=bias,
                bn_output=p.bn_name,
                groups=groups,
                kind=p.kind,
            )
            rewrite_conv(graph, rw, dtype, declare_inputs=full.ir_version < 4)
            rewrites.append(rw)
            layer = layer_result(p, factors, measured)
            results.append(replace(layer, notes=tuple(notes)))
            index[k], responses[k] = [], []
            del x_fit, patches
    del full
    return Fitted(layers=tuple(results), rewrites=tuple(rewrites), skipped=tuple(skipped))


def conv_geometry(conv: onnx.NodeProto, p: plan.LayerPlan) -> layerfit.Geometry | None:
    """The planned conv's sampling pattern as 2-D (None for 3-D and beyond)."""
    kernel = p.layer.kernel_shape or ()
    return layerfit.geometry(
        kernel,
        attribute(conv, "strides", [1] * len(kernel)),
        attribute(conv, "dilations", [1] * len(kernel)),
        attribute(conv, "pads", []),
        attribute(conv, "auto_pad", "NOTSET"),
        (p.layer.input_shape or ())[2:],
        (p.layer.output_shape or ())[2:],
    )


def _samples(p: plan.LayerPlan) -> int:
    """Sampled positions for this layer: SAMPLES, or fewer when its patches would not fit."""
    cin = p.layer.in_channels or 1
    area = math.prod(p.layer.kernel_shape or (1,))
    widest = max(cin * area * 4, (p.width * area + 1) * 8)
    return max(256, min(SAMPLES, SAMPLE_BYTES // widest))


def _inputs_of(
    model: onnx.ModelProto,
    x_name: str,
    runs: tuple[validate.Feed, ...],
    graph_inputs: set[str],
    work: Path,
    external: bool,
    ctx: FixContext,
) -> list[np.ndarray]:
    """x̂ on every run: the tensor ``x_name`` of the (partly rewritten) model."""
    if x_name in graph_inputs:
        return [np.asarray(r[x_name]) for r in runs]
    session = _session(_truncated(model, x_name), work, external, ctx)
    out = [values[x_name] for values in validate.capture(session, [x_name], runs)]
    del session
    _clear(work)
    return out


def _clear(work: Path) -> None:
    for leftover in work.iterdir():
        if leftover.is_file():
            leftover.unlink()
