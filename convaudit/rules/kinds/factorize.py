"""``factorize-kernel``: a large kernel as stacked 3x3s (Inception v2) or 1xK + Kx1 (v3)."""

from __future__ import annotations

from convaudit.records import Recommendation
from convaudit.rules import recommend
from convaudit.rules.kinds.base import Before, Kind, alternative_fact, conv_shape
from convaudit.rules.subject import Fact, FactView


def _stacked(b: FactView) -> recommend.Alternative | None:
    shape = conv_shape(b)
    return None if shape is None else recommend.stacked_3x3(shape)


def _asym(b: FactView) -> recommend.Alternative | None:
    shape = conv_shape(b)
    return None if shape is None else recommend.asymmetric(shape)


def _factorized(b: FactView) -> recommend.Alternative | None:
    s, a = _stacked(b), _asym(b)
    return None if s is None or a is None else min((a, s), key=lambda alt: alt.macs)


FACTS: tuple[Fact, ...] = (
    Fact(
        "stacked_3x3_count",
        "int",
        "3x3 convs stacked to cover the kernel's receptive field",
        lambda b: (
            None if conv_shape(b) is None else recommend.stacked_3x3_count(b.get("kernel_max"))
        ),
    ),
    alternative_fact(
        "stacked_3x3_macs", "MACs as stacked 3x3 convs (Inception v2)", _stacked, "macs"
    ),
    alternative_fact("stacked_3x3_params", "params as stacked 3x3 convs", _stacked, "params"),
    alternative_fact(
        "asymmetric_macs", "MACs as a 1xK then a Kx1 conv (Inception v3)", _asym, "macs"
    ),
    alternative_fact("asymmetric_params", "params as a 1xK then a Kx1 conv", _asym, "params"),
    alternative_fact("factorized_macs", "MACs of the cheaper factorisation", _factorized, "macs"),
    alternative_fact(
        "factorized_saving",
        "MACs before / after the cheaper factorisation",
        _factorized,
        "saving",
    ),
)


def _build(b: FactView, before: Before) -> Recommendation | None:
    stacked, asym = b.get("stacked_3x3_macs"), b.get("asymmetric_macs")
    if stacked is None or asym is None:
        return None
    chosen = "asymmetric" if asym <= stacked else "stacked_3x3"
    return Recommendation(
        kind=FACTORIZE_KERNEL.name,
        before_macs=before.macs,
        before_params=before.params,
        after_macs=min(asym, stacked),
        after_params=b.get(f"{chosen}_params"),
        details={
            "chosen": chosen,
            "stacked_3x3": {
                "count": b.get("stacked_3x3_count"),
                "macs": stacked,
                "params": b.get("stacked_3x3_params"),
            },
            "asymmetric": {"macs": asym, "params": b.get("asymmetric_params")},
        },
    )


FACTORIZE_KERNEL = Kind(
    name="factorize-kernel",
    doc="a large kernel as stacked 3x3 convs or a 1xK then a Kx1 conv, whichever is cheaper",
    provides=FACTS,
    needs=("kernel_max",),
    build=_build,
)
