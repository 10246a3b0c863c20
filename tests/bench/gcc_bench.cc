// gcc_bench: gcc-v0 step latency beside a plain loop of `gcc -c`
// subprocesses on the same source and options. Not a test: it reports
// numbers (JSON on stdout), never asserts them; scripts/bench runs it.
//
//   gcc_bench [--quick] SOURCE.c
//
// Rows (each step moves to a state not compiled before in that episode,
// cycling through -O levels, so every step compiles):
//   episode step         GccEpisode::apply + obj_size in this process: the
//                        worker's own cost of a step (the gcc run, writing
//                        nothing but gcc's files, reading obj.o back)
//   plain gcc -c         runTool() of the same command line in a directory
//                        holding src.c: what a script around gcc pays
//   episode step + asm   the same step also asking for asm_size (a second
//                        gcc run, -S), as CompilerGym's asm_size reward does
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <stdlib.h>

#include <filesystem>

#include "passes/gcc/action_space.h"
#include "passes/gcc/episode.h"
#include "passes/gcc/gcc_spec.h"
#include "passes/tool_process.h"

namespace {

using namespace forkgym::passes;
using namespace forkgym::passes::gcc;
using Clock = std::chrono::steady_clock;

struct Stats {
  double p50 = 0, p99 = 0, mean = 0;
};

Stats summarise(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  Stats stats;
  const auto at = [&](double q) { return samples[std::min(samples.size() - 1, static_cast<size_t>(q * samples.size()))]; };
  stats.p50 = at(0.5);
  stats.p99 = at(0.99);
  for (double s : samples) stats.mean += s / samples.size();
  return stats;
}

std::string json(const char* name, const Stats& stats) {
  char line[256];
  std::snprintf(line, sizeof line, "\"%s\": {\"p50_us\": %.1f, \"p99_us\": %.1f, \"mean_us\": %.1f}", name, stats.p50,
                stats.p99, stats.mean);
  return line;
}

uint32_t actionNamed(const GccActionSpace& space, std::string_view name) {
  for (uint32_t i = 0; i < space.size(); ++i) {
    if (space.actions()[i].name == name) return i;
  }
  std::fprintf(stderr, "gcc_bench: no action %.*s\n", static_cast<int>(name.size()), name.data());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string sourcePath;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    else sourcePath = argv[i];
  }
  if (sourcePath.empty()) {
    std::fprintf(stderr, "usage: gcc_bench [--quick] SOURCE.c\n");
    return 2;
  }
  std::stringstream text;
  text << std::ifstream(sourcePath).rdbuf();
  // The source as the backend keeps it: preprocessed once.
  auto preprocessed = runTool({"gcc", "-E", "-P", "-w", sourcePath, "-o", "-"}, "");
  if (!preprocessed.ok() || !preprocessed->succeeded()) {
    std::fprintf(stderr, "gcc_bench: cannot preprocess %s\n", sourcePath.c_str());
    return 1;
  }
  const std::string source = preprocessed->out;
  auto spec = discoverGccSpec("gcc");
  if (!spec.ok()) {
    std::fprintf(stderr, "gcc_bench: %s\n", spec.error().message.c_str());
    return 1;
  }
  const GccActionSpace space(*spec);
  const int steps = quick ? 8 : 60;
  std::string work = std::filesystem::temp_directory_path() / "forkgym-gcc-bench-XXXXXX";
  if (::mkdtemp(work.data()) == nullptr) return 1;

  const std::vector<uint32_t> cycle = {actionNamed(space, "-O1"), actionNamed(space, "-O2"), actionNamed(space, "-Os"),
                                       actionNamed(space, "-O3")};
  // The plain loop runs gcc -c with the same options in a directory of its
  // own. Laps of the three kinds are interleaved, so load from elsewhere on
  // the machine falls on all of them alike.
  const std::string plainDirectory = work + "/plain";
  std::filesystem::create_directory(plainDirectory);
  std::ofstream(plainDirectory + "/src.c") << source;
  const char* levels[] = {"-O1", "-O2", "-Os", "-O3"};
  std::vector<double> episodeSteps, episodeStepsWithAsm, plain;
  while (static_cast<int>(plain.size()) < steps) {
    // A fresh episode per lap of the cycle: every step compiles a state
    // the episode has not seen.
    for (bool withAsm : {false, true}) {
      GccEpisode episode(*spec, space, source, work, {});
      for (uint32_t action : cycle) {
        const auto start = Clock::now();
        auto applied = episode.apply(std::vector<uint32_t>{action});
        auto object = episode.object();
        if (withAsm) (void)episode.assembly();
        const double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
        if (!applied.ok() || !object.ok()) {
          std::fprintf(stderr, "gcc_bench: step failed\n");
          return 1;
        }
        (withAsm ? episodeStepsWithAsm : episodeSteps).push_back(us);
      }
    }
    for (const char* level : levels) {
      const auto start = Clock::now();
      auto run = runTool({"gcc", level, "-w", "-c", "src.c", "-o", "obj.o"}, "",
                         {.workingDirectory = plainDirectory.c_str()});
      const double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
      if (!run.ok() || !run->succeeded()) return 1;
      plain.push_back(us);
    }
  }
  std::filesystem::remove_all(work);
  std::printf("{\"source\": \"%s\", \"steps\": %d, %s, %s, %s}\n", sourcePath.c_str(), steps,
              json("episode_step", summarise(episodeSteps)).c_str(), json("plain_gcc_c", summarise(plain)).c_str(),
              json("episode_step_with_asm", summarise(episodeStepsWithAsm)).c_str());
  return 0;
}
