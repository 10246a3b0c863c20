// initializeLlvm(): everything LLVM would otherwise do lazily, done once in
// the zygote before any fork.
//
// Why a warm-up: workers run under a seccomp policy that refuses open(),
// execve() and most other system calls. LLVM initialises some state on first
// use (pass registrations, target subtargets, static option tables), and
// host CPU detection may read /proc. Doing all of it here, where nothing is
// refused, means a worker forked afterwards inherits it ready-made.
#include <algorithm>

#include <llvm/AsmParser/Parser.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/SourceMgr.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/TargetParser/Host.h>

#include "passes/llvm/action_table.h"
#include "passes/llvm/benchmark_costs.h"
#include "passes/llvm/bitcode.h"
#include "passes/llvm/cpu_info.h"
#include "passes/llvm/diagnostics.h"
#include "passes/llvm/module_sanitizer.h"
#include "passes/llvm/session.h"

namespace forkgym::passes {
namespace {

// Small, but with a loop, a call, memory, a switch and a global, so that
// every action and both code generators have something to do.
constexpr const char* kWarmUpModule = R"(
@table = internal global [4 x i32] [i32 1, i32 2, i32 3, i32 4]

define internal i32 @square(i32 %x) {
  %r = mul i32 %x, %x
  ret i32 %r
}

define i32 @main(i32 %n, ptr %out) {
entry:
  %slot = alloca i32
  store i32 0, ptr %slot
  br label %loop
loop:
  %i = phi i32 [ 0, %entry ], [ %next, %body ]
  %done = icmp sge i32 %i, %n
  br i1 %done, label %exit, label %body
body:
  %index = and i32 %i, 3
  %wide = zext i32 %index to i64
  %p = getelementptr [4 x i32], ptr @table, i64 0, i64 %wide
  %v = load i32, ptr %p
  %s = call i32 @square(i32 %v)
  %old = load i32, ptr %slot
  %sum = add i32 %old, %s
  store i32 %sum, ptr %slot
  %next = add i32 %i, 1
  br label %loop
exit:
  %total = load i32, ptr %slot
  store i32 %total, ptr %out
  switch i32 %total, label %other [ i32 0, label %zero
                                    i32 1, label %one ]
zero:
  ret i32 0
one:
  ret i32 1
other:
  ret i32 %total
}
)";

// Best effort: a failure here only means a worker may initialise something
// itself later, which the sandbox tests would then catch.
void warmUp() {
  llvm::LLVMContext context;
  DiagnosticLog diagnostics;
  diagnostics.installOn(context);
  llvm::SMDiagnostic error;
  std::unique_ptr<llvm::Module> module = llvm::parseAssemblyString(kWarmUpModule, error, context);
  if (!module || !sanitizeModule(*module).ok()) return;
  const std::string bitcode = writeBitcode(*module);
  // The O0/O3/Oz pipelines and codegen, as the loader runs them...
  auto costs = computeBenchmarkCosts(bitcode, CostThreads::Serial);
  if (!costs.ok()) return;
  // ...and every action, observation and reward, as a worker runs them:
  // through the session and its tables, so a new row is warmed up too.
  LlvmSession session(*module, *costs);
  for (uint32_t index = 0; index < actionTable().size(); ++index) {
    if (actionTable()[index].kind != ActionKind::Pipeline) continue;
    const uint32_t action[] = {index};
    if (!session.applyActions(action).ok()) return;
  }
  for (size_t row = 0; row < LlvmSession::observationRows().size(); ++row) (void)session.observe(row);
  for (size_t row = 0; row < LlvmSession::rewardRows().size(); ++row) (void)session.reward(row);
}

HostTarget detectHost() {
  HostTarget host;
  host.triple = llvm::sys::getDefaultTargetTriple();
  host.cpu = llvm::sys::getHostCPUName().str();
  // "+avx2,-avx512f,...", sorted so the string is stable across runs.
  std::vector<std::string> features;
  for (const auto& [feature, enabled] : llvm::sys::getHostCPUFeatures()) {
    features.push_back((enabled ? "+" : "-") + feature.str());
  }
  std::sort(features.begin(), features.end());
  for (const std::string& feature : features) {
    if (!host.features.empty()) host.features += ',';
    host.features += feature;
  }
  return host;
}

}  // namespace

const HostTarget& initializeLlvm() {
  // A function-local static: initialised once, on first call; the zygote is
  // single-threaded, so there is no race to guard against beyond that.
  static const HostTarget host = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::InitializeNativeTargetAsmParser();
#if LLVM_HAS_NVPTX_TARGET
    // The one target a dataset names besides the host: clgen-v0's OpenCL
    // kernels are compiled for nvptx64-nvidia-nvcl, whose passes then see its
    // target information (it emits PTX, no object files: object_size.h).
    LLVMInitializeNVPTXTargetInfo();
    LLVMInitializeNVPTXTarget();
    LLVMInitializeNVPTXTargetMC();
    LLVMInitializeNVPTXAsmPrinter();
#endif
    HostTarget detected = detectHost();
    hostCpuInfo();  // read here: the workers' sandbox refuses /proc and /sys
    warmUp();
    return detected;
  }();
  return host;
}

}  // namespace forkgym::passes
