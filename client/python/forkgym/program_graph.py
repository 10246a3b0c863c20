"""ProGraML program graphs: the ``Programl`` and ``ProgramlJson`` observations.

The worker builds the graph in C++ (passes/llvm/programl.h says what its
nodes and edges are) and sends it as compact columns (ipc/protocol.capnp's
``ProgramGraph``: node and edge tables and a string table, no JSON); the
extension checks them and this module makes CompilerGym's forms of it:

* ``Programl``: a ``networkx.MultiDiGraph``. Node ``i`` has attributes
  ``type`` (0 instruction, 1 variable, 2 constant), ``text`` (an opcode name
  or a type), ``function``, ``block`` and ``features`` (``{"full_text":
  [text]}``; the root node 0, ``"[external]"``, has none); each edge has
  ``flow`` (0 control, 1 data, 2 call) and ``position``. The graph's
  attributes are ``function`` (``[{"name", "module"}]``) and ``module``
  (``[{"name", "features": {"llvm_target_triple": [..], "llvm_data_layout":
  [..]}}]``), as ProGraML gave them.
* ``ProgramlJson``: the same graph as ``networkx.node_link_data`` makes it,
  with ProGraML's (and networkx < 3.4's) key ``"links"`` for the edges:
  read it back with ``networkx.node_link_graph(doc, edges="links")``.

networkx is imported on first use, not with forkgym.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Any

import numpy as np

from forkgym import _forkgym

#: The key node-link documents keep the edges under (ProGraML's and CompilerGym's).
NODE_LINK_EDGES = "links"


def _bytes(value: Any) -> bytes:
    return value.tobytes() if isinstance(value, np.ndarray) else bytes(value)


@contextlib.contextmanager
def _no_garbage_collection() -> Iterator[None]:
    """Python's cyclic collector paused while a graph's objects are made.

    A graph is a few hundred thousand dicts, none in a cycle; made with the
    collector on, each older-generation collection walks every object made
    so far, which took 80% of a 130k-node graph's time (1.07 s -> 0.22 s)
    and the p99 of a small one (37 ms -> 1.6 ms). It is turned back on only
    if it was on (a caller's gc.disable() stands)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def to_networkx(value: Any) -> Any:
    """A ``Programl`` value (the bytes the worker sent) as a ``networkx.MultiDiGraph``.

    Raises ProtocolMismatch if the bytes are not a well-formed graph."""
    import networkx as nx

    with _no_garbage_collection():
        nodes, edges, attributes = _forkgym.program_graph_parts(_bytes(value))
        graph = nx.MultiDiGraph(**attributes)
        _fill(graph, nodes, edges)
    return graph


def _fill(graph: Any, nodes: list, edges: list) -> None:
    """What ``add_nodes_from(enumerate(nodes))`` then ``add_edges_from(edges)`` make of an
    empty MultiDiGraph, written into its dicts (the structure networkx's
    Graph documents for subclasses: ``_node``, ``_succ``, ``_pred``, keyed
    edge dicts) at 2.5x the speed: the attribute dicts are fresh, so nothing
    need be copied, and the keys are 0, 1, ... per node pair as
    ``new_edge_key`` numbers them. tests/python/test_programl.py checks the
    result against the public methods', so a networkx that changes its
    structure fails a test, not a user."""
    node_attributes, successors, predecessors = graph._node, graph._succ, graph._pred
    node_attributes.update(enumerate(nodes))
    successors.update({node: {} for node in range(len(nodes))})
    predecessors.update({node: {} for node in range(len(nodes))})
    for source, target, data in edges:
        out = successors[source]
        keyed = out.get(target)
        if keyed is None:
            keyed = out[target] = {}
            predecessors[target][source] = keyed
        keyed[len(keyed)] = data


def to_node_link(value: Any) -> dict[str, Any]:
    """A ``Programl`` value as its node-link document (``ProgramlJson``)."""
    import networkx as nx

    graph = to_networkx(value)
    with _no_garbage_collection():
        return nx.node_link_data(graph, edges=NODE_LINK_EDGES)


def empty_graph() -> Any:
    """What a truncated step gives for ``Programl``: a graph with no nodes."""
    import networkx as nx

    return nx.MultiDiGraph()


def empty_node_link() -> dict[str, Any]:
    """What a truncated step gives for ``ProgramlJson``."""
    return {"directed": True, "multigraph": True, "graph": {}, "nodes": [], NODE_LINK_EDGES: []}
