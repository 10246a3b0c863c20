"""A failure's self-contained artifact directory, as ``fuzz`` and ``reduce`` write it.

Layout (everything a bug report needs; nothing refers to forkgym's caches)::

    input.bc        the benchmark's bitcode as the server loaded it
    pipeline.txt    the actions, CompilerGym's flag form (``-sroa -scalarizer``)
    outcome.json    kind, signature, bucket, signal, message, the step that
                    failed, benchmark URI and content hash, LLVM's version,
                    the ``opt`` command line, the stack (symbolised)
    log.txt         the worker's message and the symbolised stack
    reproduce.sh    the exact versioned ``opt`` command line that fails the
                    same way on input.bc (``sh reproduce.sh``)

A reduced artifact (``reduce``'s output) has the same files; ``input.ll``
replaces ``input.bc`` when the IR was reduced too.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

from forkgym.crash_stack import symbolize
from forkgym.failures import Failure


def opt_version(opt: str) -> str:
    """The first line of ``opt --version`` naming LLVM's version ("" if it cannot run)."""
    try:
        run = subprocess.run([opt, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return ""
    for line in run.stdout.splitlines():
        if "version" in line.lower():
            return line.strip()
    return ""


def opt_command(env: Any, actions: list[int], input_name: str) -> str:
    """The server's ``opt`` (by absolute path: its LLVM's version) replaying ``actions`` on ``input_name``."""
    command = env.action_space.to_string(actions)
    return command.replace(" input.bc -o output.bc", f" {shlex.quote(input_name)} -disable-output")


def load(directory: str | Path) -> dict[str, Any]:
    """An artifact's outcome.json, with the input file's path."""
    directory = Path(directory)
    path = directory / "outcome.json"
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a forkgym artifact (no outcome.json); "
                                "give a directory that fuzz or reduce wrote")
    data = json.loads(path.read_text())
    data["input_path"] = str(directory / data["input"])
    return data


def write(directory: str | Path, env: Any, *, benchmark: str, benchmark_hash: str, actions: list[int],
          failure: Failure, input_bytes: bytes | None = None, input_source: str | Path | None = None,
          input_name: str = "input.bc", extra: dict[str, Any] | None = None) -> Path:
    """Writes the artifact for ``failure`` (reached by ``actions`` on the
    benchmark) into ``directory``; the input is ``input_bytes`` or a copy of
    ``input_source``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / input_name
    if input_bytes is None:
        input_bytes = Path(input_source).read_bytes() if input_source is not None else b""
    target.write_bytes(input_bytes)
    names = env.action_space.flags
    flags = " ".join(names[a] for a in actions)
    (directory / "pipeline.txt").write_text(flags + "\n")
    command = opt_command(env, actions, input_name)
    version = opt_version(env.action_space.opt)
    (directory / "reproduce.sh").write_text(
        "#!/bin/sh\n"
        f"# {failure.bucket}\n"
        f"# {version}: fails the way forkgym's worker did on the benchmark {benchmark}\n"
        f'cd "$(dirname "$0")" && exec {command}\n')
    os.chmod(directory / "reproduce.sh", 0o755)
    frames = [str(frame) for frame in symbolize(failure.stack)] if failure.stack else []
    outcome = {
        **failure.to_json(),
        "benchmark": benchmark,
        "benchmark_hash": benchmark_hash,
        "actions": [names[a] for a in actions],
        "input": input_name,
        "opt_command": command,
        "llvm_version": version,
        "frames": frames,
        **(extra or {}),
    }
    (directory / "outcome.json").write_text(json.dumps(outcome, indent=2) + "\n")
    log = [f"bucket: {failure.bucket}", f"benchmark: {benchmark} ({benchmark_hash})", f"passes: {flags}",
           f"failed at step: {failure.step}", "", failure.message]
    if frames:
        log += ["", "stack (innermost first):", *(f"  #{i} {frame}" for i, frame in enumerate(frames))]
    (directory / "log.txt").write_text("\n".join(log) + "\n")
    return directory
