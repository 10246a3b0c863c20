#include "passes/backend.h"

#include "base/shell_quote.h"

namespace forkgym::passes {

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
