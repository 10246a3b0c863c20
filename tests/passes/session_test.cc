#include "passes/llvm/session.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <llvm/IR/InstIterator.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <seccomp.h>

#include <optional>
#include <random>
#include <sstream>

#include "passes/llvm/action_table.h"
#include "passes/llvm/benchmark_costs.h"
#include "passes/llvm/bitcode.h"
#include "passes/llvm/object_size.h"
#include "passes/llvm/warm_up.h"
#include "test_benchmarks.h"

namespace forkgym::passes {
namespace {

using testing::loadForTest;
using testing::parseForTest;
using testing::runLlvmTool;
using testing::smallProgramUri;
using testing::TempDir;

template <typename T>
T observeAs(LlvmSession& session, std::string_view name) {
  auto value = session.observe(name);
  EXPECT_TRUE(value.ok()) << name << ": " << (value.ok() ? "" : value.error().message);
  if (!value.ok()) return T{};
  return std::get<T>(*value);
}

int64_t instructionCountOf(const std::string& bitcode) {
  llvm::LLVMContext context;
  auto module = parseBitcode(bitcode, context, "opt's output");
  EXPECT_TRUE(module.ok());
  return module.ok() ? static_cast<int64_t>((*module)->getInstructionCount()) : -1;
}

// The text column of `llvm-size` (Berkeley format) for an object file.
int64_t llvmSizeText(const std::string& objectPath) {
  std::istringstream lines(runLlvmTool("llvm-size", {objectPath}));
  std::string header;
  std::getline(lines, header);
  int64_t text = -1;
  lines >> text;
  return text;
}

std::vector<uint32_t> availableActions() {
  std::vector<uint32_t> actions;
  for (uint32_t i = 0; i < kCompilerGymActionCount; ++i) {
    if (actionTable()[i].kind == ActionKind::Pipeline) actions.push_back(i);
  }
  return actions;
}

TEST(Session, EveryActionStepsOrGivesClearError) {
  for (uint32_t index = 0; index < kCompilerGymActionCount; ++index) {
    ParsedBenchmark benchmark = parseForTest(smallProgramUri());
    LlvmSession session(*benchmark.module, benchmark.costs, &benchmark.bitcode);
    const ActionInfo& action = actionTable()[index];
    const uint32_t actions[] = {index};
    auto result = session.applyActions(actions);
    if (action.kind == ActionKind::Unavailable) {
      ASSERT_FALSE(result.ok()) << action.flag;
      EXPECT_EQ(result.error().outcome, Outcome::InvalidRequest);
      EXPECT_NE(result.error().message.find(std::string(action.flag) + ") is unavailable in LLVM 19: "),
                std::string::npos)
          << result.error().message;
      EXPECT_TRUE(session.actions().empty());
    } else {
      ASSERT_TRUE(result.ok()) << action.flag << ": " << result.error().message;
      EXPECT_EQ(session.actions(), std::vector<uint32_t>{index});
      EXPECT_EQ(observeAs<std::string>(session, "IrSha1").size(), 40u) << action.flag;
    }
  }
}

TEST(Session, UnknownActionIsInvalidRequestNamingTheRangeAndAppliesNothing) {
  ParsedBenchmark benchmark = parseForTest(smallProgramUri());
  LlvmSession session(*benchmark.module, benchmark.costs, &benchmark.bitcode);
  const std::string before = observeAs<std::string>(session, "IrSha1");
  const uint32_t actions[] = {103, 9999};  // mem2reg would change the module
  auto result = session.applyActions(actions);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().outcome, Outcome::InvalidRequest);
  EXPECT_NE(result.error().message.find("action 9999"), std::string::npos);
  EXPECT_NE(result.error().message.find("0.." + std::to_string(actionTable().size() - 1)),
            std::string::npos);
  EXPECT_TRUE(session.actions().empty());
  EXPECT_EQ(observeAs<std::string>(session, "IrSha1"), before);
}

TEST(Session, ActionHadNoEffectOnlyWhenNothingChanged) {
  ParsedBenchmark benchmark = parseForTest(smallProgramUri());
  LlvmSession session(*benchmark.module, benchmark.costs, &benchmark.bitcode);
  const uint32_t mem2reg[] = {static_cast<uint32_t>(findAction("-mem2reg"))};
  auto first = session.applyActions(mem2reg);
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->actionHadNoEffect);
  const std::string after = observeAs<std::string>(session, "IrSha1");
  auto second = session.applyActions(mem2reg);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->actionHadNoEffect);
  EXPECT_EQ(observeAs<std::string>(session, "IrSha1"), after);
  auto none = session.applyActions({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->actionHadNoEffect);
}

TEST(Session, BaselinesMatchOpt) {
  const LoadedBitcode& loaded = loadForTest(smallProgramUri());
  ParsedBenchmark benchmark = parseForTest(smallProgramUri());
  LlvmSession session(*benchmark.module, benchmark.costs, &benchmark.bitcode);
  EXPECT_EQ(observeAs<int64_t>(session, "IrInstructionCountOz"),
            instructionCountOf(runLlvmTool("opt", {"-Oz", "-", "-o", "-"}, loaded.bitcode)));
  EXPECT_EQ(observeAs<int64_t>(session, "IrInstructionCountO3"),
            instructionCountOf(runLlvmTool("opt", {"-O3", "-", "-o", "-"}, loaded.bitcode)));
  EXPECT_EQ(observeAs<int64_t>(session, "IrInstructionCountO0"),
            instructionCountOf(runLlvmTool("opt", {"-O0", "-", "-o", "-"}, loaded.bitcode)));
}

TEST(Session, OzBaselineMatchesOpt) {
  for (const std::string& uri : {smallProgramUri(), std::string("generator://csmith-v0/3")}) {
    const LoadedBitcode& loaded = loadForTest(uri);
    ParsedBenchmark benchmark = parseForTest(uri);
    LlvmSession session(*benchmark.module, benchmark.costs, &benchmark.bitcode);
    const std::string oz = runLlvmTool("opt", {"-Oz", "-", "-o", "-"}, loaded.bitcode);
    EXPECT_EQ(observeAs<int64_t>(session, "IrInstructionCountOz"), instructionCountOf(oz)) << uri;
  }
}

// CompilerGym's definition: llvm-size's text column for the object that
// `clang -c -x ir` (no -O flag: -O0 codegen) makes of the state's bitcode;
// the baselines are the same measure after opt's pipelines. Several kinds of
// module (a C program, a csmith one, an llvm-stress one without any function
// attributes, so the target machine's CPU decides), before and after actions.
TEST(Session, ObjectTextSizeMatchesClangAndLlvmSize) {
  TempDir dir;
  int files = 0;
  auto clangTextSize = [&](const std::string& bitcode) {
    const std::string name = std::to_string(files++);
    const std::string input = dir.write(name + ".bc", bitcode);
    const std::string object = (dir.path() / (name + ".o")).string();
    runLlvmTool("clang", {"-c", "-x", "ir", input, "-o", object});
    return llvmSizeText(object);
  };
  for (const std::string& uri : {smallProgramUri(), std::string("generator://csmith-v0/3"),
                                std::string("generator://llvm-stress-v0/5")}) {
    const LoadedBitcode& loaded = loadForTest(uri);
    ParsedBenchmark benchmark = parseForTest(uri);
    LlvmSession session(*benchmark.module, benchmark.costs, &benchmark.bitcode);

    EXPECT_EQ(observeAs<int64_t>(session, "ObjectTextSizeBytes"), clangTextSize(loaded.bitcode)) << uri;
    EXPECT_EQ(observeAs<int64_t>(session, "ObjectTextSizeO0"),
              clangTextSize(runLlvmTool("opt", {"-O0", "-", "-o", "-"}, loaded.bitcode))) << uri;
    EXPECT_EQ(observeAs<int64_t>(session, "ObjectTextSizeOz"),
              clangTextSize(runLlvmTool("opt", {"-Oz", "-", "-o", "-"}, loaded.bitcode))) << uri;
    EXPECT_EQ(observeAs<int64_t>(session, "ObjectTextSizeO3"),
              clangTextSize(runLlvmTool("opt", {"-O3", "-", "-o", "-"}, loaded.bitcode))) << uri;

    const uint32_t actions[] = {static_cast<uint32_t>(findAction("-mem2reg")),
                                static_cast<uint32_t>(findAction("-instcombine")),
                                static_cast<uint32_t>(findAction("-simplifycfg")),
                                static_cast<uint32_t>(findAction("-loop-unroll"))};
    ASSERT_TRUE(session.applyActions(actions).ok()) << uri;
    const std::vector<uint8_t> bytes = observeAs<std::vector<uint8_t>>(session, "Bitcode");
    EXPECT_EQ(observeAs<int64_t>(session, "ObjectTextSizeBytes"),
              clangTextSize(std::string(bytes.begin(), bytes.end()))) << uri;
  }
}

// clang's -O0 pipeline inlines alwaysinline functions before code
// generation; llc does not, so a size without it would differ from clang's.
TEST(Session, ObjectTextSizeRunsClangsAlwaysInliner) {
  TempDir dir;
  const std::string ir = R"(
define internal i32 @helper(i32 %x) alwaysinline {
  %a = mul i32 %x, 7
  %b = add i32 %a, 3
  %c = xor i32 %b, %x
  ret i32 %c
}
define i32 @caller(i32 %x) {
  %r1 = call i32 @helper(i32 %x)
  %r2 = call i32 @helper(i32 %r1)
  %r3 = call i32 @helper(i32 %r2)
  ret i32 %r3
}
)";
  const std::string uri = "file://" + dir.write("inline.ll", ir);
  const LoadedBitcode& loaded = loadForTest(uri);
  ParsedBenchmark benchmark = parseForTest(uri);
  LlvmSession session(*benchmark.module, benchmark.costs, &benchmark.bitcode);
  const std::string input = dir.write("inline.bc", loaded.bitcode);
  const std::string object = (dir.path() / "inline.o").string();
  runLlvmTool("clang", {"-c", "-x", "ir", input, "-o", object});
  EXPECT_EQ(observeAs<int64_t>(session, "ObjectTextSizeBytes"), llvmSizeText(object));
  const std::string llcObject = (dir.path() / "inline-llc.o").string();
  runLlvmTool("llc", {"-O0", "-filetype=obj", "-relocation-model=pic", input, "-o", llcObject});
  EXPECT_NE(llvmSizeText(object), llvmSizeText(llcObject)) << "the module no longer tells the pipelines apart";
}

// The loader leaves the baselines out; a session computes each one it is
// asked for from the benchmark's bitcode, and gets what computing them all
// at once gives (the zygote's baseline child, the disk cache) — for each
// observation and reward that reads one, in any order, and in a session
// whose benchmark already has some.
TEST(Session, BaselinesComputedWhenNeededEqualTheEagerOnes) {
  for (const std::string& uri : {smallProgramUri(), std::string("generator://csmith-v0/3")}) {
    ParsedBenchmark benchmark = parseForTest(uri);
    ASSERT_FALSE(benchmark.costs.complete()) << uri;
    auto eager = computeBenchmarkCosts(benchmark.bitcode);
    ASSERT_TRUE(eager.ok()) << eager.error().message;
    LlvmSession lazy(*benchmark.module, benchmark.costs, &benchmark.bitcode);
    const char* points[] = {"O0", "O3", "Oz"};
    for (int point = kO0; point < kCostPointCount; ++point) {
      const std::string suffix = points[point - kO0];
      EXPECT_EQ(observeAs<int64_t>(lazy, "ObjectTextSize" + suffix), eager->objectTextSize[point]) << uri << suffix;
      EXPECT_EQ(observeAs<int64_t>(lazy, "IrInstructionCount" + suffix), eager->instructionCount[point]) << uri;
    }

    // Rewards on a fresh session: each computes only the points it reads.
    ParsedBenchmark again = parseForTest(uri);
    LlvmSession rewards(*again.module, again.costs, &again.bitcode);
    ParsedBenchmark third = parseForTest(uri);
    LlvmSession complete(*third.module, *eager, &third.bitcode);
    const uint32_t actions[] = {static_cast<uint32_t>(findAction("-mem2reg")),
                                static_cast<uint32_t>(findAction("-instcombine"))};
    ASSERT_TRUE(rewards.applyActions(actions).ok());
    ASSERT_TRUE(complete.applyActions(actions).ok());
    for (const char* reward : {"IrInstructionCountOz", "IrInstructionCountO3", "ObjectTextSizeOz",
                               "ObjectTextSizeNorm", "ObjectTextSizeO3", "IrInstructionCountNorm"}) {
      auto lazyReward = rewards.reward(reward);
      auto eagerReward = complete.reward(reward);
      ASSERT_TRUE(lazyReward.ok() && eagerReward.ok()) << reward;
      EXPECT_EQ(*lazyReward, *eagerReward) << uri << " " << reward;
    }
    EXPECT_EQ(rewards.costs().instructionCount[kO0], kNotComputed) << "no reward reads -O0";
  }
}

// Until an action changes the module, the state is the benchmark as loaded,
// whose object size is the initial baseline (the same bytes through the same
// code generation): a session answers one from the other instead of
// generating code twice. A planted baseline no computation gives shows which
// was read; once the module changes, the size is computed again.
TEST(Session, UnchangedStateSharesItsObjectSizeWithTheInitialBaseline) {
  ParsedBenchmark planted = parseForTest(smallProgramUri());
  constexpr int64_t kPlanted = 7;  // crc32.c's text is far larger
  planted.costs.objectTextSize[kInitial] = kPlanted;
  LlvmSession session(*planted.module, planted.costs, &planted.bitcode);
  EXPECT_EQ(observeAs<int64_t>(session, "ObjectTextSizeBytes"), kPlanted);
  const uint32_t mem2reg[] = {static_cast<uint32_t>(findAction("-mem2reg"))};
  auto none = session.applyActions({});
  ASSERT_TRUE(none.ok() && none->actionHadNoEffect);
  EXPECT_EQ(observeAs<int64_t>(session, "ObjectTextSizeBytes"), kPlanted) << "nothing changed";
  auto changed = session.applyActions(mem2reg);
  ASSERT_TRUE(changed.ok() && !changed->actionHadNoEffect);
  const std::vector<uint8_t> bytes = observeAs<std::vector<uint8_t>>(session, "Bitcode");
  auto computed = objectTextSize(std::string(bytes.begin(), bytes.end()));
  ASSERT_TRUE(computed.ok());
  EXPECT_NE(*computed, kPlanted);
  EXPECT_EQ(observeAs<int64_t>(session, "ObjectTextSizeBytes"), *computed) << "the module changed";
  // A step with no effect after a change is not the benchmark as loaded.
  ASSERT_TRUE(session.applyActions(mem2reg).ok());
  EXPECT_EQ(observeAs<int64_t>(session, "ObjectTextSizeBytes"), *computed);

  // The other way: a size observed on the unchanged state is the initial
  // baseline a reward then reads, and equals the one computed from the
  // benchmark's bitcode.
  ParsedBenchmark fresh = parseForTest(smallProgramUri());
  ASSERT_EQ(fresh.costs.objectTextSize[kInitial], kNotComputed);
  LlvmSession observed(*fresh.module, fresh.costs, &fresh.bitcode);
  const int64_t size = observeAs<int64_t>(observed, "ObjectTextSizeBytes");
  EXPECT_EQ(observed.costs().objectTextSize[kInitial], size);
  auto fromBitcode = computeCostPoint(fresh.bitcode, kInitial, /*objectTextSize=*/true);
  ASSERT_TRUE(fromBitcode.ok());
  EXPECT_EQ(fromBitcode->objectTextSize, size);
}

// IrSha1 hashes bitcode without use-list order (NewGVN leaves use-lists in
// an order that depends on heap addresses), so replays compare against opt
// writing the same form.
TEST(Session, ReplayThroughOptGivesSameIrSha1) {
  std::vector<uint32_t> available = availableActions();
  std::mt19937 random(20240611);
  for (const std::string& uri : {smallProgramUri(), std::string("generator://csmith-v0/4"),
                                std::string("generator://llvm-stress-v0/4")}) {
    const LoadedBitcode& loaded = loadForTest(uri);
    for (int episode = 0; episode < 3; ++episode) {
      ParsedBenchmark benchmark = parseForTest(uri);
      LlvmSession session(*benchmark.module, benchmark.costs, &benchmark.bitcode);
      std::vector<uint32_t> actions;
      for (int step = 0; step < 25; ++step) {
        actions.push_back(available[random() % available.size()]);
      }
      // Several steps of several actions, as a client would send them.
      for (size_t begin = 0; begin < actions.size(); begin += 5) {
        auto applied = session.applyActions(std::span(actions).subspan(begin, 5));
        ASSERT_TRUE(applied.ok()) << applied.error().message;
      }
      const std::string replay = pipelineText(session.actions());
      const std::string optOutput =
          runLlvmTool("opt", {"-passes=" + replay, "-preserve-bc-uselistorder=false", "-", "-o", "-"}, loaded.bitcode);
      EXPECT_EQ(observeAs<std::string>(session, "IrSha1"), sha1Hex(optOutput))
          << uri << " episode " << episode << ": opt -passes='" << replay << "'";
    }
  }
}

TEST(Session, ReplayWithNewGvnThroughOptGivesSameIr) {
  const LoadedBitcode& loaded = loadForTest(smallProgramUri());
  ParsedBenchmark benchmark = parseForTest(smallProgramUri());
  LlvmSession session(*benchmark.module, benchmark.costs, &benchmark.bitcode);
  std::vector<uint32_t> actions;
  for (const char* flag : {"-mem2reg", "-newgvn", "-loop-rotate", "-newgvn", "-instcombine"}) {
    actions.push_back(static_cast<uint32_t>(findAction(flag)));
  }
  ASSERT_TRUE(session.applyActions(actions).ok());
  const std::string optIr = runLlvmTool(
      "opt", {"-S", "-passes=" + pipelineText(session.actions()), "-", "-o", "-"}, loaded.bitcode);
  // opt names the module after its input; everything after that line must match.
  const std::string ours = observeAs<std::string>(session, "Ir");
  EXPECT_EQ(ours.substr(ours.find('\n')), optIr.substr(optIr.find('\n')));
}

TEST(Session, InitialBitcodeIsTheLoadersAndIrSha1ItsCanonicalHash) {
  ParsedBenchmark benchmark = parseForTest(smallProgramUri());
  LlvmSession session(*benchmark.module, benchmark.costs, &benchmark.bitcode);
  const std::vector<uint8_t> bytes = observeAs<std::vector<uint8_t>>(session, "Bitcode");
  const std::string canonical = runLlvmTool(
      "opt", {"-passes=verify", "-preserve-bc-uselistorder=false", "-", "-o", "-"},
      std::string(bytes.begin(), bytes.end()));
  EXPECT_EQ(observeAs<std::string>(session, "IrSha1"), sha1Hex(canonical));
  // The initial state is the loader's bitcode, byte for byte.
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), benchmark.bitcode);
}

// BitcodeSha1 is the state hash: the SHA-1 of the Bitcode observation, which
// keeps use-list order because later passes read it (InstCombine's worklist,
// GVN's leader choice, ...). Two modules that differ only in one value's
// use-list order have one IrSha1 and two BitcodeSha1s.
// A spare worker prepares its first step while it waits (warm_up.h): the
// episode it then serves must be the one an unprepared worker serves, to
// the use-list order, whether the preparation finished or was cut short.
TEST(Session, PreparingTheFirstStepChangesNothingAnEpisodeObserves) {
  const std::vector<std::string> flags = {"-sroa", "-instcombine", "-gvn", "-simplifycfg", "-licm", "-dce",
                                          "-loop-rotate", "-early-cse", "-reassociate", "-adce"};
  std::vector<uint32_t> actions;
  for (const auto& flag : flags) actions.push_back(static_cast<uint32_t>(findAction(flag)));
  auto episode = [&](std::optional<int> idleLooks) {
    ParsedBenchmark benchmark = parseForTest("generator://csmith-v0/3");
    LlvmSession session(*benchmark.module, benchmark.costs);
    if (idleLooks) {
      int looks = 0;
      session.prepareFirstStep([&] { return looks++ < *idleLooks; });
    }
    std::vector<std::string> trace;
    for (uint32_t action : actions) {
      EXPECT_TRUE(session.applyActions(std::span(&action, 1)).ok());
      trace.push_back(observeAs<std::string>(session, "BitcodeSha1"));
      trace.push_back(std::to_string(observeAs<int64_t>(session, "IrInstructionCount")));
    }
    return trace;
  };
  const auto unprepared = episode(std::nullopt);
  EXPECT_EQ(episode(1000000), unprepared) << "prepared to the end";
  EXPECT_EQ(episode(2), unprepared) << "preparation cut short by the client";
  EXPECT_EQ(episode(0), unprepared) << "the client rang before the preparation began";
}

TEST(Session, WarmUpTakesTheFirstStepsCopyOnWriteFaultsAhead) {
  ParsedBenchmark benchmark = parseForTest("generator://csmith-v0/3");
  // In a fork, as in a spare: the module is shared copy-on-write with the
  // parent. {pages populated, minor faults during a first -dce}.
  auto firstDce = [&](bool warmUp) {
    int report[2] = {-1, -1};
    int pipeFds[2];
    if (pipe(pipeFds) != 0) return std::pair(-1, -1);
    const pid_t child = fork();
    if (child == 0) {
      LlvmSession session(*benchmark.module, benchmark.costs);
      session.prepareFirstStep([] { return false; });  // the pass manager only: its allocations are not the module's
      int pages = 0;
      if (warmUp) {
        const WarmUpReport warm = prefaultModuleForWriting(*benchmark.module, [] { return true; });
        pages = warm.complete ? static_cast<int>(warm.pages) : 0;
      }
      rusage before{}, after{};
      getrusage(RUSAGE_SELF, &before);
      const uint32_t dce = static_cast<uint32_t>(findAction("-dce"));
      (void)session.applyActions(std::span(&dce, 1));
      getrusage(RUSAGE_SELF, &after);
      const int out[2] = {pages, static_cast<int>(after.ru_minflt - before.ru_minflt)};
      (void)!write(pipeFds[1], out, sizeof(out));
      _exit(0);
    }
    close(pipeFds[1]);
    const bool got = read(pipeFds[0], report, sizeof(report)) == static_cast<ssize_t>(sizeof(report));
    close(pipeFds[0]);
    waitpid(child, nullptr, 0);
    return got ? std::pair(report[0], report[1]) : std::pair(-1, -1);
  };
  const auto [coldPages, coldFaults] = firstDce(false);
  const auto [warmPages, warmFaults] = firstDce(true);
  ASSERT_GE(coldFaults, 0);
  ASSERT_GE(warmFaults, 0);
  EXPECT_GT(warmPages, 10) << "every page of the module was populated";
  // What remains is fresh memory the pass allocates and code pages (here
  // ~50 of ~90; a first -instcombine on a 62k-instruction module: ~400 of
  // ~3,300, scripts/bench).
  EXPECT_LT(warmFaults, coldFaults) << warmFaults << " faults after the warm-up, " << coldFaults << " without";
}

TEST(Session, BitcodeSha1CoversTheUseListOrderIrSha1Ignores) {
  ParsedBenchmark plain = parseForTest(smallProgramUri());
  ParsedBenchmark permuted = parseForTest(smallProgramUri());
  llvm::Value* shared = nullptr;
  for (llvm::Function& function : *permuted.module) {
    for (llvm::Instruction& instruction : llvm::instructions(function)) {
      if (!shared && instruction.hasNUsesOrMore(2)) shared = &instruction;
    }
  }
  ASSERT_NE(shared, nullptr) << "the small program has no instruction with two uses";
  shared->reverseUseList();

  LlvmSession a(*plain.module, plain.costs, &plain.bitcode);
  LlvmSession b(*permuted.module, permuted.costs, &permuted.bitcode);
  EXPECT_EQ(observeAs<std::string>(a, "IrSha1"), observeAs<std::string>(b, "IrSha1"));
  EXPECT_NE(observeAs<std::string>(a, "BitcodeSha1"), observeAs<std::string>(b, "BitcodeSha1"));
  const std::vector<uint8_t> bytes = observeAs<std::vector<uint8_t>>(b, "Bitcode");
  EXPECT_EQ(observeAs<std::string>(b, "BitcodeSha1"), sha1Hex(std::string(bytes.begin(), bytes.end())));
}

// After steps, BitcodeSha1 is what sha1sum prints for opt's replay written
// with use-list order (opt's default for bitcode), within one process.
TEST(Session, BitcodeSha1IsTheHashOfTheBitcodeOptWrites) {
  const LoadedBitcode& loaded = loadForTest(smallProgramUri());
  ParsedBenchmark benchmark = parseForTest(smallProgramUri());
  LlvmSession session(*benchmark.module, benchmark.costs, &benchmark.bitcode);
  std::vector<uint32_t> actions;
  for (const char* flag : {"-mem2reg", "-instcombine", "-simplifycfg"}) {
    actions.push_back(static_cast<uint32_t>(findAction(flag)));
  }
  ASSERT_TRUE(session.applyActions(actions).ok());
  const std::string optOutput =
      runLlvmTool("opt", {"-passes=" + pipelineText(session.actions()), "-", "-o", "-"}, loaded.bitcode);
  EXPECT_EQ(observeAs<std::string>(session, "BitcodeSha1"), sha1Hex(optOutput));
}

TEST(Session, ObservationsHaveTheirDeclaredTypesAndShapes) {
  ParsedBenchmark benchmark = parseForTest(smallProgramUri());
  LlvmSession session(*benchmark.module, benchmark.costs, &benchmark.bitcode);
  for (const Space& space : observationSpaces()) {
    auto value = session.observe(space.name);
    if (space.needsRunConfig) {  // this benchmark has none: the runner's tests cover them
      ASSERT_FALSE(value.ok()) << space.name;
      EXPECT_EQ(value.error().outcome, Outcome::InvalidRequest) << space.name;
      continue;
    }
    ASSERT_TRUE(value.ok()) << space.name << ": " << value.error().message;
    switch (space.type) {
      case ValueType::Int64:
        EXPECT_GE(std::get<int64_t>(*value), 0) << space.name;
        break;
      case ValueType::Int64List:
        ASSERT_EQ(space.shape.size(), 1u) << space.name;
        EXPECT_EQ(static_cast<int64_t>(std::get<std::vector<int64_t>>(*value).size()), space.shape[0])
            << space.name;
        EXPECT_EQ(space.featureNames.size(), static_cast<size_t>(space.shape[0])) << space.name;
        break;
      case ValueType::Text:
        EXPECT_FALSE(std::get<std::string>(*value).empty()) << space.name;
        break;
      case ValueType::Bytes:
        EXPECT_FALSE(std::get<std::vector<uint8_t>>(*value).empty()) << space.name;
        break;
      default:
        EXPECT_EQ(typeOf(*value), space.type) << space.name;
        break;
    }
    EXPECT_EQ(typeOf(*value), space.type) << space.name;
    // BitcodeFile's bytes are, but each call is a new file: a new path.
    EXPECT_EQ(space.deterministic, space.name != "BitcodeFile") << space.name;
    EXPECT_EQ(space.platformDependent, space.name.starts_with("ObjectTextSize") || space.name == "CpuInfo")
        << space.name;
  }
  EXPECT_EQ(observeAs<int64_t>(session, "IrInstructionCount"),
            benchmark.costs.instructionCount[kInitial]);
  auto initialSize = session.baseline(RewardCost::ObjectTextSize, kInitial);
  ASSERT_TRUE(initialSize.ok());
  EXPECT_EQ(observeAs<int64_t>(session, "ObjectTextSizeBytes"), *initialSize);
  EXPECT_NE(observeAs<std::string>(session, "Ir").find("define"), std::string::npos);
}

TEST(Session, UnknownObservationOrRewardIsInvalidRequest) {
  ParsedBenchmark benchmark = parseForTest(smallProgramUri());
  LlvmSession session(*benchmark.module, benchmark.costs, &benchmark.bitcode);
  auto observation = session.observe("NoSuchObservation");
  ASSERT_FALSE(observation.ok());
  EXPECT_EQ(observation.error().outcome, Outcome::InvalidRequest);
  EXPECT_NE(observation.error().message.find("NoSuchObservation"), std::string::npos);
  auto reward = session.reward("Runtime");
  ASSERT_FALSE(reward.ok());
  EXPECT_EQ(reward.error().outcome, Outcome::InvalidRequest);
}

TEST(Session, PipelineTextJoinsRowsForOpt) {
  const uint32_t actions[] = {static_cast<uint32_t>(findAction("-dce")),
                              static_cast<uint32_t>(findAction("-globaldce")),
                              static_cast<uint32_t>(findAction("-licm"))};
  EXPECT_EQ(pipelineText(actions), "function(dce),globaldce,function(loop-mssa(licm))");
  EXPECT_EQ(pipelineText({}), "");
}

TEST(Session, InitializeLlvmReportsTheHost) {
  const HostTarget& host = initializeLlvm();
  EXPECT_FALSE(host.triple.empty());
  EXPECT_FALSE(host.cpu.empty());
  EXPECT_EQ(&host, &initializeLlvm());
}

// The worker serves requests under a seccomp policy that refuses files,
// sockets and new processes. After initializeLlvm(), a session must need
// none of them: here any such call kills the process with SIGSYS.
void refuseFilesSocketsAndProcesses() {
  scmp_filter_ctx filter = seccomp_init(SCMP_ACT_ALLOW);
  for (int call : {SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(openat2), SCMP_SYS(socket),
                   SCMP_SYS(execve), SCMP_SYS(execveat), SCMP_SYS(fork), SCMP_SYS(vfork),
                   SCMP_SYS(clone), SCMP_SYS(clone3), SCMP_SYS(readlink), SCMP_SYS(stat),
                   SCMP_SYS(newfstatat), SCMP_SYS(access), SCMP_SYS(getcwd)}) {
    seccomp_rule_add(filter, SCMP_ACT_KILL_PROCESS, call, 0);
  }
  if (seccomp_load(filter) != 0) std::_Exit(3);
}

void serveEverythingUnderAFilter() {
  ParsedBenchmark benchmark = parseForTest(smallProgramUri());
  refuseFilesSocketsAndProcesses();
  LlvmSession session(*benchmark.module, benchmark.costs, &benchmark.bitcode);
  for (int round = 0; round < 2; ++round) {
    for (uint32_t action : availableActions()) {
      const uint32_t actions[] = {action};
      if (!session.applyActions(actions).ok()) std::_Exit(1);
      // Spaces that build and run the program need a process by design
      // (and a run configuration this benchmark lacks): they must say so
      // without trying.
      for (const Space& space : observationSpaces()) {
        if (session.observe(space.name).ok() == space.needsRunConfig) std::_Exit(1);
      }
      for (const Space& space : rewardSpaces()) {
        if (session.reward(space.name).ok() == space.needsRunConfig) std::_Exit(1);
      }
    }
  }
  std::_Exit(0);
}

TEST(Session, ServesEveryActionObservationAndRewardWithoutFilesOrProcesses) {
  EXPECT_EXIT(serveEverythingUnderAFilter(), ::testing::ExitedWithCode(0), "");
}

#ifdef FORKGYM_TEST_ACTIONS
uint32_t testAction(std::string_view flag) {
  const int index = findAction(flag);
  EXPECT_GE(index, static_cast<int>(kCompilerGymActionCount)) << flag;
  return static_cast<uint32_t>(index);
}

TEST(Session, VerifierFailureActionEndsTheEpisodeWithTheVerifiersMessage) {
  ParsedBenchmark benchmark = parseForTest(smallProgramUri());
  LlvmSession session(*benchmark.module, benchmark.costs, &benchmark.bitcode);
  const uint32_t actions[] = {testAction("-forkgym-test-verifier-failure")};
  auto result = session.applyActions(actions);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().outcome, Outcome::VerifierFailed);
  EXPECT_NE(result.error().message.find("-forkgym-test-verifier-failure"), std::string::npos);
  EXPECT_NE(result.error().message.find("does not have terminator"), std::string::npos)
      << result.error().message;
  // The culprit is part of the reproducer.
  EXPECT_EQ(session.actions(), std::vector<uint32_t>{actions[0]});
}

// Unsandboxed, the crash actions crash and the syscall actions just return.
// (Under the sandbox, forkserver's tests check the typed outcomes.)
class FaultInjectionDeathTest : public ::testing::Test {
 protected:
  void apply(std::string_view flag) {
    ParsedBenchmark benchmark = parseForTest(smallProgramUri());
    LlvmSession session(*benchmark.module, benchmark.costs, &benchmark.bitcode);
    const uint32_t actions[] = {testAction(flag)};
    auto result = session.applyActions(actions);
    if (result.ok()) std::exit(result->actionHadNoEffect ? 0 : 1);
    std::exit(2);
  }
};

TEST_F(FaultInjectionDeathTest, SegfaultActionDiesWithSigsegv) {
  EXPECT_EXIT(apply("-forkgym-test-segfault"), ::testing::KilledBySignal(SIGSEGV), "");
}

TEST_F(FaultInjectionDeathTest, AbortActionDiesWithSigabrt) {
  EXPECT_EXIT(apply("-forkgym-test-abort"), ::testing::KilledBySignal(SIGABRT), "");
}

TEST_F(FaultInjectionDeathTest, StackOverflowActionDiesWithSigsegv) {
  EXPECT_EXIT(apply("-forkgym-test-stack-overflow"), ::testing::KilledBySignal(SIGSEGV), "");
}

TEST_F(FaultInjectionDeathTest, SyscallActionsReturnWithoutEffectWhenAllowed) {
  EXPECT_EXIT(apply("-forkgym-test-open"), ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(apply("-forkgym-test-socket"), ::testing::ExitedWithCode(0), "");
  // Allowed, execve replaces the process with /bin/true, which exits 0.
  EXPECT_EXIT(apply("-forkgym-test-execve"), ::testing::ExitedWithCode(0), "");
}

TEST_F(FaultInjectionDeathTest, OpenActionDiesUnderTheServingFilter) {
  // Proves the filter in ServesEveryActionObservationAndReward... bites.
  auto openUnderFilter = [] {
    ParsedBenchmark benchmark = parseForTest(smallProgramUri());
    refuseFilesSocketsAndProcesses();
    LlvmSession session(*benchmark.module, benchmark.costs, &benchmark.bitcode);
    const uint32_t actions[] = {testAction("-forkgym-test-open")};
    (void)session.applyActions(actions);
    std::_Exit(0);
  };
  EXPECT_EXIT(openUnderFilter(), ::testing::KilledBySignal(SIGSYS), "");
}

TEST_F(FaultInjectionDeathTest, HangActionSpinsUntilKilled) {
  auto hangForOneSecond = [this] {
    alarm(1);
    apply("-forkgym-test-hang");
  };
  EXPECT_EXIT(hangForOneSecond(), ::testing::KilledBySignal(SIGALRM), "");
}

TEST_F(FaultInjectionDeathTest, OomActionAllocatesUntilTheLimitStopsIt) {
  // Unbounded, it would take the machine's memory; under a 1 GiB
  // address-space limit operator new runs out and throws.
  constexpr int kRanOutOfMemory = 42;
  auto exhaustOneGibibyte = [this] {
    const rlimit limit{size_t{1} << 30, size_t{1} << 30};
    setrlimit(RLIMIT_AS, &limit);
    try {
      apply("-forkgym-test-oom");
    } catch (const std::bad_alloc&) {
      std::_Exit(kRanOutOfMemory);
    }
  };
  EXPECT_EXIT(exhaustOneGibibyte(), ::testing::ExitedWithCode(kRanOutOfMemory), "");
}
#endif

}  // namespace
}  // namespace forkgym::passes
