"""Policies for the command line's tests (``forkgym search --policy FILE.py:NAME``)."""


def mem2reg_twice_then_barrier(env) -> None:
    for flag in ("-mem2reg", "-mem2reg", "-instcombine", "-barrier"):
        env.step(env.action_space.index(flag))


def sroa_then_crash(env) -> None:
    env.step(env.action_space.index("-sroa"))
    env.step(env.action_space.index("-forkgym-test-segfault"))


def fifty_passes(env) -> None:
    """More passes than an episode may hold forks (32 processes): most are no-ops
    by the time they run, a few are not."""
    flags = ["-mem2reg", "-instcombine", "-simplifycfg", "-dce", "-gvn", "-licm", "-early-cse", "-adce", "-sroa",
             "-reassociate"]
    for i in range(50):
        env.step(env.action_space.index(flags[(i * 7) % len(flags)]))
