"""forkgym determinism: states replayed in fresh server processes with other
heap layouts, compared by BitcodeSha1 (use-list order included) after every
step. -sroa -newgvn on csmith program 2 is known to differ across processes
(test_cross_process.py), a plain sequence is not."""

from __future__ import annotations

import json

from forkgym.__main__ import main

NONDETERMINISTIC = ("generator://csmith-v0/2", "-sroa -newgvn")
DETERMINISTIC = ("generator://csmith-v0/2", "-sroa -instcombine -simplifycfg -gvn")


def _write_states(path, rows) -> None:
    lines = ["benchmark,reward,walltime,commandline"]
    lines += [f"{uri},,0.0,opt {flags} input.bc -o output.bc" for uri, flags in rows]
    path.write_text("\n".join(lines) + "\n")


def test_determinism_flags_the_newgvn_state_at_its_step_and_passes_a_deterministic_one(shared_tmp_path, capsys):
    states = shared_tmp_path / "states.csv"
    _write_states(states, [NONDETERMINISTIC, DETERMINISTIC])
    status = main(["determinism", str(states), "--processes", "3", "--json"])
    results = json.loads(capsys.readouterr().out)
    assert status == 1  # one state is nondeterministic
    flagged, passed = results
    assert not flagged["deterministic"] and flagged["error"] is None, flagged
    assert flagged["divergent_step"] == 2 and flagged["divergent_pass"] == "-newgvn", flagged
    assert flagged["distinct_hashes"] >= 2
    assert flagged["ir_differs"] is False  # only the use-list order differs
    assert passed["deterministic"] and passed["divergent_step"] is None, passed


def test_determinism_exits_zero_when_every_state_agrees(shared_tmp_path, capsys):
    states = shared_tmp_path / "states.csv"
    _write_states(states, [DETERMINISTIC])
    assert main(["determinism", str(states), "--processes", "2"]) == 0
    out = capsys.readouterr().out
    assert "1 of 1 states deterministic across 2 processes" in out, out


def test_determinism_needs_two_processes(shared_tmp_path, capsys):
    states = shared_tmp_path / "states.csv"
    _write_states(states, [DETERMINISTIC])
    assert main(["determinism", str(states), "--processes", "1"]) == 1
    assert "at least 2" in capsys.readouterr().err


def test_determinism_on_a_c_torture_program(shared_tmp_path, capsys, monkeypatch):
    # The set-up installed gcc-c-torture-v0; the processes determinism starts
    # get the set-up's site data (conftest.py gives this run its own).
    from conftest import SETUP_SITE_DATA

    if SETUP_SITE_DATA is None:
        monkeypatch.delenv("FORKGYM_SITE_DATA")
    else:
        monkeypatch.setenv("FORKGYM_SITE_DATA", SETUP_SITE_DATA)
    states = shared_tmp_path / "states.csv"
    _write_states(states, [("benchmark://gcc-c-torture-v0/execute/arith-rand", "-sroa -instcombine -gvn")])
    status = main(["determinism", str(states), "--processes", "2", "--json"])
    (result,) = json.loads(capsys.readouterr().out)
    assert status == 0 and result["deterministic"] and result["error"] is None, result
