#include "passes/llvm/inst2vec.h"

#include <algorithm>
#include <string>
#include <unordered_map>

#include <llvm/ADT/StringRef.h>
#include <llvm/IR/Attributes.h>
#include <llvm/IR/CFG.h>
#include <llvm/IR/DerivedTypes.h>
#include <llvm/IR/FMF.h>
#include <llvm/IR/Function.h>
#include <llvm/IR/GlobalVariable.h>
#include <llvm/IR/InlineAsm.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/ModuleSlotTracker.h>
#include <llvm/IR/Operator.h>
#include <llvm/Support/JSON.h>
#include <llvm/Support/raw_ostream.h>

namespace forkgym::passes {
namespace {

// ------------------------------------------------------------ step 3 --
// The paper's rules (its PreprocessStatement and the trailing-metadata
// removal before it), as scans over the text. Each pass is one of the
// paper's regular expressions; the comments give them.

bool isWordChar(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isHexDigit(char c) { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
// Characters of an unquoted LLVM name (%foo.bar, @llvm.memcpy.p0.p0.i64, %5).
bool isNameChar(char c) { return isWordChar(c) || c == '.' || c == '$' || c == '-'; }

bool startsWith(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

void trimRight(std::string& text) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.pop_back();
}

// The length of the name after a sigil at text[at] (quoted "..." or plain),
// 0 if none follows.
size_t nameLength(std::string_view text, size_t at) {
  size_t end = at + 1;
  if (end < text.size() && text[end] == '"') {
    const size_t close = text.find('"', end + 1);
    return close == std::string_view::npos ? 0 : close + 1 - at;
  }
  while (end < text.size() && isNameChar(text[end])) ++end;
  return end - at > 1 ? end - at : 0;
}

// Cuts `line` at the first `mark` outside a quoted string: trailing metadata
// (", !tbaa !5", "!dbg") and attribute groups ("#0"). The paper cut at the
// first one outside a c"..." string; names are quoted too in LLVM 19.
void cutAtMark(std::string& line, char mark) {
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '"') quoted = !quoted;
    if (!quoted && line[i] == mark) {
      line.resize(i);
      trimRight(line);
      if (mark == '!' && !line.empty() && line.back() == ',') {  // ", !tbaa !5" leaves its comma
        line.pop_back();
        trimRight(line);
      }
      return;
    }
  }
}

// %local -> <%ID>, @global -> <@ID>.
std::string replaceIdentifiers(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '%' || text[i] == '@') {
      if (const size_t length = nameLength(text, i); length > 0) {
        out += text[i] == '%' ? "<%ID>" : "<@ID>";
        i += length;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

// (?<!\w)-?0[xX][hklmHKLM]?[A-Fa-f0-9]+ -> <FLOAT> (LLVM's hexadecimal floats).
size_t hexFloatAt(std::string_view text, size_t i) {
  size_t j = i;
  if (j < text.size() && text[j] == '-') ++j;
  if (j + 1 >= text.size() || text[j] != '0' || (text[j + 1] != 'x' && text[j + 1] != 'X')) return 0;
  j += 2;
  if (j < text.size() && std::string_view("hklmHKLM").find(text[j]) != std::string_view::npos) {
    // Optional: taken only if hex digits follow it (the regex backtracks).
    if (j + 1 < text.size() && isHexDigit(text[j + 1])) ++j;
  }
  const size_t digits = j;
  while (j < text.size() && isHexDigit(text[j])) ++j;
  return j > digits ? j - i : 0;
}

// (?<!\w)-?[0-9]+\.[0-9]+(?:e\+?-?[0-9]+)? -> <FLOAT> (1.000000e+00).
size_t decimalFloatAt(std::string_view text, size_t i) {
  size_t j = i;
  if (j < text.size() && text[j] == '-') ++j;
  const size_t whole = j;
  while (j < text.size() && isDigit(text[j])) ++j;
  if (j == whole || j >= text.size() || text[j] != '.') return 0;
  const size_t fraction = ++j;
  while (j < text.size() && isDigit(text[j])) ++j;
  if (j == fraction) return 0;
  if (j < text.size() && text[j] == 'e') {
    size_t k = j + 1;
    if (k < text.size() && text[k] == '+') ++k;
    if (k < text.size() && text[k] == '-') ++k;
    const size_t exponent = k;
    while (k < text.size() && isDigit(text[k])) ++k;
    if (k > exponent) j = k;
  }
  return j - i;
}

std::string replaceFloats(std::string_view text, size_t (*floatAt)(std::string_view, size_t)) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (i == 0 || !isWordChar(text[i - 1])) {
      if (const size_t length = floatAt(text, i); length > 0) {
        out += "<FLOAT>";
        i += length;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

// (?<!align)(?<!\[) -?[0-9]+ -> " <INT>": an integer after a space, except an
// alignment and the value opening a phi's "[ 0, %bb ]".
std::string replaceIntegers(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text[i] == ' ' && !text.substr(0, i).ends_with("align") && !text.substr(0, i).ends_with("[")) {
      size_t j = i + 1;
      if (j < text.size() && text[j] == '-') ++j;
      const size_t digits = j;
      while (j < text.size() && isDigit(text[j])) ++j;
      if (j > digits) {
        out += " <INT>";
        i = j;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

// (?<!\w)c".+" -> " <STRING>": from c" to the last quote on its line.
std::string replaceStrings(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text[i] == 'c' && i + 1 < text.size() && text[i + 1] == '"' && (i == 0 || !isWordChar(text[i - 1]))) {
      const size_t lineEnd = std::min(text.find('\n', i), text.size());
      const size_t close = text.substr(0, lineEnd).rfind('"');
      if (close != std::string_view::npos && close >= i + 3) {
        out += " <STRING>";
        i = close + 1;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

// i\d+  -> "<TYP> " (extractelement and insertelement only).
std::string replaceIndexTypes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text[i] == 'i') {
      size_t j = i + 1;
      while (j < text.size() && isDigit(text[j])) ++j;
      if (j > i + 1 && j < text.size() && text[j] == ' ') {
        out += "<TYP> ";
        i = j + 1;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

// ------------------------------------------------------------ step 2 --

std::string_view linkageKeyword(llvm::GlobalValue::LinkageTypes linkage) {
  using L = llvm::GlobalValue;
  switch (linkage) {
    case L::ExternalLinkage: return "";
    case L::PrivateLinkage: return "private ";
    case L::InternalLinkage: return "internal ";
    case L::LinkOnceAnyLinkage: return "linkonce ";
    case L::LinkOnceODRLinkage: return "linkonce_odr ";
    case L::WeakAnyLinkage: return "weak ";
    case L::WeakODRLinkage: return "weak_odr ";
    case L::CommonLinkage: return "common ";
    case L::AppendingLinkage: return "appending ";
    case L::ExternalWeakLinkage: return "extern_weak ";
    case L::AvailableExternallyLinkage: return "available_externally ";
  }
  return "";
}

// The conventions clang emits, as LLVM writes them; others by number, which
// LLVM's parser reads as well.
std::string callingConvention(unsigned convention) {
  switch (convention) {
    case llvm::CallingConv::Fast: return "fastcc";
    case llvm::CallingConv::Cold: return "coldcc";
    case llvm::CallingConv::X86_StdCall: return "x86_stdcallcc";
    case llvm::CallingConv::X86_64_SysV: return "x86_64_sysvcc";
    case llvm::CallingConv::Win64: return "win64cc";
    default: return "cc " + std::to_string(convention);
  }
}

// An inlined struct's text grows with its fields counted through every
// nesting, which a module can make exponential in the number of types it
// declares (a struct of two of the previous one, forty deep, size zero).
// Real ones stay far below this (the vocabulary's largest is ~30 KB).
constexpr size_t kMaxTypeText = 1 << 20;

// Writes one module's statements in the vocabulary's dialect (typed pointers,
// structs inlined), before normalisation.
class StatementWriter {
 public:
  StatementWriter(const llvm::Module& module, Inst2vecPointers pointers)
      : module_(module), slots_(&module, /*ShouldInitializeAllMetadata=*/false), pointers_(pointers) {
    for (llvm::StructType* type : module.getIdentifiedStructTypes()) {
      if (!type->hasName()) continue;
      std::string name;
      llvm::raw_string_ostream out(name);
      type->print(out, /*IsForDebug=*/false, /*NoDetails=*/true);  // "%struct.S", without " = type {...}"
      structNames_.emplace(std::move(name), type);
    }
  }

  Result<std::vector<std::string>> statements() {
    std::vector<std::string> statements;
    for (const llvm::GlobalVariable& global : module_.globals()) {
      statements.push_back(finish(printed(global, firstPointerType(global))));
    }
    for (const llvm::Function& function : module_) {
      if (function.isDeclaration()) continue;
      slots_.incorporateFunction(function);
      statements.push_back(finish(header(function)));
      for (const llvm::BasicBlock& block : function) {
        if (&block != &function.getEntryBlock() || block.hasName()) statements.push_back(label(block));
        for (const llvm::Instruction& instruction : block) {
          if (auto statement = this->instruction(instruction); !statement.empty()) {
            statements.push_back(finish(std::move(statement)));
          }
        }
      }
      if (!tooLarge_.empty()) break;
    }
    if (!tooLarge_.empty()) {
      return makeError(Outcome::InvalidRequest,
                       "the module's type " + tooLarge_ + " inlined as inst2vec writes structs is more than " +
                           std::to_string(kMaxTypeText) + " characters: no inst2vec statements for this module");
    }
    return statements;
  }

 private:
  // The paper's per-line steps (metadata and attribute groups cut, lines
  // that are brackets dropped, a multi-line statement joined by "\n "),
  // struct names inlined, then step 3.
  std::string finish(std::string text) {
    std::string joined;
    size_t start = 0;
    const bool isSwitch = startsWith(llvm::StringRef(text).ltrim().str(), "switch ");
    while (start <= text.size()) {
      size_t end = std::min(text.find('\n', start), text.size());
      std::string line = llvm::StringRef(text).slice(start, end).trim().str();
      start = end + 1;
      cutAtMark(line, '!');
      cutAtMark(line, '#');
      if (line.empty() || std::string_view("[]{}").find(line[0]) != std::string_view::npos) continue;
      if (!joined.empty()) joined += "\n ";
      joined += line;
    }
    if (isSwitch) joined += "]";  // the paper closes the cases it gathered
    return normaliseInst2vecStatement(inlineStructNames(joined));
  }

  // Named struct types in printed text (%struct.S) -> their bodies.
  std::string inlineStructNames(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      if (text[i] == '%') {
        if (const size_t length = nameLength(text, i); length > 0) {
          if (auto found = structNames_.find(std::string(text.substr(i, length))); found != structNames_.end()) {
            out += type(found->second);
            i += length;
            continue;
          }
        }
      }
      out += text[i++];
    }
    return out;
  }

  // A type as the vocabulary writes it: named structs inlined, a struct
  // without a body "opaque"; a pointer "ptr" (typed where it is used: see
  // pointee()).
  std::string type(llvm::Type* type) {
    if (auto* structType = llvm::dyn_cast<llvm::StructType>(type)) {
      if (structType->isOpaque() || !tooLarge_.empty()) return "opaque";
      if (structType->hasName()) {
        if (auto cached = inlined_.find(structType); cached != inlined_.end()) return cached->second;
      }
      std::string body = structType->isPacked() ? "<{" : "{";
      for (unsigned i = 0; i < structType->getNumElements(); ++i) {
        body += i == 0 ? " " : ", ";
        body += this->type(structType->getElementType(i));
        if (body.size() > kMaxTypeText) {
          if (tooLarge_.empty()) tooLarge_ = structType->hasName() ? structType->getName().str() : "(a literal struct)";
          return "opaque";
        }
      }
      body += structType->getNumElements() ? " }" : "}";
      if (structType->isPacked()) body += ">";
      if (structType->hasName()) inlined_.emplace(structType, body);
      return body;
    }
    if (auto* array = llvm::dyn_cast<llvm::ArrayType>(type)) {
      return "[" + std::to_string(array->getNumElements()) + " x " + this->type(array->getElementType()) + "]";
    }
    if (auto* vector = llvm::dyn_cast<llvm::VectorType>(type)) {
      const llvm::ElementCount count = vector->getElementCount();
      return std::string("<") + (count.isScalable() ? "vscale x " : "") + std::to_string(count.getKnownMinValue()) +
             " x " + this->type(vector->getElementType()) + ">";
    }
    if (auto* function = llvm::dyn_cast<llvm::FunctionType>(type)) {
      std::string text = this->type(function->getReturnType()) + " (";
      for (unsigned i = 0; i < function->getNumParams(); ++i) {
        if (i) text += ", ";
        text += this->type(function->getParamType(i));
      }
      if (function->isVarArg()) text += function->getNumParams() ? ", ..." : "...";
      return text + ")";
    }
    std::string text;
    llvm::raw_string_ostream out(text);
    type->print(out);
    return text;
  }

  // What a pointer points to: `base` behind `depth` more pointers (i32**
  // is {i32, 1}); no base when unknown.
  struct Pointee {
    llvm::Type* base = nullptr;
    unsigned depth = 0;
    explicit operator bool() const { return base != nullptr; }
    bool operator==(const Pointee&) const = default;
  };

  std::string text(Pointee pointee) { return type(pointee.base) + std::string(pointee.depth, '*'); }

  // What a pointer value points to, where the module says: the type an
  // alloca allocates, a global holds, a function is, a getelementptr indexes;
  // for a location holding a pointer (an alloca or global of type ptr), what
  // every pointer stored into it points to, when they agree; for a pointer
  // loaded from one, that. Cycles (p = *p) and disagreements are unknown.
  Pointee pointee(const llvm::Value* value) {
    if (pointers_ == Inst2vecPointers::Opaque || !value->getType()->isPointerTy()) return {};
    if (auto known = pointees_.find(value); known != pointees_.end()) return known->second;
    pointees_[value] = {};  // while inferring: a cycle back here is unknown
    const Pointee found = inferPointee(value);
    pointees_[value] = found;
    return found;
  }

  Pointee inferPointee(const llvm::Value* value) {
    if (auto* alloca = llvm::dyn_cast<llvm::AllocaInst>(value)) return location(alloca->getAllocatedType(), value);
    if (auto* global = llvm::dyn_cast<llvm::GlobalVariable>(value)) return location(global->getValueType(), value);
    if (auto* function = llvm::dyn_cast<llvm::Function>(value)) return {function->getFunctionType(), 0};
    if (auto* gep = llvm::dyn_cast<llvm::GEPOperator>(value)) {
      // Arithmetic on a pointer to pointers points where its operand does.
      if (gep->getSourceElementType()->isPointerTy() && gep->getNumIndices() == 1) {
        if (const Pointee source = pointee(gep->getPointerOperand()); source.depth > 0) return source;
      }
      return {gep->getResultElementType(), 0};
    }
    if (auto* load = llvm::dyn_cast<llvm::LoadInst>(value)) {
      const Pointee from = pointee(load->getPointerOperand());
      if (from.depth > 0) return {from.base, from.depth - 1};
    }
    return {};
  }

  // A location of type `held` (an alloca's or global's): itself, unless it
  // holds a pointer, whose pointee the pointers stored into it say.
  Pointee location(llvm::Type* held, const llvm::Value* location) {
    if (!held->isPointerTy()) return {held, 0};
    Pointee stored;
    auto agrees = [&](const llvm::Value* value) {
      if (llvm::isa<llvm::ConstantPointerNull>(value) || llvm::isa<llvm::UndefValue>(value)) return true;
      const Pointee p = pointee(value);
      if (!p || (stored && !(p == stored))) return false;
      stored = p;
      return true;
    };
    if (auto* global = llvm::dyn_cast<llvm::GlobalVariable>(location); global && global->hasInitializer()) {
      if (!agrees(global->getInitializer())) return {held, 0};
    }
    for (const llvm::User* user : location->users()) {
      auto* store = llvm::dyn_cast<llvm::StoreInst>(user);
      if (store && store->getPointerOperand() == location && !agrees(store->getValueOperand())) return {held, 0};
    }
    if (!stored) return {held, 0};
    return {stored.base, stored.depth + 1};
  }

  std::string pointerTo(llvm::Type* pointee) { return type(pointee) + "*"; }

  // A value's type, a pointer typed by its pointee where the module says.
  std::string valueType(const llvm::Value* value) {
    if (const Pointee target = pointee(value)) return text(target) + "*";
    return type(value->getType());
  }

  std::string operand(const llvm::Value* value) {
    if (auto* gep = llvm::dyn_cast<llvm::GEPOperator>(value);
        gep && llvm::isa<llvm::ConstantExpr>(value) && pointers_ == Inst2vecPointers::Typed) {
      // A constant getelementptr: written as the instruction is, in parentheses.
      std::string text = "getelementptr ";
      if (gep->isInBounds()) text += "inbounds ";
      text += "(" + type(gep->getSourceElementType()) + ", " + pointerTo(gep->getSourceElementType()) + " " +
              operand(gep->getPointerOperand());
      for (auto index = gep->idx_begin(); index != gep->idx_end(); ++index) text += ", " + typedOperand(*index);
      return text + ")";
    }
    std::string text;
    llvm::raw_string_ostream out(text);
    value->printAsOperand(out, /*PrintType=*/false, slots_);
    return text;
  }

  std::string typedOperand(const llvm::Value* value) { return valueType(value) + " " + operand(value); }

  std::string result(const llvm::Instruction& instruction) {
    return instruction.getType()->isVoidTy() ? "" : operand(&instruction) + " = ";
  }

  // The first pointer operand's type whose pointee is known (for the
  // instructions whose pointer operands all have one type: phi, select,
  // icmp, ret...), "" if none.
  std::string firstPointerType(const llvm::User& user) {
    for (const llvm::Value* value : user.operand_values()) {
      if (const Pointee target = pointee(value)) return text(target) + "*";
    }
    return "";
  }

  // LLVM's own text, each "ptr" word replaced by `typed` when given.
  std::string printed(const llvm::Value& value, const std::string& typed) {
    std::string text;
    llvm::raw_string_ostream out(text);
    value.print(out, slots_);
    if (typed.empty()) return text;
    std::string out2;
    for (size_t i = 0; i < text.size();) {
      const bool word = text.compare(i, 3, "ptr") == 0 && (i == 0 || (!isNameChar(text[i - 1]) &&
                                                                       text[i - 1] != '%' && text[i - 1] != '@' &&
                                                                       text[i - 1] != '"')) &&
                        (i + 3 == text.size() || !isNameChar(text[i + 3])) &&
                        text.compare(i + 3, 11, " addrspace(") != 0;
      if (word) {
        out2 += typed;
        i += 3;
      } else {
        out2 += text[i++];
      }
    }
    return out2;
  }

  std::string label(const llvm::BasicBlock& block) {
    if (block.hasNPredecessors(0)) return block.isEntryBlock() ? "<LABEL>:" : "<LABEL>: ; No predecessors";
    std::string text = "<LABEL>: ; preds = ";
    bool first = true;
    for (const llvm::BasicBlock* predecessor : llvm::predecessors(&block)) {
      (void)predecessor;
      text += first ? "<LABEL>" : ", <LABEL>";
      first = false;
    }
    return text;
  }

  std::string header(const llvm::Function& function) {
    std::string text = "define ";
    text += linkageKeyword(function.getLinkage());
    if (function.isDSOLocal() && !function.isImplicitDSOLocal()) text += "dso_local ";
    if (function.hasHiddenVisibility()) text += "hidden ";
    if (function.hasProtectedVisibility()) text += "protected ";
    if (function.getCallingConv() != llvm::CallingConv::C) text += callingConvention(function.getCallingConv()) + " ";
    const llvm::AttributeList attributes = function.getAttributes();
    if (attributes.hasRetAttrs()) text += attributes.getRetAttrs().getAsString() + " ";
    text += type(function.getReturnType()) + " " + operand(&function) + "(";
    for (const llvm::Argument& argument : function.args()) {
      if (argument.getArgNo()) text += ", ";
      text += type(argument.getType());
      if (const llvm::AttributeSet set = attributes.getParamAttrs(argument.getArgNo()); set.hasAttributes()) {
        text += " " + set.getAsString();
      }
      text += " " + operand(&argument);
    }
    if (function.isVarArg()) text += function.arg_empty() ? "..." : ", ...";
    text += ")";
    switch (function.getUnnamedAddr()) {
      case llvm::GlobalValue::UnnamedAddr::None: break;
      case llvm::GlobalValue::UnnamedAddr::Local: text += " local_unnamed_addr"; break;
      case llvm::GlobalValue::UnnamedAddr::Global: text += " unnamed_addr"; break;
    }
    if (function.getAddressSpace() != 0) text += " addrspace(" + std::to_string(function.getAddressSpace()) + ")";
    return text;
  }

  std::string instruction(const llvm::Instruction& instruction) {
    if (pointers_ == Inst2vecPointers::Typed) {
      if (auto* load = llvm::dyn_cast<llvm::LoadInst>(&instruction); load && !load->isAtomic()) {
        const std::string loaded = valueType(load);
        return result(instruction) + "load " + (load->isVolatile() ? "volatile " : "") + loaded + ", " + loaded +
               "* " + operand(load->getPointerOperand()) + ", align " + std::to_string(load->getAlign().value());
      }
      if (auto* store = llvm::dyn_cast<llvm::StoreInst>(&instruction); store && !store->isAtomic()) {
        // A null pointer stored takes the type the location holds.
        const Pointee held = pointee(store->getPointerOperand());
        const std::string stored = pointee(store->getValueOperand()) || !held || held.depth == 0
                                       ? valueType(store->getValueOperand())
                                       : text(held);
        return std::string("store ") + (store->isVolatile() ? "volatile " : "") + stored + " " +
               operand(store->getValueOperand()) + ", " + stored + "* " + operand(store->getPointerOperand()) +
               ", align " + std::to_string(store->getAlign().value());
      }
      if (auto* gep = llvm::dyn_cast<llvm::GetElementPtrInst>(&instruction);
          gep && gep->getPointerOperandType()->isPointerTy()) {
        std::string text = result(instruction) + "getelementptr";
        if (gep->isInBounds()) {
          text += " inbounds";
        } else if (gep->hasNoUnsignedSignedWrap()) {
          text += " nusw";
        }
        if (gep->hasNoUnsignedWrap()) text += " nuw";
        // An array of pointers indexed: its element type is what it holds.
        const Pointee source = pointee(gep->getPointerOperand());
        const std::string element = source.depth > 0 && gep->getSourceElementType()->isPointerTy()
                                        ? this->text(source)
                                        : type(gep->getSourceElementType());
        text += " " + element + ", " + element + "* " + operand(gep->getPointerOperand());
        for (auto index = gep->idx_begin(); index != gep->idx_end(); ++index) text += ", " + typedOperand(*index);
        return text;
      }
    }
    if (auto* call = llvm::dyn_cast<llvm::CallBase>(&instruction)) {
      if (call->isInlineAsm()) {
        // The paper drops "call void asm" statements; one with a result stays.
        return call->getType()->isVoidTy() ? "" : printed(instruction, "");
      }
      if (pointers_ == Inst2vecPointers::Typed && !call->hasOperandBundles() &&
          (llvm::isa<llvm::CallInst>(call) || llvm::isa<llvm::InvokeInst>(call))) {
        return this->call(*call);
      }
    }
    const bool samePointerType = llvm::isa<llvm::PHINode, llvm::SelectInst, llvm::ICmpInst, llvm::ReturnInst,
                                           llvm::PtrToIntInst, llvm::AtomicCmpXchgInst, llvm::FreezeInst>(instruction);
    if (auto* alloca = llvm::dyn_cast<llvm::AllocaInst>(&instruction);
        alloca && alloca->getAllocatedType()->isPointerTy()) {
      // A location for a pointer: typed by what is stored into it.
      const Pointee held = pointee(alloca);
      return printed(instruction, held && held.depth > 0 ? text({held.base, held.depth - 1}) + "*" : "");
    }
    return printed(instruction, samePointerType ? firstPointerType(instruction) : "");
  }

  std::string call(const llvm::CallBase& call) {
    std::string text = result(call);
    if (auto* inst = llvm::dyn_cast<llvm::CallInst>(&call)) {
      if (inst->isMustTailCall()) {
        text += "musttail ";
      } else if (inst->isTailCall()) {
        text += "tail ";
      } else if (inst->isNoTailCall()) {
        text += "notail ";
      }
    }
    text += call.getOpcodeName();
    if (auto* math = llvm::dyn_cast<llvm::FPMathOperator>(&call)) {
      llvm::raw_string_ostream out(text);
      math->getFastMathFlags().print(out);
    }
    if (call.getCallingConv() != llvm::CallingConv::C) text += " " + callingConvention(call.getCallingConv());
    const llvm::AttributeList attributes = call.getAttributes();
    if (attributes.hasRetAttrs()) text += " " + attributes.getRetAttrs().getAsString();
    llvm::FunctionType* signature = call.getFunctionType();
    text += " " + type(signature->isVarArg() ? signature : signature->getReturnType()) + " " +
            operand(call.getCalledOperand()) + "(";
    for (unsigned i = 0; i < call.arg_size(); ++i) {
      if (i) text += ", ";
      const llvm::Value* argument = call.getArgOperand(i);
      text += valueType(argument);
      if (const llvm::AttributeSet set = attributes.getParamAttrs(i); set.hasAttributes()) {
        text += " " + set.getAsString();
      }
      text += " " + operand(argument);
    }
    text += ")";
    if (auto* invoke = llvm::dyn_cast<llvm::InvokeInst>(&call)) {
      text += "\nto label " + operand(invoke->getNormalDest()) + " unwind label " + operand(invoke->getUnwindDest());
    }
    return text;
  }

  const llvm::Module& module_;
  llvm::ModuleSlotTracker slots_;
  const Inst2vecPointers pointers_;
  std::unordered_map<std::string, llvm::StructType*> structNames_;
  std::unordered_map<const llvm::StructType*, std::string> inlined_;
  std::unordered_map<const llvm::Value*, Pointee> pointees_;
  std::string tooLarge_;  // the first struct whose text passed kMaxTypeText
};

}  // namespace

std::string normaliseInst2vecStatement(std::string_view statement) {
  std::string cut;
  for (size_t start = 0; start <= statement.size();) {
    const size_t end = std::min(statement.find('\n', start), statement.size());
    std::string line(statement.substr(start, end - start));
    cutAtMark(line, '!');
    cutAtMark(line, '#');
    cut += line;
    if (end < statement.size()) cut += '\n';
    start = end + 1;
  }
  std::string text = replaceIdentifiers(cut);
  text = replaceFloats(text, &hexFloatAt);
  text = replaceFloats(text, &decimalFloatAt);
  const bool aggregateIndex = startsWith(text, "<%ID> = extractelement") || startsWith(text, "<%ID> = insertelement");
  if (!aggregateIndex && !startsWith(text, "<%ID> = extractvalue") && !startsWith(text, "<%ID> = insertvalue")) {
    text = replaceIntegers(text);
  }
  text = replaceStrings(text);
  if (aggregateIndex) text = replaceIndexTypes(text);
  return text;
}

Result<std::vector<std::string>> inst2vecStatements(const llvm::Module& module, Inst2vecPointers pointers) {
  return StatementWriter(module, pointers).statements();
}

std::string inst2vecStatementsJson(const std::vector<std::string>& statements) {
  std::string text;
  llvm::raw_string_ostream stream(text);
  llvm::json::OStream json(stream);
  json.array([&] {
    for (const std::string& statement : statements) json.value(statement);  // invalid UTF-8 is repaired
  });
  stream.flush();
  return text;
}

}  // namespace forkgym::passes
