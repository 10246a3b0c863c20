// runtime_bench: latency of the runtime core's paths, as ratios within one
// run on this machine. Not a test: numbers are reported, never asserted.
//
//   runtime_bench [--quick] [--json FILE] [BENCHMARK_URI]
//
// Measures, on one module:
//   in-process floor   one cheap action (-dce) applied by an LlvmSession in
//                      this process, no IPC (the same code the worker runs)
//   client step        the same action through the C++ client
//   reset              new episode on a cached benchmark
//   fork               env.fork() of a live episode
//   start-up           private zygote spawn -> hello -> reset -> first step
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "client/connection.h"
#include "client/env.h"
#include "passes/action_table.h"
#include "passes/benchmark.h"
#include "passes/benchmark_loader.h"
#include "passes/session.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Stats {
  std::string name;
  double p50 = 0, p99 = 0, min = 0;
  size_t samples = 0;
};

double microseconds(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

Stats summarise(std::string name, std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  Stats stats{std::move(name)};
  stats.samples = samples.size();
  if (samples.empty()) return stats;
  stats.min = samples.front();
  stats.p50 = samples[samples.size() / 2];
  stats.p99 = samples[std::min(samples.size() - 1, samples.size() * 99 / 100)];
  return stats;
}

template <typename F>
Stats measure(const std::string& name, int iterations, F&& body) {
  std::vector<double> samples;
  samples.reserve(iterations);
  for (int i = 0; i < iterations; ++i) {
    const auto start = Clock::now();
    body();
    samples.push_back(microseconds(Clock::now() - start));
  }
  return summarise(name, std::move(samples));
}

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "runtime_bench: %s\n", message.c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string jsonPath;
  std::string benchmark = "file://" FORKGYM_TEST_DATA "/crc32.c";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick") quick = true;
    else if (arg == "--json" && i + 1 < argc) jsonPath = argv[++i];
    else benchmark = arg;
  }
  const int n = quick ? 200 : 2000;
  const int resets = quick ? 50 : 300;
  const uint32_t dce = static_cast<uint32_t>(forkgym::passes::findAction("-dce"));
  const uint32_t oneAction[] = {dce};

  // Start-up first, on a cold private zygote (no preload).
  const auto spawnStart = Clock::now();
  auto connection = forkgym::Connection::spawn();
  if (!connection) die(connection.error().message);
  const double helloUs = microseconds(Clock::now() - spawnStart);
  forkgym::Env env(*connection);
  if (auto ok = env.reset(benchmark); !ok) die(ok.error().message);
  const double firstResetUs = microseconds(Clock::now() - spawnStart);
  if (!env.step(oneAction).ok()) die("first step failed");
  const double firstStepUs = microseconds(Clock::now() - spawnStart);

  // In-process floor: the worker's own code, in this process.
  forkgym::passes::initializeLlvm();
  auto loaded = forkgym::passes::loadBenchmark(benchmark);
  if (!loaded) die(loaded.error().message);
  auto parsed = forkgym::passes::parseTrustedBitcode(*loaded);
  if (!parsed) die(parsed.error().message);
  forkgym::passes::LlvmSession session(*parsed->module, parsed->costs);
  std::vector<Stats> rows;
  rows.push_back(measure("in-process -dce (floor)", n, [&] {
    if (!session.applyActions(oneAction)) die("in-process step failed");
  }));
  rows.push_back(measure("client step -dce", n, [&] {
    if (!env.step(oneAction).ok()) die("client step failed");
  }));
  const std::vector<std::string> count = {"IrInstructionCount"};
  rows.push_back(measure("client step -dce + IrInstructionCount", n, [&] {
    if (!env.step(oneAction, count).ok()) die("client step failed");
  }));
  rows.push_back(measure("reset (cached benchmark)", resets, [&] {
    if (!env.reset(benchmark)) die("reset failed");
  }));
  rows.push_back(measure("fork", resets, [&] {
    auto copy = env.fork();
    if (!copy) die("fork failed: " + copy.error().message);
  }));

  std::printf("benchmark: %s (%lld instructions)\n\n", benchmark.c_str(),
              static_cast<long long>(parsed->costs.instructionCount[forkgym::passes::kInitial]));
  std::printf("| path | p50 µs | p99 µs | min µs | samples |\n|---|---:|---:|---:|---:|\n");
  for (const auto& row : rows) {
    std::printf("| %s | %.1f | %.1f | %.1f | %zu |\n", row.name.c_str(), row.p50, row.p99, row.min, row.samples);
  }
  const double overhead = rows[1].p50 - rows[0].p50;
  std::printf("\nclient step overhead over the in-process floor: %.1f µs p50 (%.2fx)\n", overhead,
              rows[1].p50 / std::max(rows[0].p50, 0.001));
  std::printf("start-up: zygote spawn + hello %.1f ms, + first reset (compile, baselines) %.1f ms, + first step %.1f ms\n",
              helloUs / 1000, firstResetUs / 1000, firstStepUs / 1000);

  if (!jsonPath.empty()) {
    std::ofstream json(jsonPath);
    json << "{\n  \"benchmark\": \"" << benchmark << "\",\n  \"rows\": [\n";
    for (size_t i = 0; i < rows.size(); ++i) {
      json << "    {\"path\": \"" << rows[i].name << "\", \"p50_us\": " << rows[i].p50 << ", \"p99_us\": " << rows[i].p99
           << ", \"min_us\": " << rows[i].min << ", \"samples\": " << rows[i].samples << "}" << (i + 1 < rows.size() ? "," : "")
           << "\n";
    }
    json << "  ],\n  \"startup_ms\": {\"hello\": " << helloUs / 1000 << ", \"first_reset\": " << firstResetUs / 1000
         << ", \"first_step\": " << firstStepUs / 1000 << "}\n}\n";
  }
  return 0;
}
