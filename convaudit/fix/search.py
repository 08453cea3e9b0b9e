"""search: which convs to rewrite at which widths, so the most MACs go while the error holds.

Used by ``fix --inputs X --max-error E`` without --width. Every candidate's error curve comes
from one probe of the original on the fit's runs: with C the second moment of the conv's input
and σ² the eigenvalues of C^{1/2}·W·Wᵀ·C^{1/2}, keeping r directions leaves a relative response
error e(r)² = Σ_{i>r} σᵢ² / Σ σᵢ² on those runs (exact for the whitened SVD, not a guess).

A layer's own error is not what the budget holds: the same e moves the outputs by very
different amounts depending on where the layer sits (on ddddocr's detector a 24->48 conv near
the input at 10% error moves the objectness channel by 29%, a head conv at 11% by 2%). So each
candidate is rewritten ALONE, once, at a probe width, and the worst output or channel error
that gives, over the layer's own error, is its gain g (a first-order, linearised sensitivity:
output error ≈ g·e for small e). The curves are then in output units, g²·e(r)², and summed over
layers (independent perturbations add in squares, as in Zhang et al. 2015's whole-model rank
selection).

Each candidate's curve holds both kinds of rewrite where they apply (``plan.KINDS``, or the one
``--kind`` names): the 1x1 bottleneck, from the spectrum of C^{1/2}·W unfolded along Cin, and
the spatial pair (Jaderberg et al. 2014: Kh x 1 then 1 x Kw), from the spectrum of W as a
(Cin·Kh) × (Cout·Kw) matrix whitened by the second moment of the input's columns. Of all
(kind, width) options only the lower convex hull of error against MACs is kept: at any price the
layer takes the option that saves most per unit of error, whichever kind that is.

The widths follow one price λ (a Lagrangian of "fewest MACs subject to Σ g²e² bounded"): each
layer keeps adding 8 channels while the error they remove per MAC they cost is at least λ. The
curve is convex (σ² sorted), so each λ gives one allocation, and a larger λ cuts more. λ is
bisected over the candidates' own step gains for the largest one whose predicted error
√(Σ g²e²) is within the target: no model is run for that. A layer whose width reaches its
break-even is left alone. The caller (``pipeline``) then fits the allocation layer by layer
(``sequential``: asymmetric, ReLU-aware, so usually well below the prediction) and measures it
on held-out runs: those fitted trials, at a few targets around the budget (``TARGETS``), decide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from convaudit.fix import layerfit, plan, validate
from convaudit.fix.context import Feeds, FixContext, Selection
from convaudit.fix.factorize import column_moment, factorize, spatial_factorize
from convaudit.fix.rewrite import ConvRewrite, rewrite_conv
from convaudit.fix.sequential import conv_geometry
from convaudit.fix.stages import effective_weights, probe
from convaudit.model.loader import load_model

# Shares of the budget the prediction is held to, one fitted trial each (``pipeline``): the
# budget itself first; while the fitted model passes on the held-out runs, looser ones (the
# layer-wise fit corrects much of what the linear prediction adds up); while it fails, tighter.
FIRST = 1.0
LOOSER = (1.5, 2.25, 3.4)
TIGHTER = (0.85, 0.7, 0.5)
# Each candidate's gain is measured with it rewritten alone at the width whose own error is
# nearest PROBE_ERROR (small enough to be in the linear regime, large enough to be measured
# above float32 noise), on at most SENSITIVITY_RUNS of the fit's runs.
PROBE_ERROR = 0.1
SENSITIVITY_RUNS = 4
UNUSABLE = 1e6  # the gain of a layer whose rewrite alone makes an output NaN or inf
# Sampled output positions over all the fit's runs for a spatial candidate's column moment.
COLUMN_SAMPLES = 8192


@dataclass(frozen=True, kw_only=True)
class Curve:
    """One candidate's predicted output error against width, and what each width costs."""

    plan: plan.LayerPlan
    widths: tuple[int, ...]  # the options, cheapest first: step, 2·step, ... below break-even
    errors2: tuple[float, ...]  # g²·e(r)² at each option: the outputs' error it adds
    macs: tuple[int, ...]  # the rewritten pair's MACs at each option
    gains: tuple[float, ...]  # error² removed per MAC by each step up from the previous option
    gain: float = 1.0  # g: the outputs' worst relative error per unit of this layer's own
    kinds: tuple[str, ...] = ()  # each option's kind (all bottlenecks when empty)

    def option_at(self, price: float) -> int | None:
        """The option this layer takes at price λ (None: not rewritten, it would not save)."""
        k = 0
        while k < len(self.gains) and self.gains[k] >= price:
            k += 1
        return k if k < len(self.widths) else None

    def width_at(self, price: float) -> int | None:
        """The width this layer takes at price λ (None: not rewritten, it would not save)."""
        k = self.option_at(price)
        return None if k is None else self.widths[k]

    def kind_of(self, k: int) -> str:
        return self.kinds[k] if self.kinds else plan.BOTTLENECK

    def error2_at(self, width: int | None, kind: str = "bottleneck") -> float:
        """g²·e² at ``width`` of ``kind`` (0 when the layer is left alone)."""
        if width is None:
            return 0.0
        for k, r in enumerate(self.widths):
            if r == width and self.kind_of(k) == kind:
                return self.errors2[k]
        raise ValueError(f"no {kind} option of width {width}")


_Option = tuple[int, float, str, int]  # (MACs, e², kind, width)


def _errors2(p: plan.LayerPlan, spectrum: tuple[float, ...], kind: str) -> list[tuple[int, float]]:
    """(width, e(r)²) of ``kind`` at every allowed width below its break-even."""
    total = float(sum(spectrum)) or 1.0
    kept = np.concatenate([[0.0], np.cumsum(spectrum)])
    step = plan.width_step(p.layer)
    limit = math.ceil(plan.kind_break_even(p.layer, kind))
    return [
        (r, max(0.0, 1 - kept[min(r, len(spectrum))] / total)) for r in range(step, limit, step)
    ]


def curve(
    p: plan.LayerPlan,
    spectrum: tuple[float, ...],
    gain: float = 1.0,
    spatial: tuple[float, ...] | None = None,
    kinds: tuple[str, ...] = (plan.BOTTLENECK,),
) -> Curve:
    """The curve of a layer whose whitened spectrum is ``spectrum`` (and, with ``spatial``,
    whose spatial spectrum is that), in output units (× g²): the lower convex hull of
    (MACs, error²) over the options of ``kinds``, then the original conv (no error)."""
    options: list[_Option] = []
    for kind, spec in ((plan.BOTTLENECK, spectrum), (plan.SPATIAL, spatial)):
        if kind in kinds and spec is not None:
            for r, e2 in _errors2(p, spec, kind):
                options.append((plan.factored_macs(p.layer, r, kind), gain**2 * e2, kind, r))
    options.sort(key=lambda o: (o[0], o[1]))
    end = (p.layer.macs or 0, 0.0)
    hull: list[_Option] = []
    for o in options:
        if hull and o[1] >= hull[-1][1]:
            continue  # dearer and no better than an option already kept
        # Drop the last kept option while it lies on or above the line from the one before it
        # to ``o``: then, whatever the price, one of its neighbours is the better buy.
        while len(hull) >= 2 and _above(hull[-2], hull[-1], o):
            hull.pop()
        hull.append(o)
    # The original conv ends the curve, outside the hull: the widest option stays reachable
    # even where returning to the original would be cheaper per unit of error (as with one
    # kind, the walk stops at the first step not worth its price).
    hull.append((end[0], end[1], "", 0))
    kept = hull[:-1]  # the last is the original conv
    full = [o[1] for o in hull]
    cost = [o[0] for o in hull]
    # Step k goes from option k to option k+1: e² it removes per MAC it adds. The last step is
    # from the widest option back to the original conv (no error, all its MACs).
    gains = [(full[k] - full[k + 1]) / max(cost[k + 1] - cost[k], 1) for k in range(len(kept))]
    return Curve(
        plan=p,
        widths=tuple(o[3] for o in kept),
        errors2=tuple(o[1] for o in kept),
        macs=tuple(o[0] for o in kept),
        gains=tuple(gains),
        gain=gain,
        kinds=tuple(o[2] for o in kept),
    )


def _above(a: _Option, b: _Option, c: _Option) -> bool:
    """Whether ``b`` lies on or above the segment from ``a`` to ``c`` (MACs ascending)."""
    return (b[1] - a[1]) * (c[0] - a[0]) >= (c[1] - a[1]) * (b[0] - a[0])


def probe_width(c: Curve) -> int | None:
    """The option whose own error (``c`` still unscaled) is nearest PROBE_ERROR on a log scale
    (its index); None if every option reproduces the layer exactly (then its gain does not
    matter)."""
    measurable = [
        (abs(math.log(math.sqrt(e2) / PROBE_ERROR)), k)
        for k, e2 in enumerate(c.errors2)
        if e2 > 1e-12
    ]
    return min(measurable)[1] if measurable else None


@dataclass(frozen=True, kw_only=True)
class Reference:
    """The original model and its outputs on the runs each gain is measured on."""

    full: onnx.ModelProto
    names: list[str]
    runs: tuple[validate.Feed, ...]
    outputs: list[list[np.ndarray]]


@dataclass(frozen=True, kw_only=True)
class Trial:
    price: float
    widths: dict[str, int]  # conv output -> width
    error: float  # predicted: √(Σ g²e²) over the rewritten layers
    macs_saved: int
    kinds: dict[str, str] = field(default_factory=dict)  # conv output -> kind (if not bottleneck)


class Searcher:
    """The candidates' curves in output units, and the allocation at any target."""

    def __init__(self, ctx: FixContext, sel: Selection, feeds: Feeds, work: Path) -> None:
        self.ctx, self.sel, self.feeds, self.work = ctx, sel, feeds, work
        seen = probe(ctx, sel, feeds, work)
        assert seen.second_moments is not None
        covs = seen.second_moments
        del seen
        kinds = plan.KINDS if ctx.options.kind is None else (ctx.options.kind,)
        spatial = [
            p
            for p in sel.plans
            if plan.SPATIAL in kinds
            and plan.spatial_reason(p.layer) is None
            and plan.saves(p.layer, plan.SPATIAL)
        ]
        self.columns = _column_moments(ctx, sel, feeds, work, spatial)
        self.weights: dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = {}
        own: list[Curve] = []
        with load_model(ctx.src) as loaded:
            for p in sel.plans:
                out = p.layer.outputs[0]
                w, b, new_bias = effective_weights(loaded, p, sel.structure.graph)
                self.weights[out] = (w, b, new_bias)
                spectrum = factorize(w, plan.width_step(p.layer), covs[p.layer.inputs[0]]).spectrum
                columns = None
                if out in self.columns:
                    columns = spatial_factorize(w, plan.STEP, self.columns[out]).spectrum
                own.append(curve(p, spectrum or (), spatial=columns, kinds=kinds))
        self.covs = covs
        full = validate.load_full(ctx.src)
        original = validate.session(ctx.src)
        runs = feeds.runs[:SENSITIVITY_RUNS]
        reference = Reference(
            full=full,
            names=[o.name for o in original.get_outputs()],
            runs=runs,
            outputs=validate.reference_outputs(original, runs),
        )
        del original
        self.curves = [self._in_output_units(c, reference) for c in own]

    def _in_output_units(self, c: Curve, ref: Reference) -> Curve:
        """``c`` scaled by its measured gain: the layer rewritten alone at its probe width."""
        k = probe_width(c)
        if k is None:
            return c
        width, kind = c.widths[k], c.kind_of(k)
        own = math.sqrt(c.errors2[k])
        out = c.plan.layer.outputs[0]
        model = onnx.ModelProto()
        model.CopyFrom(ref.full)
        u, v = self._factors(c.plan, width, kind)
        rw = ConvRewrite(
            conv_output=out,
            u=u,
            v=v,
            bias=self.weights[out][2],
            bn_output=c.plan.bn_name,
            groups=1,
            kind=kind,
        )
        dtype = np.dtype(c.plan.layer.weight_dtype or "float32")
        rewrite_conv(model.graph, rw, dtype, declare_inputs=model.ir_version < 4)
        session = self._session(model)
        del model
        errors = validate.compare_to_reference(
            ref.names, ref.outputs, session, ref.runs, self.ctx.options.channel_axis
        )
        worst = max((e.worst for e in errors.values()), default=0.0)
        # A rewrite that makes an output non-finite: priced out of every allocation.
        gain = worst / own if math.isfinite(worst) else UNUSABLE
        return replace(
            c,
            errors2=tuple(gain**2 * e2 for e2 in c.errors2),
            gains=tuple(gain**2 * g for g in c.gains),
            gain=gain,
        )

    def allocation(self, price: float) -> dict[str, int]:
        return self.trial(price).widths

    def trial(self, price: float) -> Trial:
        """The allocation at ``price`` and its predicted error (no model is run)."""
        widths: dict[str, int] = {}
        kinds: dict[str, str] = {}
        error2, saved = 0.0, 0
        for c in self.curves:
            k = c.option_at(price)
            if k is None:
                continue
            out = c.plan.layer.outputs[0]
            widths[out] = c.widths[k]
            if c.kind_of(k) != plan.BOTTLENECK:
                kinds[out] = c.kind_of(k)
            error2 += c.errors2[k]
            saved += (c.plan.layer.macs or 0) - c.macs[k]
        return Trial(
            price=price, widths=widths, error=math.sqrt(error2), macs_saved=saved, kinds=kinds
        )

    def _factors(
        self, p: plan.LayerPlan, width: int, kind: str = plan.BOTTLENECK
    ) -> tuple[np.ndarray, np.ndarray]:
        w = self.weights[p.layer.outputs[0]][0]
        if kind == plan.SPATIAL:
            f = spatial_factorize(w, width, self.columns[p.layer.outputs[0]])
        else:
            f = factorize(w, width, self.covs[p.layer.inputs[0]])
        return f.u, f.v

    def _session(self, model: onnx.ModelProto) -> Any:
        if not self.sel.external:
            return validate.session(model.SerializeToString(), shown_as=self.ctx.src)
        path = self.work / "trial.onnx"
        onnx.save_model(model, str(path), save_as_external_data=True, location="trial.onnx.data")
        session = validate.session(path, shown_as=self.ctx.src)
        for f in self.work.iterdir():
            if f.name.startswith("trial.onnx"):
                f.unlink()
        return session

    def best(self, target: float) -> Trial | None:
        """The allocation with the largest price (the most cut) whose prediction is within
        ``target``; None when even the cheapest cut is predicted above it."""
        prices = sorted({g for c in self.curves for g in c.gains if g > 0} | {math.inf})
        # prices[i] ascending: a larger price cuts more (and predicts more error). Bisect for
        # the last one within target.
        lo, hi = -1, len(prices) - 1  # invariant: prices[lo] passes (or lo = -1), hi unknown
        best: Trial | None = None
        while lo < hi:
            mid = (lo + hi + 1) // 2
            t = self.trial(prices[mid])
            if t.widths and t.error <= target:
                lo, best = mid, t
            else:
                hi = mid - 1
        if lo >= 0 and best is None:
            best = self.trial(prices[lo])
        return best if best is not None and best.widths else None


def chosen(sel: Selection, trial: Trial | None, target: float) -> Selection:
    """``sel`` with its plans at the trial's widths; the other candidates are skipped."""
    widths = {} if trial is None else trial.widths
    plans, skipped = [], list(sel.skipped)
    kinds = {} if trial is None else trial.kinds
    for p in sel.plans:
        out = p.layer.outputs[0]
        if out in widths:
            kind = kinds.get(out, plan.BOTTLENECK)
            what = f"{kind} width" if kind != plan.BOTTLENECK else "width"
            note = (
                f"{what} {widths[out]} chosen by the search (predicted error "
                f"{100 * (trial.error if trial else 0):.2f}% for the allocation, target "
                f"{100 * target:.2f}%)"
            )
            plans.append(
                replace(
                    p,
                    width=widths[out],
                    kind=kind,
                    break_even=plan.kind_break_even(p.layer, kind),
                    notes=(*p.notes, note),
                )
            )
        else:
            skipped.append(
                replace(
                    plan.original(p.layer),
                    reason="search: no width below the break-even "
                    f"({p.break_even:.1f}) fits the error budget",
                    break_even=p.break_even,
                )
            )
    return replace(sel, plans=tuple(plans), skipped=tuple(skipped))


def _column_moments(
    ctx: FixContext, sel: Selection, feeds: Feeds, work: Path, plans: list[plan.LayerPlan]
) -> dict[str, np.ndarray]:
    """Per conv output, the second moment of the input columns (Cin·Kh values) its spatial
    pair's Kh x 1 conv would read, from patches at sampled output positions of the fit's runs."""
    if not plans:
        return {}
    x_names = list(dict.fromkeys(p.layer.inputs[0] for p in plans))
    full = validate.load_full(ctx.src)
    nodes = {n.output[0]: n for n in full.graph.node if n.output}
    geos = {p.layer.outputs[0]: conv_geometry(nodes[p.layer.outputs[0]], p) for p in plans}
    path = work / "columns.onnx"
    inputs = {i.name for i in full.graph.input}
    exposed = [x for x in x_names if x not in inputs]
    validate.write_probe(full, exposed, path)
    del full
    session = validate.session(path, shown_as=ctx.src)
    rng = np.random.default_rng(ctx.options.seed)
    totals: dict[str, np.ndarray] = {}
    for values, run in zip(validate.capture(session, exposed, feeds.runs), feeds.runs, strict=True):
        for p in plans:
            out, x_name = p.layer.outputs[0], p.layer.inputs[0]
            x = np.asarray(values[x_name] if x_name in values else run[x_name], dtype=np.float64)
            geo = geos[out]
            assert geo is not None and p.layer.output_shape is not None
            ho, wo = p.layer.output_shape[2], p.layer.output_shape[3]
            per_run = COLUMN_SAMPLES // len(feeds.runs) + 1
            idx = layerfit.sample_positions(rng, x.shape[0] * ho * wo, per_run)
            patches = layerfit.gather_patches(layerfit.as_2d(x), geo, (ho, wo), idx)
            m = column_moment(patches, geo.kernel[0])
            totals[out] = m if out not in totals else totals[out] + m
    del session
    for leftover in work.iterdir():
        if leftover.is_file():
            leftover.unlink()
    return {k: v / len(feeds.runs) for k, v in totals.items()}
