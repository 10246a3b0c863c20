"""``forkgym describe [BACKEND]``: what this installation offers.

The server's backends (version, host facts), each backend's actions (index,
flag, what it runs), observation and reward spaces (type, shape,
deterministic, platform-dependent, runnable benchmarks only), the datasets,
the sandbox level the server reached (and which features fell back), and
whether retired instructions can be counted here (``--probe-runner``
builds and runs a generated program to ask the kernel through the sandbox;
without it, whether this process can open the counter the runner opens).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from forkgym.cli.output import add_json_flag, format_table, print_json

EPILOG = """examples:
  forkgym describe                     every backend, in tables
  forkgym describe llvm --json | jq '.backends[0].rewards[].name'
  forkgym describe --probe-runner      also run a csmith program to see if retired instructions are counted
"""

# A runnable benchmark the probe builds and runs (csmith's programs carry a run configuration).
PROBE_BENCHMARK = "generator://csmith-v0/1"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("backend", nargs="?", help="only this backend (default: every backend the server has)")
    parser.add_argument("--probe-runner", action="store_true",
                        help=f"run {PROBE_BENCHMARK} once to learn whether retired instructions are counted")
    add_json_flag(parser)


def _range(row: Any) -> str:
    def bound(x: float) -> str:
        return "inf" if x == math.inf else "-inf" if x == -math.inf else f"{x:g}"

    return "" if (row.low == -math.inf and row.high == math.inf) else f"[{bound(row.low)}, {bound(row.high)}]"


def _space(row: Any) -> dict[str, Any]:
    return {"name": row.name, "type": row.type, "shape": list(row.shape), "low": row.low, "high": row.high,
            "deterministic": row.deterministic, "platform_dependent": row.platform_dependent,
            "runnable_only": row.needs_run_config, "features": len(row.feature_names),
            "description": row.description}


def _backend(connection: Any, name: str) -> dict[str, Any]:
    from forkgym.description import describe
    from forkgym.errors import BackendUnavailable

    info = connection.server.backend(name)
    entry: dict[str, Any] = {"name": name, "version": info.version if info else "",
                             "properties": dict(info.properties) if info else {}}
    try:
        d = describe(connection, name)
    except BackendUnavailable as e:
        entry["unavailable"] = str(e)
        return entry
    entry.update({
        "version": d.version, "description": d.description, "action_space": d.action_space_name,
        "actions": [{"index": i, "flag": a.name, "runs": a.replay, "description": a.description,
                     **({"unavailable": a.unavailable_reason} if a.unavailable_reason else {})}
                    for i, a in enumerate(d.actions) if not a.test_only],
        "test_only_actions": sum(1 for a in d.actions if a.test_only),
        "observations": [_space(o) for o in d.observations],
        "rewards": [_space(r) for r in d.rewards],
        "replay_program": d.replay.program,
    })
    return entry


def _datasets() -> list[dict[str, Any]]:
    from forkgym.datasets import Datasets

    rows = []
    for d in Datasets().datasets():
        size = 0 if d.kind == "generator" else (d.manifest_size() or d.documented_size)
        rows.append({"name": d.name, "kind": d.kind, "size": size, "installed": d.installed,
                     "validatable": d.validatable, "description": d.description})
    return rows


# perf_event_open's syscall number, by machine (the syscall has no libc wrapper).
_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241, "riscv64": 241, "ppc64le": 319, "s390x": 331}


def _kernel_counter() -> dict[str, Any]:
    """Whether this process can open a user-space instruction counter, as the
    runner does for its children (perf_event_open: PERF_TYPE_HARDWARE,
    PERF_COUNT_HW_INSTRUCTIONS, kernel and hypervisor excluded)."""
    import ctypes
    import errno
    import os
    import struct

    how = "perf_event_open in this process"
    number = _PERF_EVENT_OPEN.get(os.uname().machine)
    if number is None:
        return {"available": False, "how": how, "reason": f"unknown syscall number on {os.uname().machine}; "
                                                          "--probe-runner asks the runner"}
    size = 128
    # type, size, config, sample_period, sample_type, read_format, flags (disabled | exclude_kernel | exclude_hv)
    attr = struct.pack("=IIQQQQQ", 0, size, 1, 0, 0, 0, (1 << 0) | (1 << 5) | (1 << 6)).ljust(size, b"\0")
    buffer = ctypes.create_string_buffer(attr, size)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(ctypes.c_long(number), buffer, ctypes.c_int(0), ctypes.c_int(-1), ctypes.c_int(-1),
                      ctypes.c_ulong(0))
    if fd < 0:
        code = ctypes.get_errno()
        why = {errno.ENOENT: "this machine exposes no hardware instruction counter (e.g. a virtual machine "
                             "without a virtual PMU)",
               errno.EACCES: "kernel.perf_event_paranoid forbids it", errno.EPERM: "not permitted here"}.get(
                   code, os.strerror(code))
        return {"available": False, "how": how, "reason": f"{errno.errorcode.get(code, code)}: {why}"}
    os.close(fd)
    return {"available": True, "how": how, "reason": "a counter opened; --probe-runner confirms through the sandbox"}


def _probe_runner(connection: Any) -> dict[str, Any]:
    from forkgym import _forkgym

    env = _forkgym.Env(connection)
    try:
        env.reset(PROBE_BENCHMARK)
        result = env.run()
    finally:
        env.close()
    counted = [r.instructions for r in result.runs if r.instructions is not None]
    if counted:
        return {"available": True, "how": f"ran {PROBE_BENCHMARK}", "reason": f"{counted[0]:,} instructions"}
    return {"available": False, "how": f"ran {PROBE_BENCHMARK}",
            "reason": result.instructions_unavailable or "the runner reported no count"}


def collect(backend: str | None = None, probe_runner: bool = False) -> dict[str, Any]:
    """Everything ``describe`` prints, as one JSON-able dict."""
    from forkgym.server import shared_server

    connection = shared_server().connection()
    server = connection.server
    names = [b.name for b in server.backends]
    if backend is not None and backend not in names:
        raise LookupError(f"the server has no backend '{backend}'; its backends: {', '.join(names)}")
    return {
        "protocol_version": server.protocol_version,
        "sandbox": {"level": server.sandbox_level, "features": list(server.sandbox_features),
                    "fallbacks": list(server.sandbox_fallbacks)},
        "instructions_retired": _probe_runner(connection) if probe_runner else _kernel_counter(),
        # The node-wide state cache's counts (shared by every server of this user), or None when off.
        "state_cache": connection.state_cache_stats(),
        "backends": [_backend(connection, name) for name in names if backend in (None, name)],
        "datasets": _datasets(),
    }


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _shape(space: dict[str, Any]) -> str:
    return "x".join("N" if n < 0 else str(n) for n in space["shape"]) or "scalar"


def render(info: dict[str, Any]) -> str:
    out = []
    sandbox = info["sandbox"]
    out.append(f"sandbox: {sandbox['level']}" + (f" ({', '.join(sandbox['features'])})" if sandbox["features"] else ""))
    for fallback in sandbox["fallbacks"]:
        out.append(f"  fallback: {fallback}")
    counter = info["instructions_retired"]
    out.append(f"instructions retired counted: {_yes(counter['available'])} ({counter['how']}: {counter['reason']})")
    out.append(f"protocol version: {info['protocol_version']}")
    cache = info["state_cache"]
    if cache is None:
        out.append("state cache: off")
    else:
        lookups = cache["hits"] + cache["misses"]
        rate = f"{cache['hits'] / lookups:.1%}" if lookups else "no lookups yet"
        out.append(f"state cache: {cache['name']}, {cache['used_bytes'] / 2**20:.1f} of "
                   f"{cache['capacity_bytes'] / 2**20:.0f} MiB, {cache['entries']:,} entries, hit rate {rate} "
                   f"({cache['hits']:,} of {lookups:,} lookups), {cache['evictions']:,} evicted")
    for b in info["backends"]:
        out.append("")
        out.append(f"== backend {b['name']} {b['version']}")
        for key, value in sorted(b["properties"].items()):
            out.append(f"  {key}: {value if len(value) < 100 else value[:97] + '...'}")
        if "unavailable" in b:
            out.append(f"  unavailable: {b['unavailable']}")
            continue
        out.append(f"\nactions ({b['action_space']}, {len(b['actions'])}):")
        out.append(format_table(("#", "FLAG", "RUNS"), (
            (a["index"], a["flag"], a["runs"] + (f"  [unavailable: {a['unavailable']}]" if "unavailable" in a else ""))
            for a in b["actions"]), right=(0,)).rstrip("\n"))
        for kind in ("observations", "rewards"):
            out.append(f"\n{kind} ({len(b[kind])}):")
            out.append(format_table(("NAME", "TYPE", "SHAPE", "RANGE", "DETERMINISTIC", "PLATFORM-DEP", "RUNNABLE-ONLY"), (
                (s["name"], s["type"], _shape(s), _range(argparse.Namespace(**s)), _yes(s["deterministic"]),
                 _yes(s["platform_dependent"]), _yes(s["runnable_only"])) for s in b[kind])).rstrip("\n"))
    out.append(f"\ndatasets ({len(info['datasets'])}):")
    out.append(format_table(("NAME", "KIND", "SIZE", "INSTALLED"), (
        (d["name"], d["kind"], "unbounded" if d["kind"] == "generator" else f"{d['size']:,}", _yes(d["installed"]))
        for d in info["datasets"]), right=(2,)).rstrip("\n"))
    return "\n".join(out) + "\n"


def run(arguments: argparse.Namespace) -> int:
    info = collect(arguments.backend, arguments.probe_runner)
    if arguments.json:
        print_json(info)
    else:
        sys.stdout.write(render(info))
    return 0
