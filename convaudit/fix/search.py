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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from convaudit.fix import plan, validate
from convaudit.fix.context import Feeds, FixContext, Selection
from convaudit.fix.factorize import factorize
from convaudit.fix.rewrite import ConvRewrite, rewrite_conv
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


@dataclass(frozen=True, kw_only=True)
class Curve:
    """One candidate's predicted output error against width, and what each width costs."""

    plan: plan.LayerPlan
    widths: tuple[int, ...]  # step, 2·step, ... below the break-even
    errors2: tuple[float, ...]  # g²·e(r)² at each width: the outputs' error it adds
    macs: tuple[int, ...]  # the bottleneck's MACs at each width
    gains: tuple[float, ...]  # error² removed per MAC by each step up from the previous width
    gain: float = 1.0  # g: the outputs' worst relative error per unit of this layer's own

    def width_at(self, price: float) -> int | None:
        """The width this layer takes at price λ (None: not rewritten, it would not save)."""
        k = 0
        while k < len(self.gains) and self.gains[k] >= price:
            k += 1
        return self.widths[k] if k < len(self.widths) else None

    def error2_at(self, width: int | None) -> float:
        """g²·e² at ``width`` (0 when the layer is left alone)."""
        return 0.0 if width is None else self.errors2[self.widths.index(width)]


def curve(p: plan.LayerPlan, spectrum: tuple[float, ...], gain: float = 1.0) -> Curve:
    """The curve of a layer whose whitened spectrum is ``spectrum``, in output units (× g²)."""
    total = float(sum(spectrum)) or 1.0
    kept = np.concatenate([[0.0], np.cumsum(spectrum)])
    step = plan.width_step(p.layer)
    widths = [r for r in range(step, math.ceil(p.break_even), step)]
    errors2 = [gain**2 * max(0.0, 1 - kept[min(r, len(spectrum))] / total) for r in widths]
    macs = [plan.bottleneck_macs(p.layer, r) for r in widths]
    # Step k goes from widths[k] to widths[k+1]: e² it removes per MAC it adds. The last
    # step is from the widest bottleneck back to the original conv (no error, all its MACs).
    full = [*errors2, 0.0]
    cost = [*macs, p.layer.macs or 0]
    gains = [(full[k] - full[k + 1]) / max(cost[k + 1] - cost[k], 1) for k in range(len(widths))]
    return Curve(
        plan=p,
        widths=tuple(widths),
        errors2=tuple(errors2),
        macs=tuple(macs),
        gains=tuple(gains),
        gain=gain,
    )


def probe_width(c: Curve) -> int | None:
    """The width whose own error (``c`` still unscaled) is nearest PROBE_ERROR on a log scale;
    None if every width reproduces the layer exactly (then its gain does not matter)."""
    measurable = [
        (abs(math.log(math.sqrt(e2) / PROBE_ERROR)), r)
        for e2, r in zip(c.errors2, c.widths, strict=True)
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


class Searcher:
    """The candidates' curves in output units, and the allocation at any target."""

    def __init__(self, ctx: FixContext, sel: Selection, feeds: Feeds, work: Path) -> None:
        self.ctx, self.sel, self.feeds, self.work = ctx, sel, feeds, work
        seen = probe(ctx, sel, feeds, work)
        assert seen.second_moments is not None
        covs = seen.second_moments
        del seen
        self.weights: dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = {}
        own: list[Curve] = []
        with load_model(ctx.src) as loaded:
            for p in sel.plans:
                w, b, new_bias = effective_weights(loaded, p, sel.structure.graph)
                self.weights[p.layer.outputs[0]] = (w, b, new_bias)
                spectrum = factorize(w, plan.width_step(p.layer), covs[p.layer.inputs[0]]).spectrum
                own.append(curve(p, spectrum or ()))
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
        width = probe_width(c)
        if width is None:
            return c
        own = math.sqrt(c.errors2[c.widths.index(width)])
        out = c.plan.layer.outputs[0]
        model = onnx.ModelProto()
        model.CopyFrom(ref.full)
        u, v = self._factors(c.plan, width)
        rw = ConvRewrite(
            conv_output=out, u=u, v=v, bias=self.weights[out][2], bn_output=c.plan.bn_name, groups=1
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
        out = {}
        for c in self.curves:
            width = c.width_at(price)
            if width is not None:
                out[c.plan.layer.outputs[0]] = width
        return out

    def trial(self, price: float) -> Trial:
        """The allocation at ``price`` and its predicted error (no model is run)."""
        widths = self.allocation(price)
        error2, saved = 0.0, 0
        for c in self.curves:
            width = widths.get(c.plan.layer.outputs[0])
            if width is None:
                continue
            error2 += c.error2_at(width)
            saved += (c.plan.layer.macs or 0) - plan.bottleneck_macs(c.plan.layer, width)
        return Trial(price=price, widths=widths, error=math.sqrt(error2), macs_saved=saved)

    def _factors(self, p: plan.LayerPlan, width: int) -> tuple[np.ndarray, np.ndarray]:
        f = factorize(self.weights[p.layer.outputs[0]][0], width, self.covs[p.layer.inputs[0]])
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
    for p in sel.plans:
        out = p.layer.outputs[0]
        if out in widths:
            note = (
                f"width {widths[out]} chosen by the search (predicted error "
                f"{100 * (trial.error if trial else 0):.2f}% for the allocation, target "
                f"{100 * target:.2f}%)"
            )
            plans.append(replace(p, width=widths[out], notes=(*p.notes, note)))
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
