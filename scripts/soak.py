"""Soak test: thousands of episodes against one shared forkgym zygote.

Starts ``forkgym-test-server --socket`` with a few benchmarks preloaded (csmith
and llvm-stress programs, tests/data), then runs N episodes split across
several concurrent client processes. Each episode picks a random benchmark,
takes random actions in a few steps, sometimes forks and steps the copy,
and sometimes injects a crash (segfault, abort, stack overflow, sandbox
violation, out of memory, hang). At the end it reports:

  episodes, crashes injected and contained (the episode ended with the
  expected outcome and everything else carried on), unexpected errors,
  zygote RSS and descriptor count at start and end, processes still alive
  (the zygote's children beyond its spare workers), /dev/shm and
  /tmp/forkgym-* entries left behind,

and exits non-zero if anything leaked, RSS grew by 5 % or more (long runs),
or an unexpected error happened.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
# The crashes are injected with the test-only actions, which only the test
# build of the server has (the product forkgym-server refuses them).
TEST_SERVER = ROOT / "build" / "forkserver" / "forkgym-test-server"

# flag -> the outcome the episode must end with
CRASHES = {
    "-forkgym-test-segfault": "CRASHED",
    "-forkgym-test-abort": "CRASHED",
    "-forkgym-test-stack-overflow": "CRASHED",
    "-forkgym-test-open": "SANDBOX_VIOLATION",
    "-forkgym-test-fork-bomb": "SANDBOX_VIOLATION",
    "-forkgym-test-oom": "OUT_OF_MEMORY",
    "-forkgym-test-hang": "TIMED_OUT",
}


# A benchmark with a run configuration (csmith's) runs in a worker that may
# open files and fork, to link and run its program: there the compiler's
# open() is denied by Landlock (EACCES) and a fork bomb stops at the
# runnable episode's process limit (32, passes/runner.h), and the episode
# goes on. The fault matrix checks
# both profiles row by row; the soak checks each is contained.
RUNNABLE = ("generator://csmith-v0/",)
CONTAINED_BY_THE_RUNNABLE_PROFILE = {"-forkgym-test-open", "-forkgym-test-fork-bomb"}


def benchmarks(generated: int) -> list[str]:
    uris = [f"file://{DATA / 'crc32.c'}", f"file://{DATA / 'small.c'}"]
    uris += [f"generator://csmith-v0/{seed}" for seed in range(generated)]
    uris += [f"generator://llvm-stress-v0/{seed}" for seed in range(generated)]
    return uris


def proc_children(pid: int) -> set[int]:
    children: set[int] = set()
    task_dir = Path(f"/proc/{pid}/task")
    for task in task_dir.iterdir():
        try:
            children |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            pass
    return children


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in proc_children(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def zygote_state(pid: int) -> dict:
    children = len(descendants(pid))
    fds = fd_count(pid)
    # Once every client has gone, the zygote's children are its spare
    # workers, each held by 3 descriptors (pidfd, region, doorbell) until a
    # reset takes it: what remains is the zygote's own.
    return {"rss_kb": rss_kb(pid), "fds": fds, "children": children, "fds_not_spares": fds - 3 * children}


def leftovers() -> set[str]:
    # sem.mp-*: Python multiprocessing semaphores of other programs on the
    # machine; neither forkgym (memfds only) nor this script (subprocess
    # clients) creates any.
    shm = {f"/dev/shm/{n}" for n in os.listdir("/dev/shm") if not n.startswith("sem.mp-")}
    tmp = {f"/tmp/{n}" for n in os.listdir("/tmp") if n.startswith("forkgym-") and not n.startswith("forkgym-soak")}
    return shm | tmp


def client(index: int, socket_path: str, episodes: int, uris: list[str], crash_rate: float,
           deadline: float, seed: int) -> dict:
    """One client process's share of the episodes (run as `soak.py --client`)."""
    import gc

    import forkgym
    from forkgym import Outcome


    rng = random.Random(seed + index)
    stats = {"episodes": 0, "steps": 0, "forks": 0, "crashes": 0, "contained": 0, "compiler_failures": [],
             "errors": [], "fds": []}
    server = forkgym.ServerOptions(socket_path=socket_path)
    # Ordinary episodes use the server's default limits (and so its spare
    # workers); episodes with an injected crash run with a small memory limit
    # and a short step timeout, so an injected hang or memory blow-up is cheap.
    normal = forkgym.make("llvm-ic-v0", server=server)
    faulty = forkgym.make("llvm-ic-v0", server=server, step_timeout=20.0, address_space_mb=512)
    hanging = forkgym.make("llvm-ic-v0", server=server, step_timeout=2.0)
    flags = {name: normal.action_space.index(name) for name in CRASHES}
    real_actions = list(range(len(normal.action_space.names)))
    baseline_fds = fd_count(os.getpid())  # the connection is open, no episode yet
    try:
        for _ in range(episodes):
            if time.monotonic() > deadline:
                break
            uri = rng.choice(uris)
            inject = rng.random() < crash_rate
            flag = rng.choice(list(CRASHES)) if inject else ""
            env = (hanging if flag == "-forkgym-test-hang" else faulty) if inject else normal
            try:
                env.reset(benchmark=uri)
                for _ in range(rng.randint(1, 4)):
                    actions = [rng.choice(real_actions) for _ in range(rng.randint(1, 6))]
                    _, _, _, truncated, info = env.multistep(actions)
                    stats["steps"] += 1
                    if truncated:
                        # A real compiler failure, contained like an injected one.
                        stats["compiler_failures"].append(
                            f"{uri} {actions}: {info.get('outcome')} {info.get('error_details')}")
                        break
                if rng.random() < 0.15 and env.in_episode:
                    with env.fork() as copy:
                        copy.multistep([rng.choice(real_actions) for _ in range(3)])
                        stats["forks"] += 1
                if inject and env.in_episode:
                    stats["crashes"] += 1
                    _, _, _, truncated, info = env.step(flags[flag])
                    if flag in CONTAINED_BY_THE_RUNNABLE_PROFILE and uri.startswith(RUNNABLE):
                        contained = not truncated and env.in_episode
                    else:
                        contained = truncated and info["outcome"] == getattr(Outcome, CRASHES[flag])
                    if contained:
                        stats["contained"] += 1
                    else:
                        stats["errors"].append(f"{flag} on {uri}: {info.get('outcome')} {info.get('error_details')}")
            except forkgym.ForkgymError as error:
                stats["errors"].append(f"{uri}: {type(error).__name__}: {error}")
            stats["episodes"] += 1
            if stats["episodes"] % 500 == 1:
                stats["fds"].append(fd_count(os.getpid()))
    finally:
        for env in (normal, faulty, hanging):
            env.close()
    del normal, faulty, hanging, env
    gc.collect()
    stats["fds"].append(fd_count(os.getpid()))
    stats["baseline_fds"] = baseline_fds
    stats["final_fds"] = fd_count(os.getpid())
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=200, help="episodes in total (default 200)")
    parser.add_argument("--clients", type=int, default=2, help="concurrent client processes (default 2)")
    parser.add_argument("--max-seconds", type=float, default=0, help="stop starting episodes after this (0: none)")
    parser.add_argument("--generated", type=int, default=4, help="csmith and llvm-stress seeds each (default 4)")
    parser.add_argument("--crash-rate", type=float, default=0.1, help="fraction of episodes with an injected crash")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--server", default=os.environ.get("FORKGYM_SERVER"),
                        help=f"server binary with the test-only actions (default {TEST_SERVER})")
    parser.add_argument("--json", help="also write the report here")
    parser.add_argument("--client", nargs=3, metavar=("INDEX", "SOCKET", "EPISODES"), help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, default=float("inf"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        index, socket_path, episodes = int(args.client[0]), args.client[1], int(args.client[2])
        stats = client(index, socket_path, episodes, benchmarks(args.generated), args.crash_rate,
                       args.deadline, args.seed)
        print(json.dumps(stats))
        return 0

    server_binary = args.server or str(TEST_SERVER)
    uris = benchmarks(args.generated)
    before_files = leftovers()
    workdir = tempfile.mkdtemp(prefix="forkgym-soak-")
    socket_path = f"{workdir}/server.sock"
    command = [server_binary, "--socket", socket_path, "--log-level", "error"]
    for uri in uris:
        command += ["--preload", uri]
    zygote = subprocess.Popen(command)
    try:
        for _ in range(6000):
            if os.path.exists(socket_path):
                break
            if zygote.poll() is not None:
                print(f"soak: forkgym-server exited with {zygote.returncode}", file=sys.stderr)
                return 1
            time.sleep(0.05)
        # Warm-up: one episode per benchmark so every spare worker exists.
        import forkgym
        warm = forkgym.make("llvm-ic-v0", server=forkgym.ServerOptions(socket_path=socket_path))
        for uri in uris:
            warm.reset(benchmark=uri)
        warm.close()
        time.sleep(0.5)
        start = zygote_state(zygote.pid)

        started = time.monotonic()
        # time.monotonic() is system-wide on Linux, so clients share the deadline.
        deadline = started + args.max_seconds if args.max_seconds else float("inf")
        per_client = [args.episodes // args.clients + (i < args.episodes % args.clients) for i in range(args.clients)]
        processes = [subprocess.Popen([sys.executable, __file__, "--client", str(i), socket_path, str(n),
                                       "--generated", str(args.generated), "--crash-rate", str(args.crash_rate),
                                       "--seed", str(args.seed), "--deadline", repr(deadline)],
                                      stdout=subprocess.PIPE, text=True)
                     for i, n in enumerate(per_client)]
        stats = []
        for p in processes:
            out, _ = p.communicate()
            if p.returncode != 0:
                print(f"soak: a client exited with {p.returncode}", file=sys.stderr)
                return 1
            stats.append(json.loads(out.strip().splitlines()[-1]))
        elapsed = time.monotonic() - started

        # Let the zygote reap and re-make its spares, then measure.
        time.sleep(1.0)
        end = zygote_state(zygote.pid)
    finally:
        zygote.send_signal(signal.SIGTERM)
        zygote.wait(timeout=30)
        try:
            os.rmdir(workdir)
        except OSError:
            pass
    time.sleep(0.2)
    left = leftovers() - before_files
    if left:
        # Other programs on the machine come and go in /dev/shm (forkgym
        # itself never uses it): only what stays counts.
        time.sleep(2.0)
        left &= leftovers()
    left = sorted(left)
    # Processes of ours still alive: any descendant of this script.
    alive = sorted(descendants(os.getpid()))

    errors = [e for s in stats for e in s["errors"]]
    report = {
        "episodes": sum(s["episodes"] for s in stats),
        "clients": args.clients,
        "steps": sum(s["steps"] for s in stats),
        "forks": sum(s["forks"] for s in stats),
        "crashes_injected": sum(s["crashes"] for s in stats),
        "crashes_contained": sum(s["contained"] for s in stats),
        "unexpected_errors": len(errors),
        "compiler_failures": [f for s in stats for f in s["compiler_failures"]],
        "seconds": round(elapsed, 1),
        "zygote_start": start,
        "zygote_end": end,
        "rss_growth_percent": round(100.0 * (end["rss_kb"] - start["rss_kb"]) / max(start["rss_kb"], 1), 2),
        "client_fds_over_time": [s["fds"] for s in stats],
        "processes_alive_at_end": alive,
        "files_left": left,
    }
    print(f"soak: {report['episodes']} episodes on {args.clients} clients in {report['seconds']} s "
          f"({report['steps']} steps, {report['forks']} forks)")
    print(f"soak: crashes injected {report['crashes_injected']}, contained {report['crashes_contained']}; "
          f"unexpected errors {len(errors)}")
    print(f"soak: zygote RSS {start['rss_kb']} kB -> {end['rss_kb']} kB ({report['rss_growth_percent']:+.2f} %), "
          f"fds {start['fds']} -> {end['fds']} ({start['fds_not_spares']} -> {end['fds_not_spares']} not held "
          f"for spare workers), children (spare workers) {start['children']} -> {end['children']}")
    print(f"soak: client fds over time {report['client_fds_over_time']}; "
          f"after closing: {[(s['baseline_fds'], s['final_fds']) for s in stats]}")
    print(f"soak: processes alive at end {alive or 'none'}; files left {left or 'none'}")
    for failure in report["compiler_failures"][:10]:
        print(f"soak: compiler failure (contained): {failure}")
    for error in errors[:10]:
        print(f"soak: error: {error}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))

    failed = (errors or alive or left or end["fds_not_spares"] != start["fds_not_spares"]
              or report["crashes_contained"] != report["crashes_injected"]
              or any(s["final_fds"] != s["baseline_fds"] for s in stats))
    # RSS is only meaningful over a long run (the allocator settles first).
    if report["episodes"] >= 2000 and report["rss_growth_percent"] >= 5.0:
        failed = True
    print("soak: " + ("FAILED" if failed else "passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
