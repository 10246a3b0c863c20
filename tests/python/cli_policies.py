"""Policies for the command line's tests (``forkgym search --policy FILE.py:NAME``)."""


def mem2reg_twice_then_barrier(env) -> None:
    for flag in ("-mem2reg", "-mem2reg", "-instcombine", "-barrier"):
        env.step(env.action_space.index(flag))


def sroa_then_crash(env) -> None:
    env.step(env.action_space.index("-sroa"))
    env.step(env.action_space.index("-forkgym-test-segfault"))
