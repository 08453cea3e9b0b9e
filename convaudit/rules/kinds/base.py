"""The record of a recommendation kind, and helpers the kinds share.

A kind is what a rule's ``recommendation:`` names: the facts it adds (the figures of the
suggested change), the params its arithmetic reads, and how it becomes a ``Recommendation``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from convaudit.records import Recommendation
from convaudit.rules import recommend
from convaudit.rules.subject import Fact, FactView


@dataclass(frozen=True, kw_only=True)
class KindParam:
    """A rule param a kind's arithmetic reads (a rule may declare it without using it).

    A value is valid when it is one of ``choices`` (if any) and ``valid(value)`` holds;
    otherwise validation says the param "must be" ``allowed``.
    """

    name: str
    type: str  # the type an override keeps: "int", "float", "str"
    default: Any
    allowed: str = ""  # what a valid value is, for the error message
    valid: Callable[[Any], bool] = lambda _: True
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Before:
    """The layer's cost the recommendation is measured against (both known)."""

    macs: int
    params: int


@dataclass(frozen=True, kw_only=True)
class Floor:
    """A lower bound a rule's match puts on a fact every finding must meet (``saving >= 3``)."""

    fact: str
    value: float
    param: str | None = None  # the rule param that sets it ("min_saving"), None for a literal

    @property
    def name(self) -> str:
        """What the user changes to move it: "min_saving" or "the match's saving bound"."""
        return self.param or f"the match's {self.fact} bound"

    @property
    def setting(self) -> str:
        """It as the user set it: "min_saving = 3" or "the match's saving >= 3"."""
        return f"{self.param} = {self.value:g}" if self.param else f"{self.name} {self.value:g}"


Check = Callable[[Mapping[str, Any], Mapping[str, Floor]], "str | None"]


def _coherent(params: Mapping[str, Any], floors: Mapping[str, Floor]) -> str | None:
    return None


@dataclass(frozen=True, kw_only=True)
class Kind:
    """One recommendation kind: its facts, its params and its ``Recommendation`` builder."""

    name: str  # as rule files write it: "bottleneck"
    doc: str
    provides: tuple[Fact, ...]  # facts this kind adds to the fact table
    needs: tuple[str, ...] = ()  # facts it reads that other tables provide
    params: tuple[KindParam, ...] = ()
    build: Callable[[FactView, Before], Recommendation | None]
    # Why these params (kind defaults filled in) can never produce a finding under the rule's
    # floors on this kind's facts, or None: a config that silently finds nothing is an error.
    check: Check = _coherent


def conv_shape(b: FactView) -> recommend.ConvShape | None:
    """The dense conv's shape the conv alternatives are priced on (None for anything else)."""
    cache = b.subject.cache
    if "_shape" not in cache:
        layer = b.layer
        ok = layer.category == "conv" and (layer.group or 1) == 1 and layer.macs is not None
        cache["_shape"] = recommend.layer_shape(layer) if ok else None
    shape: recommend.ConvShape | None = cache["_shape"]
    return shape


Figure = Literal["macs", "params", "saving", "part"]


def alternative_fact(
    name: str,
    doc: str,
    alternative: Callable[[FactView], recommend.Alternative | None],
    figure: Figure,
    part: int = -1,
    *,
    uses_params: bool = False,
) -> Fact:
    """A fact reading one figure of an alternative: its MACs, params, saving or one part's MACs."""

    def fn(b: FactView) -> Any:
        alt = alternative(b)
        if alt is None:
            return None
        if figure == "part":
            return alt.parts[part][1]
        if figure == "saving":
            return recommend.saving(b.layer.total_macs or 0, alt.macs)
        return alt.macs if figure == "macs" else alt.params

    return Fact(name, "float" if figure == "saving" else "int", doc, fn, uses_params)
