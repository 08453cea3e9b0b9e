"""``bottleneck``: a 1x1 reduction to a narrower width before the KxK conv (GoogLeNet, ResNet)."""

from __future__ import annotations

from typing import Any

from convaudit.records import BOTTLENECK_KIND, Recommendation
from convaudit.rules import recommend
from convaudit.rules.kinds.base import Before, Kind, KindParam, alternative_fact, conv_shape
from convaudit.rules.subject import Fact, FactView


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


PARAMS = (
    KindParam(name="width_policy", type="str", default="ratio", choices=recommend.WIDTH_POLICIES),
    KindParam(
        name="width_ratio",
        type="float",
        default=0.0333,
        allowed="a number in (0, 1]",
        valid=lambda v: _number(v) and 0 < v <= 1,
    ),
    KindParam(
        name="target_saving",
        type="float",
        default=4.0,
        allowed="a number above 1",
        valid=lambda v: _number(v) and v > 1,
    ),
    KindParam(
        name="mac_budget",
        type="int",
        default=None,
        allowed="a positive integer or null",
        valid=lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v > 0),
    ),
)


def _break_even(b: FactView) -> float | None:
    shape = conv_shape(b)
    return None if shape is None else recommend.break_even_width(shape)


def _width(b: FactView) -> int | None:
    shape = conv_shape(b)
    if shape is None:
        return None
    budget = b.param("mac_budget")
    return recommend.bottleneck_width(
        shape,
        policy=str(b.param("width_policy")),
        width_ratio=float(b.param("width_ratio")),
        target_saving=float(b.param("target_saving")),
        mac_budget=None if budget is None else int(budget),
    )


def _bottleneck(b: FactView) -> recommend.Alternative | None:
    shape, width = conv_shape(b), b.get("bottleneck_width")
    return None if shape is None or width is None else recommend.bottleneck(shape, width)


FACTS: tuple[Fact, ...] = (
    Fact("break_even_width", "float", "bottleneck width at which nothing is saved", _break_even),
    Fact(
        "bottleneck_width",
        "int",
        "recommended 1x1 bottleneck width (params width_policy, width_ratio, target_saving, "
        "mac_budget)",
        _width,
        uses_params=True,
    ),
    alternative_fact(
        "bottleneck_reduce_macs",
        "MACs of the recommended 1x1 reduction",
        _bottleneck,
        "part",
        0,
        uses_params=True,
    ),
    alternative_fact(
        "bottleneck_main_macs",
        "MACs of the KxK conv after the reduction",
        _bottleneck,
        "part",
        1,
        uses_params=True,
    ),
    alternative_fact(
        "bottleneck_macs",
        "MACs of 1x1 reduction + KxK conv",
        _bottleneck,
        "macs",
        uses_params=True,
    ),
    alternative_fact(
        "bottleneck_params",
        "params of 1x1 reduction + KxK conv (+ bias)",
        _bottleneck,
        "params",
        uses_params=True,
    ),
    alternative_fact(
        "saving",
        "MACs before / after the recommended bottleneck",
        _bottleneck,
        "saving",
        uses_params=True,
    ),
)


def _build(b: FactView, before: Before) -> Recommendation | None:
    width, macs = b.get("bottleneck_width"), b.get("bottleneck_macs")
    if width is None or macs is None:
        return None
    return Recommendation(
        kind=BOTTLENECK.name,
        width=width,
        before_macs=before.macs,
        before_params=before.params,
        after_macs=macs,
        after_params=b.get("bottleneck_params"),
        details={
            "break_even_width": round(b.get("break_even_width"), 1),
            "reduce_macs": b.get("bottleneck_reduce_macs"),
            "main_macs": b.get("bottleneck_main_macs"),
            "width_policy": b.param("width_policy"),
        },
    )


BOTTLENECK = Kind(
    name=BOTTLENECK_KIND,  # one spelling, in records: fix and scan --weights key on it
    doc="a 1x1 conv reducing Cin to a narrower width before the KxK conv",
    provides=FACTS,
    params=PARAMS,
    build=_build,
)
