#!/usr/bin/env python3
"""Python-package benchmarks (reports numbers; asserts nothing).

1. Step latency for a cheap action (-dce on crc32 after -mem2reg, so it
   changes nothing and the cost is the round trip) through:
     * forkgym.LlvmEnv.step (llvm-v0: no observation, no reward),
     * forkgym.LlvmEnv.step (llvm-ic-v0: the IrInstructionCountOz reward),
     * the raw extension (forkgym._forkgym.Env.step),
     * the C++ client (a tiny program compiled here against a CMake build of
       client/; skipped if that build is missing).
2. Vector env steps/s with 1, 2, 4 and 8 envs (llvm-autophase-ic-v0,
   random actions, episodes of 50 steps, NEXT_STEP autoreset).

Usage: python3 scripts/bench_python.py [--cpp-build build-py] [--steps N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import forkgym
from forkgym import _forkgym

ROOT = Path(__file__).resolve().parents[1]

CPP_BENCH = r"""
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>
#include "client/connection.h"
#include "client/env.h"
int main(int argc, char** argv) {
  forkgym::ServerOptions options;
  options.serverPath = argv[1];
  auto connection = forkgym::Connection::spawn(options);
  if (!connection) { std::fprintf(stderr, "%s\n", connection.error().message.c_str()); return 1; }
  forkgym::Env env(*connection);
  if (auto ok = env.reset(argv[2]); !ok) { std::fprintf(stderr, "%s\n", ok.error().message.c_str()); return 1; }
  const int steps = std::atoi(argv[3]);
  const uint32_t mem2reg[] = {103}, dce[] = {24};
  (void)env.step(mem2reg);
  std::vector<std::string> rewards;
  if (argc > 4) rewards.push_back(argv[4]);
  for (int i = 0; i < 50; ++i) (void)env.step(dce, {}, rewards);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) {
    auto r = env.step(dce, {}, rewards);
    if (!r.ok()) { std::fprintf(stderr, "%s\n", r.message.c_str()); return 1; }
  }
  double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / steps;
  std::printf("%.2f\n", us);
}
"""

def per_step_us(step, steps: int) -> float:
    for _ in range(50):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps * 1e6

def python_latencies(steps: int) -> dict[str, float]:
    out = {}
    for env_id in ("llvm-v0", "llvm-ic-v0"):
        with forkgym.make(env_id) as env:
            env.reset()
            env.step(env.action_space.index("-mem2reg"))
            dce = env.action_space.index("-dce")
            out[f"LlvmEnv.step ({env_id})"] = per_step_us(lambda: env.step(dce), steps)
    with forkgym.make("llvm-v0") as env:
        env.reset()
        native = env._native
        native.step([103])
        out["_forkgym.Env.step (extension, no reward)"] = per_step_us(lambda: native.step([24]), steps)
        out["_forkgym.Env.step (extension, IrInstructionCountOz)"] = per_step_us(
            lambda: native.step([24], [], ["IrInstructionCountOz"]), steps
        )
    return out

def cpp_latencies(build: Path, steps: int) -> dict[str, float]:
    client = build / "client" / "libforkgym_client.a"
    ipc = build / "ipc" / "libforkgym_ipc.a"
    server = build / "forkserver" / "forkgym-server"
    if not (client.exists() and ipc.exists() and server.exists()):
        print(f"(C++ client build not found under {build}; skipping the C++ comparison)", file=sys.stderr)
        return {}
    uri = forkgym.benchmarks.server_uri(forkgym.DEFAULT_BENCHMARK)
    with tempfile.TemporaryDirectory() as tmp:
        source, binary = Path(tmp) / "bench.cc", Path(tmp) / "bench"
        source.write_text(CPP_BENCH)
        subprocess.run(
            ["clang++-19", "-std=c++20", "-O2", "-include", "ipc/capnp_compat.h", f"-I{ROOT}", f"-I{build}",
             str(source), str(client), str(ipc), "-lcapnp", "-lkj", "-o", str(binary)],
            check=True,
        )
        out = {}
        for label, extra in (("C++ Env::step (no reward)", []), ("C++ Env::step (IrInstructionCountOz)",
                                                                  ["IrInstructionCountOz"])):
            run = subprocess.run([str(binary), str(server), uri, str(steps), *extra], capture_output=True, text=True,
                                 check=True)
            out[label] = float(run.stdout.strip())
        return out

def vector_throughput(num_envs: int, steps: int, cheap: bool) -> float:
    """env-steps/s: random actions (each sub-env its own stream), or -dce only (round-trip bound)."""
    with forkgym.make_vec("llvm-autophase-ic-v0", num_envs=num_envs, max_episode_steps=50) as envs:
        envs.reset(seed=0)
        envs.action_space.seed(0)
        dce = np.full(num_envs, envs.envs[0].action_space.index("-dce"))
        for _ in range(5):
            envs.step(dce if cheap else envs.action_space.sample())
        start = time.perf_counter()
        for _ in range(steps):
            envs.step(dce if cheap else envs.action_space.sample())
        return steps * num_envs / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpp-build", default=os.environ.get("FORKGYM_CPP_BUILD", str(ROOT / "build-py")))
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--vector-steps", type=int, default=200)
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args()

    results: dict[str, object] = {}
    latencies = {**python_latencies(args.steps), **cpp_latencies(Path(args.cpp_build), args.steps)}
    print(f"step latency, cheap action (-dce) on {forkgym.DEFAULT_BENCHMARK}, mean of {args.steps}:")
    for label, us in latencies.items():
        print(f"  {label:55s} {us:8.1f} us")
    results["step_latency_us"] = latencies

    throughput: dict[str, dict[int, float]] = {"random": {}, "-dce": {}}
    print("vector env (llvm-autophase-ic-v0, 50-step episodes, env-steps/s, median of 3):")
    for n in (1, 2, 4, 8):
        for kind in throughput:
            samples = [vector_throughput(n, args.vector_steps, kind == "-dce") for _ in range(3)]
            throughput[kind][n] = statistics.median(samples)
        print(f"  {n} envs: random actions {throughput['random'][n]:8.0f}   -dce only {throughput['-dce'][n]:8.0f}")
    results["vector_steps_per_s"] = throughput
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0

if __name__ == "__main__":
    sys.exit(main())
