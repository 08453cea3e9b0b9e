"""``global-pool-head``: global average pooling, not a dense layer on a flattened map (NiN)."""

from __future__ import annotations

from math import prod

from convaudit.records import Recommendation
from convaudit.rules import recommend
from convaudit.rules.kinds.base import Before, Kind, alternative_fact
from convaudit.rules.subject import Fact, FactView


def _head(b: FactView) -> recommend.Alternative | None:
    layer, src = b.layer, b.subject.graph.flatten_source(b.layer)
    if src is None or layer.category != "matmul" or layer.out_channels is None:
        return None
    if layer.in_channels != src.channels * prod(src.spatial) or layer.input_shape is None:
        return None  # not a plain flatten of the map: no honest arithmetic
    rows = prod(layer.input_shape[:-1]) * layer.multiplier
    return recommend.pooled_head(rows, src.channels, layer.out_channels, layer.has_bias)


def _head_saving(b: FactView) -> float | None:
    alt = _head(b)
    return None if alt is None or not b.layer.params else b.layer.params / alt.params


FACTS: tuple[Fact, ...] = (
    alternative_fact("head_macs", "MACs of global pooling then a C->N dense layer", _head, "macs"),
    alternative_fact(
        "head_params", "params of global pooling then a C->N dense layer", _head, "params"
    ),
    Fact(
        "head_saving",
        "float",
        "params before / after global pooling (Network-in-Network)",
        _head_saving,
    ),
)


def _build(b: FactView, before: Before) -> Recommendation | None:
    macs, params = b.get("head_macs"), b.get("head_params")
    if macs is None:
        return None
    return Recommendation(
        kind=GLOBAL_POOL_HEAD.name,
        before_macs=before.macs,
        before_params=before.params,
        after_macs=macs,
        after_params=params,
        details={
            "channels": b.get("flatten_channels"),
            "spatial": b.get("flatten_size"),
            "params_saving_factor": round(before.params / params, 4) if params else None,
        },
    )


GLOBAL_POOL_HEAD = Kind(
    name="global-pool-head",
    doc="global average pooling then a C->N dense layer instead of a dense layer on the flat map",
    provides=FACTS,
    needs=("flatten_channels", "flatten_size"),
    build=_build,
)
