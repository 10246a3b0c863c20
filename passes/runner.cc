#include "passes/runner.h"

#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>
#include <vector>

#include "passes/run_config.h"
#include "passes/tool_process.h"

namespace forkgym::passes {
namespace {

constexpr const char* kDriver = "clang-19";
constexpr const char* kObjectName = "in.o";

std::string gCompiler;  // set by runnableProfile() in the zygote; workers inherit it
std::string gCounterStatus;  // likewise (instructionCounterStatus())

Status writeFile(const std::string& path, std::string_view content) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return makeError(Outcome::ServerError, "runner: cannot write " + path + ": " + std::strerror(errno));
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = errno;
      ::close(fd);
      return makeError(Outcome::ServerError, "runner: cannot write " + path + ": " + std::strerror(error));
    }
    written += static_cast<size_t>(n);
  }
  ::close(fd);
  return okStatus();
}

// A regular file of the run directory, read back (no links followed: the
// program could leave one pointing anywhere its confinement let it).
bool readOutputFile(const std::string& path, std::string& content) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return false;
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return false;
  }
  content.resize(std::min<size_t>(static_cast<size_t>(info.st_size), kMaxOutputFileBytes));
  size_t got = 0;
  while (got < content.size()) {
    const ssize_t n = ::read(fd, content.data() + got, content.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  content.resize(got);
  ::close(fd);
  return true;
}

// The run directory: beneath the private /tmp, one per request (forks of
// the episode share that /tmp, so the name carries the pid).
class RunDirectory {
 public:
  static Result<RunDirectory> make() {
    static uint64_t counter = 0;
    const char* temp = sandbox::privateTempDirectory();
    std::string base = temp ? temp : "/tmp";
    RunDirectory dir;
    dir.path_ = base + "/forkgym-run-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
    if (::mkdir(dir.path_.c_str(), 0700) != 0) {
      return makeError(Outcome::ServerError, "runner: cannot make its run directory " + dir.path_ + ": " +
                                                 std::strerror(errno));
    }
    return dir;
  }
  RunDirectory(RunDirectory&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  ~RunDirectory() {
    if (path_.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  RunDirectory() = default;
  std::string path_;
};

Outcome classify(const ToolRun& run) {
  if (run.outputTooLarge) return Outcome::OutputTooLarge;
  if (run.timedOut) return Outcome::TimedOut;
  switch (run.signal) {
    case 0:
      return Outcome::Ok;
    case SIGSYS:
      return Outcome::SandboxViolation;
    case SIGXFSZ:
      return Outcome::OutputTooLarge;
    case SIGXCPU:
      return Outcome::TimedOut;
    default:
      return Outcome::Crashed;
  }
}

std::string describe(const ToolRun& run, uint32_t timeoutSeconds) {
  if (run.outputTooLarge) return "stopped: it wrote more than " + std::to_string(kMaxOutputBytes >> 20) + " MiB to stdout";
  if (run.timedOut) return "timed out after " + std::to_string(timeoutSeconds) + " s";
  switch (run.signal) {
    case 0:
      return "exited with status " + std::to_string(run.exitCode);
    case SIGSYS:
      return "killed by SIGSYS: it made a system call the runner's sandbox denies (e.g. a network socket)";
    case SIGXFSZ:
      return "killed by SIGXFSZ: it wrote a file larger than " + std::to_string(kMaxProgramFileBytes >> 20) + " MiB";
    case SIGXCPU:
      return "killed by SIGXCPU: it used its CPU time limit";
    default:
      return "killed by signal " + std::to_string(run.signal) + " (" + strsignal(run.signal) + ")";
  }
}

// The episode's memory limit: the worker's soft RLIMIT_AS (runnableLimits()).
uint64_t episodeMemoryBytes() {
  rlimit current{};
  if (::getrlimit(RLIMIT_AS, &current) != 0 || current.rlim_cur == RLIM_INFINITY) return 0;
  return current.rlim_cur;
}

// What an AddressSanitizer build runs with instead of an address-space limit
// (runner.h, "Memory"). No leak detection: LeakSanitizer stops the program's
// threads with ptrace, which the sandbox denies, and a leak is no sign of a
// miscompile.
std::string asanOptions() {
  std::string options = "ASAN_OPTIONS=detect_leaks=0";
  if (const uint64_t memory = episodeMemoryBytes()) options += ":mmap_limit_mb=" + std::to_string(memory >> 20);
  return options;
}

ToolOptions programOptions(const RunDirectory& dir, uint32_t timeoutSeconds, bool sanitized = false) {
  ToolOptions options;
  // RLIM_INFINITY: the hard limit the runnable worker kept (no limit).
  options.addressSpaceBytes = sanitized ? RLIM_INFINITY : episodeMemoryBytes();
  options.limit = std::chrono::seconds(timeoutSeconds);
  options.workingDirectory = dir.path().c_str();
  options.confineToDirectory = dir.path().c_str();
  options.ownProcessGroup = true;
  options.keepOutputBytes = kKeptOutputBytes;
  options.keepErrorBytes = kKeptOutputBytes;
  options.maxOutputBytes = kMaxOutputBytes;
  options.cpuSeconds = timeoutSeconds + 1;
  options.fileSizeBytes = kMaxProgramFileBytes;
  options.maxProcesses = kMaxProgramProcesses;
  options.environment = {"HOME=" + dir.path(), "TMPDIR=" + dir.path(), "PWD=" + dir.path()};
  if (sanitized) options.environment.push_back(asanOptions());
  return options;
}

// One run of the program (or a pre/post-run command) in the directory.
Result<ToolRun> runOnce(const RunDirectory& dir, const std::vector<std::string>& argv, std::string_view input,
                        uint32_t timeoutSeconds, bool countInstructions, bool sanitized = false) {
  ToolOptions options = programOptions(dir, timeoutSeconds, sanitized);
  options.countInstructions = countInstructions;
  return runTool(argv, input, options);
}

}  // namespace

Result<sandbox::ExternalCompiler> runnableProfile() {
  const std::string driver = findProgram(kDriver);
  if (driver.empty()) {
    return makeError(Outcome::ServerError, std::string(kDriver) +
                                               " is not on PATH: runnable benchmarks are linked with it (install "
                                               "clang-19)");
  }
  auto run = runTool({driver, "-print-prog-name=ld"}, "", {.environment = {"LC_ALL=C"}});
  if (!run.ok()) return run.takeError();
  std::string linker = run->out;
  while (!linker.empty() && (linker.back() == '\n' || linker.back() == ' ')) linker.pop_back();
  linker = findProgram(linker);
  if (!run->succeeded() || linker.empty()) {
    return makeError(Outcome::ServerError, "`" + driver + " -print-prog-name=ld` names no linker: runnable "
                                                          "benchmarks cannot be linked (install binutils)");
  }
  gCompiler = driver;
  const std::string counter = probeInstructionCounter();
  gCounterStatus = counter.empty() ? "available" : "unavailable: " + counter;
  sandbox::ExternalCompiler profile;
  profile.name = "runnable benchmarks";
  profile.executables = {driver, linker};
  profile.runsPrograms = true;
  return profile;
}

const std::string& runnerCompiler() { return gCompiler; }

const std::string& instructionCounterStatus() { return gCounterStatus; }

sandbox::SandboxLimits runnableLimits(sandbox::SandboxLimits episode) {
  episode.addressSpaceSoftOnly = true;
  if (episode.maxProcesses == 0 || episode.maxProcesses > kRunnableWorkerProcesses) {
    episode.maxProcesses = kRunnableWorkerProcesses;
  }
  return episode;
}

int64_t elfTextSize(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int64_t text = -1;
  Elf64_Ehdr header{};
  if (::pread(fd, &header, sizeof header, 0) == static_cast<ssize_t>(sizeof header) &&
      std::memcmp(header.e_ident, ELFMAG, SELFMAG) == 0 && header.e_ident[EI_CLASS] == ELFCLASS64 &&
      header.e_shentsize == sizeof(Elf64_Shdr) && header.e_shnum < 4096) {
    text = 0;
    for (unsigned i = 0; i < header.e_shnum; ++i) {
      Elf64_Shdr section{};
      const off_t at = static_cast<off_t>(header.e_shoff + i * sizeof(Elf64_Shdr));
      if (::pread(fd, &section, sizeof section, at) != static_cast<ssize_t>(sizeof section)) {
        text = -1;
        break;
      }
      // llvm-size's Berkeley "text": allocated, and executable or not writable.
      const bool allocated = section.sh_flags & SHF_ALLOC;
      const bool textLike = (section.sh_flags & SHF_EXECINSTR) || !(section.sh_flags & SHF_WRITE);
      if (allocated && textLike && section.sh_type != SHT_NOBITS) text += static_cast<int64_t>(section.sh_size);
    }
  }
  ::close(fd);
  return text;
}

Error buildFailure(const RunResult& result) {
  return makeError(Outcome::BuildFailed, "the program did not build: " + result.buildDiagnostics);
}

Result<RunResult> buildAndRun(const RunConfig& given, std::string_view object, const RunRequest& request,
                              bool sanitize, bool buildOnly) {
  const RunConfig config = withDefaults(given);
  for (uint32_t set : request.inputSets) {
    if (set >= config.inputSets.size()) {
      return makeError(Outcome::InvalidRequest, "input set " + std::to_string(set) + " is not in the run "
                                                    "configuration (it has " +
                                                    std::to_string(config.inputSets.size()) + ")");
    }
  }
  if (gCompiler.empty()) return makeError(Outcome::ServerError, "the runner has no compiler (runnableProfile())");
  auto dir = RunDirectory::make();
  if (!dir.ok()) return dir.takeError();
  if (auto written = writeFile(dir->file(kObjectName), object); !written.ok()) return written.takeError();

  RunResult result;
  std::vector<std::string> build;
  for (const std::string& word : config.buildCommand) {
    build.push_back(word == "$CC" ? gCompiler : word == "$IN" ? std::string(kObjectName) : word);
  }
  if (sanitize) build.push_back("-fsanitize=address");
  ToolOptions buildOptions;
  buildOptions.limit = std::chrono::seconds(config.buildTimeoutSeconds);
  buildOptions.workingDirectory = dir->path().c_str();
  buildOptions.ownProcessGroup = true;
  buildOptions.addressSpaceBytes = episodeMemoryBytes();
  buildOptions.environment = {"LC_ALL=C", "TMPDIR=" + dir->path()};
  auto built = runTool(build, "", buildOptions);
  if (!built.ok()) return built.takeError();
  result.buildSeconds = built->wallSeconds;
  result.buildDiagnostics = built->diagnostics();
  const std::string program = dir->file(config.buildOutfile);
  if (!built->succeeded() || ::access(program.c_str(), X_OK) != 0) {
    result.buildOutcome = static_cast<uint16_t>(built->timedOut ? Outcome::TimedOut : Outcome::BuildFailed);
    if (built->succeeded()) {
      result.buildDiagnostics += "\nthe build command succeeded but made no executable '" + config.buildOutfile + "'";
    } else if (result.buildDiagnostics.empty()) {
      result.buildDiagnostics = "the build command " + built->describeFailure(std::chrono::seconds(config.buildTimeoutSeconds));
    }
    return result;
  }
  result.built = true;
  result.buildOutcome = static_cast<uint16_t>(Outcome::Ok);
  result.textSizeBytes = elfTextSize(program);
  if (buildOnly) return result;

  std::vector<uint32_t> sets = request.inputSets;
  if (sets.empty()) {
    for (uint32_t i = 0; i < config.inputSets.size(); ++i) sets.push_back(i);
  }
  const uint32_t repetitions = std::max<uint32_t>(request.repetitions, 1);
  // A limit the request gives only ever shortens the configuration's.
  const uint32_t runTimeout = request.runTimeoutSeconds == 0
                                  ? config.runTimeoutSeconds
                                  : std::min(request.runTimeoutSeconds, config.runTimeoutSeconds);
  for (uint32_t index : sets) {
    const RunInputSet& set = config.inputSets[index];
    std::vector<std::string> argv = config.runCommand;
    argv.insert(argv.end(), set.arguments.begin(), set.arguments.end());
    for (uint32_t attempt = 0; attempt < request.warmups + repetitions; ++attempt) {
      // Every run starts from the set's inputs, with no outputs of a previous one.
      for (const RunFile& file : set.files) {
        if (auto written = writeFile(dir->file(file.name), file.content); !written.ok()) return written.takeError();
      }
      for (const std::string& name : config.outputFiles) ::unlink(dir->file(name).c_str());
      ProgramRun run;
      run.inputSet = index;
      std::string before;
      for (const RunCommand& command : config.preRunCommands) {
        auto pre = runOnce(*dir, command.argv, "", command.timeoutSeconds, false);
        if (!pre.ok()) return pre.takeError();
        if (classify(*pre) != Outcome::Ok || pre->exitCode != 0) {
          before = "its pre-run command " + describe(*pre, command.timeoutSeconds) + "; ";
        }
      }
      auto ran = runOnce(*dir, argv, set.stdinData, runTimeout, true, sanitize);
      if (!ran.ok()) return ran.takeError();
      for (const RunCommand& command : config.postRunCommands) {
        auto post = runOnce(*dir, command.argv, "", command.timeoutSeconds, false);
        if (!post.ok()) return post.takeError();
      }
      if (attempt < request.warmups) continue;
      run.outcome = static_cast<uint16_t>(classify(*ran));
      run.exitCode = ran->exitCode;
      run.signal = ran->signal;
      run.wallSeconds = ran->wallSeconds;
      run.hasInstructions = ran->hasInstructions;
      run.instructions = ran->instructions;
      if (!ran->hasInstructions && result.instructionsUnavailable.empty()) {
        result.instructionsUnavailable = ran->instructionsUnavailable;
      }
      run.stdoutData = std::move(ran->out);
      run.stdoutTruncated = ran->outTruncated;
      run.stderrData = std::move(ran->err);
      run.stderrTruncated = ran->errTruncated;
      run.message = before + describe(*ran, runTimeout);
      run.timeoutSeconds = runTimeout;
      for (const std::string& name : config.outputFiles) {
        RunFile file{name, {}};
        if (readOutputFile(dir->file(name), file.content)) run.outputFiles.push_back(std::move(file));
      }
      result.runs.push_back(std::move(run));
    }
  }
  return result;
}

}  // namespace forkgym::passes
