"""``bottleneck``: a 1x1 reduction to a narrower width before the KxK conv (GoogLeNet, ResNet)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from convaudit.records import BOTTLENECK_KIND, Recommendation
from convaudit.rules import recommend
from convaudit.rules.kinds.base import (
    Before,
    Floor,
    Kind,
    KindParam,
    alternative_fact,
    conv_shape,
)
from convaudit.rules.subject import Fact, FactView


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _ratio(v: Any) -> bool:
    return _number(v) and 0 < v <= 1


PARAMS = (
    KindParam(name="width_policy", type="str", default="ratio", choices=recommend.WIDTH_POLICIES),
    KindParam(
        name="width_ratio",
        type="float",
        default=None,
        allowed="a number in (0, 1]",  # or null, the default: the published ratio
        valid=lambda v: v is None or _ratio(v),
    ),
    KindParam(
        name="small_kernel_ratio",
        type="float",
        default=recommend.SMALL_KERNEL_RATIO,
        allowed="a number in (0, 1]",
        valid=_ratio,
    ),
    KindParam(
        name="large_kernel_ratio",
        type="float",
        default=recommend.LARGE_KERNEL_RATIO,
        allowed="a number in (0, 1]",
        valid=_ratio,
    ),
    KindParam(
        name="large_kernel_area",
        type="int",
        default=recommend.LARGE_KERNEL_AREA,
        allowed="an integer of at least 2 (kernel positions, 25 for 5x5)",
        valid=lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 2,
    ),
    KindParam(
        name="target_saving",
        type="float",
        default=4.0,
        allowed="a number above 1",
        valid=lambda v: _number(v) and v > 1,
    ),
    KindParam(
        name="drop_in_error",
        type="float",
        default=0.05,
        allowed="a number in (0, 1)",
        valid=lambda v: _number(v) and 0 < v < 1,
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
    budget, ratio = b.param("mac_budget"), b.param("width_ratio")
    return recommend.bottleneck_width(
        shape,
        policy=str(b.param("width_policy")),
        width_ratio=None if ratio is None else float(ratio),
        small_kernel_ratio=float(b.param("small_kernel_ratio")),
        large_kernel_ratio=float(b.param("large_kernel_ratio")),
        large_kernel_area=int(b.param("large_kernel_area")),
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
        "recommended 1x1 bottleneck width (params width_policy, width_ratio, small_kernel_ratio, "
        "large_kernel_ratio, large_kernel_area, target_saving, mac_budget)",
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


def _check(params: Mapping[str, Any], floors: Mapping[str, Floor]) -> str | None:
    """A width policy that can never save what the rule asks (``saving`` >= its floor)."""
    policy = params["width_policy"]
    floor = floors.get("saving")
    if policy == "budget" and params["mac_budget"] is None:
        return "width_policy = budget needs mac_budget (the MACs a flagged layer must fit in)"
    if floor is None or floor.value <= 1:  # every width below break-even saves more than 1x
        return None
    need = f"{floor.value:g}"
    if policy == "saving" and params["target_saving"] < floor.value:
        return (
            f"width_policy = saving with target_saving = {params['target_saving']:g} aims below "
            f"{floor.setting}, so it never meets it: raise target_saving to {need} or lower "
            f"{floor.name}"
        )
    if policy == "budget":
        return (
            f"width_policy = budget takes the widest width within mac_budget whatever it saves: "
            f"{floor.setting} would hide every layer less than {need}x over the budget; "
            f"set {floor.name} to 1"
        )
    if policy != "ratio":
        return None
    ratios = (
        [
            ("small_kernel_ratio", "kernels under large_kernel_area positions"),
            ("large_kernel_ratio", "kernels of large_kernel_area positions or more"),
        ]
        if params["width_ratio"] is None
        else [("width_ratio", "every kernel")]
    )
    for name, covers in ratios:
        most = recommend.max_ratio_saving(float(params[name]))
        if most <= floor.value:
            return (
                f"width_policy = ratio with {name} = {params[name]:g} ({covers}) saves at most "
                f"{most:.3g}x (Cin / width), so it never meets {floor.setting}: lower {name} "
                f"below {1 / floor.value:.3g} or lower {floor.name}"
            )
    return None


BOTTLENECK = Kind(
    name=BOTTLENECK_KIND,  # one spelling, in records: fix and scan --weights key on it
    doc="a 1x1 conv reducing Cin to a narrower width before the KxK conv",
    provides=FACTS,
    params=PARAMS,
    build=_build,
    check=_check,
)
