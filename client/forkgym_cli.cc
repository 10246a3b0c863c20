// forkgym: the command-line front end of the C++ client.
//
//   forkgym search [--strategy greedy|random] [--steps N] [--episodes N]
//                  [--seed N] [--server PATH] BENCHMARK...
//       Searches for a pass sequence per benchmark, prints the instruction
//       count against -Oz and the best command line, then replays that
//       command line with opt and checks it reaches the same IR hash.
//   forkgym describe [BACKEND]
//       Lists the server's backends, and each one's (or BACKEND's) action
//       space and observation and reward spaces.
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "client/connection.h"
#include "client/env.h"

namespace {

using forkgym::Env;
using forkgym::Observation;

constexpr const char* kUsage = R"(usage:
  forkgym search [--strategy greedy|random] [--steps N] [--episodes N] [--seed N] BENCHMARK...
  forkgym describe [BACKEND]

search runs LLVM phase ordering. BENCHMARK: file:///abs/path.{c,cc,bc,ll}, a
directory of sources, benchmark://forkgym-v0/NAME, benchmark://user-v0/DIGEST
(made by make_benchmark()), benchmark://DATASET/PATH (an installed dataset,
e.g. benchmark://cbench-v1/qsort; python -m forkgym datasets installs them),
generator://csmith-v0/SEED, generator://llvm-stress-v0/SEED; the server
resolves them.
Environment: FORKGYM_SERVER names the forkgym-server binary; FORKGYM_SITE_DATA
where datasets are installed (else $XDG_DATA_HOME/forkgym, /var/lib/forkgym for
root, ~/.local/share/forkgym).
)";

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "forkgym: %s\n", message.c_str());
  std::exit(1);
}

int64_t asInt(const Observation& value) { return std::get<int64_t>(value); }

struct SearchOptions {
  std::string strategy = "greedy";
  int steps = 30;
  int episodes = 20;
  uint64_t seed = 0;
};

struct Found {
  int64_t initial = 0, oz = 0, best = 0;
  std::vector<uint32_t> actions;
  std::string irSha1;
};

// Available actions, skipping unavailable and test-only rows.
std::vector<uint32_t> usableActions(const forkgym::Description& description) {
  std::vector<uint32_t> usable;
  for (uint32_t i = 0; i < description.actions.size(); ++i) {
    const auto& action = description.actions[i];
    if (action.unavailableReason.empty() && !action.testOnly) usable.push_back(i);
  }
  return usable;
}

const std::vector<std::string> kCount = {"IrInstructionCount"};

// Greedy: from the current state, fork once per action, keep the action
// that lowers the instruction count most; stop when none helps.
Found greedy(Env& env, const std::vector<uint32_t>& usable, int maxSteps) {
  Found found;
  auto start = env.observe(std::vector<std::string>{"IrInstructionCount", "IrInstructionCountOz"});
  if (!start.ok()) die("observe: " + start.message);
  found.initial = found.best = asInt(start.observations[0]);
  found.oz = asInt(start.observations[1]);
  for (int step = 0; step < maxSteps; ++step) {
    int64_t bestCount = found.best;
    int bestAction = -1;
    for (uint32_t action : usable) {
      auto trial = env.fork();
      if (!trial) die("fork: " + trial.error().message);
      const uint32_t one[] = {action};
      auto result = trial->step(one, kCount);
      if (result.ok() && asInt(result.observations[0]) < bestCount) {
        bestCount = asInt(result.observations[0]);
        bestAction = static_cast<int>(action);
      }
    }
    if (bestAction < 0) break;
    const uint32_t chosen[] = {static_cast<uint32_t>(bestAction)};
    auto result = env.step(chosen, kCount);
    if (!result.ok()) die("step: " + result.message);
    found.best = asInt(result.observations[0]);
  }
  found.actions = env.actions();
  return found;
}

// Random: episodes of random actions from the initial state (each a fork of
// the untouched episode), keeping the best prefix seen.
Found randomSearch(Env& env, const std::vector<uint32_t>& usable, const SearchOptions& options) {
  Found found;
  auto start = env.observe(std::vector<std::string>{"IrInstructionCount", "IrInstructionCountOz"});
  if (!start.ok()) die("observe: " + start.message);
  found.initial = found.best = asInt(start.observations[0]);
  found.oz = asInt(start.observations[1]);
  std::mt19937_64 rng(options.seed);
  std::uniform_int_distribution<size_t> pick(0, usable.size() - 1);
  for (int episode = 0; episode < options.episodes; ++episode) {
    auto trial = env.fork();
    if (!trial) die("fork: " + trial.error().message);
    for (int step = 0; step < options.steps; ++step) {
      const uint32_t one[] = {usable[pick(rng)]};
      auto result = trial->step(one, kCount);
      if (!result.ok()) break;
      if (asInt(result.observations[0]) < found.best) {
        found.best = asInt(result.observations[0]);
        found.actions = trial->actions();
      }
    }
  }
  return found;
}

// Runs the episode's reproducer command line (the server's own opt) on its
// initial bitcode and returns the SHA-1 of the output, to show the command
// line replays the episode.
std::string replayWithOpt(const std::vector<uint8_t>& initialBitcode, const std::string& commandline) {
  namespace fs = std::filesystem;
  char dirTemplate[] = "/tmp/forkgym-replay-XXXXXX";
  if (!mkdtemp(dirTemplate)) return "(cannot create a temporary directory)";
  const fs::path dir = dirTemplate;
  {
    std::ofstream(dir / "input.bc", std::ios::binary)
        .write(reinterpret_cast<const char*>(initialBitcode.data()), static_cast<std::streamsize>(initialBitcode.size()));
  }
  const std::string command = "cd " + dir.string() + " && " + commandline + " 2>/dev/null && sha1sum output.bc";
  std::string hash;
  if (FILE* pipe = popen(command.c_str(), "r")) {
    char buffer[128] = {};
    if (fgets(buffer, sizeof(buffer), pipe)) hash = std::string(buffer).substr(0, 40);
    pclose(pipe);
  }
  fs::remove_all(dir);
  return hash.empty() ? "(opt failed)" : hash;
}

int search(const std::vector<std::string>& benchmarks, const SearchOptions& options) {
  auto connection = forkgym::Connection::spawn();
  if (!connection) die(connection.error().message);
  auto description = (*connection)->describe("llvm");
  if (!description) die(description.error().message);
  const auto usable = usableActions(**description);
  std::printf("forkgym %s search, LLVM %s, %zu usable actions\n\n", options.strategy.c_str(),
              (*description)->version.c_str(), usable.size());
  std::printf("%-36s %9s %9s %9s %9s  %s\n", "benchmark", "initial", "-Oz", "found", "vs -Oz", "replay");
  int failures = 0;
  double logSum = 0;
  int counted = 0;
  for (const auto& benchmark : benchmarks) {
    Env env(*connection);
    if (auto reset = env.reset(benchmark); !reset) {
      std::printf("%-36s error: %s\n", benchmark.c_str(), reset.error().message.c_str());
      ++failures;
      continue;
    }
    auto initialBitcode = env.observe(std::vector<std::string>{"Bitcode"});
    Found found = options.strategy == "random" ? randomSearch(env, usable, options) : greedy(env, usable, options.steps);

    // Replay the best sequence in a fresh episode and with opt: same IR hash.
    Env replay(*connection);
    if (auto reset = replay.reset(benchmark); !reset) die(reset.error().message);
    auto replayed = replay.step(found.actions, std::vector<std::string>{"IrSha1", "IrInstructionCount"});
    if (!replayed.ok()) die("replay: " + replayed.message);
    const auto& episodeHash = std::get<std::string>(replayed.observations[0]);
    const auto commandline = replay.reproducer().commandline;
    const auto optHash = replayWithOpt(std::get<std::vector<uint8_t>>(initialBitcode.observations[0]), commandline);
    const bool same = optHash == episodeHash && asInt(replayed.observations[1]) == found.best;
    failures += same ? 0 : 1;
    const double ratio = static_cast<double>(found.oz) / static_cast<double>(std::max<int64_t>(found.best, 1));
    logSum += std::log(ratio);
    ++counted;
    std::printf("%-36s %9ld %9ld %9ld %8.3fx  %s\n", benchmark.c_str(), found.initial, found.oz, found.best, ratio,
                same ? "opt gives the same IR hash" : "MISMATCH with opt");
    std::printf("    %s\n", commandline.c_str());
  }
  if (counted) std::printf("\ngeomean vs -Oz: %.3fx (above 1 = smaller than -Oz)\n", std::exp(logSum / counted));
  return failures ? 1 : 0;
}

const char* typeName(forkgym::ValueType type) {
  static constexpr const char* kNames[] = {"int64", "int64 list", "text",         "bytes",
                                           "bool",  "float64",    "float64 list", "int64 map"};
  return kNames[static_cast<size_t>(type)];
}

void printSpace(const forkgym::SpaceDescription& space) {
  std::string shape;
  for (int64_t n : space.shape) shape += (shape.empty() ? "[" : ",") + std::to_string(n);
  if (!shape.empty()) shape += "]";
  std::printf("  %-24s %-12s %-6s %s%s%s\n", space.name.c_str(), typeName(space.valueType), shape.c_str(),
              space.description.c_str(), space.deterministic ? "" : " (nondeterministic)",
              space.platformDependent ? " (platform-dependent)" : "");
}

int describe(const std::string& only) {
  auto connection = forkgym::Connection::spawn();
  if (!connection) die(connection.error().message);
  const auto server = (*connection)->server();
  for (const auto& backend : server.backends) {
    if (!only.empty() && backend.name != only) continue;
    auto description = (*connection)->describe(backend.name);
    if (!description) die(description.error().message);
    const auto& d = **description;
    std::printf("backend %s %s: %s\n", d.backend.c_str(), d.version.c_str(), d.description.c_str());
    for (const auto& [key, value] : backend.properties) std::printf("  %s: %s\n", key.c_str(), value.c_str());
    std::printf("actions (%s):\n", d.actionSpace.c_str());
    for (size_t i = 0; i < d.actions.size(); ++i) {
      const auto& a = d.actions[i];
      std::printf("  %3zu %-32s %s\n", i, a.flag.c_str(),
                  a.unavailableReason.empty() ? a.replay.c_str() : ("(unavailable: " + a.unavailableReason + ")").c_str());
    }
    std::printf("observation spaces:\n");
    for (const auto& space : d.observations) printSpace(space);
    std::printf("reward spaces:\n");
    for (const auto& space : d.rewards) printSpace(space);
    std::printf("\n");
  }
  if (!only.empty() && !server.backend(only)) {
    // The server's own error lists what it has.
    auto description = (*connection)->describe(only);
    if (!description) die(description.error().message);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string command = argv[1];
  if (command == "describe") return describe(argc > 2 ? argv[2] : "");
  if (command != "search") {
    std::fprintf(stderr, "forkgym: unknown command '%s'\n%s", command.c_str(), kUsage);
    return 2;
  }
  SearchOptions options;
  std::vector<std::string> benchmarks;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--strategy") {
      options.strategy = next();
      if (options.strategy != "greedy" && options.strategy != "random") die("--strategy is greedy or random");
    } else if (arg == "--steps") {
      options.steps = std::atoi(next().c_str());
    } else if (arg == "--episodes") {
      options.episodes = std::atoi(next().c_str());
    } else if (arg == "--seed") {
      options.seed = std::strtoull(next().c_str(), nullptr, 10);
    } else if (arg.starts_with("--")) {
      die("unknown option " + arg);
    } else {
      benchmarks.push_back(arg);
    }
  }
  if (benchmarks.empty()) die("name at least one benchmark");
  return search(benchmarks, options);
}
