// shellQuoted(): one word of a command line a person pastes into a POSIX
// shell. The server writes replay command lines with it (passes/backend.cc)
// and the client checks and writes the same lines (client/connection.cc):
// one definition, so both quote a program path alike.
#pragma once

#include <string>
#include <string_view>

namespace forkgym {

// `word` unchanged when the shell would read it as it is (letters, digits and
// /._-+=:,@), else single-quoted, each ' written as '\''.
inline std::string shellQuoted(std::string_view word) {
  const bool plain = !word.empty() && word.find_first_not_of(
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._-+=:,@") == std::string_view::npos;
  if (plain) return std::string(word);
  std::string quoted = "'";
  for (char c : word) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

}  // namespace forkgym
