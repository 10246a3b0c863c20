#include "passes/llvm/lexed_ir.h"

#include <algorithm>
#include <iterator>
#include <memory>

#include <llvm/ADT/APFloat.h>
#include <llvm/ADT/APSInt.h>
#include <llvm/ADT/SmallString.h>
#include <llvm/ADT/StringExtras.h>
#include <llvm/AsmParser/LLLexer.h>
#include <llvm/AsmParser/LLToken.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Type.h>
#include <llvm/Support/JSON.h>
#include <llvm/Support/SourceMgr.h>
#include <llvm/Support/raw_ostream.h>

namespace forkgym::passes {
namespace {

namespace lltok = llvm::lltok;

// Every lltok::Kind's name, in enum order, read from the LLToken.h of the
// LLVM this is built against (passes/llvm/CMakeLists.txt generates it).
constexpr std::string_view kKindNames[] = {
#include "passes/llvm/lexed_ir_kinds.inc"
};
static_assert(std::size(kKindNames) == static_cast<size_t>(lltok::APSInt) + 1,
              "lexed_ir_kinds.inc does not match llvm/AsmParser/LLToken.h");

// LLToken.h groups the kinds by the value the lexer gives them: markers,
// then the tokens with no value, then UIntVal (LabelID..SummaryID), StrVal
// (the kinds after SummaryID up to Type), Type, APFloat, APSInt.
std::string_view categoryOf(lltok::Kind kind) {
  if (kind == lltok::Eof || kind == lltok::Error) return "marker";
  if (kind >= lltok::LabelID && kind <= lltok::SummaryID) return "uintval";
  if (kind > lltok::SummaryID && kind < lltok::Type) return "strval";
  if (kind == lltok::Type) return "type";
  if (kind == lltok::APFloat) return "apfloat";
  if (kind == lltok::APSInt) return "apsint";
  return "keyword";
}

std::string valueOf(const llvm::LLLexer& lexer, std::string_view category) {
  std::string text;
  llvm::raw_string_ostream out(text);
  if (category == "uintval") {
    out << lexer.getUIntVal();
  } else if (category == "strval") {
    // As IR spells it: non-printable bytes as \XX, so the value is ASCII.
    llvm::printEscapedString(lexer.getStrVal(), out);
  } else if (category == "type") {
    lexer.getTyVal()->print(out);
  } else if (category == "apfloat") {
    llvm::SmallString<32> digits;
    lexer.getAPFloatVal().toString(digits);
    out << digits;
  } else if (category == "apsint") {
    const llvm::APSInt& value = lexer.getAPSIntVal();
    llvm::SmallString<32> digits;
    value.toString(digits, 10, value.isSigned());
    out << digits;
  }
  out.flush();
  return text;
}

}  // namespace

Result<std::vector<LexedToken>> lexIr(std::string_view irText) {
  // The lexer reads up to a terminating NUL: a std::string has one.
  const std::string buffer(irText);
  llvm::LLVMContext context;
  llvm::SourceMgr sources;
  llvm::SMDiagnostic diagnostic;
  llvm::LLLexer lexer(buffer, sources, diagnostic, context);
  std::vector<LexedToken> tokens;
  for (lltok::Kind kind = lexer.Lex(); kind != lltok::Eof; kind = lexer.Lex()) {
    if (kind == lltok::Error) {
      const size_t offset = static_cast<size_t>(lexer.getLoc().getPointer() - buffer.data());
      const size_t line = 1 + static_cast<size_t>(std::count(buffer.begin(), buffer.begin() + offset, '\n'));
      return makeError(Outcome::ServerError, "LLVM's IR lexer could not read line " + std::to_string(line) +
                                                 " of the module's IR" +
                                                 (diagnostic.getMessage().empty()
                                                      ? std::string()
                                                      : ": " + diagnostic.getMessage().str()) +
                                                 " (a bug: report it with the IR observation)");
    }
    const std::string_view category = categoryOf(kind);
    tokens.push_back({.id = static_cast<int64_t>(kind),
                      .kind = kKindNames[static_cast<size_t>(kind)],
                      .category = category,
                      .value = valueOf(lexer, category)});
  }
  return tokens;
}

Result<std::vector<LexedToken>> lexModule(const llvm::Module& module) {
  std::string text;
  llvm::raw_string_ostream stream(text);
  module.print(stream, nullptr);
  stream.flush();
  return lexIr(text);
}

std::string lexedIrColumnsJson(const std::vector<LexedToken>& tokens) {
  std::string text;
  llvm::raw_string_ostream stream(text);
  llvm::json::OStream json(stream);
  json.object([&] {
    json.attributeArray("token_id", [&] {
      for (const LexedToken& token : tokens) json.value(token.id);
    });
    json.attributeArray("token_kind", [&] {
      for (const LexedToken& token : tokens) json.value(llvm::StringRef(token.kind));
    });
    json.attributeArray("token_category", [&] {
      for (const LexedToken& token : tokens) json.value(llvm::StringRef(token.category));
    });
    json.attributeArray("token_value", [&] {
      for (const LexedToken& token : tokens) json.value(llvm::StringRef(token.value));
    });
  });
  stream.flush();
  return text;
}

std::string lexedIrRecordsJson(const std::vector<LexedToken>& tokens) {
  std::string text;
  llvm::raw_string_ostream stream(text);
  llvm::json::OStream json(stream);
  json.array([&] {
    for (const LexedToken& token : tokens) {
      json.array([&] {
        json.value(token.id);
        json.value(llvm::StringRef(token.kind));
        json.value(llvm::StringRef(token.category));
        json.value(llvm::StringRef(token.value));
      });
    }
  });
  stream.flush();
  return text;
}

}  // namespace forkgym::passes
