"""The server says how it isolates its workers, loaders and tools."""

from __future__ import annotations

import pytest

import forkgym


def test_server_reports_its_sandbox_level_and_features() -> None:
    server = forkgym.Server()
    try:
        info = server.connection().server
        assert info.sandbox_level in ("full", "reduced", "basic")
        for always in ("seccomp", "no_new_privs", "rlimits", "close_fds"):
            assert always in info.sandbox_features
        # Every missing feature says why; a full sandbox has nothing missing.
        assert (info.sandbox_level == "full") == (not info.sandbox_fallbacks)
    finally:
        server.close()


def test_limit_reached_is_an_outcome_that_does_not_end_the_episode() -> None:
    assert forkgym.Outcome.LIMIT_REACHED == 14
    assert not forkgym.outcome.ends_episode(forkgym.Outcome.LIMIT_REACHED)


def test_forking_again_after_closing_a_fork_never_meets_the_process_limit() -> None:
    # A closed fork counts against the episode's process limit until it has
    # exited and the zygote has reaped it, after close() returns: a loop that
    # closes a fork and forks again at the limit was refused most of the time.
    server = forkgym.Server(forkgym.ServerOptions(extra_args=("--max-processes", "3")))
    try:
        with forkgym.make("llvm-ic-v0", benchmark="benchmark://forkgym-v0/crc32", server=server) as env:
            env.reset()
            held = env.fork()  # the worker, this fork, and room for one more
            for _ in range(100):
                fork = env.fork()
                fork.close()
            # At the limit for real, the refusal says so and the episode goes on.
            extra = env.fork()
            with pytest.raises(forkgym.ForkgymError, match="reached its process limit") as refused:
                env.fork()
            assert refused.value.outcome == forkgym.Outcome.LIMIT_REACHED
            extra.close()
            held.close()
            assert not env.step(env.action_space.index("-mem2reg"))[3]
    finally:
        server.close()
