// trimmed(): text without the white space around it, for what a person or a
// program's help output hands us (a benchmark URI, gcc's option lists, a
// choices parameter).
#pragma once

#include <string_view>

namespace forkgym {

// `text` without leading and trailing spaces, tabs, carriage returns and
// newlines; a view into `text`.
constexpr std::string_view trimmed(std::string_view text) {
  constexpr auto isSpace = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!text.empty() && isSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && isSpace(text.back())) text.remove_suffix(1);
  return text;
}

}  // namespace forkgym
