"""The server says how it isolates its workers, loaders and tools."""

from __future__ import annotations

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
