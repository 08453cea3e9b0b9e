"""The facts a rule can test, per layer: the record's figures, graph context, recommendations.

Each fact has a type (for load-time checks of rule values and message specs) and a one-line
doc (for ``convaudit rules explain`` and the JSON Schema). Unknown values are None.

The table is built here, explicitly, from the tables of ``layer``, ``graph`` and every
recommendation kind: importing the pieces in any order gives the same facts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from convaudit.records import Layer
from convaudit.rules.facts.graph import GRAPH_FACTS
from convaudit.rules.facts.layer import LAYER_FACTS
from convaudit.rules.kinds import KIND_PARAMS, KINDS
from convaudit.rules.subject import Fact, FactView, Subject


def fact_table(*tables: Iterable[Fact]) -> dict[str, Fact]:
    """One name -> Fact table from several; a name defined twice is a bug, raised at import."""
    out: dict[str, Fact] = {}
    for table in tables:
        for fact in table:
            if fact.name in out:
                raise ValueError(f"fact {fact.name!r} is defined twice")
            out[fact.name] = fact
    return out


def _with_needs_met(facts: dict[str, Fact]) -> dict[str, Fact]:
    """``facts``, once every kind's ``needs`` is in it (a kind reading a missing fact is a bug)."""
    for kind in KINDS.values():
        missing = [name for name in kind.needs if name not in facts]
        if missing:
            raise ValueError(f"recommendation kind {kind.name!r} needs unknown facts {missing}")
    return facts


FACTS: dict[str, Fact] = _with_needs_met(
    fact_table(LAYER_FACTS, GRAPH_FACTS, *(kind.provides for kind in KINDS.values()))
)
FACT_NAMES = tuple(sorted(FACTS))

# The value a kind's param takes when the rule does not set it.
DEFAULTS: dict[str, Any] = {name: p.default for name, p in KIND_PARAMS.items()}


class Bound:
    """A subject seen by one rule: recommendation facts depend on that rule's params."""

    def __init__(self, subject: Subject, params: Mapping[str, Any]) -> None:
        self.subject = subject
        self.params = params
        self.cache: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        fact = FACTS[name]
        cache = self.cache if fact.uses_params else self.subject.cache
        if name not in cache:
            cache[name] = fact.fn(self)
        return cache[name]

    def param(self, name: str) -> Any:
        return self.params.get(name, DEFAULTS.get(name))

    @property
    def layer(self) -> Layer:
        return self.subject.layer


__all__ = [
    "DEFAULTS",
    "FACTS",
    "FACT_NAMES",
    "Bound",
    "Fact",
    "FactView",
    "Subject",
    "fact_table",
]
