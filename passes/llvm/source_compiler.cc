#include "passes/llvm/source_compiler.h"

#include <stdlib.h>

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "passes/llvm/bitcode.h"
#include "passes/llvm/llvm_tools.h"
#include "passes/tool_process.h"

namespace forkgym::passes {
namespace {

const std::string kClang = llvmToolPath("clang");

// -O0 without optnone, as CompilerGym built its datasets: the IR is
// unoptimised but every pass may still work on it. -w because warnings in
// benchmark sources are not ours to report. No crash reproducers: clang
// would write the preprocessed source to /tmp (the loader may not write
// files anyway, RLIMIT_FSIZE 0).
const std::vector<std::string> kCompileFlags = {"-O0", "-Xclang", "-disable-O0-optnone", "-emit-llvm", "-c",
                                                "-w",  "-fno-crash-diagnostics"};
const std::vector<std::string> kPreprocessFlags = {"-E", "-w", "-fno-crash-diagnostics", "-MD", "-MF", "/dev/fd/3",
                                                   "-MT", "forkgym"};
// __DATE__, __TIME__ and __TIMESTAMP__ from a fixed clock: same sources, same module.
const std::vector<std::string> kEnvironment = {"SOURCE_DATE_EPOCH=0"};

Error benchmarkError(std::string message) { return makeError(Outcome::BenchmarkError, std::move(message)); }

std::string realPath(const std::string& path) {
  char* resolved = ::realpath(path.c_str(), nullptr);
  if (resolved == nullptr) return {};
  std::string real = resolved;
  std::free(resolved);
  return real;
}

bool inside(const std::string& real, const std::string& directory) {
  return real == directory ||
         (real.starts_with(directory) && (directory.ends_with('/') || real[directory.size()] == '/'));
}

bool insideAny(const std::string& real, const std::vector<std::string>& directories) {
  return std::any_of(directories.begin(), directories.end(), [&](const std::string& d) { return inside(real, d); });
}

// The files of a make-style dependency rule ("forkgym: a.c /x/b.h \\\n ..."),
// undoing clang's escapes: "\ " for a space, "\#" for '#', "$$" for '$'.
std::vector<std::string> parseDependencies(std::string_view rule) {
  std::vector<std::string> files;
  const size_t colon = rule.find(": ");
  if (colon == std::string_view::npos) return files;
  std::string current;
  for (size_t i = colon + 2; i < rule.size(); ++i) {
    const char c = rule[i];
    if (c == '\\' && i + 1 < rule.size()) {
      const char next = rule[i + 1];
      if (next == '\n') {
        ++i;
        continue;
      }
      if (next == ' ' || next == '#' || next == '\\') {
        current += next;
        ++i;
        continue;
      }
    }
    if (c == '$' && i + 1 < rule.size() && rule[i + 1] == '$') {
      current += '$';
      ++i;
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!current.empty()) files.push_back(std::move(current));
      current.clear();
      continue;
    }
    current += c;
  }
  if (!current.empty()) files.push_back(std::move(current));
  return files;
}

// "path:12:3: error: ..." -> "path"; "In file included from path:3:" -> "path".
std::string diagnosticLocation(std::string_view line) {
  constexpr std::string_view kIncluded = "In file included from ";
  if (line.starts_with(kIncluded)) line.remove_prefix(kIncluded.size());
  for (size_t colon = line.find(':'); colon != std::string_view::npos; colon = line.find(':', colon + 1)) {
    size_t digits = colon + 1;
    while (digits < line.size() && std::isdigit(static_cast<unsigned char>(line[digits]))) ++digits;
    if (digits > colon + 1 && digits < line.size() && line[digits] == ':') return std::string(line.substr(0, colon));
  }
  return {};
}

// clang -v prints its include search list before any diagnostic:
//   ... version, target, the cc1 command line ...
//   #include <...> search starts here:
//    /usr/lib/llvm-19/lib/clang/19/include
//    /usr/include
//   End of search list.
//   <diagnostics>
// Takes the system include directories (realpath'd) out of `err` and
// leaves only the diagnostics. False if the list is missing (clang failed
// before preprocessing): `err` is then left as it is.
bool takeSearchList(std::string& err, std::vector<std::string>& dirs) {
  constexpr std::string_view kStart = "#include <...> search starts here:\n";
  constexpr std::string_view kEnd = "End of search list.\n";
  const size_t start = err.find(kStart);
  const size_t end = err.find(kEnd);
  if (start == std::string::npos || end == std::string::npos || end < start) return false;
  std::string_view list = std::string_view(err).substr(start + kStart.size(), end - start - kStart.size());
  while (!list.empty()) {
    const size_t newline = list.find('\n');
    std::string_view line = list.substr(0, newline);
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    line = line.substr(0, line.find(" ("));  // "/path (framework directory)" on some platforms
    if (!line.empty()) {
      const std::string real = realPath(std::string(line));
      if (!real.empty()) dirs.push_back(real);
    }
    if (newline == std::string_view::npos) break;
    list.remove_prefix(newline + 1);
  }
  err.erase(0, end + kEnd.size());
  return true;
}

}  // namespace

bool isSourcePath(std::string_view path) {
  for (std::string_view extension : {".c", ".cc", ".cpp", ".cxx"}) {
    if (path.ends_with(extension)) return true;
  }
  return false;
}

std::string SourceCompiler::optionsForHash() {
  std::string text = kClang;
  for (const auto& flags : {kPreprocessFlags, kCompileFlags, kEnvironment}) {
    for (const auto& flag : flags) text += " " + flag;
  }
  return text;
}

std::string SourceCompiler::refusal(const std::string& file, const std::vector<std::string>& systemDirs) const {
  if (options_.roots.empty()) return {};
  const std::string real = realPath(file);
  if (real.empty()) return file + " (which no longer exists)";
  if (insideAny(real, options_.roots) || insideAny(real, systemDirs)) return {};
  return real == file ? file : file + " (resolved to " + real + ")";
}

Result<PreprocessedSource> SourceCompiler::preprocess(const std::string& path) {
  PreprocessedSource source;
  source.path = path;
  source.cxx = !path.ends_with(".c");
  std::vector<std::string> argv = {kClang};
  argv.insert(argv.end(), kPreprocessFlags.begin(), kPreprocessFlags.end());
  // Quoted source lines in diagnostics could show a file from outside the roots.
  if (!options_.roots.empty()) argv.push_back("-fno-caret-diagnostics");
  // -v: clang's own list of its system include directories, with no run of its own.
  argv.insert(argv.end(), {"-v", "-x", source.cxx ? "c++" : "c", path, "-o", "-"});
  auto run = runTool(argv, "",
                     {.addressSpaceBytes = options_.addressSpaceBytes, .captureDescriptor3 = true,
                      .environment = kEnvironment});
  if (!run.ok()) return run.takeError();
  std::vector<std::string> system;
  takeSearchList(run->err, system);

  // Refused before anything else, whatever clang thought of it.
  const auto refuse = [&](const std::string& file) {
    std::string roots;
    for (const auto& root : options_.roots) roots += (roots.empty() ? "" : ", ") + root;
    return benchmarkError("refused to compile " + path + ": it reads " + file +
                          ", which is outside the benchmark roots (" + roots +
                          ") and the system include directories; this server compiles only files under its "
                          "--benchmark-root directories");
  };
  const std::vector<std::string> files = parseDependencies(run->descriptor3);
  for (const std::string& file : files) {
    if (auto refused = refusal(file, system); !refused.empty()) return refuse(refused);
  }
  if (!run->succeeded()) {
    // A fatal error stops clang before it lists what it read: judge the
    // diagnostics by where they point.
    const std::string diagnostics = run->diagnostics();
    size_t start = 0;
    while (start < diagnostics.size()) {
      const size_t end = std::min(diagnostics.find('\n', start), diagnostics.size());
      const std::string location = diagnosticLocation(std::string_view(diagnostics).substr(start, end - start));
      if (!location.empty()) {
        if (auto refused = refusal(location, system); !refused.empty()) return refuse(refused);
      }
      start = end + 1;
    }
    return benchmarkError("clang " + run->describeFailure(kToolTimeLimit) + " preprocessing " + path + ":\n" +
                          diagnostics);
  }
  if (files.empty()) return benchmarkError("clang listed no files read for " + path + "; cannot tell what it compiled");
  for (const std::string& file : files) {
    const std::string real = realPath(file);
    if (!real.empty() && insideAny(real, system)) continue;  // changes with the compiler, not the benchmark
    if (!recorder_.record(file)) {
      return benchmarkError(file + ", read while preprocessing " + path + ", disappeared meanwhile; try again");
    }
  }
  source.text = std::move(run->out);
  return source;
}

std::vector<std::string> SourceCompiler::compileArgs(const std::vector<std::string>& extraArgs) const {
  std::vector<std::string> argv = {kClang};
  argv.insert(argv.end(), kCompileFlags.begin(), kCompileFlags.end());
  if (!options_.roots.empty()) argv.push_back("-fno-caret-diagnostics");
  argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
  argv.insert(argv.end(), {"-", "-o", "-"});
  return argv;
}

Result<ToolProcess> SourceCompiler::startCompiler(bool cxx) {
  return ToolProcess::start(compileArgs({"-x", cxx ? "c++-cpp-output" : "cpp-output"}),
                            {.addressSpaceBytes = options_.addressSpaceBytes, .environment = kEnvironment});
}

Result<std::unique_ptr<llvm::Module>> SourceCompiler::compile(const PreprocessedSource& source,
                                                              llvm::LLVMContext& context, ToolProcess* started) {
  if (started == nullptr) {
    auto fresh = startCompiler(source.cxx);
    if (!fresh.ok()) return fresh.takeError();
    return finishCompile(*fresh, source.text, source.path, context);
  }
  return finishCompile(*started, source.text, source.path, context);
}

Result<std::unique_ptr<llvm::Module>> SourceCompiler::compileText(std::string_view text,
                                                                  const std::vector<std::string>& extraArgs,
                                                                  std::string_view what, llvm::LLVMContext& context) {
  auto tool = ToolProcess::start(compileArgs(extraArgs),
                                 {.addressSpaceBytes = options_.addressSpaceBytes, .environment = kEnvironment});
  if (!tool.ok()) return tool.takeError();
  return finishCompile(*tool, text, what, context);
}

Result<std::unique_ptr<llvm::Module>> SourceCompiler::finishCompile(ToolProcess& tool, std::string_view text,
                                                                    std::string_view what, llvm::LLVMContext& context) {
  auto run = tool.finish(text);
  if (!run.ok()) return run.takeError();
  if (!run->succeeded()) {
    return benchmarkError("clang " + run->describeFailure(kToolTimeLimit) + " compiling " + std::string(what) +
                          ":\n" + run->diagnostics());
  }
  return parseBitcode(run->out, context, "clang's output for " + std::string(what));
}

}  // namespace forkgym::passes
