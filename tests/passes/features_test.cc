#include <gtest/gtest.h>

#include <llvm/AsmParser/Parser.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/SourceMgr.h>

#include <numeric>

#include "passes/llvm/autophase.h"
#include "passes/llvm/inst_count.h"
#include "passes/llvm/session.h"
#include "test_benchmarks.h"

namespace forkgym::passes {
namespace {

// reference/compilergym.md, "InstCount features (70), in vector order".
constexpr std::string_view kInstCountNames[] = {
    "TotalInsts", "TotalBlocks", "TotalFuncs", "Ret", "Br", "Switch", "IndirectBr", "Invoke",
    "Resume", "Unreachable", "CleanupRet", "CatchRet", "CatchSwitch", "CallBr", "FNeg", "Add",
    "FAdd", "Sub", "FSub", "Mul", "FMul", "UDiv", "SDiv", "FDiv", "URem", "SRem", "FRem",
    "Shl", "LShr", "AShr", "And", "Or", "Xor", "Alloca", "Load", "Store", "GetElementPtr",
    "Fence", "AtomicCmpXchg", "AtomicRMW", "Trunc", "ZExt", "SExt", "FPToUI", "FPToSI",
    "UIToFP", "SIToFP", "FPTrunc", "FPExt", "PtrToInt", "IntToPtr", "BitCast", "AddrSpaceCast",
    "CleanupPad", "CatchPad", "ICmp", "FCmp", "PHI", "Call", "Select", "UserOp1", "UserOp2",
    "VAArg", "ExtractElement", "InsertElement", "ShuffleVector", "ExtractValue", "InsertValue",
    "LandingPad", "Freeze",
};

// reference/compilergym.md, "Autophase features (56), in vector order".
constexpr std::string_view kAutophaseNames[] = {
    "BBNumArgsHi", "BBNumArgsLo", "onePred", "onePredOneSuc", "onePredTwoSuc", "oneSuccessor",
    "twoPred", "twoPredOneSuc", "twoEach", "twoSuccessor", "morePreds", "BB03Phi", "BBHiPhi",
    "BBNoPhi", "BeginPhi", "BranchCount", "returnInt", "CriticalCount", "NumEdges",
    "const32Bit", "const64Bit", "numConstZeroes", "numConstOnes", "UncondBranches",
    "binaryConstArg", "NumAShrInst", "NumAddInst", "NumAllocaInst", "NumAndInst", "BlockMid",
    "BlockLow", "NumBitCastInst", "NumBrInst", "NumCallInst", "NumGetElementPtrInst",
    "NumICmpInst", "NumLShrInst", "NumLoadInst", "NumMulInst", "NumOrInst", "NumPHIInst",
    "NumRetInst", "NumSExtInst", "NumSelectInst", "NumShlInst", "NumStoreInst", "NumSubInst",
    "NumTruncInst", "NumXorInst", "NumZExtInst", "TotalBlocks", "TotalInsts", "TotalMemInst",
    "TotalFuncs", "ArgsPhi", "testUnary",
};

// Hand-countable: two defined functions and one declaration; blocks with
// known predecessor/successor shapes, one phi with two arguments.
constexpr const char* kCountedModule = R"(
declare i32 @external(i32)

define i32 @leaf(i32 %x) {
  %y = add i32 %x, 1
  ret i32 %y
}

define i32 @f(i32 %n, ptr %p) {
entry:
  %c = icmp eq i32 %n, 0
  br i1 %c, label %then, label %join
then:
  %v = call i32 @external(i32 %n)
  store i32 %v, ptr %p
  br label %join
join:
  %r = phi i32 [ 0, %entry ], [ %v, %then ]
  %w = zext i32 %r to i64
  %t = trunc i64 %w to i32
  ret i32 %t
}
)";

std::unique_ptr<llvm::Module> parse(llvm::LLVMContext& context, const char* text) {
  llvm::SMDiagnostic error;
  auto module = llvm::parseAssemblyString(text, error, context);
  EXPECT_TRUE(module) << error.getMessage().str();
  return module;
}

size_t indexOf(std::span<const std::string_view> names, std::string_view name) {
  return static_cast<size_t>(std::find(names.begin(), names.end(), name) - names.begin());
}

TEST(InstCount, NamesFollowCompilerGymOrder) {
  const auto names = instCountFeatureNames();
  ASSERT_EQ(names.size(), std::size(kInstCountNames));
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(names[i], kInstCountNames[i]) << i;
}

TEST(InstCount, CountsEveryInstructionOnceByOpcode) {
  const ParsedBenchmark benchmark = testing::parseForTest(testing::smallProgramUri());
  ASSERT_TRUE(benchmark.module);
  const std::vector<int64_t> counts = instCountFeatures(*benchmark.module);
  ASSERT_EQ(counts.size(), 70u);
  EXPECT_EQ(counts[0], static_cast<int64_t>(benchmark.module->getInstructionCount()));
  EXPECT_EQ(std::accumulate(counts.begin() + 3, counts.end(), int64_t{0}), counts[0]);
}

TEST(InstCount, TotalsCountDefinedFunctionsOnly) {
  llvm::LLVMContext context;
  auto module = parse(context, kCountedModule);
  const std::vector<int64_t> counts = instCountFeatures(*module);
  const auto names = instCountFeatureNames();
  EXPECT_EQ(counts[indexOf(names, "TotalInsts")], 11);
  EXPECT_EQ(counts[indexOf(names, "TotalBlocks")], 4);
  EXPECT_EQ(counts[indexOf(names, "TotalFuncs")], 2);
  EXPECT_EQ(counts[indexOf(names, "Ret")], 2);
  EXPECT_EQ(counts[indexOf(names, "Br")], 2);
  EXPECT_EQ(counts[indexOf(names, "PHI")], 1);
  EXPECT_EQ(counts[indexOf(names, "Call")], 1);
  EXPECT_EQ(counts[indexOf(names, "ZExt")], 1);
}

TEST(Autophase, NamesFollowCompilerGymOrder) {
  const auto names = autophaseFeatureNames();
  ASSERT_EQ(names.size(), std::size(kAutophaseNames));
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(names[i], kAutophaseNames[i]) << i;
}

TEST(Autophase, CountsAHandWrittenModuleAsTheAlgorithmDefines) {
  llvm::LLVMContext context;
  auto module = parse(context, kCountedModule);
  const std::vector<int64_t> f = autophaseFeatures(*module);
  ASSERT_EQ(f.size(), 56u);
  const auto names = autophaseFeatureNames();
  auto at = [&](std::string_view name) { return f[indexOf(names, name)]; };
  EXPECT_EQ(at("TotalFuncs"), 2);
  EXPECT_EQ(at("TotalBlocks"), 4);
  EXPECT_EQ(at("TotalInsts"), 11);
  // entry: 0 preds 2 succs; then: 1 pred 1 succ; join: 2 preds 0 succs.
  EXPECT_EQ(at("onePred"), 1);
  EXPECT_EQ(at("onePredOneSuc"), 1);
  EXPECT_EQ(at("twoPred"), 1);
  EXPECT_EQ(at("oneSuccessor"), 1);
  EXPECT_EQ(at("twoSuccessor"), 1);
  EXPECT_EQ(at("NumEdges"), 3);
  // entry->join is critical (entry has 2 succs, join has 2 preds).
  EXPECT_EQ(at("CriticalCount"), 1);
  EXPECT_EQ(at("BranchCount"), 2);
  EXPECT_EQ(at("UncondBranches"), 1);
  EXPECT_EQ(at("NumPHIInst"), 1);
  EXPECT_EQ(at("BeginPhi"), 1);
  EXPECT_EQ(at("ArgsPhi"), 2);
  EXPECT_EQ(at("BBNumArgsLo"), 1);
  EXPECT_EQ(at("BB03Phi"), 1);
  EXPECT_EQ(at("BBNoPhi"), 3);
  EXPECT_EQ(at("BlockLow"), 4);
  EXPECT_EQ(at("returnInt"), 1);
  // add 1, icmp 0, phi 0: two i32 constants, one 1 and two 0s.
  EXPECT_EQ(at("const32Bit"), 3);
  EXPECT_EQ(at("numConstOnes"), 1);
  EXPECT_EQ(at("numConstZeroes"), 2);
  EXPECT_EQ(at("binaryConstArg"), 1);
  // zext and trunc are unary; so is nothing else here.
  EXPECT_EQ(at("testUnary"), 2);
  // call + store.
  EXPECT_EQ(at("TotalMemInst"), 2);
  EXPECT_EQ(at("NumRetInst"), 2);
  EXPECT_EQ(at("NumZExtInst"), 1);
  EXPECT_EQ(at("NumTruncInst"), 1);
}

}  // namespace
}  // namespace forkgym::passes
