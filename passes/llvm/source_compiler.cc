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
#include "passes/preprocessor_report.h"
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
// CompilerGym's base command for its source datasets (datasets.md, §5):
// unoptimised IR without -O0's optnone and noinline, so every pass may work
// on it. No crash reproducers (clang would write them to /tmp).
const std::vector<std::string> kDatasetCompileFlags = {"-c", "-emit-llvm", "-O1", "-Xclang", "-disable-llvm-passes",
                                                       "-Xclang", "-disable-llvm-optzns", "-fno-crash-diagnostics"};
// __DATE__, __TIME__ and __TIMESTAMP__ from a fixed clock: same sources, same module.
const std::vector<std::string> kEnvironment = {"SOURCE_DATE_EPOCH=0"};

Error benchmarkError(std::string message) { return makeError(Outcome::BenchmarkError, std::move(message)); }

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

std::vector<std::string> SourceCompiler::datasetCompileArgs(const SourceRecipe& recipe) {
  std::vector<std::string> argv = {kClang};
  argv.insert(argv.end(), kDatasetCompileFlags.begin(), kDatasetCompileFlags.end());
  argv.insert(argv.end(), recipe.flags.begin(), recipe.flags.end());
  // After the dataset's flags, so the language is the dataset's (poj104's
  // flags say -xc++ too).
  const SourceLanguage* language = findSourceLanguage(recipe.language);
  argv.insert(argv.end(), {"-x", std::string(language ? language->clangName : recipe.language), "-", "-o", "-"});
  // The headers it read (on fd 3), but for the system's (-MMD): those
  // change with the compiler, not the dataset.
  argv.insert(argv.end(), {"-MMD", "-MF", "/dev/fd/3", "-MT", "forkgym"});
  return argv;
}

std::string SourceCompiler::datasetOptionsForHash(const SourceRecipe& recipe) {
  std::string text;
  for (const auto& flag : datasetCompileArgs(recipe)) text += (text.empty() ? "" : " ") + flag;
  for (const auto& variable : kEnvironment) text += " " + variable;
  if (!recipe.transform.empty()) text += " transform=" + recipe.transform;
  return text;
}

Result<SourceCompiler::DatasetModule> SourceCompiler::compileDatasetSource(std::string_view text,
                                                                           const SourceRecipe& recipe,
                                                                           std::string_view what) {
  auto run = runTool(datasetCompileArgs(recipe), text,
                     {.addressSpaceBytes = options_.addressSpaceBytes, .captureDescriptor3 = true,
                      .environment = kEnvironment});
  if (!run.ok()) return run.takeError();
  if (!run->succeeded()) {
    return benchmarkError("clang " + run->describeFailure(kToolTimeLimit) + " compiling " + std::string(what) +
                          " (dataset " + recipe.dataset + "):\n" + run->diagnostics());
  }
  if (run->out.empty()) return benchmarkError("clang wrote no module for " + std::string(what));
  DatasetModule module{.bitcode = std::move(run->out)};
  for (std::string& file : parseDependencyRule(run->descriptor3)) {
    if (file != "-" && file != "<stdin>") module.headers.push_back(std::move(file));  // not the text it was given
  }
  return module;
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
  takeIncludeSearchList(run->err, system);
  run->err = absoluteLocations(run->err, directory);

  // Refused before anything else, whatever clang thought of it (a fatal
  // error stops clang before it lists what it read: then the diagnostics
  // are judged by where they point).
  const BenchmarkRoots roots(options_.roots, directory);
  std::vector<std::string> files = parseDependencyRule(run->descriptor3);
  for (std::string& file : files) file = directory.absolute(file);
  if (auto refused = roots.firstRefused(files, run->succeeded() ? "" : run->diagnostics(), system);
      !refused.empty()) {
    return benchmarkError("refused to compile " + path + ": it reads " + refused +
                          ", which is outside the benchmark roots (" + roots.list() +
                          ") and the system include directories; this server compiles only files under its "
                          "--benchmark-root directories");
  }
  if (!run->succeeded()) {
    return benchmarkError("clang " + run->describeFailure(kToolTimeLimit) + " preprocessing " + path + ":\n" +
                          run->diagnostics());
  }
  if (files.empty()) return benchmarkError("clang listed no files read for " + path + "; cannot tell what it compiled");
  for (const std::string& file : files) {
    const std::string real = roots.realPath(file);
    if (!real.empty() && insideAnyDirectory(real, system)) continue;  // changes with the compiler, not the benchmark
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
  // Text with no file of its own (a generator's program) must not depend on
  // where the server was started: clang looks for a quoted #include in the
  // working directory first, so it runs in one that holds nothing.
  auto tool = ToolProcess::start(compileArgs(extraArgs), {.workingDirectory = kNoWritableDirectory,
                                                          .addressSpaceBytes = options_.addressSpaceBytes,
                                                          .environment = kEnvironment});
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
