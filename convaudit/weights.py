"""``scan --weights``: energy retained and predicted error at a bottleneck recommendation's width.

Weights are read on demand, one flagged layer at a time (external data too), so a weight-aware
scan of a large model holds one weight in memory, not the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from convaudit.model.loader import LoadedModel
from convaudit.model.tensor_users import TensorIndex, bn_epsilon, foldable_bn
from convaudit.records import BOTTLENECK_KIND, Finding, ModelFacts
from convaudit.weightmath import energy_at, fold_batchnorm, predicted_error

# Weights these dtypes factorise as they are; anything else is quantized or unknown.
FLOAT_DTYPES = {"float32", "float16", "float64"}


def recommends_bottleneck(finding: Finding) -> bool:
    """Whether the finding recommends a 1x1 bottleneck (whatever rule gave it)."""
    return finding.recommendation is not None and finding.recommendation.kind == BOTTLENECK_KIND


def _energy(
    loaded: LoadedModel, facts: ModelFacts, finding: Finding, index: TensorIndex
) -> float | None:
    """E(width) of the flagged layer's (BN-folded) weight, None when it cannot be read."""
    rec = finding.recommendation
    layer = next(
        (
            x
            for x in facts.layers
            if x.name == finding.node and x.graph == (finding.graph or "main")
        ),
        None,
    )
    if rec is None or not rec.width or layer is None or not layer.weight_name:
        return None
    if layer.group != 1 or layer.weight_dtype not in FLOAT_DTYPES:  # quantized, unknown
        return None
    try:
        w = np.asarray(loaded.read_tensor(layer.weight_name), dtype=np.float64)
    except KeyError:  # not a stored tensor: computed by a node
        return None
    # A stored float weight that cannot be read (its external data file missing or short) is
    # the model's error, raised as ModelLoadError: not a silently missing figure.
    if w.ndim < 3:
        return None
    bn_out = foldable_bn(layer, index) if layer.graph == "main" else None
    if bn_out is not None:  # the conv the fix would factorise is the BN-folded one
        bn = index.producer[bn_out]
        scale, shift, mean, var = (loaded.read_tensor(n) for n in bn.input[1:5])
        w, _ = fold_batchnorm(w, None, scale, shift, mean, var, bn_epsilon(bn))
    return energy_at(w, rec.width)


def energy_pct(energy: float) -> str:
    """8.2%, or 99.99% (not a rounded-up 100.0%) when nearly all the energy is kept."""
    return f"{100 * energy:.2f}%" if 0.99 < energy < 1.0 else f"{100 * energy:.1f}%"


def add_weight_facts(
    facts: ModelFacts, findings: Sequence[Finding], loaded: LoadedModel
) -> tuple[Finding, ...]:
    """``findings`` with energy retained and predicted error added to each bottleneck
    recommendation, from the weights of ``loaded`` (the model ``facts`` were scanned from, still
    open).

    The figures go into ``facts``, the recommendation's ``details`` and the message, so every
    report format shows them. Other findings pass through unchanged.
    """
    if not any(recommends_bottleneck(f) for f in findings):
        return tuple(findings)
    out: list[Finding] = []
    index = TensorIndex(loaded.proto.graph, loaded.proto.ir_version)
    for f in findings:
        energy = _energy(loaded, facts, f, index) if recommends_bottleneck(f) else None
        if energy is None or f.recommendation is None:
            out.append(f)
            continue
        predicted = predicted_error(energy)
        extra = {"energy_retained": round(energy, 6), "predicted_error": round(predicted, 6)}
        rec = dataclasses.replace(f.recommendation, details={**f.recommendation.details, **extra})
        note = (
            f"; weights keep {energy_pct(energy)} of their energy at width "
            f"{f.recommendation.width} (predicted output error {100 * predicted:.1f}%"
            + (", not low-rank: expect to fine-tune)" if energy < 0.5 else ")")
        )
        out.append(
            dataclasses.replace(
                f, facts={**f.facts, **extra}, recommendation=rec, message=f.message + note
            )
        )
    return tuple(out)
