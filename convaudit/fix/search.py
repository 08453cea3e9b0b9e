"""search: which convs to rewrite at which widths, so the most MACs go while the error holds.

Used by ``fix --inputs X --max-error E`` without --width. Every candidate's error curve comes
from one probe of the original on the fit's runs: with C the second moment of the conv's input
and σ² the eigenvalues of C^{1/2}·W·Wᵀ·C^{1/2}, keeping r directions leaves a relative response
error e(r)² = Σ_{i>r} σᵢ² / Σ σᵢ² on those runs (exact for the whitened SVD, not a guess).

The widths then follow one price λ (a Lagrangian of "fewest MACs subject to Σ e² bounded",
Zhang et al. 2015's whole-model rank selection in spirit): each layer keeps adding 8 channels
while the e² they remove per MAC they cost is at least λ. The curve is convex (σ² sorted), so
each λ gives one allocation, and a larger λ cuts more. λ is bisected over the candidates' own
step gains: each trial rewrites the model with the whitened SVD and measures the worst output or
channel error on the fit's runs; the largest λ within E wins. A layer whose width reaches its
break-even is left alone. The caller fits the chosen layers layer by layer and verifies the
result on held-out runs; when that fails, it asks again with a tighter target (``TIGHTER``).
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

# Targets for the trials, as shares of the budget, tried in turn when the held-out check fails:
# the layer-wise fit usually lands below the one-shot trial, but not always.
TIGHTER = (1.0, 0.7, 0.5)


@dataclass(frozen=True, kw_only=True)
class Curve:
    """One candidate's error against width, and what each width costs."""

    plan: plan.LayerPlan
    widths: tuple[int, ...]  # step, 2·step, ... below the break-even
    errors2: tuple[float, ...]  # e(r)² at each width
    macs: tuple[int, ...]  # the bottleneck's MACs at each width
    gains: tuple[float, ...]  # e² removed per MAC by each step up from the previous width

    def width_at(self, price: float) -> int | None:
        """The width this layer takes at price λ (None: not rewritten, it would not save)."""
        k = 0
        while k < len(self.gains) and self.gains[k] >= price:
            k += 1
        return self.widths[k] if k < len(self.widths) else None


@dataclass(frozen=True, kw_only=True)
class Trial:
    price: float
    widths: dict[str, int]  # conv output -> width
    error: float  # worst output or channel, on the fit's runs
    macs_saved: int


class Searcher:
    """The curves, the factors at each tried width, and the trials run so far."""

    def __init__(self, ctx: FixContext, sel: Selection, feeds: Feeds, work: Path) -> None:
        self.ctx, self.sel, self.feeds, self.work = ctx, sel, feeds, work
        seen = probe(ctx, sel, feeds, work)
        assert seen.second_moments is not None
        self.covs = seen.second_moments
        del seen
        self.weights: dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = {}
        self.curves: list[Curve] = []
        with load_model(ctx.src) as loaded:
            for p in sel.plans:
                w, b, new_bias = effective_weights(loaded, p, sel.structure.graph)
                self.weights[p.layer.outputs[0]] = (w, b, new_bias)
                self.curves.append(self._curve(p, w))
        self.full = validate.load_full(ctx.src)
        original = validate.session(ctx.src)
        self.names = [o.name for o in original.get_outputs()]
        self.reference = validate.reference_outputs(original, feeds.runs)
        del original
        self.trials: dict[float, Trial] = {}
        self.cache: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}

    def _curve(self, p: plan.LayerPlan, w: np.ndarray) -> Curve:
        cov = self.covs[p.layer.inputs[0]]
        spectrum = factorize(w, plan.width_step(p.layer), cov).spectrum or ()
        total = float(sum(spectrum)) or 1.0
        kept = np.concatenate([[0.0], np.cumsum(spectrum)])
        step = plan.width_step(p.layer)
        widths = [r for r in range(step, math.ceil(p.break_even), step)]
        errors2 = [max(0.0, 1 - kept[min(r, len(spectrum))] / total) for r in widths]
        macs = [plan.bottleneck_macs(p.layer, r) for r in widths]
        # Step k goes from widths[k] to widths[k+1]: e² it removes per MAC it adds. The last
        # step is from the widest bottleneck back to the original conv (no error, all its MACs).
        full = [*errors2, 0.0]
        cost = [*macs, p.layer.macs or 0]
        gains = [
            (full[k] - full[k + 1]) / max(cost[k + 1] - cost[k], 1) for k in range(len(widths))
        ]
        return Curve(
            plan=p,
            widths=tuple(widths),
            errors2=tuple(errors2),
            macs=tuple(macs),
            gains=tuple(gains),
        )

    def allocation(self, price: float) -> dict[str, int]:
        out = {}
        for c in self.curves:
            width = c.width_at(price)
            if width is not None:
                out[c.plan.layer.outputs[0]] = width
        return out

    def trial(self, price: float) -> Trial:
        if price in self.trials:
            return self.trials[price]
        widths = self.allocation(price)
        model = onnx.ModelProto()
        model.CopyFrom(self.full)
        saved = 0
        for c in self.curves:
            out = c.plan.layer.outputs[0]
            if out not in widths:
                continue
            u, v = self._factors(c.plan, widths[out])
            rw = ConvRewrite(
                conv_output=out,
                u=u,
                v=v,
                bias=self.weights[out][2],
                bn_output=c.plan.bn_name,
                groups=1,
            )
            dtype = np.dtype(c.plan.layer.weight_dtype or "float32")
            rewrite_conv(model.graph, rw, dtype, declare_inputs=model.ir_version < 4)
            saved += (c.plan.layer.macs or 0) - plan.bottleneck_macs(c.plan.layer, widths[out])
        session = self._session(model)
        del model
        errors = validate.compare_to_reference(self.names, self.reference, session, self.feeds.runs)
        worst = max((e.worst for e in errors.values()), default=0.0)
        t = Trial(price=price, widths=widths, error=worst, macs_saved=saved)
        self.trials[price] = t
        return t

    def _factors(self, p: plan.LayerPlan, width: int) -> tuple[np.ndarray, np.ndarray]:
        key = (p.layer.outputs[0], width)
        if key not in self.cache:
            f = factorize(self.weights[key[0]][0], width, self.covs[p.layer.inputs[0]])
            self.cache[key] = (f.u, f.v)
        return self.cache[key]

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
        """The trial with the largest price (the most cut) whose error is within ``target``."""
        prices = sorted({g for c in self.curves for g in c.gains if g > 0} | {math.inf})
        # prices[i] ascending: a larger price cuts more. Bisect for the last one within target.
        lo, hi = -1, len(prices) - 1  # invariant: prices[lo] passes (or lo = -1), hi unknown
        best: Trial | None = None
        if not prices:
            return None
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
                f"width {widths[out]} chosen by the search (trial error "
                f"{100 * (trial.error if trial else 0):.2f}% on the fit's runs, target "
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
