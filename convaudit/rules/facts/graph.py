"""Facts about a layer's neighbourhood: what feeds it, what it feeds, flattened maps."""

from __future__ import annotations

from math import prod

from convaudit.rules.facts.layer import dims
from convaudit.rules.subject import Fact, FactView


def _reduction_width(b: FactView) -> int | None:
    prev = b.subject.graph.feeding_1x1(b.layer)
    return None if prev is None else prev.out_channels


def _flatten_area(b: FactView) -> int | None:
    src = b.subject.graph.flatten_source(b.layer)
    return None if src is None else prod(src.spatial)


def _flatten_size(b: FactView) -> str | None:
    src = b.subject.graph.flatten_source(b.layer)
    return None if src is None else dims(src.spatial)


GRAPH_FACTS: tuple[Fact, ...] = (
    Fact(
        "fed_by_1x1",
        "bool",
        "the data input comes from a 1x1 conv (through BN, activations, ...)",
        lambda b: b.subject.graph.feeding_1x1(b.layer) is not None,
    ),
    Fact(
        "fed_by_1x1_reduction",
        "bool",
        "the data input comes from a 1x1 conv that reduces channels (an existing bottleneck)",
        lambda b: b.subject.graph.fed_by_1x1_reduction(b.layer),
    ),
    Fact(
        "in_reduced_branch",
        "bool",
        "fed by a 1x1 reduction directly or through a few convs no wider than this one",
        lambda b: b.subject.graph.in_reduced_branch(b.layer),
    ),
    Fact(
        "reduction_width",
        "int",
        "output channels of the 1x1 conv feeding this layer",
        _reduction_width,
    ),
    Fact(
        "followed_by_1x1_expansion",
        "bool",
        "the output feeds a 1x1 conv that expands channels (a ResNet-style bottleneck)",
        lambda b: b.subject.graph.followed_by_1x1_expansion(b.layer),
    ),
    Fact(
        "fan_out",
        "int",
        "nodes reading the output (through pass-through ops)",
        lambda b: b.subject.graph.fan_out(b.layer),
    ),
    Fact(
        "after_flatten",
        "bool",
        "the data input comes from a Flatten or Reshape of a map",
        lambda b: b.subject.graph.flatten_source(b.layer) is not None,
    ),
    Fact(
        "flatten_channels",
        "int",
        "channels of the map flattened into this layer",
        lambda b: getattr(b.subject.graph.flatten_source(b.layer), "channels", None),
    ),
    Fact(
        "flatten_area",
        "int",
        "spatial positions of the map flattened into this layer",
        _flatten_area,
    ),
    Fact("flatten_size", "str", 'spatial size of the flattened map, "7x7"', _flatten_size),
)
