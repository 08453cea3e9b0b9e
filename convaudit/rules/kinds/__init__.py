"""The registry of recommendation kinds: the one list a rule's ``recommendation:`` is checked
against, and the only place a new kind is added.

A kind's module holds its facts (the figures of the change, priced by ``rules.recommend``), the
params its arithmetic reads, and its ``build``: facts -> ``Recommendation``. The fact table
(``rules.facts``) takes each kind's facts from here; the engine calls ``recommendation``.
"""

from __future__ import annotations

from convaudit.records import Recommendation
from convaudit.rules.kinds.base import Before, Kind, KindParam
from convaudit.rules.kinds.bottleneck import BOTTLENECK
from convaudit.rules.kinds.factorize import FACTORIZE_KERNEL
from convaudit.rules.kinds.head import GLOBAL_POOL_HEAD
from convaudit.rules.kinds.separable import SEPARABLE
from convaudit.rules.subject import FactView


def _table(*kinds: Kind) -> dict[str, Kind]:
    table: dict[str, Kind] = {}
    for kind in kinds:
        if kind.name in table:
            raise ValueError(f"recommendation kind {kind.name!r} is registered twice")
        table[kind.name] = kind
    return table


def _params(kinds: dict[str, Kind]) -> dict[str, KindParam]:
    out: dict[str, KindParam] = {}
    for kind in kinds.values():
        for p in kind.params:
            if p.name in out and out[p.name] != p:
                raise ValueError(f"kinds disagree on param {p.name!r}")
            out[p.name] = p
    return out


# In the order ``rules explain`` and error messages list them.
KINDS: dict[str, Kind] = _table(BOTTLENECK, GLOBAL_POOL_HEAD, FACTORIZE_KERNEL, SEPARABLE)
KIND_NAMES: tuple[str, ...] = tuple(KINDS)
KIND_PARAMS: dict[str, KindParam] = _params(KINDS)
"""Params some kind's arithmetic reads: typed and checked on load, defaulted when absent."""


def recommendation(kind: str | None, b: FactView) -> Recommendation | None:
    """The exact before/after figures of a rule's suggested change (None when unknown)."""
    layer = b.layer
    if kind is None or layer.total_macs is None or layer.params is None:
        return None
    return KINDS[kind].build(b, Before(macs=layer.total_macs, params=layer.params))


__all__ = ["KINDS", "KIND_NAMES", "KIND_PARAMS", "Before", "Kind", "KindParam", "recommendation"]
