"""What a fact is and what it sees: one layer in its model, read through a rule's params.

Records and a protocol only, so the fact tables (``rules.facts``) and the recommendation kinds
(``rules.kinds``) can both build on them without importing each other's registries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from convaudit.records import Layer, ModelFacts
from convaudit.rules.context import GraphContext


class Subject:
    """One layer in its model, with lazily computed and cached facts."""

    def __init__(self, layer: Layer, model: ModelFacts, graph: GraphContext) -> None:
        self.layer = layer
        self.model = model
        self.graph = graph
        self.cache: dict[str, Any] = {}


class FactView(Protocol):
    """A subject seen by one rule: what a fact's function and a kind's builder read."""

    @property
    def subject(self) -> Subject: ...

    @property
    def layer(self) -> Layer: ...

    def get(self, name: str) -> Any:
        """The value of fact ``name`` (cached; None when unknown)."""

    def param(self, name: str) -> Any:
        """The rule's value of param ``name``, or its default."""


@dataclass(frozen=True)
class Fact:
    """A named per-layer figure rules can test and messages can show."""

    name: str
    type: str  # "int" | "float" | "bool" | "str" | "ints"
    doc: str
    fn: Callable[[FactView], Any]
    uses_params: bool = False  # cached per rule, not per layer
