#include "passes/llvm/backend.h"

#include <llvm/Config/llvm-config.h>
#include <llvm/Support/ErrorHandling.h>

#include <new>

#include "passes/llvm/action_table.h"
#include "passes/llvm/benchmark.h"
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

CompilerErrorHandlers gHandlers{};
void onBadAlloc(void*, const char*, bool) { gHandlers.outOfMemory(); }
void onFatalError(void*, const char* reason, bool) { gHandlers.fatalError(reason); }

void installErrorHandlers(const CompilerErrorHandlers& handlers) {
  gHandlers = handlers;
  llvm::install_bad_alloc_error_handler(onBadAlloc);
  llvm::install_fatal_error_handler(onFatalError);
}

}  // namespace

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
};

}  // namespace forkgym::passes
