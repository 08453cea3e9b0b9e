"""NodeGraph: the walk's producer/consumer graph must agree with networkx's DiGraph."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import onnx
import pytest

from convaudit.model.analyse import analyse
from convaudit.model.graph import NodeGraph

LIGHT = Path(onnx.__file__).parent / "backend/test/data/light"


def test_edges_attrs_and_order_match_networkx() -> None:
    g = NodeGraph()
    g.add_node("a", op_type="Conv")
    g.add_edge("a", "b", tensor="t1")
    g.add_edge("a", "c", tensor="t2")
    g.add_edge("b", "d", tensor="t3")
    g.add_edge("c", "d", tensor="t4")
    g.add_edge("a", "b", tensor="t5")  # one edge per pair: attributes update, as in networkx
    ref = nx.DiGraph()
    ref.add_node("a", op_type="Conv")
    for s, d, t in [("a", "b", "t1"), ("a", "c", "t2"), ("b", "d", "t3"), ("c", "d", "t4")]:
        ref.add_edge(s, d, tensor=t)
    ref.add_edge("a", "b", tensor="t5")
    assert sorted(g.edges(data=True)) == sorted(ref.edges(data=True))
    assert dict(g.nodes(data=True)) == dict(ref.nodes(data=True))
    assert sorted(g.successors("a")) == sorted(ref.successors("a"))
    assert sorted(g.predecessors("d")) == sorted(ref.predecessors("d"))
    order = g.topological_order()
    assert sorted(order) == ["a", "b", "c", "d"]
    assert all(order.index(s) < order.index(d) for s, d in ref.edges())
    assert nx.is_isomorphic(g.to_networkx(), ref)


@pytest.mark.parametrize("name", ["light_inception_v1.onnx", "light_resnet50.onnx"])
def test_model_graph_is_a_shared_networkx_digraph(name: str) -> None:
    facts = analyse(LIGHT / name)
    g = facts.graph
    assert isinstance(g, nx.DiGraph)
    assert g is facts.graph  # built once, then shared
    assert g.number_of_nodes() == len(facts.node_graph)
    assert sorted(g.edges()) == sorted(facts.node_graph.edges())
    assert nx.is_directed_acyclic_graph(g)
    for layer in facts.layers:
        assert g.nodes[layer.node_id]["layer"] == layer.index
