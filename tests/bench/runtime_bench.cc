// runtime_bench: latency of the runtime core's paths on one module, as
// ratios within one run on this machine. Not a test: numbers are reported
// (markdown on stdout, JSON with --json), never asserted. scripts/bench runs
// it per module size and adds the Python, opt-per-step, throughput and
// memory measurements.
//
//   runtime_bench [--quick] [--json FILE] [--actions -dce,-instcombine,-gvn]
//                 [--observations] [BENCHMARK_URI]
//
// Rows:
//   floor <action>     the action applied by an LlvmSession in this process,
//                      no IPC — the same code the worker runs
//   client <action>    the same action through the C++ client
//   reset / fork       new episode on the cached benchmark (back to back, and
//                      after a short episode) / env.fork()
//   parse / clone      in-process parse of the benchmark's bitcode and
//                      llvm::CloneModule, the costs reset and fork avoid
//   observe <name>     each observation through the client (--observations)
//   ObjectTextSizeBytes the observation through the client on a state one
//                      step (-strip) past the benchmark (a fresh episode
//                      each time: the worker caches it per state) and in
//                      process, alternating with its reference, a
//                      `clang-19 -c -x ir` subprocess on the same bitcode
//                      (CompilerGym's definition; its llvm-size run is left
//                      out); the JSON says whether the numbers are equal.
//                      Also: at reset (the initial baseline answers it), and
//                      the phases around code generation (bitcode write and
//                      parse, clang on an empty module)
//   start-up           private zygote spawn -> hello -> first reset -> first step
//   first step         the first step of an episode, after a reset that took
//                      a spare worker (the zygote forks one while idle), with
//                      the worker's minor page faults during it, on a server
//                      whose spares warm up and on one started with
//                      --no-spare-warm-up; beside its floor: the same action
//                      once on a freshly parsed copy of the module by a new
//                      LlvmSession in this warm process
//   spare warm-up      what the warm-up costs a spare (in a fork of this process)
//
// runtime_bench --memory-walk prints what this machine does to memory after
// a pause, with no compiler: a pointer chase's median µs hot and in its
// first three passes after 300 ms idle (see memoryWalkAfterPause).
// runtime_bench --eager-baselines URI prints the milliseconds computing every
// baseline of URI's benchmark takes in process (what a load used to include).
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <llvm/IR/Instructions.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/Transforms/Utils/Cloning.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/connection.h"
#include "client/env.h"
#include "passes/llvm/action_table.h"
#include "passes/llvm/benchmark.h"
#include "passes/llvm/benchmark_costs.h"
#include "passes/llvm/benchmark_loader.h"
#include "passes/llvm/bitcode.h"
#include "passes/llvm/llvm_tools.h"
#include "passes/llvm/object_size.h"
#include "passes/llvm/session.h"
#include "passes/llvm/warm_up.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Row {
  std::string path;
  double p50 = 0, p99 = 0, min = 0;
  size_t samples = 0;
};

double microseconds(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

Row summarise(std::string path, std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  Row row{std::move(path)};
  row.samples = samples.size();
  if (samples.empty()) return row;
  row.min = samples.front();
  row.p50 = samples[samples.size() / 2];
  row.p99 = samples[std::min(samples.size() - 1, samples.size() * 99 / 100)];
  return row;
}

template <typename F>
Row measure(const std::string& path, int iterations, F&& body) {
  std::vector<double> samples;
  samples.reserve(iterations);
  for (int i = 0; i < iterations; ++i) {
    const auto start = Clock::now();
    body();
    samples.push_back(microseconds(Clock::now() - start));
  }
  return summarise(path, std::move(samples));
}

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "runtime_bench: %s\n", message.c_str());
  std::exit(1);
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  for (std::string part; std::getline(stream, part, ',');) parts.push_back(part);
  return parts;
}

// Enough repetitions for a stable median, fewer for slow paths.
int iterationsFor(double sampleUs, bool quick) {
  const double budgetUs = quick ? 0.3e6 : 3e6;
  return std::clamp(static_cast<int>(budgetUs / std::max(sampleUs, 1.0)), 5, quick ? 200 : 2000);
}

// Runs argv to completion; false unless it exits 0.
bool runProcess(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return false;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Writes then reads a buffer larger than any CPU cache, so what was cached is gone.
void evictCaches() {
  static std::vector<char> buffer(256u << 20);
  for (size_t i = 0; i < buffer.size(); i += 64) buffer[i] = static_cast<char>(buffer[i] + 1);
  volatile char sink = 0;
  for (size_t i = 0; i < buffer.size(); i += 64) sink = static_cast<char>(sink + buffer[i]);
}

// Minor page faults of a process so far (/proc/PID/stat, field 10); -1 if unreadable.
long long minorFaults(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const size_t end = text.rfind(')');  // the name may hold spaces
  if (end == std::string::npos) return -1;
  std::istringstream fields(text.substr(end + 2));
  std::string field;
  for (int i = 3; i <= 10 && fields >> field; ++i) {
    if (i == 10) return std::stoll(field);
  }
  return -1;
}

std::string capture(const std::string& command) {
  std::string out;
  if (FILE* pipe = popen(command.c_str(), "r")) {
    char buffer[256];
    while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) out.append(buffer, n);
    pclose(pipe);
  }
  return out;
}

// A module with one empty function for the host: what clang costs before
// any code generation (process start, driver, target set-up, object write).
std::string emptyModuleBitcode() {
  llvm::LLVMContext context;
  llvm::Module module("-", context);
  module.setTargetTriple(llvm::sys::getDefaultTargetTriple());
  auto* type = llvm::FunctionType::get(llvm::Type::getVoidTy(context), false);
  auto* function = llvm::Function::Create(type, llvm::Function::ExternalLinkage, "f", module);
  llvm::ReturnInst::Create(context, llvm::BasicBlock::Create(context, "", function));
  return forkgym::passes::writeBitcode(module);
}

// What this machine does to memory a core last touched before it idled,
// with no compiler in sight: a pointer chase over 62,000 nodes of 192
// bytes (a 62k-instruction module walked by a pass, roughly), linked in a
// random order as a heap's objects are, timed hot and in the first three
// passes after each `pause`. Samples (µs): {hot, first, second, third}.
std::vector<std::vector<double>> memoryWalkAfterPause(std::chrono::milliseconds pause, int repetitions) {
  struct Node {
    Node* next;
    long payload[23];
  };
  std::vector<std::unique_ptr<Node>> nodes;
  for (int i = 0; i < 62000; ++i) nodes.push_back(std::make_unique<Node>());
  std::vector<Node*> order;
  for (auto& node : nodes) order.push_back(node.get());
  std::shuffle(order.begin(), order.end(), std::mt19937(1));
  for (size_t i = 0; i + 1 < order.size(); ++i) order[i]->next = order[i + 1];
  order.back()->next = nullptr;
  volatile long sink = 0;
  auto walk = [&] {
    const auto start = Clock::now();
    long sum = 0;
    for (const Node* node = order.front(); node != nullptr; node = node->next) sum += node->payload[3];
    sink = sink + sum;
    return microseconds(Clock::now() - start);
  };
  std::vector<std::vector<double>> samples(4);
  for (int i = 0; i < repetitions; ++i) {
    walk();
    samples[0].push_back(walk());
    std::this_thread::sleep_for(pause);
    for (int pass = 1; pass <= 3; ++pass) samples[pass].push_back(walk());
  }
  return samples;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, observations = false;
  std::string jsonPath;
  std::string benchmark = "file://" FORKGYM_TEST_DATA "/crc32.c";
  std::vector<std::string> actionFlags = {"-dce"};
  if (argc == 2 && std::string(argv[1]) == "--memory-walk") {
    // Medians (µs) of the walk hot and in its 1st, 2nd and 3rd pass after
    // the pause a worker waits before its first step.
    for (auto& samples : memoryWalkAfterPause(std::chrono::milliseconds(300), 7)) {
      std::printf("%.1f ", summarise("", std::move(samples)).p50);
    }
    std::printf("\n");
    return 0;
  }
  if (argc == 3 && std::string(argv[1]) == "--eager-baselines") {
    forkgym::passes::initializeLlvm();
    auto loaded = forkgym::passes::loadBenchmark(argv[2]);
    if (!loaded) die(loaded.error().message);
    const auto start = Clock::now();
    if (!forkgym::passes::computeBenchmarkCosts(loaded->bitcode)) die("computing the baselines failed");
    std::printf("%.1f\n", microseconds(Clock::now() - start) / 1000);
    return 0;
  }
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick") quick = true;
    else if (arg == "--observations") observations = true;
    else if (arg == "--json" && i + 1 < argc) jsonPath = argv[++i];
    else if (arg == "--actions" && i + 1 < argc) actionFlags = split(argv[++i]);
    else benchmark = arg;
  }

  // Start-up first, on a cold private zygote with nothing preloaded.
  const auto spawnStart = Clock::now();
  auto connection = forkgym::Connection::spawn();
  if (!connection) die(connection.error().message);
  const double helloUs = microseconds(Clock::now() - spawnStart);
  forkgym::Env env(*connection);
  if (auto ok = env.reset(benchmark); !ok) die(ok.error().message);
  const double firstResetUs = microseconds(Clock::now() - spawnStart);
  const uint32_t firstAction[] = {static_cast<uint32_t>(forkgym::passes::findAction(actionFlags[0]))};
  if (!env.step(firstAction).ok()) die("first step failed");
  const double firstStepUs = microseconds(Clock::now() - spawnStart);

  forkgym::passes::initializeLlvm();
  auto loaded = forkgym::passes::loadBenchmark(benchmark);
  if (!loaded) die(loaded.error().message);
  std::vector<Row> rows;
  std::optional<forkgym::passes::ParsedBenchmark> parsed;
  rows.push_back(measure("parse (in-process)", quick ? 5 : 20, [&] {
    auto again = forkgym::passes::parseTrustedBitcode(*loaded);
    if (!again) die(again.error().message);
    parsed.emplace(std::move(*again));
  }));
  rows.push_back(measure("CloneModule (in-process)", quick ? 5 : 20, [&] {
    auto copy = llvm::CloneModule(*parsed->module);
  }));
  const int64_t instructions = parsed->costs.instructionCount[forkgym::passes::kInitial];
  forkgym::passes::LlvmSession session(*parsed->module, parsed->costs);

  for (const auto& flag : actionFlags) {
    const int index = forkgym::passes::findAction(flag);
    if (index < 0) die("unknown action " + flag);
    const uint32_t one[] = {static_cast<uint32_t>(index)};
    // Warm both sides (first run transforms; later runs are the steady state).
    auto probeStart = Clock::now();
    for (int i = 0; i < 3; ++i) {
      if (!session.applyActions(one)) die("in-process " + flag + " failed");
      if (!env.step(one).ok()) die("client " + flag + " failed");
    }
    const int n = iterationsFor(microseconds(Clock::now() - probeStart) / 6, quick);
    rows.push_back(measure("floor " + flag, n, [&] {
      if (!session.applyActions(one)) die("in-process step failed");
    }));
    rows.push_back(measure("client " + flag, n, [&] {
      if (!env.step(one).ok()) die("client step failed");
    }));
  }
  const int resets = quick ? 30 : 300;
  rows.push_back(measure("reset (cached)", resets, [&] {
    if (!env.reset(benchmark)) die("reset failed");
  }));
  // An RL loop resets after an episode, not back to back: with a few
  // milliseconds between resets the zygote has forked a spare worker and
  // the reset is a hand-over of descriptors.
  {
    std::vector<double> samples;
    for (int i = 0; i < resets; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
      const auto start = Clock::now();
      if (!env.reset(benchmark)) die("reset failed");
      samples.push_back(microseconds(Clock::now() - start));
    }
    rows.push_back(summarise("reset (after a 3 ms episode)", std::move(samples)));
  }
  // The first step of an episode beside its floor, per action: on this
  // server (spares warm up while they wait) and on one started with
  // --no-spare-warm-up, alternating. The pause before each reset is an
  // episode's length, in which the zygote forks a spare and the spare
  // prepares. Workers run at nice 0 here, as the floor does.
  std::vector<std::pair<std::string, std::pair<double, double>>> firstStepFaults;  // flag -> (warm, cold)
  {
    forkgym::ServerOptions warmOptions, coldOptions;
    warmOptions.extraArgs = {"--worker-nice", "0"};
    coldOptions.extraArgs = {"--worker-nice", "0", "--no-spare-warm-up"};
    auto warmServer = forkgym::Connection::spawn(warmOptions);
    auto coldServer = forkgym::Connection::spawn(coldOptions);
    if (!warmServer || !coldServer) die("could not start the first-step servers");
    forkgym::Env warmEnv(*warmServer), coldEnv(*coldServer);
    // --quick (the test suite's run): the first action only.
    for (const auto& flag : std::span(actionFlags).first(quick ? 1 : actionFlags.size())) {
      const uint32_t one[] = {static_cast<uint32_t>(forkgym::passes::findAction(flag))};
      std::vector<double> floor, coldFloor, pausedFloor, warm, cold, warmFaults, coldFaults;
      const auto pause = std::chrono::milliseconds(quick ? 50 : 300);
      auto firstStep = [&](forkgym::Env& on, std::vector<double>& times, std::vector<double>& faults) {
        std::this_thread::sleep_for(pause);
        if (!on.reset(benchmark)) die("reset failed");
        const long long before = minorFaults(on.workerPid());
        const auto start = Clock::now();
        if (!on.step(one).ok()) die("client first " + flag + " failed");
        times.push_back(microseconds(Clock::now() - start));
        const long long after = minorFaults(on.workerPid());
        if (before >= 0 && after >= 0) faults.push_back(static_cast<double>(after - before));
      };
      // The action once on a freshly parsed copy in this process, timed after `before`.
      auto freshFirstStep = [&](const std::function<void()>& before, std::vector<double>& times) {
        auto fresh = forkgym::passes::parseTrustedBitcode(*loaded);
        if (!fresh) die(fresh.error().message);
        forkgym::passes::LlvmSession freshSession(*fresh->module, fresh->costs);
        before();
        const auto start = Clock::now();
        if (!freshSession.applyActions(one)) die("in-process first " + flag + " failed");
        times.push_back(microseconds(Clock::now() - start));
      };
      firstStep(warmEnv, warm, warmFaults);  // each server's first reset forks on demand: not a sample
      firstStep(coldEnv, cold, coldFaults);
      warm.clear(), cold.clear(), warmFaults.clear(), coldFaults.clear();
      for (int i = 0; i < (quick ? 2 : 11); ++i) {
        freshFirstStep([] {}, floor);
        // The same with the module out of the CPU's caches, as a worker's is
        // after its client's episode: a fresh parse wrote all of it just now.
        freshFirstStep(evictCaches, coldFloor);
        // The same after the pause a worker waits before its first step: on
        // a virtual machine, memory a core last touched before it idled is
        // slow again for a few passes over it (see the README), in any
        // process; this floor pays that too.
        freshFirstStep([&] { std::this_thread::sleep_for(pause); }, pausedFloor);
        firstStep(warmEnv, warm, warmFaults);
        firstStep(coldEnv, cold, coldFaults);
      }
      rows.push_back(summarise("first step " + flag + " (floor: fresh parse, warm process)", std::move(floor)));
      rows.push_back(summarise("first step " + flag + " (floor after the same pause)", std::move(pausedFloor)));
      rows.push_back(summarise("first step " + flag + " (floor, module out of the caches)", std::move(coldFloor)));
      rows.push_back(summarise("first step " + flag + " (after reset, spare warmed up)", std::move(warm)));
      rows.push_back(summarise("first step " + flag + " (after reset, --no-spare-warm-up)", std::move(cold)));
      auto median = [](std::vector<double> values) {
        std::sort(values.begin(), values.end());
        return values.empty() ? -1.0 : values[values.size() / 2];
      };
      firstStepFaults.emplace_back(flag, std::pair(median(warmFaults), median(coldFaults)));
    }
  }
  // What a spare's warm-up costs it (in a fork of this process, as a spare
  // is a fork of the zygote): the module's pages populated, and the time.
  std::vector<double> warmUp;
  size_t warmUpPages = 0;
  for (int i = 0; i < (quick ? 2 : 5); ++i) {
    int pipeFds[2];
    if (pipe(pipeFds) != 0) die("pipe failed");
    const pid_t child = fork();
    if (child == 0) {
      const auto start = Clock::now();
      const auto report = forkgym::passes::prefaultModuleForWriting(*parsed->module, [] { return true; });
      const double out[2] = {microseconds(Clock::now() - start), static_cast<double>(report.pages)};
      (void)!write(pipeFds[1], out, sizeof(out));
      _exit(0);
    }
    close(pipeFds[1]);
    double in[2] = {};
    const bool got = read(pipeFds[0], in, sizeof(in)) == static_cast<ssize_t>(sizeof(in));
    close(pipeFds[0]);
    waitpid(child, nullptr, 0);
    if (!got) die("warm-up child failed");
    warmUp.push_back(in[0]);
    warmUpPages = static_cast<size_t>(in[1]);
  }
  rows.push_back(summarise("spare warm-up (" + std::to_string(warmUpPages) + " module pages)", std::move(warmUp)));
  rows.push_back(measure("fork", resets, [&] {
    auto copy = env.fork();
    if (!copy) die("fork failed: " + copy.error().message);
  }));
  // ObjectTextSizeBytes beside `clang-19 -c -x ir`, alternated. Measured on
  // a state one step past the benchmark (-strip drops the values' names, so
  // the module changes but its code does not): a session answers the
  // unchanged benchmark from its initial baseline, which measures no code
  // generation. Its phases beside clang's: the worker writes the state's
  // bitcode and parses it (clang parses it too), both generate code, clang
  // also starts a process (its floor: an empty module).
  bool objectSizeEqual = false;
  {
    const uint32_t strip[] = {static_cast<uint32_t>(forkgym::passes::findAction("-strip"))};
    if (!env.reset(benchmark)) die("reset failed");
    auto stepped = env.step(strip, std::vector<std::string>{"Bitcode"});
    if (!stepped.ok()) die("-strip failed: " + stepped.message);
    if (stepped.actionHadNoEffect) die("-strip changed nothing: the rows would measure no code generation");
    const auto& bytes = std::get<std::vector<uint8_t>>(stepped.observations[0]);
    const std::string state(bytes.begin(), bytes.end());
    char directory[] = "/tmp/forkgym-bench-XXXXXX";
    if (mkdtemp(directory) == nullptr) die("mkdtemp failed");
    const std::string input = std::string(directory) + "/state.bc", output = std::string(directory) + "/state.o";
    const std::string emptyInput = std::string(directory) + "/empty.bc";
    for (const auto& [path, contents] : {std::pair{input, state}, std::pair{emptyInput, emptyModuleBitcode()}}) {
      if (FILE* file = std::fopen(path.c_str(), "wb")) {
        std::fwrite(contents.data(), 1, contents.size(), file);
        std::fclose(file);
      }
    }
    const std::string clangPath = forkgym::passes::llvmToolPath("clang");
    const std::vector<std::string> clang = {clangPath, "-c", "-x", "ir", input, "-o", output};
    const std::vector<std::string> clangEmpty = {clangPath, "-c", "-x", "ir", emptyInput, "-o", output + ".empty"};
    llvm::LLVMContext context;
    auto stateModule = forkgym::passes::parseBitcode(state, context, "the state");
    if (!stateModule) die(stateModule.error().message);
    std::vector<double> client, atReset, inProcess, subprocess, clangFloor, parse, write;
    int64_t observed = -1;
    for (int i = 0; i < (quick ? 3 : 10); ++i) {
      if (!env.reset(benchmark)) die("reset failed");
      if (!env.step(strip).ok()) die("-strip failed");
      auto start = Clock::now();
      auto result = env.observe(std::vector<std::string>{"ObjectTextSizeBytes"});
      if (!result.ok()) die("ObjectTextSizeBytes: " + result.message);
      client.push_back(microseconds(Clock::now() - start));
      observed = std::get<int64_t>(result.observations[0]);
      start = Clock::now();
      if (!runProcess(clang)) die("clang -c -x ir failed");
      subprocess.push_back(microseconds(Clock::now() - start));
      start = Clock::now();
      if (!forkgym::passes::objectTextSize(state)) die("in-process ObjectTextSizeBytes failed");
      inProcess.push_back(microseconds(Clock::now() - start));
      start = Clock::now();
      if (!runProcess(clangEmpty)) die("clang -c -x ir on an empty module failed");
      clangFloor.push_back(microseconds(Clock::now() - start));
      start = Clock::now();
      {
        llvm::LLVMContext scratch;
        if (!forkgym::passes::parseBitcode(state, scratch, "the state")) die("parse failed");
      }
      parse.push_back(microseconds(Clock::now() - start));
      start = Clock::now();
      (void)forkgym::passes::writeBitcode(**stateModule);
      write.push_back(microseconds(Clock::now() - start));
      if (!env.reset(benchmark)) die("reset failed");
      if (!env.step({}).ok()) die("empty step failed");
      start = Clock::now();
      if (!env.observe(std::vector<std::string>{"ObjectTextSizeBytes"}).ok()) die("ObjectTextSizeBytes failed");
      atReset.push_back(microseconds(Clock::now() - start));
    }
    const std::string size = capture(forkgym::passes::llvmToolPath("llvm-size") + " " + output + " | tail -1");
    objectSizeEqual = !size.empty() && std::stoll(size) == observed;
    rows.push_back(summarise("ObjectTextSizeBytes (client)", std::move(client)));
    rows.push_back(summarise("ObjectTextSizeBytes (in-process)", std::move(inProcess)));
    rows.push_back(summarise("clang-19 -c -x ir (subprocess)", std::move(subprocess)));
    rows.push_back(summarise("ObjectTextSizeBytes at reset (client)", std::move(atReset)));
    rows.push_back(summarise("codegen phase: bitcode write (worker)", std::move(write)));
    rows.push_back(summarise("codegen phase: bitcode parse", std::move(parse)));
    rows.push_back(summarise("codegen phase: clang-19 on an empty module (subprocess)", std::move(clangFloor)));
    std::filesystem::remove_all(directory);
  }
  if (observations) {
    auto description = (*connection)->describe();
    for (const auto& space : (*description)->observations) {
      const std::vector<std::string> name = {space.name};
      // The worker caches some observations until the module changes, so
      // each sample starts from a fresh episode: the cold cost.
      std::vector<double> samples;
      bool unavailable = false;
      for (int i = 0; i < (quick ? 3 : 10) && !unavailable; ++i) {
        if (!env.reset(benchmark)) die("reset failed");
        if (!env.step({}).ok()) die("empty step failed");  // the worker's set-up is not the observation's cost
        const auto start = Clock::now();
        auto result = env.observe(name);
        // A space this machine or benchmark cannot give (no hardware
        // instruction counter, no run configuration) has no cost to report.
        if (result.outcome == forkgym::Outcome::InvalidRequest) {
          std::fprintf(stderr, "runtime_bench: left out %s: %s\n", space.name.c_str(), result.message.c_str());
          unavailable = true;
          break;
        }
        if (!result.ok()) die(space.name + ": " + result.message);
        samples.push_back(microseconds(Clock::now() - start));
      }
      if (!unavailable) rows.push_back(summarise("observe " + space.name, std::move(samples)));
    }
  }

  std::printf("benchmark: %s (%lld instructions)\n\n", benchmark.c_str(), static_cast<long long>(instructions));
  std::printf("| path | p50 µs | p99 µs | min µs | samples |\n|---|---:|---:|---:|---:|\n");
  for (const auto& row : rows) {
    std::printf("| %s | %.1f | %.1f | %.1f | %zu |\n", row.path.c_str(), row.p50, row.p99, row.min, row.samples);
  }
  for (const auto& [flag, faults] : firstStepFaults) {
    std::printf("\nfirst step %s: %.0f minor page faults in the worker after a warm-up, %.0f without (median)",
                flag.c_str(), faults.first, faults.second);
  }
  std::printf("\n");
  std::printf("\nstart-up: zygote spawn + hello %.1f ms, + first reset (load, baselines) %.1f ms, + first step %.1f ms\n",
              helloUs / 1000, firstResetUs / 1000, firstStepUs / 1000);

  if (!jsonPath.empty()) {
    std::ofstream json(jsonPath);
    json << "{\n  \"benchmark\": \"" << benchmark << "\",\n  \"instructions\": " << instructions << ",\n  \"rows\": [\n";
    for (size_t i = 0; i < rows.size(); ++i) {
      json << "    {\"path\": \"" << rows[i].path << "\", \"p50_us\": " << rows[i].p50 << ", \"p99_us\": " << rows[i].p99
           << ", \"min_us\": " << rows[i].min << ", \"samples\": " << rows[i].samples << "}"
           << (i + 1 < rows.size() ? "," : "") << "\n";
    }
    json << "  ],\n  \"startup_ms\": {\"hello\": " << helloUs / 1000 << ", \"first_reset\": " << firstResetUs / 1000
         << ", \"first_step\": " << firstStepUs / 1000 << "},\n  \"first_step_minor_faults\": {";
    for (size_t i = 0; i < firstStepFaults.size(); ++i) {
      json << (i ? ", " : "") << "\"" << firstStepFaults[i].first << "\": {\"warm_up\": "
           << firstStepFaults[i].second.first << ", \"no_warm_up\": " << firstStepFaults[i].second.second << "}";
    }
    json << "},\n  \"object_size_equals_clang\": "
         << (objectSizeEqual ? "true" : "false") << "\n}\n";
  }
  return 0;
}
