#include "passes/llvm/backend.h"

#include <llvm/Config/llvm-config.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/ErrorHandling.h>

#include <new>

#include "passes/llvm/action_table.h"
#include "passes/llvm/benchmark.h"
#include "passes/llvm/benchmark_costs.h"
#include "passes/llvm/benchmark_loader.h"
#include "passes/llvm/llvm_tools.h"
#include "passes/llvm/session.h"
#include "passes/llvm/source_compiler.h"
#include "passes/content_hash.h"

namespace forkgym::passes {
namespace {

Result<BackendIdentity> initialize() {
  const HostTarget& host = initializeLlvm();
  return BackendIdentity{LLVM_VERSION_STRING,
                         {{"hostTriple", host.triple},
                          {"hostCpu", host.cpu},
                          {"hostFeatures", host.features},
                          // Reproducers name the server's own opt: another
                          // LLVM's may misread or refuse this bitcode.
                          {"optPath", llvmToolPath("opt")}}};
}

// What a source dataset's file compiles to depends on this LLVM and every
// option of the compile (the cached module's key, module_cache.h).
std::string sourceModuleKey(const SourceRecipe& recipe) {
  ContentHash hash;
  hash.add("llvm", LLVM_VERSION_STRING);
  hash.add("compile options", SourceCompiler::datasetOptionsForHash(recipe));
  return hash.hex();
}

Result<LoadedBenchmark> load(const LoadRequest& request) {
  auto loaded = loadBenchmark(request);
  if (!loaded.ok()) return loaded.takeError();
  return toLoadedBenchmark(*loaded);
}

Result<std::unique_ptr<CachedBenchmark>> prepare(const LoadedBenchmark& loaded) {
  auto bitcode = fromLoadedBenchmark(loaded);
  if (!bitcode.ok()) return bitcode.takeError();
  // Bitcode our own writer produced from a verified module, in a loader
  // child: parsing it here is safe.
  auto parsed = parseTrustedBitcode(*bitcode);
  if (!parsed.ok()) return parsed.takeError();
  return std::unique_ptr<CachedBenchmark>(std::make_unique<ParsedBenchmark>(std::move(*parsed)));
}

Result<std::unique_ptr<Session>> startSession(CachedBenchmark& cached) {
  auto& benchmark = static_cast<ParsedBenchmark&>(cached);
  return std::unique_ptr<Session>(std::make_unique<LlvmSession>(*benchmark.module, benchmark.costs, &benchmark.bitcode));
}

// What a baseline depends on beyond LLVM's version and the content: how
// object sizes are measured (object_size.h); bumped when that changes.
constexpr std::string_view kBaselineDefinition = "costs v2: opt default<O0|O3|Oz>; clang -c -x ir -O0 Berkeley text";

std::string baselineKey(const CachedBenchmark& cached) {
  const auto& benchmark = static_cast<const ParsedBenchmark&>(cached);
  if (benchmark.costs.complete()) return {};
  ContentHash bitcode;
  bitcode.add("bitcode", benchmark.bitcode);
  return std::string(kBaselineDefinition) + "\nllvm " LLVM_VERSION_STRING "\ntriple " +
         benchmark.module->getTargetTriple() + "\nbitcode " + bitcode.hex();
}

Result<std::string> computeBaselines(const CachedBenchmark& cached) {
  const auto& benchmark = static_cast<const ParsedBenchmark&>(cached);
  // On one thread: it runs beside the first episodes, whose sessions may be
  // computing a point of their own meanwhile (llvm-ic-v0's first reward);
  // four threads would take the cores from them.
  auto costs = computeBenchmarkCosts(benchmark.bitcode, CostThreads::Serial);
  if (!costs.ok()) return costs.takeError();
  std::string encoded;
  encodeCosts(encoded, *costs);
  return encoded;
}

// Refuses anything computeBaselines() could not have sent for this
// benchmark: a missing point, a value out of range, another initial count.
Status adoptBaselines(CachedBenchmark& cached, std::string_view encoded) {
  auto& benchmark = static_cast<ParsedBenchmark&>(cached);
  BenchmarkCosts costs;
  if (!decodeCosts(encoded, costs) || !encoded.empty() || !costs.complete()) {
    return makeError(Outcome::ServerError, "malformed baselines");
  }
  if (costs.instructionCount[kInitial] != static_cast<int64_t>(benchmark.module->getInstructionCount())) {
    return makeError(Outcome::ServerError, "baselines of another module (its initial instruction count differs)");
  }
  benchmark.costs = costs;
  return okStatus();
}

const Baselines kLlvmBaselines = {.key = &baselineKey, .compute = &computeBaselines, .adopt = &adoptBaselines};

CompilerErrorHandlers gHandlers{};
void onBadAlloc(void*, const char*, bool) { gHandlers.outOfMemory(); }
void onFatalError(void*, const char* reason, bool) { gHandlers.fatalError(reason); }

void installErrorHandlers(const CompilerErrorHandlers& handlers) {
  gHandlers = handlers;
  llvm::install_bad_alloc_error_handler(onBadAlloc);
  llvm::install_fatal_error_handler(onFatalError);
}

}  // namespace

// Actions whose result depends on heap addresses (README, "Reproducibility
// across processes"): NewGVN leaves use-lists in the order its values sit in
// memory (30 zygotes gave 30 BitcodeSha1s after -sroa -newgvn on
// generator://csmith-v0/2), so no state after one is ever cached.
constexpr std::string_view kNondeterministicActions[] = {"-newgvn"};

// The state cache answers every deterministic observation from the cache
// except these: the state's identity and the IR itself, so validation and a
// reproducer always look at the module the passes really produced, and the
// two that answer from the run configuration, which the cache's keys leave
// out.
constexpr std::string_view kComputedObservations[] = {"Ir",         "IrSha1",     "BitcodeSha1",
                                                      "Bitcode",    "IsBuildable", "IsRunnable"};
const Backend::StateCachePolicy kStateCache{kComputedObservations};

const ActionSpace& llvmActionSpace() {
  static const ActionSpace space = [] {
    ActionSpace out;
    out.name = "PassesAll";
    out.hash = actionTableHash();
    for (const ActionInfo& row : actionTable()) {
      out.actions.push_back({std::string(row.flag),
                             row.kind == ActionKind::Pipeline ? std::string(row.pipeline) : std::string(),
                             std::string(row.description), std::string(row.unavailableReason),
                             row.kind == ActionKind::TestCrash});
      for (std::string_view flag : kNondeterministicActions) {
        if (row.flag == flag) out.actions.back().nondeterministic = true;
      }
    }
    // Without use-list order, as IrSha1 hashes it, so the output's sha1sum is
    // the episode's IrSha1.
    out.replay = {llvmToolPath("opt"), " -passes='", ",", "'",
                  " -preserve-bc-uselistorder=false input.bc -o output.bc"};
    return out;
  }();
  return space;
}

const Backend kLlvmBackend = {
    .name = "llvm",
    .description = "LLVM " LLVM_VERSION_STRING " phase ordering: CompilerGym's 124 pass flags on the new pass manager",
    .startUp = StartUp::Preloaded,
    .sandbox = WorkerSandbox::InProcessCompiler,
    .initialize = &initialize,
    .actionSpace = &llvmActionSpace,
    .observationSpaces = &observationSpaces,
    .rewardSpaces = &rewardSpaces,
    .resolve = &resolveLlvmBenchmark,
    .load = &load,
    .prepare = &prepare,
    .startSession = &startSession,
    .installErrorHandlers = &installErrorHandlers,
    .sourceModuleKey = &sourceModuleKey,
    .baselines = &kLlvmBaselines,
    .stateCache = &kStateCache,
};

}  // namespace forkgym::passes
