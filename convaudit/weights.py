"""``scan --weights``: what a bottleneck recommendation's layer keeps at its width, and the width a
rewrite *without retraining* would take (the drop-in width), from the layer's own weight.

Weights are read on demand, one flagged layer at a time (external data too), so a weight-aware
scan of a large model holds one weight in memory, not the model.

The predicted error √(1−E(r)) is exact for white (uncorrelated) inputs. On trained layers, whose
inputs are correlated, it overstated the measured error by a median of 0.19 (37 layers of
nudenet, ddddocr and PP-OCRv4): without calibration data there is nothing to correct it with, so
it is reported as what it is, an upper bound ("≤ 4.2%"); ``fix --inputs`` measures the real one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from convaudit.model.loader import LoadedModel
from convaudit.model.tensor_users import TensorIndex, bn_epsilon, foldable_bn
from convaudit.records import BOTTLENECK_KIND, Finding, Layer, ModelFacts
from convaudit.rules import recommend
from convaudit.rules.kinds import KIND_PARAMS
from convaudit.rules.schema import Rule
from convaudit.rules.validate import floors
from convaudit.weightmath import (
    fold_batchnorm,
    predicted_error,
    require_finite,
    smallest_width,
    weight_energy_curve,
)

# Weights these dtypes factorise as they are; anything else is quantized or unknown.
FLOAT_DTYPES = {"float32", "float16", "float64"}
PREDICTION_BASIS = "white-input upper bound"


@dataclasses.dataclass(frozen=True, kw_only=True)
class DropInTarget:
    """What a rule asks of a rewrite without retraining: its error and the saving it must reach."""

    max_error: float  # the rule's drop_in_error
    min_saving: float | None = None  # the floor its match puts on ``saving`` (min_saving)
    min_saving_setting: str = ""  # "min_saving = 3", for the message


def drop_in_targets(rules: Mapping[str, Rule]) -> dict[str, DropInTarget]:
    """Each rule's drop-in target, from its params (kind defaults filled in) and its match."""
    out: dict[str, DropInTarget] = {}
    for rule_id, rule in rules.items():
        error = rule.params.get("drop_in_error", KIND_PARAMS["drop_in_error"].default)
        floor = floors(rule).get("saving")
        out[rule_id] = DropInTarget(
            max_error=float(error),
            min_saving=None if floor is None else floor.value,
            min_saving_setting="" if floor is None else floor.setting,
        )
    return out


def recommends_bottleneck(finding: Finding) -> bool:
    """Whether the finding recommends a 1x1 bottleneck (whatever rule gave it)."""
    return finding.recommendation is not None and finding.recommendation.kind == BOTTLENECK_KIND


def _layer(facts: ModelFacts, finding: Finding) -> Layer | None:
    return next(
        (
            x
            for x in facts.layers
            if x.name == finding.node and x.graph == (finding.graph or "main")
        ),
        None,
    )


def _curve(loaded: LoadedModel, layer: Layer, index: TensorIndex) -> np.ndarray | None:
    """E(r) for every r of the layer's (BN-folded) weight, None when it cannot be read."""
    if not layer.weight_name or layer.group != 1 or layer.weight_dtype not in FLOAT_DTYPES:
        return None  # grouped, quantized or unknown
    # numpy's warnings (a signalling NaN cast, an overflowing fold) would break the one-line
    # stderr contract: non-finite values are refused below instead
    with np.errstate(all="ignore"):
        try:
            w = np.asarray(loaded.read_tensor(layer.weight_name), dtype=np.float64)
        except KeyError:  # not a stored tensor: computed by a node
            return None
        # A stored float weight that cannot be read (its external data file missing or short)
        # is the model's error, raised as ModelLoadError: not a silently missing figure.
        if w.ndim < 3:
            return None
        require_finite(w, layer.weight_name, loaded.path)
        bn_out = foldable_bn(layer, index) if layer.graph == "main" else None
        if bn_out is not None:  # the conv the fix would factorise is the BN-folded one
            bn = index.producer[bn_out]
            scale, shift, mean, var = (loaded.read_tensor(n) for n in bn.input[1:5])
            w, _ = fold_batchnorm(w, None, scale, shift, mean, var, bn_epsilon(bn))
            folded = f" once BatchNormalization {bn.name!r} is folded in"
            require_finite(w, layer.weight_name, loaded.path, folded)
    return weight_energy_curve(w)


def energy_pct(energy: float) -> str:
    """8.2%, or 99.99% (not a rounded-up 100.0%) when nearly all the energy is kept."""
    return f"{100 * energy:.2f}%" if 0.99 < energy < 1.0 else f"{100 * energy:.1f}%"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def drop_in(
    curve: np.ndarray, shape: recommend.ConvShape, before_macs: int, target: DropInTarget
) -> dict[str, Any] | None:
    """The narrowest width (a multiple of 8, below break-even) whose predicted error is within
    ``target.max_error``, with what it costs and saves; None when no such width saves MACs."""
    width = smallest_width(
        curve, target.max_error, recommend.width_cap(shape), recommend.WIDTH_MULTIPLE
    )
    if width is None:
        return None
    macs = recommend.bottleneck(shape, width).macs
    energy = float(curve[min(width, len(curve) - 1)])
    return {
        "width": width,
        "predicted_error": round(predicted_error(energy), 6),
        "macs": macs,
        "saving_factor": round(before_macs / macs, 4),
    }


def _sentence(d: dict[str, Any] | None, target: DropInTarget, needs_retraining: bool) -> str:
    """What the drop-in figures mean for the user, appended to the finding's message."""
    limit = _pct(target.max_error)
    if d is None:
        return (
            f"; without retraining no width below break-even keeps the predicted error within "
            f"{limit}: design the bottleneck in and retrain"
        )
    head = (
        f"; without retraining: width {d['width']} (predicted error ≤ "
        f"{_pct(d['predicted_error'])}) saves {d['saving_factor']:.1f}x"
    )
    if needs_retraining:
        return (
            f"{head}, under {target.min_saving_setting}: design the bottleneck in and retrain, "
            "not a drop-in rewrite"
        )
    return head


def add_weight_facts(
    facts: ModelFacts,
    findings: Sequence[Finding],
    loaded: LoadedModel,
    targets: Mapping[str, DropInTarget] | None = None,
) -> tuple[Finding, ...]:
    """``findings`` with what the weights say added to each bottleneck recommendation, from the
    weights of ``loaded`` (the model ``facts`` were scanned from, still open): the energy kept
    and predicted error at the recommended width, and the drop-in width for the rule's target
    in ``targets`` (by rule id; ``drop_in_error`` 0.05 and no saving floor when absent).

    The figures go into ``facts``, the recommendation's ``details`` and the message, so every
    report format shows them. Other findings pass through unchanged.
    """
    if not any(recommends_bottleneck(f) for f in findings):
        return tuple(findings)
    targets = targets or {}
    default = DropInTarget(max_error=float(KIND_PARAMS["drop_in_error"].default))
    out: list[Finding] = []
    index = TensorIndex(loaded.proto.graph, loaded.proto.ir_version)
    for f in findings:
        rec = f.recommendation
        layer = _layer(facts, f) if recommends_bottleneck(f) else None
        curve = None if layer is None else _curve(loaded, layer, index)
        shape = None if layer is None else recommend.layer_shape(layer)
        if rec is None or not rec.width or curve is None or shape is None:
            out.append(f)
            continue
        target = targets.get(f.rule, default)
        energy = float(curve[min(rec.width, len(curve) - 1)])
        predicted = predicted_error(energy)
        d = drop_in(curve, shape, rec.before_macs, target)
        needs_retraining = d is None or (
            target.min_saving is not None and d["saving_factor"] < target.min_saving
        )
        extra = {"energy_retained": round(energy, 6), "predicted_error": round(predicted, 6)}
        details = {
            **rec.details,
            **extra,
            "predicted_error_basis": PREDICTION_BASIS,
            "drop_in": d,
            "needs_retraining": needs_retraining,
        }
        new_facts = {
            **f.facts,
            **extra,
            "drop_in_width": None if d is None else d["width"],
            "needs_retraining": needs_retraining,
        }
        note = (
            f"; weights keep {energy_pct(energy)} of their energy at width {rec.width} "
            f"(predicted output error ≤ {_pct(predicted)}"
            + (", not low-rank: expect to fine-tune)" if energy < 0.5 else ")")
            + _sentence(d, target, needs_retraining)
        )
        out.append(
            dataclasses.replace(
                f,
                facts=new_facts,
                recommendation=dataclasses.replace(rec, details=details),
                message=f.message + note,
            )
        )
    return tuple(out)
