"""Recommendation facts: the figures of each suggested change, from ``recommend``'s arithmetic.

They depend on the rule's params (the bottleneck width policy), so they are cached per rule.
Imported by ``facts`` for its side effect: registering these names in FACTS.
"""

from __future__ import annotations

from collections.abc import Callable
from math import prod
from typing import Any

from convaudit.rules import recommend
from convaudit.rules.facts import FACTS, Bound, Fact, _fact


def _shape(b: Bound) -> recommend.ConvShape | None:
    if "_shape" not in b.subject.cache:
        layer = b.layer
        ok = layer.category == "conv" and (layer.group or 1) == 1 and layer.macs is not None
        b.subject.cache["_shape"] = (
            recommend.conv_shape(
                in_channels=layer.in_channels,
                out_channels=layer.out_channels,
                kernel=layer.kernel_shape,
                input_shape=layer.input_shape,
                output_shape=layer.output_shape,
                executions=layer.multiplier,
                has_bias=layer.has_bias,
                strides=layer.strides,
            )
            if ok
            else None
        )
    shape: recommend.ConvShape | None = b.subject.cache["_shape"]
    return shape


@_fact("break_even_width", "float", "bottleneck width at which nothing is saved")
def _break_even(b: Bound) -> float | None:
    shape = _shape(b)
    return None if shape is None else recommend.break_even_width(shape)


@_fact(
    "bottleneck_width",
    "int",
    "recommended 1x1 bottleneck width (params width_policy, width_ratio, target_saving, "
    "mac_budget)",
    uses_params=True,
)
def _bottleneck_width(b: Bound) -> int | None:
    shape = _shape(b)
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


def _bottleneck(b: Bound) -> recommend.Plan | None:
    shape, width = _shape(b), b.get("bottleneck_width")
    return None if shape is None or width is None else recommend.bottleneck(shape, width)


def _plan_fact(
    name: str, doc: str, plan: Callable[[Bound], recommend.Plan | None], what: str, part: int = -1
) -> None:
    uses = plan is _bottleneck

    def fn(b: Bound) -> Any:
        p = plan(b)
        if p is None:
            return None
        if what == "part":
            return p.parts[part][1]
        if what == "saving":
            return recommend.saving(b.layer.total_macs or 0, p.macs)
        return p.macs if what == "macs" else p.params

    FACTS[name] = Fact(name, "float" if what == "saving" else "int", doc, fn, uses)


_plan_fact(
    "bottleneck_reduce_macs", "MACs of the recommended 1x1 reduction", _bottleneck, "part", 0
)
_plan_fact(
    "bottleneck_main_macs", "MACs of the KxK conv after the reduction", _bottleneck, "part", 1
)
_plan_fact("bottleneck_macs", "MACs of 1x1 reduction + KxK conv", _bottleneck, "macs")
_plan_fact(
    "bottleneck_params", "params of 1x1 reduction + KxK conv (+ bias)", _bottleneck, "params"
)
_plan_fact("saving", "MACs before / after the recommended bottleneck", _bottleneck, "saving")


def _stacked(b: Bound) -> recommend.Plan | None:
    shape = _shape(b)
    return None if shape is None else recommend.stacked_3x3(shape)


def _asym(b: Bound) -> recommend.Plan | None:
    shape = _shape(b)
    return None if shape is None else recommend.asymmetric(shape)


def _factorized(b: Bound) -> recommend.Plan | None:
    s, a = _stacked(b), _asym(b)
    return None if s is None or a is None else min((a, s), key=lambda p: p.macs)


_fact("stacked_3x3_count", "int", "3x3 convs stacked to cover the kernel's receptive field")(
    lambda b: None if _shape(b) is None else recommend.stacked_3x3_count(b.get("kernel_max"))
)
_plan_fact("stacked_3x3_macs", "MACs as stacked 3x3 convs (Inception v2)", _stacked, "macs")
_plan_fact("stacked_3x3_params", "params as stacked 3x3 convs", _stacked, "params")
_plan_fact("asymmetric_macs", "MACs as a 1xK then a Kx1 conv (Inception v3)", _asym, "macs")
_plan_fact("asymmetric_params", "params as a 1xK then a Kx1 conv", _asym, "params")
_plan_fact("factorized_macs", "MACs of the cheaper factorisation", _factorized, "macs")
_plan_fact(
    "factorized_saving", "MACs before / after the cheaper factorisation", _factorized, "saving"
)


def _separable(b: Bound) -> recommend.Plan | None:
    shape = _shape(b)
    return None if shape is None else recommend.separable(shape)


_plan_fact("depthwise_macs", "MACs of a depthwise KxK conv on Cin channels", _separable, "part", 0)
_plan_fact("pointwise_macs", "MACs of the pointwise 1x1 Cin->Cout conv", _separable, "part", 1)
_plan_fact("separable_macs", "MACs of depthwise + pointwise", _separable, "macs")
_plan_fact("separable_params", "params of depthwise + pointwise (+ bias)", _separable, "params")
_plan_fact("separable_saving", "MACs before / after depthwise + pointwise", _separable, "saving")


def _head(b: Bound) -> recommend.Plan | None:
    layer, src = b.layer, b.subject.graph.flatten_source(b.layer)
    if src is None or layer.category != "matmul" or layer.out_channels is None:
        return None
    if layer.in_channels != src.channels * prod(src.spatial) or layer.input_shape is None:
        return None  # not a plain flatten of the map: no honest arithmetic
    rows = prod(layer.input_shape[:-1]) * layer.multiplier
    return recommend.pooled_head(rows, src.channels, layer.out_channels, layer.has_bias)


_plan_fact("head_macs", "MACs of global pooling then a C->N dense layer", _head, "macs")
_plan_fact("head_params", "params of global pooling then a C->N dense layer", _head, "params")


@_fact("head_saving", "float", "params before / after global pooling (Network-in-Network)")
def _head_saving(b: Bound) -> float | None:
    plan = _head(b)
    return None if plan is None or not b.layer.params else b.layer.params / plan.params
