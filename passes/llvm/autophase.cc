#include "passes/llvm/autophase.h"

#include <llvm/Analysis/CFG.h>
#include <llvm/IR/CFG.h>
#include <llvm/IR/Constants.h>
#include <llvm/IR/InstrTypes.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/Module.h>

#include <string_view>


namespace forkgym::passes {
namespace {

// One row per feature, in vector order. The enum and the name list are
// generated from this so they cannot drift apart.
#define FORKGYM_AUTOPHASE_FEATURES(X) \
  X(BBNumArgsHi)                      \
  X(BBNumArgsLo)                      \
  X(onePred)                          \
  X(onePredOneSuc)                    \
  X(onePredTwoSuc)                    \
  X(oneSuccessor)                     \
  X(twoPred)                          \
  X(twoPredOneSuc)                    \
  X(twoEach)                          \
  X(twoSuccessor)                     \
  X(morePreds)                        \
  X(BB03Phi)                          \
  X(BBHiPhi)                          \
  X(BBNoPhi)                          \
  X(BeginPhi)                         \
  X(BranchCount)                      \
  X(returnInt)                        \
  X(CriticalCount)                    \
  X(NumEdges)                         \
  X(const32Bit)                       \
  X(const64Bit)                       \
  X(numConstZeroes)                   \
  X(numConstOnes)                     \
  X(UncondBranches)                   \
  X(binaryConstArg)                   \
  X(NumAShrInst)                      \
  X(NumAddInst)                       \
  X(NumAllocaInst)                    \
  X(NumAndInst)                       \
  X(BlockMid)                         \
  X(BlockLow)                         \
  X(NumBitCastInst)                   \
  X(NumBrInst)                        \
  X(NumCallInst)                      \
  X(NumGetElementPtrInst)             \
  X(NumICmpInst)                      \
  X(NumLShrInst)                      \
  X(NumLoadInst)                      \
  X(NumMulInst)                       \
  X(NumOrInst)                        \
  X(NumPHIInst)                       \
  X(NumRetInst)                       \
  X(NumSExtInst)                      \
  X(NumSelectInst)                    \
  X(NumShlInst)                       \
  X(NumStoreInst)                     \
  X(NumSubInst)                       \
  X(NumTruncInst)                     \
  X(NumXorInst)                       \
  X(NumZExtInst)                      \
  X(TotalBlocks)                      \
  X(TotalInsts)                       \
  X(TotalMemInst)                     \
  X(TotalFuncs)                       \
  X(ArgsPhi)                          \
  X(testUnary)

enum Feature : size_t {
#define X(name) name,
  FORKGYM_AUTOPHASE_FEATURES(X)
#undef X
      kFeatureEnd
};
static_assert(kFeatureEnd == kAutophaseFeatureCount);

constexpr std::string_view kNames[] = {
#define X(name) #name,
    FORKGYM_AUTOPHASE_FEATURES(X)
#undef X
};

// The per-opcode feature of an instruction, or kFeatureEnd when its opcode
// has none.
Feature opcodeFeature(unsigned opcode) {
  switch (opcode) {
    case llvm::Instruction::AShr: return NumAShrInst;
    case llvm::Instruction::Add: return NumAddInst;
    case llvm::Instruction::Alloca: return NumAllocaInst;
    case llvm::Instruction::And: return NumAndInst;
    case llvm::Instruction::BitCast: return NumBitCastInst;
    case llvm::Instruction::Br: return NumBrInst;
    case llvm::Instruction::Call: return NumCallInst;
    case llvm::Instruction::GetElementPtr: return NumGetElementPtrInst;
    case llvm::Instruction::ICmp: return NumICmpInst;
    case llvm::Instruction::LShr: return NumLShrInst;
    case llvm::Instruction::Load: return NumLoadInst;
    case llvm::Instruction::Mul: return NumMulInst;
    case llvm::Instruction::Or: return NumOrInst;
    case llvm::Instruction::PHI: return NumPHIInst;
    case llvm::Instruction::Ret: return NumRetInst;
    case llvm::Instruction::SExt: return NumSExtInst;
    case llvm::Instruction::Select: return NumSelectInst;
    case llvm::Instruction::Shl: return NumShlInst;
    case llvm::Instruction::Store: return NumStoreInst;
    case llvm::Instruction::Sub: return NumSubInst;
    case llvm::Instruction::Trunc: return NumTruncInst;
    case llvm::Instruction::Xor: return NumXorInst;
    case llvm::Instruction::ZExt: return NumZExtInst;
    default: return kFeatureEnd;
  }
}

// Autophase's "memory instructions": everything that addresses memory or
// may, calls and invokes included.
bool isMemoryInstruction(const llvm::Instruction& instruction) {
  switch (instruction.getOpcode()) {
    case llvm::Instruction::GetElementPtr:
    case llvm::Instruction::Load:
    case llvm::Instruction::Store:
    case llvm::Instruction::Call:
    case llvm::Instruction::Invoke:
    case llvm::Instruction::Alloca:
      return true;
    default:
      return false;
  }
}

void countConstantOperands(const llvm::Instruction& instruction, std::vector<int64_t>& f) {
  for (const llvm::Value* operand : instruction.operand_values()) {
    const auto* constant = llvm::dyn_cast<llvm::ConstantInt>(operand);
    if (constant == nullptr) continue;
    const llvm::APInt& value = constant->getValue();
    if (value.getBitWidth() == 32) ++f[const32Bit];
    if (value.getBitWidth() == 64) ++f[const64Bit];
    // Any width, i1 true included, as in the original.
    if (value.isOne()) {
      ++f[numConstOnes];
    } else if (value.isZero()) {
      ++f[numConstZeroes];
    }
  }
}

void countBlock(const llvm::BasicBlock& block, std::vector<int64_t>& f) {
  ++f[TotalBlocks];

  const llvm::Instruction* terminator = block.getTerminator();
  const unsigned successors = terminator != nullptr ? terminator->getNumSuccessors() : 0;
  for (unsigned i = 0; i < successors; ++i) {
    ++f[NumEdges];
    if (llvm::isCriticalEdge(terminator, i)) ++f[CriticalCount];
  }
  // Counted with multiplicity: a switch with two cases to the same block is
  // two predecessors, as pred_size() reports.
  const size_t predecessors = llvm::pred_size(&block);

  if (successors == 1) ++f[oneSuccessor];
  if (successors == 2) ++f[twoSuccessor];
  if (predecessors == 1) ++f[onePred];
  if (predecessors == 2) ++f[twoPred];
  if (predecessors > 2) ++f[morePreds];
  if (predecessors == 1 && successors == 1) ++f[onePredOneSuc];
  if (predecessors == 2 && successors == 1) ++f[twoPredOneSuc];
  if (predecessors == 1 && successors == 2) ++f[onePredTwoSuc];
  if (predecessors == 2 && successors == 2) ++f[twoEach];

  int64_t phis = 0;
  int64_t phiArguments = 0;
  int64_t instructions = 0;
  for (const llvm::Instruction& instruction : block) {
    ++f[TotalInsts];
    const Feature opcode = opcodeFeature(instruction.getOpcode());
    if (opcode != kFeatureEnd) ++f[opcode];
    if (isMemoryInstruction(instruction)) ++f[TotalMemInst];

    if (const auto* branch = llvm::dyn_cast<llvm::BranchInst>(&instruction)) {
      ++f[BranchCount];
      if (branch->isUnconditional()) ++f[UncondBranches];
    }
    countConstantOperands(instruction, f);
    if (const auto* call = llvm::dyn_cast<llvm::CallInst>(&instruction)) {
      // Only direct calls: an indirect callee's type is not a function's.
      if (const llvm::Function* callee = call->getCalledFunction()) {
        if (callee->getReturnType()->isIntegerTy()) ++f[returnInt];
      }
    }
    // UnaryInstruction is the one-operand class: casts, loads, allocas,
    // fneg, freeze, va_arg, extractvalue.
    if (llvm::isa<llvm::UnaryInstruction>(instruction)) ++f[testUnary];
    if (llvm::isa<llvm::BinaryOperator>(instruction) &&
        (llvm::isa<llvm::Constant>(instruction.getOperand(0)) ||
         llvm::isa<llvm::Constant>(instruction.getOperand(1)))) {
      ++f[binaryConstArg];
    }
    if (const auto* phi = llvm::dyn_cast<llvm::PHINode>(&instruction)) {
      if (instructions == 0) ++f[BeginPhi];
      ++phis;
      phiArguments += phi->getNumIncomingValues();
    }
    ++instructions;
  }
  f[ArgsPhi] += phiArguments;

  if (phis == 0) {
    ++f[BBNoPhi];
  } else if (phis <= 3) {
    ++f[BB03Phi];
  } else {
    ++f[BBHiPhi];
  }
  if (phiArguments > 5) {
    ++f[BBNumArgsHi];
  } else if (phiArguments >= 1) {
    ++f[BBNumArgsLo];
  }
  if (instructions < 15) {
    ++f[BlockLow];
  } else if (instructions <= 500) {
    ++f[BlockMid];
  }
}

}  // namespace

std::span<const std::string_view> autophaseFeatureNames() { return kNames; }

std::vector<int64_t> autophaseFeatures(const llvm::Module& module) {
  std::vector<int64_t> features(kAutophaseFeatureCount, 0);
  for (const llvm::Function& function : module) {
    if (function.isDeclaration()) continue;
    ++features[TotalFuncs];
    for (const llvm::BasicBlock& block : function) countBlock(block, features);
  }
  return features;
}

}  // namespace forkgym::passes
