"""``separable``: a depthwise KxK conv then a pointwise 1x1 (MobileNet, Xception)."""

from __future__ import annotations

from convaudit.records import Recommendation
from convaudit.rules import recommend
from convaudit.rules.kinds.base import Before, Kind, alternative_fact, conv_shape
from convaudit.rules.subject import Fact, FactView


def _separable(b: FactView) -> recommend.Alternative | None:
    shape = conv_shape(b)
    return None if shape is None else recommend.separable(shape)


FACTS: tuple[Fact, ...] = (
    alternative_fact(
        "depthwise_macs", "MACs of a depthwise KxK conv on Cin channels", _separable, "part", 0
    ),
    alternative_fact(
        "pointwise_macs", "MACs of the pointwise 1x1 Cin->Cout conv", _separable, "part", 1
    ),
    alternative_fact("separable_macs", "MACs of depthwise + pointwise", _separable, "macs"),
    alternative_fact(
        "separable_params", "params of depthwise + pointwise (+ bias)", _separable, "params"
    ),
    alternative_fact(
        "separable_saving", "MACs before / after depthwise + pointwise", _separable, "saving"
    ),
)


def _build(b: FactView, before: Before) -> Recommendation | None:
    macs = b.get("separable_macs")
    if macs is None:
        return None
    return Recommendation(
        kind=SEPARABLE.name,
        before_macs=before.macs,
        before_params=before.params,
        after_macs=macs,
        after_params=b.get("separable_params"),
        details={
            "depthwise_macs": b.get("depthwise_macs"),
            "pointwise_macs": b.get("pointwise_macs"),
        },
    )


SEPARABLE = Kind(
    name="separable",
    doc="a depthwise KxK conv on Cin channels then a pointwise 1x1 Cin->Cout conv",
    provides=FACTS,
    build=_build,
)
