#include "passes/llvm/action_table.h"

#include <gtest/gtest.h>

#include <llvm/AsmParser/Parser.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/SourceMgr.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "ipc/action_table_hash.h"
#include "passes/llvm/module_sanitizer.h"
#include "passes/llvm/pipeline_runner.h"

namespace forkgym::passes {
namespace {

// CompilerGym 0.2.5's LLVM action space, in index order (reference/compilergym.md).
constexpr std::string_view kCompilerGymFlags[] = {
    "-add-discriminators", "-adce", "-aggressive-instcombine", "-alignment-from-assumptions",
    "-always-inline", "-argpromotion", "-attributor", "-barrier", "-bdce", "-break-crit-edges",
    "-simplifycfg", "-callsite-splitting", "-called-value-propagation",
    "-canonicalize-aliases", "-consthoist", "-constmerge", "-constprop", "-coro-cleanup",
    "-coro-early", "-coro-elide", "-coro-split", "-correlated-propagation", "-cross-dso-cfi",
    "-deadargelim", "-dce", "-die", "-dse", "-reg2mem", "-div-rem-pairs", "-early-cse-memssa",
    "-early-cse", "-elim-avail-extern", "-ee-instrument", "-flattencfg", "-float2int",
    "-forceattrs", "-inline", "-insert-gcov-profiling", "-gvn-hoist", "-gvn", "-globaldce",
    "-globalopt", "-globalsplit", "-guard-widening", "-hotcoldsplit", "-ipconstprop",
    "-ipsccp", "-indvars", "-irce", "-infer-address-spaces", "-inferattrs",
    "-inject-tli-mappings", "-instsimplify", "-instcombine", "-instnamer", "-jump-threading",
    "-lcssa", "-licm", "-libcalls-shrinkwrap", "-load-store-vectorizer", "-loop-data-prefetch",
    "-loop-deletion", "-loop-distribute", "-loop-fusion", "-loop-guard-widening",
    "-loop-idiom", "-loop-instsimplify", "-loop-interchange", "-loop-load-elim",
    "-loop-predication", "-loop-reroll", "-loop-rotate", "-loop-simplifycfg", "-loop-simplify",
    "-loop-sink", "-loop-reduce", "-loop-unroll-and-jam", "-loop-unroll", "-loop-unswitch",
    "-loop-vectorize", "-loop-versioning-licm", "-loop-versioning", "-loweratomic",
    "-lower-constant-intrinsics", "-lower-expect", "-lower-guard-intrinsic", "-lowerinvoke",
    "-lower-matrix-intrinsics", "-lowerswitch", "-lower-widenable-condition", "-memcpyopt",
    "-mergefunc", "-mergeicmps", "-mldst-motion", "-sancov", "-name-anon-globals",
    "-nary-reassociate", "-newgvn", "-pgo-memop-opt", "-partial-inliner",
    "-partially-inline-libcalls", "-post-inline-ee-instrument", "-functionattrs", "-mem2reg",
    "-prune-eh", "-reassociate", "-redundant-dbg-inst-elim", "-rpo-functionattrs",
    "-rewrite-statepoints-for-gc", "-sccp", "-slp-vectorizer", "-sroa", "-scalarizer",
    "-separate-const-offset-from-gep", "-simple-loop-unswitch", "-sink",
    "-speculative-execution", "-slsr", "-strip-dead-prototypes", "-strip-debug-declare",
    "-strip-nondebug", "-strip", "-tailcallelim", "-mergereturn",
};
static_assert(std::size(kCompilerGymFlags) == kCompilerGymActionCount);

TEST(ActionTable, Has124CompilerGymRowsInOrder) {
  const auto table = actionTable();
  ASSERT_GE(table.size(), kCompilerGymActionCount);
  for (size_t i = 0; i < kCompilerGymActionCount; ++i) {
    EXPECT_EQ(table[i].flag, kCompilerGymFlags[i]) << "row " << i;
    EXPECT_NE(table[i].kind, ActionKind::TestCrash) << "row " << i;
    EXPECT_FALSE(table[i].description.empty()) << "row " << i;
  }
}

TEST(ActionTable, UnavailableRowsAreTheFlagsLlvm19RemovedAndSayWhy) {
  std::set<std::string_view> unavailable;
  for (const ActionInfo& row : actionTable()) {
    if (row.kind != ActionKind::Unavailable) {
      EXPECT_TRUE(row.unavailableReason.empty()) << row.flag;
      continue;
    }
    unavailable.insert(row.flag);
    EXPECT_TRUE(row.pipeline.empty()) << row.flag;
    EXPECT_FALSE(row.unavailableReason.empty()) << row.flag;
  }
  const std::set<std::string_view> expected = {"-barrier",      "-constprop",   "-die",
                                               "-ipconstprop",  "-loop-reroll", "-loop-unswitch",
                                               "-prune-eh"};
  EXPECT_EQ(unavailable, expected);
}

TEST(ActionTable, PipelinesAreModuleLevelSoAnyJoinParses) {
  // A bare function-pass name would make opt wrap the *whole* joined
  // pipeline in function(...), breaking any module pass after it.
  const std::set<std::string_view> modulePasses = {
      "always-inline", "attributor", "called-value-propagation", "canonicalize-aliases",
      "constmerge", "coro-cleanup", "coro-early", "cross-dso-cfi", "deadargelim",
      "elim-avail-extern", "forceattrs", "insert-gcov-profiling", "globaldce", "globalopt",
      "globalsplit", "hotcoldsplit", "ipsccp", "inferattrs", "mergefunc", "sancov-module",
      "name-anon-globals", "partial-inliner", "rpo-function-attrs", "rewrite-statepoints-for-gc",
      "strip-dead-prototypes", "strip-debug-declare", "strip-nondebug", "strip"};
  for (const ActionInfo& row : actionTable()) {
    if (row.kind != ActionKind::Pipeline) continue;
    const bool wrapped = row.pipeline.starts_with("function(") || row.pipeline.starts_with("cgscc(");
    EXPECT_TRUE(wrapped || modulePasses.contains(row.pipeline)) << row.flag << ": " << row.pipeline;
  }
}

TEST(ActionTable, EveryAvailablePipelineParses) {
  llvm::LLVMContext context;
  llvm::SMDiagnostic error;
  auto module = llvm::parseAssemblyString("define i32 @f(i32 %x) { ret i32 %x }", error, context);
  ASSERT_TRUE(module);
  ASSERT_TRUE(sanitizeModule(*module).ok());
  auto runner = PipelineRunner::create(*module);
  ASSERT_TRUE(runner.ok()) << runner.error().message;
  std::string joined;
  for (const ActionInfo& row : actionTable()) {
    if (row.kind != ActionKind::Pipeline) continue;
    auto ran = (*runner)->run(row.pipeline);
    EXPECT_TRUE(ran.ok()) << row.flag << ": " << (ran.ok() ? "" : ran.error().message);
    joined += (joined.empty() ? "" : ",") + std::string(row.pipeline);
  }
  auto all = (*runner)->run(joined);
  EXPECT_TRUE(all.ok()) << (all.ok() ? "" : all.error().message);
}

TEST(ActionTable, FindActionAcceptsBothSpellings) {
  EXPECT_EQ(findAction("-dce"), 24);
  EXPECT_EQ(findAction("dce"), 24);
  EXPECT_EQ(findAction("-mergereturn"), 123);
  EXPECT_EQ(findAction("-add-discriminators"), 0);
  EXPECT_EQ(findAction("-no-such-pass"), -1);
  EXPECT_EQ(findAction(""), -1);
}

TEST(ActionTable, HashIsTheOneTheClientWasBuiltWith) {
  // ipc/action_table_hash.h is generated from the product table at build
  // time; the test rows of this (test-flavour) table are not part of it.
  EXPECT_EQ(actionTableHash(), kActionTableHash);
  EXPECT_EQ(kActionTableRows, kCompilerGymActionCount);
  EXPECT_NE(kActionTableHash, 0u);
}

TEST(ActionTable, HashChangesWithAnyProductRowAndIgnoresTestRows) {
  const auto table = actionTable();
  const std::vector<ActionInfo> product(table.begin(), table.begin() + kCompilerGymActionCount);
  const uint64_t original = actionTableHash(product);
  EXPECT_EQ(original, kActionTableHash);

  auto changedPipeline = product;
  changedPipeline[24].pipeline = "function(adce)";
  EXPECT_NE(actionTableHash(changedPipeline), original);
  auto changedFlag = product;
  changedFlag[0].flag = "-add-discriminator";
  EXPECT_NE(actionTableHash(changedFlag), original);
  auto swapped = product;
  std::swap(swapped[1], swapped[2]);
  EXPECT_NE(actionTableHash(swapped), original);
  auto unavailable = product;
  unavailable[5].kind = unavailable[5].kind == ActionKind::Pipeline ? ActionKind::Unavailable : ActionKind::Pipeline;
  EXPECT_NE(actionTableHash(unavailable), original);
  auto shorter = product;
  shorter.pop_back();
  EXPECT_NE(actionTableHash(shorter), original);

  auto withTestRow = product;
  withTestRow.push_back(ActionInfo{"-forkgym-test-x", "", "", "", ActionKind::TestCrash});
  EXPECT_EQ(actionTableHash(withTestRow), original);
}

#ifdef FORKGYM_TEST_ACTIONS
TEST(ActionTable, TestActionsFollowTheCompilerGymRows) {
  const auto table = actionTable();
  ASSERT_GT(table.size(), kCompilerGymActionCount);
  for (size_t i = kCompilerGymActionCount; i < table.size(); ++i) {
    EXPECT_EQ(table[i].kind, ActionKind::TestCrash);
    EXPECT_TRUE(table[i].flag.starts_with("-forkgym-test-")) << table[i].flag;
  }
  for (std::string_view flag :
       {"-forkgym-test-segfault", "-forkgym-test-abort", "-forkgym-test-hang",
        "-forkgym-test-oom", "-forkgym-test-fork-bomb", "-forkgym-test-open",
        "-forkgym-test-socket", "-forkgym-test-execve", "-forkgym-test-stack-overflow",
        "-forkgym-test-verifier-failure"}) {
    EXPECT_GE(findAction(flag), static_cast<int>(kCompilerGymActionCount)) << flag;
  }
}
#endif

}  // namespace
}  // namespace forkgym::passes
