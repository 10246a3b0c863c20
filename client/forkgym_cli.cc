// forkgym (C++): what a C++ user needs from the command line: the server's
// backends, as the C++ client sees them.
//
//   forkgym describe [BACKEND]
//       Lists the server's backends, and each one's (or BACKEND's) action
//       space and observation and reward spaces.
//
// Searching, the leaderboard, validation and datasets are the Python
// package's command line (`forkgym search|leaderboard|validate|datasets`,
// also `python -m forkgym`), built on the same client; README.md's
// "C++" section shows the client API a C++ search is written with.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "client/connection.h"

namespace {


constexpr const char* kUsage = R"(usage:
  forkgym describe [BACKEND]

Lists the server's backends: each one's actions, observation and reward spaces.
To search pass orderings, run the leaderboard, validate states or manage
datasets, use the Python package's command line: forkgym search|leaderboard|
validate|datasets|describe (python -m forkgym COMMAND --help).
Environment: FORKGYM_SERVER names the forkgym-server binary.
)";

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "forkgym: %s\n", message.c_str());
  std::exit(1);
}

const char* typeName(forkgym::ValueType type) {
  static constexpr const char* kNames[] = {"int64", "int64 list", "text",         "bytes",
                                           "bool",  "float64",    "float64 list", "int64 map"};
  return kNames[static_cast<size_t>(type)];
}

void printSpace(const forkgym::SpaceDescription& space) {
  std::string shape;
  for (int64_t n : space.shape) shape += (shape.empty() ? "[" : ",") + std::to_string(n);
  if (!shape.empty()) shape += "]";
  std::printf("  %-24s %-12s %-6s %s%s%s\n", space.name.c_str(), typeName(space.valueType), shape.c_str(),
              space.description.c_str(), space.deterministic ? "" : " (nondeterministic)",
              space.platformDependent ? " (platform-dependent)" : "");
}

int describe(const std::string& only) {
  auto connection = forkgym::Connection::spawn();
  if (!connection) die(connection.error().message);
  const auto server = (*connection)->server();
  for (const auto& backend : server.backends) {
    if (!only.empty() && backend.name != only) continue;
    auto description = (*connection)->describe(backend.name);
    if (!description) die(description.error().message);
    const auto& d = **description;
    std::printf("backend %s %s: %s\n", d.backend.c_str(), d.version.c_str(), d.description.c_str());
    for (const auto& [key, value] : backend.properties) std::printf("  %s: %s\n", key.c_str(), value.c_str());
    std::printf("actions (%s):\n", d.actionSpace.c_str());
    for (size_t i = 0; i < d.actions.size(); ++i) {
      const auto& a = d.actions[i];
      std::printf("  %3zu %-32s %s\n", i, a.flag.c_str(),
                  a.unavailableReason.empty() ? a.replay.c_str() : ("(unavailable: " + a.unavailableReason + ")").c_str());
    }
    std::printf("observation spaces:\n");
    for (const auto& space : d.observations) printSpace(space);
    std::printf("reward spaces:\n");
    for (const auto& space : d.rewards) printSpace(space);
    std::printf("\n");
  }
  if (!only.empty() && !server.backend(only)) {
    // The server's own error lists what it has.
    auto description = (*connection)->describe(only);
    if (!description) die(description.error().message);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string command = argv[1];
  if (command == "describe") return describe(argc > 2 ? argv[2] : "");
  if (command == "search") {
    std::fputs("forkgym: search is the Python package's command now: forkgym search --help "
               "(python -m forkgym search --help)\n", stderr);
    return 2;
  }
  std::fprintf(stderr, "forkgym: unknown command '%s'\n%s", command.c_str(), kUsage);
  return 2;
}
