"""tune: the rewritten layers' factors fitted together, end to end, to the original outputs.

The layer-wise fit (``fix.sequential``) makes each rewritten conv reproduce the original conv's
own response. What a detector's mask or a recogniser's string depends on is the model's output,
and a layer's error reaches it through everything after: a ReLU drops what no later linear layer
restores (README, issue 9). So after the layer-wise fit, ``--tune-steps N`` runs N steps of Adam
on the rewritten layers' factors and biases (nothing else moves) to bring the graph outputs back
to the original model's outputs on the fit's runs, as Zhang et al. 2015 and Jaderberg et al. 2014
fine-tune after their decompositions, but only the new factors and on calibration data.

Only the region downstream of the rewritten layers runs, in numpy (``fix.autodiff``): what feeds
it is captured once with onnxruntime. The numpy forward is held to onnxruntime's output of the
rewritten model before any step, and the tuned factors are kept only if they lower the error on
the fit's runs; otherwise the layer-wise factors stand. The held-out runs are never seen here:
``verify`` decides on them as before.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from convaudit.fix import autodiff, validate
from convaudit.fix.context import Feeds, Fitted, FixContext, Selection
from convaudit.fix.layerfit import relative
from convaudit.fix.result import TuneOutcome
from convaudit.fix.rewrite import ConvRewrite, rewrite_conv
from convaudit.model.tensor_users import node_inputs

F32 = np.float32
# The activations that feed the region, held for every fit run, and the region's own values on
# one run: beyond these the step declines rather than swap.
BOUNDARY_BYTES = 2 * 2**30
# Adam on each tensor with its step scaled by the tensor's mean magnitude (the factors of
# different layers differ in scale by orders of magnitude), cosine-decayed to zero.
LEARNING_RATE = 1e-3
BETAS = (0.9, 0.999)
# The numpy forward must match onnxruntime's output of the rewritten model this closely
# (relative L2) before its gradients are trusted.
PARITY = 1e-3


@dataclass(frozen=True)
class _Trainable:
    rewrite: ConvRewrite
    u: str
    v: str
    bias: str | None  # the KxK conv's bias initializer, when only it reads it


def tune(ctx: FixContext, sel: Selection, fitted: Fitted, feeds: Feeds, work: Path) -> Fitted:
    """``fitted`` with its factors tuned end to end (see the module), and the outcome."""
    steps = ctx.options.tune_steps
    if steps <= 0 or not fitted.rewrites:
        return fitted
    started = time.perf_counter()

    def declined(reason: str) -> Fitted:
        outcome = TuneOutcome(steps=steps, runs=len(feeds.runs), applied=False, reason=reason)
        return replace(fitted, tuning=outcome, notes=(*fitted.notes, f"not tuned: {reason}"))

    if sel.external:
        return declined("the model keeps its weights in external data")
    dtypes = {p.layer.outputs[0]: p.layer.weight_dtype or "float32" for p in sel.plans}
    if any(dtypes.get(rw.conv_output, "float32") != "float32" for rw in fitted.rewrites):
        return declined("tuning runs on float32 weights only")

    original = validate.load_full(ctx.src)
    model = onnx.ModelProto()
    model.CopyFrom(original)
    trainables = [_apply(model.graph, rw, model.ir_version < 4) for rw in fitted.rewrites]
    try:
        region = _region(model.graph, trainables)
        autodiff.check(region)
    except autodiff.Unsupported as e:
        return declined(f"the layers after the rewritten ones hold {e}, which it cannot run")
    if not region.outputs:
        return declined("no graph output depends on the rewritten layers")
    inits = {t.name: t for t in model.graph.initializer}
    params = {n: _array(inits[n]) for t in trainables for n in (t.u, t.v, t.bias) if n}

    captured = _capture(ctx, original, region, feeds, work)
    del original
    if captured is None:
        return declined("what feeds the rewritten layers is too large to hold for every run")
    feeds_in, targets = captured
    disagreement = _disagreement(ctx, model, region, params, feeds, feeds_in[0])
    del model
    if disagreement is not None:
        return declined(disagreement)

    scales = _channel_scales(targets, ctx.options.channel_axis)
    if not scales:
        return declined("no floating-point output depends on the rewritten layers")
    problem = _Problem(region, feeds_in, targets, scales)
    before = _error(problem, params)
    tuned = _adam(problem, params, steps, ctx.options.seed)
    after = _error(problem, tuned)
    seconds = time.perf_counter() - started
    outcome = TuneOutcome(
        steps=steps,
        runs=len(feeds_in),
        applied=after < before,
        error_before=before,
        error_after=after,
        seconds=seconds,
        reason=None if after < before else "it did not lower the error on the fit's runs",
    )
    if not after < before:
        return replace(
            fitted,
            tuning=outcome,
            notes=(*fitted.notes, "not tuned: the end-to-end steps did not lower the error"),
        )
    rewrites = tuple(
        replace(
            t.rewrite,
            u=tuned[t.u].reshape(t.rewrite.u.shape),
            v=tuned[t.v].reshape(t.rewrite.v.shape),
            bias=tuned[t.bias] if t.bias else t.rewrite.bias,
        )
        for t in trainables
    )
    note = (
        f"tuned end to end with the other rewritten layers ({steps} steps on "
        f"{len(feeds_in)} fit runs): output error on them {100 * before:.1f}% -> "
        f"{100 * after:.1f}%"
    )
    layers = tuple(replace(x, notes=(*x.notes, note)) for x in fitted.layers)
    return replace(
        fitted,
        layers=layers,
        rewrites=rewrites,
        tuning=outcome,
        notes=(*fitted.notes, f"{note} in {seconds:.0f} s"),
    )


def _capture(
    ctx: FixContext, original: onnx.ModelProto, region: autodiff.Region, feeds: Feeds, work: Path
) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]] | None:
    """What feeds the region and what its outputs should be, from the original on each of the
    fit's runs (None past ``BOUNDARY_BYTES``). Mutates ``original`` (extra outputs)."""
    inputs = {i.name for i in original.graph.input}
    fed = [b for b in region.boundary if b not in inputs]
    probe = work / "tune_probe.onnx"
    validate.write_probe(original, [*fed, *region.outputs], probe)
    session = validate.session(probe, shown_as=ctx.src)
    feeds_in: list[dict[str, np.ndarray]] = []
    targets: list[dict[str, np.ndarray]] = []
    held = 0
    try:
        for run, values in zip(
            feeds.runs, validate.capture(session, [*fed, *region.outputs], feeds.runs), strict=True
        ):
            feed = {b: _float32(run[b]) for b in region.boundary if b in inputs}
            feed.update({b: _float32(values[b]) for b in fed})
            target = {o: _float32(values[o]) for o in region.outputs}
            held += sum(v.nbytes for v in (*feed.values(), *target.values()))
            if held > BOUNDARY_BYTES:
                return None
            feeds_in.append(feed)
            targets.append(target)
    finally:
        del session
        for leftover in work.glob("tune_probe.onnx*"):
            leftover.unlink()
    return feeds_in, targets


def _disagreement(
    ctx: FixContext,
    model: onnx.ModelProto,
    region: autodiff.Region,
    params: Mapping[str, np.ndarray],
    feeds: Feeds,
    first: Mapping[str, np.ndarray],
) -> str | None:
    """Why the numpy forward is not to be trusted: it must give onnxruntime's outputs of the
    rewritten ``model`` on the first fit run, within ``PARITY``."""
    rewritten = validate.session(model.SerializeToString(), shown_as=ctx.src)
    names = [o.name for o in rewritten.get_outputs()]
    theirs = dict(zip(names, rewritten.run(None, dict(feeds.runs[0])), strict=True))
    del rewritten
    ours = autodiff.forward(region, params, first).values
    for o in region.outputs:
        gap = relative(np.asarray(theirs[o], np.float64), np.asarray(ours[o], np.float64))
        if not gap <= PARITY:
            return f"its numpy forward differs from onnxruntime on {o!r} by {gap:.2%}"
    return None


def _apply(graph: onnx.GraphProto, rw: ConvRewrite, declare: bool) -> _Trainable:
    """Rewrite one conv and name the initializers its factors (and bias) became."""
    rewrite_conv(graph, rw, np.dtype(F32), declare_inputs=declare)
    out = rw.bn_output or rw.conv_output
    kxk = next(n for n in graph.node if n.output and n.output[0] == out)
    reduce = next(n for n in graph.node if kxk.input[0] in n.output)
    bias = kxk.input[2] if len(kxk.input) > 2 and kxk.input[2] else None
    inits = {t.name for t in graph.initializer}
    readers = sum(node_inputs(n).count(bias) for n in graph.node) if bias else 0
    if bias not in inits or readers != 1:
        bias = None  # shared, or made by a node: left as it is
    return _Trainable(rewrite=rw, u=reduce.input[1], v=kxk.input[1], bias=bias)


def _region(graph: onnx.GraphProto, trainables: Sequence[_Trainable]) -> autodiff.Region:
    """The nodes the rewritten pairs reach, in graph order, and what they read from outside."""
    starts = {t.u for t in trainables}
    produced: set[str] = set()
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        reads = node_inputs(node)
        if any(i in starts for i in reads) or any(i in produced for i in reads):
            nodes.append(node)
            produced.update(o for o in node.output if o)
    inits = {t.name: t for t in graph.initializer}
    needed = [i for n in nodes for i in n.input if i and i not in produced]
    consts = {i: _array(inits[i]) for i in dict.fromkeys(needed) if i in inits}
    boundary = tuple(i for i in dict.fromkeys(needed) if i not in inits)
    outputs = tuple(o.name for o in graph.output if o.name in produced)
    return autodiff.Region(tuple(nodes), consts, boundary, outputs)


def _array(t: onnx.TensorProto) -> np.ndarray:
    return _float32(numpy_helper.to_array(t))


def _float32(value: np.ndarray) -> np.ndarray:
    """Floating-point values as float32, the interpreter's dtype; indices and shapes as they are."""
    a = np.asarray(value)
    return a.astype(F32) if a.dtype.kind == "f" else a


def _channel_scales(
    targets: Sequence[Mapping[str, np.ndarray]], axis: int
) -> dict[str, np.ndarray]:
    """Each output's mean energy per run, per channel along ``axis`` when it has that axis
    (shaped to broadcast): the loss weighs every channel's relative error alike, as ``verify``
    holds the worst channel to the budget."""
    scales: dict[str, np.ndarray] = {}
    for o, first in targets[0].items():
        if first.dtype.kind != "f":
            continue  # an index or a shape: nothing to fit
        if first.ndim >= 2 and -first.ndim <= axis < first.ndim:
            ax = axis % first.ndim
            others = tuple(i for i in range(first.ndim) if i != ax)
            energy = sum(np.square(t[o], dtype=np.float64).sum(others) for t in targets)
            shape = [1] * first.ndim
            shape[ax] = -1
            scales[o] = (np.asarray(energy) / len(targets)).reshape(shape)
        else:
            scales[o] = np.asarray(
                sum(float(np.square(t[o]).sum()) for t in targets) / len(targets)
            )
        scales[o] = np.maximum(scales[o], 1e-30)
    return scales


def _loss_grad(
    y: Mapping[str, np.ndarray], t: Mapping[str, np.ndarray], scales: Mapping[str, np.ndarray]
) -> tuple[float, dict[str, np.ndarray]]:
    """Σ over outputs and channels of ‖y − t‖² / (that channel's energy), and its gradient."""
    loss, grads = 0.0, {}
    for o, s in scales.items():
        d = (y[o] - t[o]).astype(np.float64)
        weight = 1.0 / (s * max(s.size, 1))
        loss += float((d * d * weight).sum())
        grads[o] = (2 * d * weight).astype(F32)
    return loss, grads


@dataclass(frozen=True)
class _Problem:
    """What the steps fit: the region, what feeds it and what its outputs should be on each of
    the fit's runs, and each output channel's energy (``_channel_scales``)."""

    region: autodiff.Region
    feeds: Sequence[Mapping[str, np.ndarray]]
    targets: Sequence[Mapping[str, np.ndarray]]
    scales: Mapping[str, np.ndarray]

    def loss_grad(
        self, k: int, values: Mapping[str, np.ndarray]
    ) -> tuple[float, dict[str, np.ndarray]]:
        """Run ``k``'s loss and its gradient at the region's outputs, from a forward's values."""
        return _loss_grad({o: values[o] for o in self.region.outputs}, self.targets[k], self.scales)


def _error(problem: _Problem, params: Mapping[str, np.ndarray]) -> float:
    """The root of the mean loss over the fit's runs: a relative L2 error, averaged over
    channels."""
    total = 0.0
    for k, feed in enumerate(problem.feeds):
        total += problem.loss_grad(k, autodiff.forward(problem.region, params, feed).values)[0]
    return math.sqrt(total / max(len(problem.feeds), 1))


def _adam(
    problem: _Problem, params: Mapping[str, np.ndarray], steps: int, seed: int
) -> dict[str, np.ndarray]:
    """``steps`` Adam steps, one fit run each (shuffled epochs), on every trainable tensor."""
    p = {k: v.copy() for k, v in params.items()}
    size = {k: max(float(np.abs(v).mean()), 1e-3) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    s = {k: np.zeros_like(v) for k, v in p.items()}
    rng = np.random.default_rng(seed)
    order: list[int] = []
    b1, b2 = BETAS
    for it in range(1, steps + 1):
        if not order:
            order = list(rng.permutation(len(problem.feeds)))
        k = order.pop()
        tape = autodiff.forward(problem.region, p, problem.feeds[k])
        _, grad_out = problem.loss_grad(k, tape.values)
        grads = autodiff.backward(problem.region, tape, grad_out, list(p))
        del tape
        lr = LEARNING_RATE * 0.5 * (1 + math.cos(math.pi * it / steps))
        for name, g in grads.items():
            m[name] = b1 * m[name] + (1 - b1) * g
            s[name] = b2 * s[name] + (1 - b2) * g * g
            step = (m[name] / (1 - b1**it)) / (np.sqrt(s[name] / (1 - b2**it)) + 1e-8)
            p[name] = (p[name] - lr * size[name] * step).astype(F32)
    return p
