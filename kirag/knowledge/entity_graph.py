"""The entity graph of a triple index stored in SQLite (`graph.sqlite`), so that a node's
neighbourhood loads without loading the graph: the memory of a build or a lookup stays flat in
the corpus size.

    entities(key PRIMARY KEY, label)       one row per entity (entity_key), its first surface form
    adjacency(node, other, pos)            one row per triple and direction: `pos` is the triple's
                                           position (its FAISS id); indexed by node

It is the graph `build_entity_graph` makes with networkx (entities as nodes, one undirected
edge per entity pair carrying the positions of the triples that link them, no self-loops), and
`EntityGraph.subgraph` loads a neighbourhood of it as a networkx graph.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from kirag.core.optional import require
from kirag.knowledge.triples import Triple, entity_key

FILENAME = "graph.sqlite"
IN_CLAUSE = 900  # SQLite's bound on parameters per statement, with margin


def build_entity_graph(triples: Sequence[Triple]):
    """Entities as nodes (keyed by entity_key, labelled with a surface form), one undirected edge
    per entity pair carrying the positions of the triples that link them (networkx, in memory:
    for small triple sets and as the reference the SQLite graph is checked against)."""
    nx = require("networkx", "kirag", "the entity graph")

    graph = nx.Graph()
    for position, triple in enumerate(triples):
        head, tail = entity_key(triple.head), entity_key(triple.tail)
        if not head or not tail or head == tail:
            continue
        for node, label in ((head, triple.head), (tail, triple.tail)):
            if node not in graph:
                graph.add_node(node, label=label)
        if graph.has_edge(head, tail):
            graph[head][tail]["triples"].append(position)
        else:
            graph.add_edge(head, tail, triples=[position])
    return graph


class GraphWriter:
    """Writes graph.sqlite one triple at a time, while the triples stream past."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._db = sqlite3.connect(self.path)
        self._db.executescript(
            """
            CREATE TABLE entities (key TEXT PRIMARY KEY, label TEXT NOT NULL);
            CREATE TABLE adjacency (node TEXT NOT NULL, other TEXT NOT NULL, pos INTEGER NOT NULL);
            """
        )

    def add(self, position: int, triple: Triple) -> None:
        """Link the triple's head and tail entities (a self-loop or an empty entity is no edge)."""
        head, tail = entity_key(triple.head), entity_key(triple.tail)
        if not head or not tail or head == tail:
            return
        self._db.executemany(
            "INSERT OR IGNORE INTO entities VALUES (?, ?)",
            ((head, triple.head), (tail, triple.tail)),
        )
        self._db.executemany(
            "INSERT INTO adjacency VALUES (?, ?, ?)",
            ((head, tail, position), (tail, head, position)),
        )

    def close(self) -> dict[str, int]:
        """Index the adjacency, commit, and return the counts (entities, edges)."""
        self._db.execute("CREATE INDEX adjacency_node ON adjacency (node, pos)")
        self._db.commit()
        entities = self._db.execute("SELECT COUNT(*) FROM entities").fetchone()[0]
        edges = self._db.execute(
            "SELECT COUNT(*) FROM (SELECT DISTINCT node, other FROM adjacency WHERE node < other)"
        ).fetchone()[0]
        self._db.close()
        return {"entities": int(entities), "edges": int(edges)}


class EntityGraph:
    """Reads graph.sqlite: the edges around given entities, hop by hop, loading only those."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._db = sqlite3.connect(
            f"file:{self.path}?mode=ro&immutable=1", uri=True, check_same_thread=False
        )

    def edges_of(self, nodes: Iterable[str]) -> list[tuple[str, str, int]]:
        """(node, other, triple position) of every edge touching `nodes`, by position."""
        unique = sorted(set(nodes))
        rows: list[tuple[str, str, int]] = []
        for start in range(0, len(unique), IN_CLAUSE):
            chunk = unique[start : start + IN_CLAUSE]
            marks = ",".join("?" * len(chunk))
            rows += self._db.execute(
                f"SELECT node, other, pos FROM adjacency WHERE node IN ({marks})", chunk
            ).fetchall()
        return sorted(rows, key=lambda row: row[2])

    def neighbourhood(self, entities: Iterable[str], hops: int = 1) -> list[tuple[str, str, int]]:
        """The edges within `hops` of the entities (by entity key), walked breadth first."""
        frontier = {entity_key(e) for e in entities}
        seen = set(frontier)
        edges: list[tuple[str, str, int]] = []
        for _ in range(hops):
            if not frontier:
                break
            found = self.edges_of(frontier)
            edges += found
            frontier = {other for _, other, _ in found} - seen
            seen |= frontier
        return edges

    def neighbours(self, entities: Iterable[str], hops: int = 1) -> set[int]:
        """Positions of the triples within `hops` edges of the given entities."""
        return {pos for _, _, pos in self.neighbourhood(entities, hops)}

    def labels(self, keys: Iterable[str]) -> dict[str, str]:
        """The surface form of each entity key found."""
        unique = sorted(set(keys))
        out: dict[str, str] = {}
        for start in range(0, len(unique), IN_CLAUSE):
            chunk = unique[start : start + IN_CLAUSE]
            marks = ",".join("?" * len(chunk))
            out.update(
                self._db.execute(f"SELECT key, label FROM entities WHERE key IN ({marks})", chunk)
            )
        return out

    def subgraph(self, entities: Iterable[str], hops: int = 1):
        """The neighbourhood as a networkx graph (labelled nodes, edges carrying their triple
        positions), built from the loaded rows only."""
        nx = require("networkx", "kirag", "the entity graph")

        graph = nx.Graph()
        edges = self.neighbourhood(entities, hops)
        for node, label in self.labels({n for a, b, _ in edges for n in (a, b)}).items():
            graph.add_node(node, label=label)
        for node, other, pos in edges:
            if graph.has_edge(node, other):
                triples = graph[node][other]["triples"]
                if pos not in triples:
                    triples.append(pos)
            else:
                graph.add_edge(node, other, triples=[pos])
        return graph

    def close(self) -> None:
        self._db.close()
