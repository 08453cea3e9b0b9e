"""The producer -> consumer graph the walk records, with the slice of networkx's DiGraph API that
rules use (``nodes[n]``, ``nodes(data=True)``, ``successors``, ``predecessors``, ``edges``).

Importing networkx costs about 0.1 s, a fifth of a whole scan of a VGG-16, so the walk records
plain dicts and ``to_networkx()`` builds the real DiGraph (once, cached by ModelFacts.graph) for
callers that want networkx's algorithms.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any


class _NodeView:
    """``g.nodes[n]`` -> attribute dict; ``g.nodes(data=True)`` -> (n, attrs) pairs."""

    def __init__(self, attrs: dict[str, dict[str, Any]]) -> None:
        self._attrs = attrs

    def __getitem__(self, node: str) -> dict[str, Any]:
        return self._attrs[node]

    def __iter__(self) -> Iterator[str]:
        return iter(self._attrs)

    def __len__(self) -> int:
        return len(self._attrs)

    def __contains__(self, node: object) -> bool:
        return node in self._attrs

    def __call__(self, data: bool = False) -> Any:
        return list(self._attrs.items()) if data else list(self._attrs)


class NodeGraph:
    """A directed graph of node ids with attribute dicts on nodes and edges (one edge per pair)."""

    def __init__(self) -> None:
        self._attrs: dict[str, dict[str, Any]] = {}
        self._succ: dict[str, dict[str, dict[str, Any]]] = {}
        self._pred: dict[str, dict[str, dict[str, Any]]] = {}
        self.nodes = _NodeView(self._attrs)

    def add_node(self, node: str, **attrs: Any) -> None:
        """Add ``node`` (or update its attributes)."""
        if node not in self._attrs:
            self._attrs[node] = {}
            self._succ[node] = {}
            self._pred[node] = {}
        self._attrs[node].update(attrs)

    def add_edge(self, src: str, dst: str, **attrs: Any) -> None:
        """Add the edge ``src -> dst`` (attributes update an existing edge, as in networkx)."""
        for n in (src, dst):
            if n not in self._attrs:
                self.add_node(n)
        data = self._succ[src].setdefault(dst, {})
        data.update(attrs)
        self._pred[dst][src] = data

    def __contains__(self, node: object) -> bool:
        return node in self._attrs

    def __len__(self) -> int:
        return len(self._attrs)

    def __iter__(self) -> Iterator[str]:
        return iter(self._attrs)

    def successors(self, node: str) -> Iterator[str]:
        """Consumers of ``node``'s outputs."""
        return iter(self._succ[node])

    def predecessors(self, node: str) -> Iterator[str]:
        """Producers of ``node``'s inputs."""
        return iter(self._pred[node])

    def edges(self, data: bool = False) -> list[Any]:
        """All edges as (src, dst) or (src, dst, attrs)."""
        if data:
            return [(s, d, a) for s, nbrs in self._succ.items() for d, a in nbrs.items()]
        return [(s, d) for s, nbrs in self._succ.items() for d in nbrs]

    def topological_order(self) -> list[str]:
        """Node ids with every producer before its consumers (Kahn; insertion order breaks ties)."""
        indegree = {n: len(p) for n, p in self._pred.items()}
        ready = deque(n for n, d in indegree.items() if d == 0)
        order: list[str] = []
        while ready:
            n = ready.popleft()
            order.append(n)
            for m in self._succ[n]:
                indegree[m] -= 1
                if indegree[m] == 0:
                    ready.append(m)
        return order

    def to_networkx(self) -> Any:
        """The same graph as a ``networkx.DiGraph`` (imports networkx)."""
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from(self._attrs.items())
        g.add_edges_from(self.edges(data=True))
        return g
