#include "passes/backend.h"

namespace forkgym::passes {
namespace {

// Single-quoted for a POSIX shell unless it needs no quoting (the client
// quotes the program the same way: client/env.cc).
std::string shellQuoted(const std::string& word) {
  const bool plain = !word.empty() && word.find_first_not_of(
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._-+=:,@") == std::string::npos;
  if (plain) return word;
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

}  // namespace

std::string replayCommandLine(const ActionSpace& space, std::span<const uint32_t> actions) {
  std::string joined;
  for (uint32_t index : actions) {
    if (index >= space.actions.size() || space.actions[index].replay.empty()) continue;
    if (!joined.empty()) joined += space.replay.separator;
    joined += space.actions[index].replay;
  }
  std::string line = shellQuoted(space.replay.program);
  if (!joined.empty()) line += space.replay.actionsPrefix + joined + space.replay.actionsSuffix;
  return line + space.replay.tail;
}

}  // namespace forkgym::passes
