#include "passes/gcc/backend.h"

#include <stdlib.h>

#include <memory>
#include <optional>

#include "passes/gcc/program_loader.h"
#include "passes/gcc/session.h"

namespace forkgym::passes::gcc {
namespace {

// gcc's installed options, read once. The binary is the one on PATH, as
// CompilerGym's gcc_bin="gcc" would run (FORKGYM_GCC names another).
struct Installed {
  GccSpec spec;
  std::vector<std::string> programs;  // gccPrograms(): what its workers may run
  std::unique_ptr<GccActionSpace> actions;
  ActionSpace description;
  std::vector<Space> observations;
  std::vector<Space> rewards;
};
std::optional<Installed> gInstalled;

// Why gcc-v0 cannot start, and what to do about it: without gcc the server
// serves its other backends and hands this to whoever asks for gcc-v0.
Error unavailable(const Error& error, bool named) {
  return Error{error.outcome, "gcc-v0 needs gcc: " + error.message +
                                  (named ? " (FORKGYM_GCC names it): point FORKGYM_GCC at a gcc driver, e.g. "
                                           "/usr/bin/gcc, or unset it to use the gcc on PATH (Debian: apt-get "
                                           "install gcc)"
                                         : ": install it (Debian: apt-get install gcc), or point FORKGYM_GCC at a "
                                           "gcc driver by absolute path")};
}

Result<BackendIdentity> initialize() {
  if (!gInstalled) {
    const char* binary = std::getenv("FORKGYM_GCC");
    const bool named = binary && *binary;
    // By absolute path: what the sandbox allows to run, and the first word
    // of every command line a user replays.
    auto programs = gccPrograms(named ? binary : "gcc");
    if (!programs.ok()) return unavailable(programs.error(), named);
    auto spec = discoverGccSpec(programs->front());
    if (!spec.ok()) return unavailable(spec.error(), named);
    // Built in place: the action space keeps a pointer to the spec.
    Installed& installed = gInstalled.emplace();
    installed.spec = std::move(*spec);
    installed.programs = std::move(*programs);
    installed.actions = std::make_unique<GccActionSpace>(installed.spec);
    installed.description.name = "default";  // CompilerGym's name for gcc-v0's space
    installed.description.hash = installed.actions->hash();
    for (const GccAction& action : installed.actions->actions()) {
      const GccOption& option = installed.spec.options[action.option];
      // An action's text in a line written from a list of actions (a
      // client's commandline(actions), read back by name; reproducers name
      // the state's own line instead, fromState below): a set action is its
      // argument (gcc takes the last of repeated options, and
      // -O levels before -f flags wherever they stand, so the concatenation
      // means what the choices mean); a step is not an argument, and its
      // name left in the line makes gcc refuse it rather than compile
      // something else.
      installed.description.actions.push_back(
          {action.name, action.name,
           action.kind == GccAction::Kind::Set ? "sets " + option.displayName() + " to " + action.name
                                               : "moves " + option.displayName() + " by " + std::to_string(action.value) +
                                                     " choices (clamped; -1 leaves it out)",
           "", false});
    }
    // The session's commandLine() is the state's own (one argument per
    // chosen option): the client's reproducers name it (fromState), and the
    // line above only writes a list of actions.
    installed.description.replay = {installed.spec.binary, " ", " ", "", " -w -c src.c -o obj.o",
                                    /*fromState=*/true, argumentForms(installed.spec)};
    installed.observations = gccObservationSpaces(installed.spec);
    installed.rewards = gccRewardSpaces();
  }
  return BackendIdentity{gInstalled->spec.version, {{"gccBinary", gInstalled->spec.binary}}};
}

const ActionSpace& actionSpace() { return gInstalled->description; }
std::span<const Space> observationSpaces() { return gInstalled->observations; }
std::span<const Space> rewardSpaces() { return gInstalled->rewards; }

Result<LoadedBenchmark> load(const LoadRequest& request) { return loadGccProgram(gInstalled->spec, request); }

struct GccProgram : CachedBenchmark {
  std::string source;
  size_t sizeInCache() const override { return source.size() + sizeof *this; }
};

Result<std::unique_ptr<CachedBenchmark>> prepare(const LoadedBenchmark& loaded) {
  auto program = std::make_unique<GccProgram>();
  program->source = loaded.payload;
  return std::unique_ptr<CachedBenchmark>(std::move(program));
}

Result<std::unique_ptr<Session>> startSession(CachedBenchmark& cached) {
  const auto& program = static_cast<const GccProgram&>(cached);
  // The directory is made at the first compile, in the worker's private /tmp.
  return std::unique_ptr<Session>(
      std::make_unique<GccSession>(gInstalled->spec, *gInstalled->actions, program.source, std::string()));
}

void installErrorHandlers(const CompilerErrorHandlers&) {}  // nothing of gcc runs in our processes

sandbox::ExternalCompiler externalCompiler() { return {.name = "gcc", .executables = gInstalled->programs}; }

}  // namespace

const GccSpec& gccSpec() { return gInstalled->spec; }
const GccActionSpace& gccActionSpace() { return *gInstalled->actions; }

const Backend kGccBackend = {
    .name = "gcc",
    .description = "GCC's command-line optimisation options (gcc-v0): the installed gcc's -O levels, -f flags and "
                   "--param values",
    .startUp = StartUp::ExternalCompiler,
    .sandbox = WorkerSandbox::ExternalCompiler,
    .initialize = &initialize,
    .actionSpace = &actionSpace,
    .observationSpaces = &observationSpaces,
    .rewardSpaces = &rewardSpaces,
    .resolve = &resolveGccBenchmark,
    .load = &load,
    .prepare = &prepare,
    .startSession = &startSession,
    .installErrorHandlers = &installErrorHandlers,
    .externalCompiler = &externalCompiler,
};

}  // namespace forkgym::passes::gcc
