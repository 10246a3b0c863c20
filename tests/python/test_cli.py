"""The command line's frame (dispatch, the console script) and ``describe``.

Commands run as a user runs them: ``python -m forkgym ...`` or the
``forkgym`` script in a child process (the private zygote it spawns is the
test server, from this run's environment), or ``forkgym.cli.main`` in this
process where the output is all that is checked.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import tempfile
import sys
from pathlib import Path

import pytest

from forkgym.cli import COMMANDS, main as cli

SCRIPT = Path(sys.executable).parent / "forkgym"


def forkgym_cli(*arguments: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, "-m", "forkgym", *arguments], capture_output=True, text=True,
                         env=env)
    if check:
        assert run.returncode == 0, run.stderr
    return run


def test_every_command_is_one_row_and_each_row_names_a_module_with_a_command() -> None:
    import importlib

    for name, (module_name, text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        assert hasattr(module, "main") or (hasattr(module, "configure") and hasattr(module, "run")), name
        assert text, name


def test_the_console_script_and_the_module_print_the_same_command_list() -> None:
    assert SCRIPT.exists(), "pip install . installs the forkgym console script"
    script = subprocess.run([str(SCRIPT)], capture_output=True, text=True)
    module = forkgym_cli(check=False)
    assert script.returncode == module.returncode == 2
    assert script.stdout == module.stdout
    for name in COMMANDS:
        assert f"  {name} " in module.stdout


def test_an_unknown_command_says_so_and_lists_the_commands() -> None:
    run = forkgym_cli("serach", check=False)
    assert run.returncode == 2
    assert "unknown command 'serach'" in run.stderr and "  describe " in run.stderr and not run.stdout


def test_each_command_describes_its_arguments() -> None:
    for name in COMMANDS:
        run = subprocess.run([str(SCRIPT), name, "--help"], capture_output=True, text=True)
        assert run.returncode == 0, (name, run.stderr)
        assert "usage:" in run.stdout, name


def test_describe_lists_backends_actions_spaces_datasets_and_the_sandbox(capsys) -> None:
    assert cli(["describe", "llvm", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["sandbox"]["level"] in ("full", "reduced", "basic")
    assert isinstance(info["instructions_retired"]["available"], bool) and info["instructions_retired"]["reason"]
    [llvm] = info["backends"]
    assert llvm["name"] == "llvm" and llvm["version"].startswith("19.")
    flags = {a["flag"]: a for a in llvm["actions"]}
    assert len(llvm["actions"]) == 124, "the test build's fault actions are counted apart, never listed"
    assert flags["-mem2reg"]["runs"] == "function(mem2reg)" and flags["-mem2reg"]["index"] == 103
    assert "unavailable" in flags["-barrier"]
    observations = {o["name"]: o for o in llvm["observations"]}
    assert observations["Autophase"]["shape"] == [56] and observations["Autophase"]["deterministic"]
    assert observations["Runtime"]["runnable_only"] and not observations["Runtime"]["deterministic"]
    assert observations["ObjectTextSizeBytes"]["platform_dependent"]
    rewards = {r["name"] for r in llvm["rewards"]}
    assert {"IrInstructionCountOz", "ObjectTextSizeOz", "Runtime"} <= rewards
    datasets = {d["name"]: d for d in info["datasets"]}
    assert datasets["benchmark://forkgym-v0"]["installed"] and datasets["benchmark://forkgym-v0"]["size"] == 2
    # The state cache's counts (None where the server runs without one).
    cache = info["state_cache"]
    assert cache is None or (cache["capacity_bytes"] > 0 and cache["hits"] >= 0 and cache["used_bytes"] >= 0)
    assert datasets["generator://csmith-v0"]["kind"] == "generator"


def test_describe_prints_tables_a_person_reads() -> None:
    out = forkgym_cli("describe").stdout
    assert out.startswith("sandbox: ")
    assert "instructions retired counted: " in out
    assert "== backend llvm 19." in out and "== backend gcc" in out
    assert "103  -mem2reg" in out
    assert "IrInstructionCountOz" in out and "RUNNABLE-ONLY" in out
    assert "benchmark://forkgym-v0" in out
    assert "state cache: " in out


def test_describe_of_a_backend_the_server_lacks_names_the_ones_it_has() -> None:
    run = forkgym_cli("describe", "clang", check=False)
    assert run.returncode == 1
    assert "no backend 'clang'" in run.stderr and "llvm" in run.stderr


def test_describe_probe_runner_asks_the_runner_on_a_generated_program(capsys) -> None:
    assert cli(["describe", "llvm", "--json", "--probe-runner"]) == 0
    counter = json.loads(capsys.readouterr().out)["instructions_retired"]
    assert counter["how"] == "ran generator://csmith-v0/1"
    # Either a count, or the kernel's reason there is none.
    assert ("instructions" in counter["reason"]) if counter["available"] else counter["reason"]


# ---------------------------------------------------------------- search --

from forkgym.cli.strategies import SearchConfig, Searcher  # noqa: E402


def search_json(capsys, *arguments: str) -> dict:
    assert cli(["search", "--json", *arguments]) == 0
    return json.loads(capsys.readouterr().out)


def replay_return(uri: str, actions: list[int], reward: str = "IrInstructionCountOz") -> float:
    import forkgym

    with forkgym.make("llvm-v0", reward_space=reward) as env:
        env.reset(benchmark=uri)
        if actions:
            env.multistep(actions)
        return env.episode_reward


def test_greedy_search_writes_states_that_validate_accepts_and_keeps_no_no_op_pass(capsys, tmp_path) -> None:
    states = tmp_path / "states.csv"
    out = search_json(capsys, "--strategy", "greedy", "benchmark://forkgym-v0/crc32", "benchmark://forkgym-v0/small",
                      "--output", str(states), "--check-opt")
    assert out["strategy"] == "greedy" and out["reward"] == "IrInstructionCountOz"
    for r in out["results"]:
        assert r["stop"] == "no improvement"
        assert r["opt_check"] == "same IR hash", "the server's opt replays the command line to the episode's IR"
        assert r["actions"] and r["reward"] > 0 and r["walltime"] > 0
        assert r["final_cost"] < r["oz_cost"] < r["start_cost"]
        assert r["vs_oz"] == pytest.approx(r["oz_cost"] / r["final_cost"])
        assert replay_return(r["benchmark"], r["actions"]) == pytest.approx(r["reward"])
        # Pruned: leaving out any kept pass makes the result worse.
        for i in range(len(r["actions"])):
            assert replay_return(r["benchmark"], r["actions"][:i] + r["actions"][i + 1:]) < r["reward"] - 1e-9
    assert out["geomean_vs_oz"] == pytest.approx(
        (out["results"][0]["vs_oz"] * out["results"][1]["vs_oz"]) ** 0.5)
    lines = states.read_text().splitlines()
    assert lines[0] == "benchmark,reward,walltime,commandline,benchmark_hash" and len(lines) == 3
    assert all(float(line.split(",")[2]) > 0 for line in lines[1:]), "each state records the search's wall time"
    checked = forkgym_cli("validate", "--env", "llvm-ic-v0", str(states))
    assert checked.stdout.count("✅") == 2 and "2 of 2 states valid" in checked.stdout


@pytest.mark.parametrize("jobs", ["1", "2", "3"])
def test_pruning_drops_the_passes_that_change_nothing(capsys, jobs) -> None:
    # -mem2reg twice: the second finds nothing to promote; -barrier is unavailable (a no-op).
    # With several jobs, trials run in batches and a removal makes the rest of
    # its batch stale: the result must be the one a single job reaches.
    policy = Path(__file__).with_name("cli_policies.py")
    out = search_json(capsys, "--policy", f"{policy}:mem2reg_twice_then_barrier", "--jobs", jobs,
                      "benchmark://forkgym-v0/crc32")
    [r] = out["results"]
    assert r["stop"] == "the policy returned"
    assert len(r["found"]) == 4 and r["pruned"] == 2
    assert r["flags"] == ["-mem2reg", "-instcombine"]
    assert replay_return(r["benchmark"], r["actions"]) == pytest.approx(r["reward"])
    no_prune = search_json(capsys, "--policy", f"{policy}:mem2reg_twice_then_barrier", "--no-prune",
                           "benchmark://forkgym-v0/crc32")["results"][0]
    assert no_prune["actions"] == no_prune["found"] == r["found"]
    assert no_prune["reward"] == pytest.approx(r["reward"])


@pytest.mark.parametrize("jobs", ["1", "3"])
def test_pruning_a_sequence_longer_than_an_episodes_process_limit_keeps_a_bounded_number_of_forks(capsys, jobs) -> None:
    # Pruning once held a fork of every prefix: 50 passes met the 32-process
    # limit of an episode on a runnable benchmark (its programs run under it),
    # and the benchmark's result was a fork error.
    policy = Path(__file__).with_name("cli_policies.py")
    [r] = search_json(capsys, "--policy", f"{policy}:fifty_passes", "--jobs", jobs,
                      "generator://csmith-v0/1")["results"]
    assert "error" not in r, r.get("error")
    assert len(r["found"]) == 50 and 0 < len(r["actions"]) < 50
    assert replay_return(r["benchmark"], r["actions"]) == pytest.approx(r["reward"])
    assert r["reward"] >= replay_return(r["benchmark"], r["found"]) - 1e-9
    for i in range(len(r["actions"])):
        assert replay_return(r["benchmark"], r["actions"][:i] + r["actions"][i + 1:]) < r["reward"] - 1e-9


def test_a_stale_pruning_trial_is_stopped_at_once_and_is_no_failure() -> None:
    # A removal makes the trials started below it stale; each is stopped by
    # killing its worker mid-step (here a step that would never end) and is
    # neither waited for nor reported as a failed step.
    import threading

    import forkgym
    from forkgym.cli.strategies import SearchConfig, SearchResult, Searcher, _Trial

    result = SearchResult(benchmark="", actions=[], found=[], reward=0.0, stop="", walltime=0.0)
    with Searcher(SearchConfig(jobs=2)) as searcher, forkgym.make("llvm-v0") as env:
        env.reset(benchmark="benchmark://forkgym-v0/crc32")
        hang = env.action_space.index("-forkgym-test-hang")
        token = _Trial()
        returned: list[object] = []
        assert token.running(env.worker_pid)
        before = env._native.requests_started
        stepping = threading.Thread(target=lambda: returned.append(searcher._step(env, [hang], result, token.cancelled)))
        stepping.start()
        while env._native.requests_started == before:  # the worker has the step
            os.sched_yield()
        token.cancel()
        stepping.join(60)  # only a guard: a step that hangs makes this fail, not wait
        assert not stepping.is_alive(), "the cancelled step went on"
        token.finished()
        assert returned == [None] and result.failures == [] and result.steps == 1
        assert not _Trial().cancelled.is_set()
        called_off = _Trial()
        called_off.cancel()
        assert not called_off.running(env.worker_pid), "a trial called off before its step does not start it"


def test_greedy_with_two_jobs_finds_what_one_job_finds_and_reports_its_step_cap(capsys) -> None:
    runs = [search_json(capsys, "--strategy", "greedy", "--steps", "3", "--jobs", jobs, "generator://csmith-v0/1")
            for jobs in ("1", "2")]
    one, two = (run["results"][0] for run in runs)
    assert runs[1]["forks_at_once"] == 2
    assert one["found"] == two["found"] and one["actions"] == two["actions"]
    assert one["reward"] == pytest.approx(two["reward"])
    assert one["stop"] == "step cap (3) reached while still improving" and len(one["found"]) == 3
    assert one["steps"] > 3 * 100, "every available action is tried at each step"


def test_random_and_beam_search_generated_programs_reproducibly(capsys) -> None:
    sample = ["generator://llvm-stress-v0", "--sample", "2", "--seed", "5"]
    first = search_json(capsys, "--strategy", "random", "--episodes", "6", "--steps", "10", *sample)
    again = search_json(capsys, "--strategy", "random", "--episodes", "6", "--steps", "10", "--jobs", "2", *sample)
    assert [r["benchmark"] for r in first["results"]] == [r["benchmark"] for r in again["results"]]
    assert all(r["benchmark"].startswith("generator://llvm-stress-v0/") for r in first["results"])
    assert [r["actions"] for r in first["results"]] == [r["actions"] for r in again["results"]]
    assert all(r["stop"] == "6 episodes of 10 steps" for r in first["results"])
    beam = search_json(capsys, "--strategy", "beam", "--beam-width", "2", "--steps", "2", "generator://csmith-v0/7")
    [r] = beam["results"]
    assert r["reward"] > 0 and len(r["found"]) <= 2
    assert replay_return(r["benchmark"], r["actions"]) == pytest.approx(r["reward"])
    greedy = search_json(capsys, "--strategy", "greedy", "--steps", "2", "generator://csmith-v0/7")["results"][0]
    assert r["reward"] >= greedy["reward"] - 1e-9, "a beam of 2 keeps greedy's choice among its own"


def test_trying_an_action_rewards_as_a_step_of_a_fork_and_keeps_only_a_fork_that_beats_the_bar() -> None:
    import forkgym

    with forkgym.make("llvm-v0", reward_space="IrInstructionCountOz") as env:
        env.reset(benchmark="benchmark://forkgym-v0/crc32")
        mem2reg, dce = env.action_space.index("-mem2reg"), env.action_space.index("-dce")
        stepped = env.fork()
        _, expected, _, _, _ = stepped.step(mem2reg)
        stepped.close()
        reward, ended, fork = env._try_action(mem2reg)  # no bar given: nothing is kept
        assert reward == expected and ended is None and fork is None
        # Kept only above the bar: before + reward > keep_above, or equal with keep_ties.
        assert env._try_action(mem2reg, 1.0, 1.0 + expected)[2] is None
        assert env._try_action(mem2reg, 1.0, 1.0 + expected, keep_ties=True)[2] is not None  # closed when collected
        reward, _, fork = env._try_action(mem2reg, 0.0, expected - 1e-6)
        kept = env._adopt_tried(fork, mem2reg, reward)
        try:
            assert kept.actions == env.actions + [mem2reg] and kept.episode_reward == env.episode_reward + reward
            assert kept.observation["IrSha1"] != env.observation["IrSha1"]
            assert kept.step(dce)[4]["action_had_no_effect"] is not None, "the kept fork is a live episode"
        finally:
            kept.close()
        # A fork that is not kept is closed at once: far more tries than the
        # episode's process limit (32) allows live forks.
        assert all(env._try_action(dce)[0] is not None for _ in range(80))
        assert env.actions == [] and env.episode_reward == 0.0, "the episode tried from is unchanged"


def test_a_crashing_try_says_what_a_step_would_and_the_episode_goes_on() -> None:
    import forkgym

    with forkgym.make("llvm-v0", reward_space="IrInstructionCountOz") as env:
        env.reset(benchmark="benchmark://forkgym-v0/crc32")
        reward, ended, fork = env._try_action(env.action_space.index("-forkgym-test-segfault"), 0.0, -math.inf, True)
        assert reward is None and fork is None
        assert ended["outcome"].name == "CRASHED" and "opt" in ended["reproducer"].commandline
        assert env._try_action(env.action_space.index("-mem2reg"))[0] > 0
        with pytest.raises(ValueError, match="reward space"):
            forkgym.make("llvm-v0", benchmark="benchmark://forkgym-v0/crc32")._try_action(0)


def test_a_search_thread_and_the_forks_it_steps_keep_to_one_core_for_a_round_and_give_it_back() -> None:
    import threading

    import forkgym
    from forkgym.cli.strategies import _SharedCore, _cores_for

    allowed = os.sched_getaffinity(0)
    assert _cores_for(1) == [] and _cores_for(len(allowed) + 1) == []
    if len(allowed) > 1:
        assert sorted(_cores_for(2)) == sorted(set(_cores_for(2))) and set(_cores_for(2)) <= allowed
    core = max(allowed)
    seen: dict[str, object] = {}
    with forkgym.make("llvm-v0", reward_space="IrInstructionCountOz") as env:
        env.reset(benchmark="benchmark://forkgym-v0/crc32")
        base = env.fork()

        def round_on_a_core() -> None:
            with _SharedCore([core], 0, base) as shared:
                seen["thread"] = os.sched_getaffinity(0)
                seen["base"] = os.sched_getaffinity(base.worker_pid)
                reward, _, fork = base._try_action(env.action_space.index("-mem2reg"), 0.0, -math.inf, True)
                kept = base._adopt_tried(fork, env.action_space.index("-mem2reg"), reward)
                seen["fork"] = os.sched_getaffinity(kept.worker_pid)
                shared.release(kept)
                seen["released"] = os.sched_getaffinity(kept.worker_pid)
                seen["reward"] = kept.step(env.action_space.index("-dce"))[1] is not None  # a pinned worker steps
                kept.close()
            seen["after"] = os.sched_getaffinity(0)

        thread = threading.Thread(target=round_on_a_core)
        thread.start()
        thread.join()
        base.close()
    assert seen["thread"] == seen["base"] == seen["fork"] == {core}
    assert seen["released"] == seen["after"] == allowed and seen["reward"]
    assert os.sched_getaffinity(0) == allowed, "only the round's thread was pinned"


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_crashing_or_hanging_candidate_is_counted_with_its_reproducer_never_dropped(jobs) -> None:
    class WithFaults(Searcher):
        def candidates(self, env):
            return super().candidates(env)[:5] + [env.action_space.index("-forkgym-test-segfault"),
                                                   env.action_space.index("-forkgym-test-hang")]

    with WithFaults(SearchConfig(strategy="greedy", steps=1, step_timeout=1.0, jobs=jobs)) as searcher:
        result = searcher.search("benchmark://forkgym-v0/crc32")
    outcomes = sorted(f.outcome for f in result.failures)
    assert outcomes == ["crashed", "timed_out"]
    assert all("opt" in f.reproducer for f in result.failures)
    assert result.found and result.reward > 0, "the search goes on past its failed candidates"


def test_the_time_budget_stops_a_search_and_keeps_its_best(capsys) -> None:
    out = search_json(capsys, "--strategy", "random", "--episodes", "1000", "--steps", "5", "--time-budget", "0.001",
                      "benchmark://forkgym-v0/small")
    [r] = out["results"]
    assert r["stop"].endswith("time budget (0.001 s)") and "of 1000 episodes" in r["stop"]


def test_search_for_runtime_on_a_runnable_program_keeps_its_noisy_result_unpruned(capsys) -> None:
    out = search_json(capsys, "--reward", "Runtime", "--strategy", "random", "--episodes", "2", "--steps", "2",
                      "generator://csmith-v0/1")
    [r] = out["results"]
    assert r["actions"] == r["found"], "Runtime is not deterministic: replays without a pass prove nothing"
    assert r["start_cost"] > 0 and r["final_cost"] > 0, "the mean of the program's measured run times, in seconds"
    assert r["oz_cost"] is None and r["vs_oz"] is None and out["geomean_vs_oz"] is None


def test_search_says_what_is_wrong_with_its_arguments(capsys) -> None:
    assert cli(["search", "generator://csmith-v0"]) == 1
    assert "unbounded: give --sample N" in capsys.readouterr().err
    assert cli(["search", "--policy", "nosuchmodule:f", "benchmark://forkgym-v0/small"]) == 1
    assert "cannot import nosuchmodule" in capsys.readouterr().err
    assert cli(["search", "--reward", "Bogus", "benchmark://forkgym-v0/small"]) == 1
    assert "Bogus" in capsys.readouterr().out


def test_search_over_a_sample_of_gcc_c_torture_programs_validates() -> None:
    from conftest import SETUP_SITE_DATA

    env = dict(os.environ)
    if SETUP_SITE_DATA is None:
        env.pop("FORKGYM_SITE_DATA", None)
    else:
        env["FORKGYM_SITE_DATA"] = SETUP_SITE_DATA
    with tempfile.TemporaryDirectory() as directory:
        states = Path(directory) / "torture.csv"
        run = forkgym_cli("search", "--strategy", "greedy", "--steps", "4", "--jobs", "2", "--sample", "2",
                          "--seed", "3", "benchmark://gcc-c-torture-v0", "--output", str(states), env=env)
        assert run.stdout.count("benchmark://gcc-c-torture-v0/") == 2 and "geomean" in run.stdout
        assert "forkgym validate --env llvm-ic-v0" in run.stderr
        checked = forkgym_cli("validate", "--env", "llvm-ic-v0", str(states), env=env)
        assert "2 of 2 states valid" in checked.stdout


# ----------------------------------------------------------- leaderboard --


def test_the_leaderboard_scores_validated_results_by_their_geomean_against_oz(capsys, tmp_path) -> None:
    import matplotlib.image  # scripts/setup installs the plots extra

    png = tmp_path / "board.png"
    states = tmp_path / "board.csv"
    assert cli(["leaderboard", "--json", "--strategy", "greedy", "--plot", str(png), "--output", str(states),
                "benchmark://forkgym-v0"]) == 0
    board = json.loads(capsys.readouterr().out)
    assert board["protocol"] == "llvm-ic-v0" and board["policy"] == "greedy" and board["invalid"] == 0
    rows = {r["benchmark"]: r for r in board["results"]}
    assert set(rows) == {"benchmark://forkgym-v0/crc32", "benchmark://forkgym-v0/small"}
    for r in rows.values():
        assert r["valid"] and r["ratio"] == pytest.approx(r["oz_cost"] / r["final_cost"]) and r["ratio"] > 1
    assert board["geomean_vs_oz"] == pytest.approx(math.prod(r["ratio"] for r in rows.values()) ** 0.5)
    assert board["mean_walltime"] == pytest.approx(sum(r["walltime"] for r in rows.values()) / 2)
    height, width, _ = matplotlib.image.imread(png).shape
    assert width >= 600 and height >= 400
    assert len(states.read_text().splitlines()) == 3


def test_the_leaderboard_runs_your_policy_on_generated_programs(capsys) -> None:
    policy = Path(__file__).with_name("cli_policies.py")
    assert cli(["leaderboard", "--json", "--policy", f"{policy}:mem2reg_twice_then_barrier",
                "generator://llvm-stress-v0", "--sample", "2", "--seed", "2"]) == 0
    board = json.loads(capsys.readouterr().out)
    assert board["policy"].endswith(":mem2reg_twice_then_barrier") and board["benchmarks"] == 2
    assert all(r["valid"] and r["benchmark"].startswith("generator://llvm-stress-v0/") for r in board["results"])


def test_a_policy_whose_result_does_not_replay_is_reported_and_scored_as_oz(capsys) -> None:
    policy = Path(__file__).with_name("cli_policies.py")
    assert cli(["leaderboard", "--policy", f"{policy}:sroa_then_crash", "benchmark://forkgym-v0/small"]) == 1
    out = capsys.readouterr().out
    assert "1.000x" in out and "NO: " in out and "crashed" in out.lower()
    assert "(1 not validated, scored 1.000x)" in out


def test_a_plot_without_matplotlib_names_the_extra_to_install(capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    assert cli(["leaderboard", "--plot", "x.png", "benchmark://forkgym-v0/small"]) == 1
    err = capsys.readouterr().err
    assert "pip install 'forkgym[plots]'" in err and "matplotlib" in err


def test_the_leaderboard_over_gcc_c_torture_programs() -> None:
    from conftest import SETUP_SITE_DATA

    env = dict(os.environ)
    if SETUP_SITE_DATA is None:
        env.pop("FORKGYM_SITE_DATA", None)
    else:
        env["FORKGYM_SITE_DATA"] = SETUP_SITE_DATA
    run = forkgym_cli("leaderboard", "--strategy", "greedy", "--steps", "3", "--jobs", "2",
                      "benchmark://gcc-c-torture-v0", "--sample", "3", "--seed", "4", env=env)
    assert run.stdout.count("benchmark://gcc-c-torture-v0/") == 3
    assert "(0 not validated, scored 1.000x)" in run.stdout
