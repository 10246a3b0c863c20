// The LexedIr observations: the module's textual IR as LLVM's own IR lexer
// (llvm::LLLexer, the one LLParser reads .ll files with) splits it into
// tokens, each with CompilerGym's four fields:
//   id        the lexer's token kind (llvm::lltok::Kind) as a number;
//   kind      that kind's name in LLToken.h ("kw_define", "LocalVar", ...);
//   category  "marker", "keyword", "uintval", "strval", "type", "apfloat"
//             or "apsint": which of the lexer's values the token carries;
//   value     that value as text ("" for keywords and markers): the number
//             of a %42, the name of a %foo (escaped as IR escapes it), the
//             type of an i32, the digits of a constant.
// Ids and kind names are LLVM 19's (CompilerGym's were LLVM 10's).
//
// Any process; reads the module only (the lexer runs in a context of its
// own, so the module's context gains no types).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace llvm {
class Module;
}

namespace forkgym::passes {

struct LexedToken {
  int64_t id = 0;
  std::string_view kind;
  std::string_view category;
  std::string value;
};

// The tokens of `irText`, in order. ServerError naming the line when the
// lexer meets text it cannot read (LLVM printed IR it cannot lex: a bug to
// report, never a partial token list).
Result<std::vector<LexedToken>> lexIr(std::string_view irText);

// The module printed, then lexed.
Result<std::vector<LexedToken>> lexModule(const llvm::Module& module);

// CompilerGym's LexedIr: one JSON object of four equal-length columns,
// {"token_id": [...], "token_kind": [...], "token_category": [...],
// "token_value": [...]}.
std::string lexedIrColumnsJson(const std::vector<LexedToken>& tokens);

// LexedIrTuple: a JSON list of [id, kind, category, value] lists.
std::string lexedIrRecordsJson(const std::vector<LexedToken>& tokens);

// The fields of a LexedIrTuple record, in order.
inline constexpr std::string_view kLexedTokenFields[] = {"ID", "kind", "category", "value"};

}  // namespace forkgym::passes
