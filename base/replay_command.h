// ReplayCommand: how a reproducer's command line is written from an
// episode's actions — one shape for the backend that declares it
// (passes/backend.h, ActionSpace::replay), the wire that carries it
// (ipc/protocol.capnp, ReplayCommand) and the client that writes the line
// (client/connection.h, Description::replay), even after the worker died.
#pragma once

#include <string>
#include <vector>

namespace forkgym {

//   quote(program) [actionsPrefix a1 separator a2 ... actionsSuffix] tail
// where a_i is each action's `replay` text; the bracket only when some
// action has one.
struct ReplayCommand {
  std::string program;  // absolute path of the tool that replays, e.g. the server's own opt
  std::string actionsPrefix;
  std::string separator;
  std::string actionsSuffix;
  std::string tail;
  // The session's commandLine() replays the episode, not the line above
  // (the state is not a function of the actions' texts: gcc's "+1" steps,
  // its choices parameter): the worker sends it with every step and
  // parameter reply, and the client checks it holds only `stateArguments`
  // (ipc/protocol.capnp, ReplayCommand) before a reproducer names it.
  bool fromState = false;
  std::vector<std::string> stateArguments;
};

}  // namespace forkgym
