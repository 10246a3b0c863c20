#include "passes/llvm/session.h"

#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>

#include <optional>

#include "passes/llvm/action_table.h"
#include "passes/llvm/backend.h"
#include "passes/llvm/benchmark_costs.h"
#include "passes/llvm/bitcode.h"
#include "passes/llvm/diagnostics.h"
#include "passes/llvm/fault_injection.h"
#include "passes/llvm/llvm_tools.h"
#include "passes/llvm/object_size.h"
#include "passes/llvm/pipeline_runner.h"
#include "passes/llvm/warm_up.h"
#include "passes/run_config.h"
#include "passes/runner.h"

namespace forkgym::passes {

struct LlvmSession::Impl {
  DiagnosticLog diagnostics;
  // Created on the first step; lives for the episode so analyses cached by
  // one step serve the next, exactly as within a single opt pipeline.
  std::unique_ptr<PipelineRunner> runner;
  // Derived from the module; dropped whenever an action changes it.
  std::optional<std::string> bitcode;
  std::optional<int64_t> objectTextSize;
  std::optional<int64_t> textSize;
  // False until an action changes the module: until then the state is the
  // benchmark as loaded, whose object size is the initial baseline.
  bool changedSinceLoad = false;

  void moduleChanged() {
    changedSinceLoad = true;
    bitcode.reset();
    objectTextSize.reset();
    textSize.reset();
  }
};

namespace {

Error describeBadAction(uint32_t index) {
  const std::span<const ActionInfo> table = actionTable();
  if (index >= table.size()) {
    return makeError(Outcome::InvalidRequest,
                     "action " + std::to_string(index) + " is not in the action space; valid " +
                         "actions are 0.." + std::to_string(table.size() - 1));
  }
  const ActionInfo& action = table[index];
  return makeError(Outcome::InvalidRequest,
                   "action " + std::to_string(index) + " (" + std::string(action.flag) +
                       ") is unavailable in LLVM 19: " + std::string(action.unavailableReason));
}

bool isRunnable(uint32_t index) {
  const std::span<const ActionInfo> table = actionTable();
  return index < table.size() && table[index].kind != ActionKind::Unavailable;
}

std::string actionName(uint32_t index) {
  return "action " + std::to_string(index) + " (" + std::string(actionTable()[index].flag) + ")";
}

}  // namespace

LlvmSession::LlvmSession(llvm::Module& module, const BenchmarkCosts& costs, const std::string* originalBitcode)
    : module_(module), costs_(costs), originalBitcode_(originalBitcode), impl_(std::make_unique<Impl>()) {
  // The worker owns this (copy-on-write) context now; nothing may print.
  impl_->diagnostics.installOn(module.getContext());
}

LlvmSession::~LlvmSession() = default;

Status LlvmSession::ensureRunner() {
  if (impl_->runner) return okStatus();
  auto runner = PipelineRunner::create(module_);
  if (!runner.ok()) return runner.takeError();
  impl_->runner = std::move(*runner);
  return okStatus();
}

void LlvmSession::prepareFirstStep(const std::function<bool()>& idle) {
  // A failure here is the first step's to report, as it would be unprepared.
  if (!ensureRunner().ok() || !idle()) return;
  (void)prefaultModuleForWriting(module_, idle);
}

Result<ApplyResult> LlvmSession::applyActions(std::span<const uint32_t> actions) {
  for (uint32_t index : actions) {
    if (!isRunnable(index)) return describeBadAction(index);
  }
  if (auto ready = ensureRunner(); !ready.ok()) return ready.takeError();

  ApplyResult result;
  for (uint32_t index : actions) {
    const ActionInfo& action = actionTable()[index];
    bool changed = false;
    if (action.kind == ActionKind::TestCrash) {
      changed = runFaultInjection(action.flag, module_);
      // The module changed behind the pass manager's back.
      if (changed) impl_->runner->forgetAnalyses();
    } else {
      auto ran = impl_->runner->run(action.pipeline);
      if (!ran.ok()) return ran.takeError();  // the table is tested; cannot happen
      changed = *ran;
    }
    // Recorded before the verifier runs, so a reproducer includes the culprit.
    actions_.push_back(index);
    if (!changed) continue;
    result.actionHadNoEffect = false;
    impl_->moduleChanged();

    std::string problems;
    llvm::raw_string_ostream stream(problems);
    const bool broken = llvm::verifyModule(module_, &stream);
    if (broken || impl_->diagnostics.hasErrors()) {
      return makeError(Outcome::VerifierFailed,
                       actionName(index) + " produced invalid IR: " + stream.str() +
                           impl_->diagnostics.takeErrors());
    }
  }
  return result;
}

Result<std::string> LlvmSession::setParameter(std::string_view key, std::string_view value) {
  if (auto answered = setRunParameter(key, value)) return std::move(*answered);
  static constexpr std::string_view kKeys[] = {kRuntimeObservationCount, kRuntimeWarmupRunsCount};
  return unknownParameter("llvm", key, kKeys);
}

Result<std::string> LlvmSession::programObject(RunProgram program) {
  switch (program) {
    case RunProgram::Current:
      return emitObject(bitcode(), false);
    case RunProgram::Original:
      if (originalBitcode_ == nullptr || originalBitcode_->empty()) {
        return makeError(Outcome::InvalidRequest, "this session keeps no copy of the benchmark as loaded");
      }
      return emitObject(*originalBitcode_, false);
    case RunProgram::Asan:
      return emitObject(bitcode(), true);
  }
  return makeError(Outcome::InvalidRequest, "unknown program to build");
}

Result<int64_t> LlvmSession::textSize() {
  if (!impl_->textSize) {
    if (!runConfig()) return noRunConfig("TextSizeBytes");
    auto object = programObject(RunProgram::Current);
    if (!object.ok()) return object.takeError();
    auto built = buildAndRun(*runConfig(), *object, {}, false, /*buildOnly=*/true);
    if (!built.ok()) return built.takeError();
    if (!built->built) return buildFailure(*built);
    impl_->textSize = built->textSizeBytes;
  }
  return *impl_->textSize;
}

std::string LlvmSession::commandLine() const { return replayCommandLine(llvmActionSpace(), actions_); }

const std::string& LlvmSession::bitcode() {
  if (!impl_->bitcode) impl_->bitcode = writeBitcode(module_);
  return *impl_->bitcode;
}

Result<int64_t> LlvmSession::baseline(RewardCost cost, CostPoint point) {
  const bool size = cost == RewardCost::ObjectTextSize;
  int64_t& value = (size ? costs_.objectTextSize : costs_.instructionCount)[point];
  if (value != kNotComputed) return value;
  if (originalBitcode_ == nullptr || originalBitcode_->empty()) {
    return makeError(Outcome::ServerError, "this session has no copy of the benchmark to compute its baselines from");
  }
  auto computed = computeCostPoint(*originalBitcode_, point, size);
  if (!computed.ok()) return computed.takeError();
  costs_.instructionCount[point] = computed->instructionCount;
  if (size) costs_.objectTextSize[point] = computed->objectTextSize;
  return value;
}

Result<int64_t> LlvmSession::objectTextSize() {
  if (impl_->objectTextSize) return *impl_->objectTextSize;
  // The benchmark as loaded: its size is the initial baseline, the same
  // bytes through the same code generation (the module was parsed from
  // originalBitcode_, and writing it back keeps its use-list order), so one
  // code generation serves both; it is most of the observation's cost.
  int64_t& initial = costs_.objectTextSize[kInitial];
  if (!impl_->changedSinceLoad && initial != kNotComputed) {
    if (initial == kNoObjectFile) return noObjectFile(module_.getTargetTriple());
    impl_->objectTextSize = initial;
    return initial;
  }
  auto size = passes::objectTextSize(bitcode());
  if (!size.ok()) return size.takeError();
  impl_->objectTextSize = *size;
  if (!impl_->changedSinceLoad) initial = *size;
  return *size;
}

std::span<const Space> observationSpaces() {
  // InstructionsRetired's description says whether this server counts
  // instructions (the zygote's probe, runnableProfile()). Amended in place
  // when the probe's answer arrives, so spans handed out before stay valid.
  static std::vector<Space> spaces(observationSpacesOf<LlvmSession>().begin(),
                                   observationSpacesOf<LlvmSession>().end());
  static std::string amendedFor = "(not yet)";
  const std::string& status = instructionCounterStatus();
  if (status != amendedFor) {
    amendedFor = status;
    const auto base = observationSpacesOf<LlvmSession>();
    for (size_t i = 0; i < spaces.size(); ++i) {
      if (spaces[i].name != "InstructionsRetired") continue;
      spaces[i].description = base[i].description + "; on this server: " +
                              (status.empty() ? "unavailable: the server cannot run programs" : status);
    }
  }
  return spaces;
}

std::span<const Space> rewardSpaces() { return rewardSpacesOf<LlvmSession>(); }

std::string pipelineText(std::span<const uint32_t> actions) {
  std::string text;
  const std::span<const ActionInfo> table = actionTable();
  for (uint32_t index : actions) {
    // Only pass-manager actions replay; an episode holds no others except
    // the fault injections, which opt has no way to express.
    if (index >= table.size() || table[index].kind != ActionKind::Pipeline) continue;
    if (!text.empty()) text += ',';
    text += table[index].pipeline;
  }
  return text;
}

}  // namespace forkgym::passes
