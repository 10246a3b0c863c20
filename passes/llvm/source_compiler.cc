#include "passes/llvm/source_compiler.h"

#include <stdlib.h>

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/raw_ostream.h>

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

std::string resolvedPath(const std::string& path) {
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
      const std::string real = resolvedPath(std::string(line));
      if (!real.empty()) dirs.push_back(real);
    }
    if (newline == std::string_view::npos) break;
    list.remove_prefix(newline + 1);
  }
  err.erase(0, end + kEnd.size());
  return true;
}

// C string escapes as clang writes a line marker's file name
// (raw_ostream::write_escaped: \\, \", \t, \n, octal \ooo for the rest).
std::string unescaped(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out += text[i];
      continue;
    }
    const char next = text[++i];
    if (next >= '0' && next <= '7') {
      int value = 0;
      for (int digits = 0; digits < 3 && i < text.size() && text[i] >= '0' && text[i] <= '7'; ++digits, ++i) {
        value = value * 8 + (text[i] - '0');
      }
      --i;
      out += static_cast<char>(value);
    } else {
      out += next == 'n' ? '\n' : next == 't' ? '\t' : next;
    }
  }
  return out;
}

std::string escaped(std::string_view text) {
  std::string out;
  llvm::raw_string_ostream stream(out);
  stream.write_escaped(llvm::StringRef(text.data(), text.size()));
  return stream.str();
}

// The preprocessed text with each line marker (# <line> "<file>" <flags>)
// naming its file absolutely: the file names are where the compile step's
// diagnostics and __builtin_FILE() come from, and they are hashed.
std::string absoluteLineMarkers(std::string_view text, const BenchmarkDirectory& directory) {
  if (!directory.entered()) return std::string(text);
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  while (!text.empty()) {
    const size_t newline = text.find('\n');
    const std::string_view line = text.substr(0, newline == std::string_view::npos ? text.size() : newline + 1);
    text.remove_prefix(line.size());
    const size_t open = line.find('"');
    const bool marker = line.size() > 2 && line.starts_with("# ") && std::isdigit(static_cast<unsigned char>(line[2])) &&
                        open != std::string_view::npos;
    size_t close = open + 1;
    while (marker && close < line.size() && line[close] != '"') close += line[close] == '\\' ? 2 : 1;
    if (!marker || close >= line.size()) {
      out += line;
      continue;
    }
    const std::string name = unescaped(line.substr(open + 1, close - open - 1));
    // Files under the working directory are the ones clang names by what it
    // was given, "./..."; "<built-in>" and "<command line>" are no files.
    const bool relative = name.starts_with(BenchmarkDirectory::kLocalPrefix);
    out += line.substr(0, open + 1);
    out += relative ? escaped(directory.absolute(name)) : std::string(line.substr(open + 1, close - open - 1));
    out += line.substr(close);
  }
  return out;
}

// Diagnostics with each location under the working directory ("./x.h:2:3:
// error", "In file included from ./x.c:1:") naming its file absolutely;
// quoted source lines are left alone.
std::string absoluteLocations(std::string_view diagnostics, const BenchmarkDirectory& directory) {
  if (!directory.entered()) return std::string(diagnostics);
  std::string out;
  while (!diagnostics.empty()) {
    const size_t newline = diagnostics.find('\n');
    std::string_view line =
        diagnostics.substr(0, newline == std::string_view::npos ? diagnostics.size() : newline + 1);
    diagnostics.remove_prefix(line.size());
    const std::string location = diagnosticLocation(line);
    const size_t at = location.empty() ? std::string_view::npos : line.find(location);
    if (at == std::string_view::npos || !location.starts_with(BenchmarkDirectory::kLocalPrefix)) {
      out += line;
      continue;
    }
    out += line.substr(0, at);
    out += directory.absolute(location);
    out += line.substr(at + location.size());
  }
  return out;
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

std::string SourceCompiler::realPath(const std::string& path) const {
  return resolvedPath(options_.directory.local(path));
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
  // __FILE__ of a file under the working directory as its absolute path.
  const BenchmarkDirectory& directory = options_.directory;
  if (directory.entered()) {
    argv.push_back("-fmacro-prefix-map=" + std::string(BenchmarkDirectory::kLocalPrefix) + "=" +
                   directory.absolutePrefix());
  }
  // -v: clang's own list of its system include directories, with no run of its own.
  argv.insert(argv.end(), {"-v", "-x", source.cxx ? "c++" : "c", directory.local(path), "-o", "-"});
  auto run = runTool(argv, "",
                     {.addressSpaceBytes = options_.addressSpaceBytes, .captureDescriptor3 = true,
                      .environment = kEnvironment});
  if (!run.ok()) return run.takeError();
  std::vector<std::string> system;
  takeSearchList(run->err, system);
  run->err = absoluteLocations(run->err, directory);

  // Refused before anything else, whatever clang thought of it.
  const auto refuse = [&](const std::string& file) {
    std::string roots;
    for (const auto& root : options_.roots) roots += (roots.empty() ? "" : ", ") + root;
    return benchmarkError("refused to compile " + path + ": it reads " + file +
                          ", which is outside the benchmark roots (" + roots +
                          ") and the system include directories; this server compiles only files under its "
                          "--benchmark-root directories");
  };
  std::vector<std::string> files = parseDependencies(run->descriptor3);
  for (std::string& file : files) file = directory.absolute(file);
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
  source.text = absoluteLineMarkers(run->out, directory);
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
