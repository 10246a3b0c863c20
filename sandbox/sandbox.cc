// The stage list — the order a child gives up its privileges in, each stage
// with the exit code that names it when it fails — and the profiles that
// choose among the stages and rule sets (profile.h).
#include "sandbox/sandbox.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <vector>

#include "sandbox/close_fds.h"
#include "sandbox/identity.h"
#include "sandbox/landlock.h"
#include "sandbox/private_temp.h"
#include "sandbox/profile.h"
#include "sandbox/rlimits.h"
#include "sandbox/rule_sets.h"
#include "sandbox/seccomp_policy.h"

namespace forkgym::sandbox {
namespace {

// ---- Profiles ---------------------------------------------------------------

enum class Kind : uint8_t { Unused, Worker, Loader, ExternalCompiler };

struct CompiledProfile {
  Kind kind = Kind::Unused;
  std::vector<std::string_view> ruleSets;
  std::vector<LandlockRule> landlock;  // external compilers: what Landlock allows
  uint64_t tempBytes = 0;
  bool runsPrograms = false;  // execute beneath the private /tmp
};

constexpr std::string_view kWorkerRuleSets[] = {"channel", "memory", "episode_fork", "in_process_compiler"};
constexpr std::string_view kExternalCompilerRuleSets[] = {"channel", "memory", "episode_fork", "external_compiler"};
constexpr std::string_view kRunnableRuleSets[] = {"channel", "memory", "episode_fork", "external_compiler",
                                                  "program_runner"};

// Slot = Profile::slot; also the slot of its seccomp filter. Filled in the
// zygote before it forks, read-only in children.
std::array<CompiledProfile, kMaxCompiledFilters> gProfiles = [] {
  std::array<CompiledProfile, kMaxCompiledFilters> profiles{};
  profiles[Profile::Worker.slot] = {Kind::Worker, {std::begin(kWorkerRuleSets), std::end(kWorkerRuleSets)}, {}, 0};
  profiles[Profile::Loader.slot] = {Kind::Loader, {}, {}, 0};
  return profiles;
}();
PolicyParameters gParameters;

const CompiledProfile& profileOf(Profile profile) {
  static const CompiledProfile kNone;
  return profile.slot < gProfiles.size() ? gProfiles[profile.slot] : kNone;
}

const char* gPrivateTemp = nullptr;  // set by the private_tmp stage

// The program interpreter an ELF executable names (PT_INTERP), or empty.
std::string elfInterpreter(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string interpreter;
  Elf64_Ehdr header{};
  if (pread(fd, &header, sizeof(header), 0) == static_cast<ssize_t>(sizeof(header)) &&
      std::memcmp(header.e_ident, ELFMAG, SELFMAG) == 0 && header.e_ident[EI_CLASS] == ELFCLASS64) {
    for (unsigned i = 0; i < header.e_phnum && interpreter.empty(); ++i) {
      Elf64_Phdr program{};
      const off_t at = static_cast<off_t>(header.e_phoff + i * sizeof(Elf64_Phdr));
      if (pread(fd, &program, sizeof(program), at) != static_cast<ssize_t>(sizeof(program))) break;
      if (program.p_type != PT_INTERP || program.p_filesz == 0 || program.p_filesz > 4096) continue;
      interpreter.resize(program.p_filesz);
      if (pread(fd, interpreter.data(), program.p_filesz, static_cast<off_t>(program.p_offset)) !=
          static_cast<ssize_t>(program.p_filesz)) {
        interpreter.clear();
      }
      interpreter.resize(strnlen(interpreter.c_str(), interpreter.size()));
    }
  }
  close(fd);
  return interpreter;
}

// ---- Stages -----------------------------------------------------------------

struct StageContext {
  const SandboxLimits& limits;
  std::span<const int> keepFds;
  Profile profile;
};

// First, while the child may still change who it is (isolation.h decides).
bool identity(const StageContext&) { return switchToSandboxUser(currentPlan()); }

// After identity: the namespace maps the sandbox uid, so RLIMIT_NPROC (set
// by the rlimits stage, after this one) counts this episode's processes.
bool userNamespace(const StageContext&) { return enterOwnUserNamespace(currentPlan()); }

// After user_namespace, whose capabilities a mount namespace of its own
// needs, and before capabilities drops them.
bool privateTmp(const StageContext& context) {
  const CompiledProfile& profile = profileOf(context.profile);
  if (!enterPrivateTemp(profile.tempBytes, profile.runsPrograms)) return false;
  gPrivateTemp = kPrivateTempDirectory;
  return true;
}

// After user_namespace, which hands the process every capability inside it.
bool capabilities(const StageContext&) { return dropAllCapabilities(currentPlan()); }

// Without no_new_privs an unprivileged process may not install a seccomp
// filter or a Landlock domain, and an exec'd setuid binary could shed them;
// set it first.
bool noNewPrivs(const StageContext&) { return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0; }

// After user_namespace: a process limit set before unsharing would also cap
// the sandbox uid's processes outside the namespace, i.e. every episode's.
bool processLimit(const StageContext& context) {
  return applyProcessLimit(processLimitUnder(currentPlan(), context.limits.maxProcesses));
}

// The worker's memory, CPU, core, descriptor and niceness limits (a loader
// sets its own, suited to compiling).
bool rlimits(const StageContext& context) {
  return applyRlimits(context.limits);
}

// After rlimits: getrlimit/setrlimit need no descriptors, and closing before
// seccomp lets close_range run unrestricted.
bool closeFds(const StageContext& context) { return closeFdsExcept(context.keepFds); }

// After no_new_privs and the private /tmp (its rule names the tmpfs), before
// seccomp: its rules open paths.
bool filesystem(const StageContext& context) {
  const CompiledProfile& profile = profileOf(context.profile);
  return restrictFileSystem(profile.landlock, gPrivateTemp, profile.runsPrograms);
}

// Last: once loaded, even the other stages' syscalls would trap.
bool seccomp(const StageContext& context) { return loadSeccompFilter(context.profile.slot); }

struct Stage {
  StageInfo info;
  bool (*run)(const StageContext&);
};

// Order is the order of application. Exit codes are part of the wire
// contract (clients decode them): new stages take new codes, never renumber.
// 71..80 sit above the codes ordinary programs use and below 128+signal.
constexpr Stage kStages[] = {
    {{"identity", 75, true, false}, identity},
    {{"user_namespace", 76, true, false}, userNamespace},
    {{"private_tmp", 79, false, true}, privateTmp},
    {{"capabilities", 77, true, false}, capabilities},
    {{"process_limit", 78, true, false}, processLimit},
    {{"no_new_privs", 71, true, false}, noNewPrivs},
    {{"rlimits", 72, false, false}, rlimits},
    {{"close_fds", 73, true, false}, closeFds},
    {{"filesystem", 80, false, true}, filesystem},
    {{"seccomp", 74, false, false}, seccomp},
};

constexpr auto kStageInfos = [] {
  std::array<StageInfo, std::size(kStages)> infos{};
  for (std::size_t i = 0; i < infos.size(); ++i) infos[i] = kStages[i].info;
  return infos;
}();

bool applies(const StageInfo& stage, Kind kind) {
  switch (kind) {
    case Kind::Loader:
      return stage.inLoader;
    case Kind::ExternalCompiler:
      return true;
    case Kind::Worker:
    case Kind::Unused:  // fails at seccomp: no filter in an unused slot
      return !stage.externalCompilerOnly;
  }
  return true;
}

}  // namespace

std::span<const StageInfo> stages() { return kStageInfos; }

std::string_view stageForExitCode(int code) {
  for (const StageInfo& stage : kStageInfos) {
    if (stage.exitCode == code) return stage.name;
  }
  return {};
}

void prepareProgramRules();

void prepareSandbox(const PolicyParameters& parameters) {
  buildSyscallNames();
  rememberFdScanLimit();
  (void)landlockAbi();
  gParameters = parameters;
  prepareProgramRules();
  // A filter that fails to build is reported by the seccomp stage (its exit
  // code), not here: this function has no error channel by design.
  (void)buildSeccompFilter(Profile::Worker.slot, gProfiles[Profile::Worker.slot].ruleSets, parameters);
}

Result<Profile> prepareExternalCompiler(const ExternalCompiler& compiler) {
  const auto failed = [&](const std::string& why) {
    return makeError(Outcome::ServerError, "the sandbox of " + compiler.name + ": " + why);
  };
  size_t slot = 0;
  while (slot < gProfiles.size() && gProfiles[slot].kind != Kind::Unused) ++slot;
  if (slot == gProfiles.size()) return failed("no profile slot left (" + std::to_string(slot) + " in use)");

  CompiledProfile profile;
  profile.kind = Kind::ExternalCompiler;
  if (compiler.runsPrograms) {
    profile.ruleSets.assign(std::begin(kRunnableRuleSets), std::end(kRunnableRuleSets));
  } else {
    profile.ruleSets.assign(std::begin(kExternalCompilerRuleSets), std::end(kExternalCompilerRuleSets));
  }
  profile.tempBytes = compiler.tempBytes;
  profile.runsPrograms = compiler.runsPrograms;
  std::vector<std::string> executables = compiler.executables;
  for (size_t i = 0; i < executables.size(); ++i) {
    const std::string& path = executables[i];
    LandlockRule rule;
    if (path.empty() || path[0] != '/') return failed("'" + path + "' is not an absolute path");
    if (!executableRule(path, rule) || access(path.c_str(), X_OK) != 0) {
      return failed("'" + path + "' is not an executable file");
    }
    profile.landlock.push_back(rule);
    // Executing a dynamic binary executes its interpreter too (the kernel
    // opens it for execution).
    const std::string interpreter = elfInterpreter(path);
    bool listed = false;
    for (const auto& known : executables) listed = listed || known == interpreter;
    if (!interpreter.empty() && !listed) executables.push_back(interpreter);
  }
  for (std::string_view path : kSystemReadOnlyPaths) {
    LandlockRule rule;
    if (path == "/dev/null") {
      profile.landlock.push_back(nullDeviceRule());
    } else if (readOnlyRule(std::string(path), rule)) {
      profile.landlock.push_back(rule);
    }
  }
  for (const std::string& path : compiler.readOnlyPaths) {
    LandlockRule rule;
    if (!readOnlyRule(path, rule)) return failed("cannot read '" + path + "'");
    profile.landlock.push_back(rule);
  }
  gProfiles[slot] = std::move(profile);
  if (!buildSeccompFilter(slot, gProfiles[slot].ruleSets, gParameters)) {
    gProfiles[slot] = {};
    return failed("its seccomp filter did not compile");
  }
  return Profile{static_cast<uint8_t>(slot)};
}

const char* privateTempDirectory() { return gPrivateTemp; }

namespace {
// The system's read-only paths as rules, built in the zygote (prepareSandbox)
// so that confineProgram() allocates nothing after fork.
std::vector<LandlockRule> gProgramRules;
}  // namespace

void prepareProgramRules() {
  if (!gProgramRules.empty()) return;
  for (std::string_view path : kSystemReadOnlyPaths) {
    LandlockRule rule;
    if (path == "/dev/null") {
      gProgramRules.push_back(nullDeviceRule());
    } else if (readOnlyRule(std::string(path), rule)) {
      gProgramRules.push_back(rule);
    }
  }
  // Executing a dynamic program executes its ELF interpreter: the system's,
  // which the server itself runs under.
  LandlockRule interpreter;
  if (executableRule(elfInterpreter("/proc/self/exe"), interpreter)) gProgramRules.push_back(interpreter);
}

bool confineProgram(const char* runDirectory) {
  return restrictFileSystem(gProgramRules, runDirectory, /*executeWritable=*/true);
}

std::vector<std::string_view> ruleSetsOf(Profile profile) { return profileOf(profile).ruleSets; }

std::span<const SeccompRule> seccompAllowlist() {
  static const std::vector<SeccompRule> rows = [] {
    std::vector<SeccompRule> all;
    for (std::string_view name : kWorkerRuleSets) {
      for (const SeccompRule& row : findRuleSet(name)->rows) all.push_back(row);
    }
    return all;
  }();
  return rows;
}

void applySandbox(const SandboxLimits& limits, std::span<const int> keepFds, Profile profile) {
  const StageContext context{limits, keepFds, profile};
  const Kind kind = profileOf(profile).kind;
  for (const Stage& stage : kStages) {
    if (!applies(stage.info, kind)) continue;
    if (!stage.run(context)) _exit(stage.info.exitCode);
  }
}

}  // namespace forkgym::sandbox
