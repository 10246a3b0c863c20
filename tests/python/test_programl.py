"""The ProGraML observations (``Programl``, ``ProgramlJson``): built by the
worker in C++ (passes/llvm/programl.h), sent as compact columns, presented
as a networkx MultiDiGraph and as its node-link document. Checked for type,
schema, determinism, the node and edge counts derived by hand on a ~10-line
C function (the derivation is tests/passes/programl_test.cc's, on the same
IR), and the properties every graph has."""

from __future__ import annotations

import collections
import json

import networkx as nx
import pytest

import forkgym
from forkgym import program_graph

SUM_SQUARES_C = """\
int calls;
int weight(int);

int square(int x) {
  calls++;
  return weight(x * x);
}

int sum_squares(int n) {
  int total = 0;
  for (int i = 0; i < n; ++i)
    total += square(i);
  return total;
}
"""

# Per kind, as derived by hand in tests/passes/programl_test.cc
# (Programl.HandCheckedFunctionHasTheCountsDerivedByHand) on what clang-19
# -O0 makes of SUM_SQUARES_C after -mem2reg:
#   instructions 19: the root, square's 6, weight's declaration node,
#     sum_squares' 11;
#   variables 15: one per use of an instruction's result (4 in square, 9 in
#     sum_squares) and one per used argument (%x, %n);
#   constants 3: @calls, i32 1, i32 0;
#   control 16: 11 within blocks, 5 between sum_squares' blocks;
#   data 35: 13 uses and defs in square, 22 in sum_squares;
#   call 10: root <-> each of 3 functions (6), and each of the 2 calls to
#     its callee's entry and back from its return (4).
NODES_BY_TYPE = {0: 19, 1: 15, 2: 3}
EDGES_BY_FLOW = {0: 16, 1: 35, 2: 10}


@pytest.fixture
def sum_squares(shared_tmp_path) -> forkgym.Benchmark:
    path = shared_tmp_path / "sum_squares.c"
    path.write_text(SUM_SQUARES_C)
    path.chmod(0o644)
    return forkgym.make_benchmark(path)


def kinds(graph: nx.MultiDiGraph) -> tuple[dict[int, int], dict[int, int]]:
    nodes = collections.Counter(data["type"] for _, data in graph.nodes(data=True))
    edges = collections.Counter(data["flow"] for _, _, data in graph.edges(data=True))
    return dict(nodes), dict(edges)


def described(env: forkgym.LlvmEnv, name: str):
    rows = {row.name: row for row in env.description.observations}
    assert name in rows, f"{name} is not a row of the server's observation table"
    return rows[name]


def test_programl_is_a_multidigraph_with_the_counts_derived_by_hand(sum_squares) -> None:
    with forkgym.make("llvm-v0") as env:
        env.reset(benchmark=sum_squares)
        env.step(env.action_space["-mem2reg"])
        row = described(env, "Programl")
        assert row.type == "bytes" and row.form == "programGraph"
        assert row.deterministic and not row.platform_dependent
        graph = env.observation["Programl"]
        assert isinstance(graph, nx.MultiDiGraph)
        assert graph in env.observation.spaces["Programl"].space
        assert kinds(graph) == (NODES_BY_TYPE, EDGES_BY_FLOW)
        assert graph.number_of_nodes() == 37 and graph.number_of_edges() == 61
        # The root first; ProGraML's attribute names and values.
        assert graph.nodes[0] == {"type": 0, "text": "[external]", "function": 0, "block": 0}
        texts = {data["features"]["full_text"][0]: data for n, data in graph.nodes(data=True) if n}
        assert all(set(data) == {"type", "text", "function", "block", "features"} for data in texts.values())
        declaration = texts[""]
        assert declaration["text"] == "; undefined function" and declaration["function"] == 1
        assert {data["text"] for data in texts.values() if data["type"] == 1} == {"i32", "i1"}
        assert all(set(data) == {"flow", "position"} for _, _, data in graph.edges(data=True))
        assert [f["name"] for f in graph.graph["function"]] == ["square", "weight", "sum_squares"]
        module = graph.graph["module"][0]
        assert module["features"]["llvm_target_triple"] == [env.observation["Ir"].split('target triple = "')[1]
                                                           .split('"')[0]]
        # The same state, the same graph.
        again = env.observation.Programl()
        assert nx.node_link_data(again, edges="links") == nx.node_link_data(graph, edges="links")


def test_programl_json_is_the_node_link_document_of_the_same_graph(sum_squares) -> None:
    with forkgym.make("llvm-v0") as env:
        env.reset(benchmark=sum_squares)
        row = described(env, "ProgramlJson")
        assert row.type == "bytes" and row.form == "programGraphNodeLink"
        assert row.deterministic and not row.platform_dependent
        graph = env.observation["Programl"]
        document = env.observation["ProgramlJson"]
        assert isinstance(document, dict) and document in env.observation.spaces["ProgramlJson"].space
        assert set(document) == {"directed", "multigraph", "graph", "nodes", "links"}
        assert document["directed"] and document["multigraph"]
        assert json.loads(json.dumps(document)) == document  # plain JSON types
        assert document == nx.node_link_data(graph, edges="links")
        back = nx.node_link_graph(document, edges="links")
        assert isinstance(back, nx.MultiDiGraph)
        assert list(back.nodes(data=True)) == list(graph.nodes(data=True))
        assert list(back.edges(keys=True, data=True)) == list(graph.edges(keys=True, data=True))
        assert env.observation.ProgramlJson() == document


def test_every_instruction_is_a_node_and_every_call_has_call_edges(env, data_dir) -> None:
    env.reset(benchmark=f"file://{data_dir}/small.c")
    for actions in ([], ["-mem2reg", "-inline", "-simplifycfg"]):  # as loaded, then optimised
        env.multistep([env.action_space[flag] for flag in actions])
        graph = env.observation["Programl"]
        instructions = [n for n, data in graph.nodes(data=True) if data["type"] == 0]
        declarations = [n for n in instructions if graph.nodes[n]["text"] == "; undefined function"]
        assert graph.nodes[0]["text"] == "[external]" and graph.nodes[0]["type"] == 0
        assert len(instructions) == 1 + env.observation["IrInstructionCount"] + len(declarations)
        assert declarations, "small.c calls library functions"
        calls = [n for n in instructions if graph.nodes[n]["text"] == "call"]
        assert calls
        for call in calls:
            callees = [v for _, v, data in graph.out_edges(call, data=True) if data["flow"] == 2]
            returns = [u for u, _, data in graph.in_edges(call, data=True) if data["flow"] == 2]
            assert callees and returns, graph.nodes[call]["features"]["full_text"][0]
        # The root calls every function's entry.
        assert sum(1 for _, _, data in graph.out_edges(0, data=True) if data["flow"] == 2) == len(
            graph.graph["function"])


def test_programl_offline_and_by_call_is_the_envs_graph(tmp_path, data_dir) -> None:
    with forkgym.make("llvm-v0") as env:
        env.reset(benchmark=f"file://{data_dir}/small.c")
        graph = env.observation.Programl()
        document = env.observation["ProgramlJson"]
        path = env.write_bitcode(tmp_path / "small.bc")
    offline = forkgym.compute_observation("Programl", path)
    assert isinstance(offline, nx.MultiDiGraph)
    assert list(offline.nodes(data=True)) == list(graph.nodes(data=True))
    assert list(offline.edges(keys=True, data=True)) == list(graph.edges(keys=True, data=True))
    assert forkgym.compute_observation("ProgramlJson", path) == document


def test_the_graph_is_what_networkxs_public_methods_build(env, data_dir) -> None:
    """to_networkx writes networkx's dicts directly (for speed): the graph
    must be the one add_nodes_from and add_edges_from make, parallel edges'
    keys, predecessors and degrees included."""
    from forkgym import _forkgym

    env.reset(benchmark=f"file://{data_dir}/small.c")
    raw = env._request([], ["Programl"], []).observations[0]
    fast = program_graph.to_networkx(raw)
    nodes, edges, attributes = _forkgym.program_graph_parts(raw.tobytes())
    public = nx.MultiDiGraph(**attributes)
    public.add_nodes_from(enumerate(nodes))
    public.add_edges_from(edges)
    assert fast.graph == public.graph
    assert list(fast.nodes(data=True)) == list(public.nodes(data=True))
    assert list(fast.edges(keys=True, data=True)) == list(public.edges(keys=True, data=True))
    assert list(fast.in_edges(keys=True, data=True)) == list(public.in_edges(keys=True, data=True))
    assert dict(fast.in_degree()) == dict(public.in_degree()) and dict(fast.out_degree()) == dict(public.out_degree())
    assert any(len(keys) > 1 for _, targets in fast.adjacency() for keys in targets.values()), "parallel edges"
    assert nx.utils.graphs_equal(fast, public)
    fast.add_edge(0, 1)  # still an ordinary graph
    assert fast.number_of_edges(0, 1) == public.number_of_edges(0, 1) + 1


def test_building_a_graph_leaves_the_garbage_collector_as_it_found_it(env, data_dir) -> None:
    import gc

    env.reset(benchmark=f"file://{data_dir}/small.c")
    raw = env._request([], ["Programl"], []).observations[0]
    assert gc.isenabled()
    program_graph.to_node_link(raw)
    assert gc.isenabled()
    gc.disable()
    try:
        program_graph.to_networkx(raw)
        assert not gc.isenabled()  # the caller's choice stands
    finally:
        gc.enable()
    with pytest.raises(forkgym.ProtocolMismatch):
        program_graph.to_networkx(b"abc")
    assert gc.isenabled()  # and after an error


def test_malformed_graph_bytes_are_a_protocol_error_not_a_graph() -> None:
    with pytest.raises(forkgym.ProtocolMismatch, match="not a whole number of message words"):
        program_graph.to_networkx(b"abc")
    with pytest.raises(forkgym.ProtocolMismatch, match="not well formed"):
        program_graph.to_networkx(b"\xff" * 16)
    with pytest.raises(forkgym.ProtocolMismatch, match="not a whole number"):
        program_graph.to_node_link(b"")


def test_a_truncated_step_gives_an_empty_graph() -> None:
    with forkgym.make("llvm-v0") as env:
        specs = env.observation.spaces
        empty = specs["Programl"].default()
        assert isinstance(empty, nx.MultiDiGraph) and empty.number_of_nodes() == 0
        assert empty in specs["Programl"].space and empty is not specs["Programl"].default()
        assert specs["ProgramlJson"].default() == {"directed": True, "multigraph": True, "graph": {}, "nodes": [],
                                                   "links": []}
