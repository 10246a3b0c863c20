#include "passes/benchmark_loader.h"

#include <sys/stat.h>

#include <llvm/AsmParser/Parser.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Linker/Linker.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/SourceMgr.h>
#include <llvm/Support/raw_ostream.h>

#include <stdlib.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <filesystem>

#include "passes/benchmark_costs.h"
#include "passes/bitcode.h"
#include "passes/diagnostics.h"
#include "passes/llvm_tools.h"
#include "passes/module_sanitizer.h"
#include "passes/tool_process.h"

namespace forkgym::passes {
namespace {

constexpr std::string_view kFileScheme = "file://";
constexpr std::string_view kGeneratorScheme = "generator://";
constexpr std::string_view kCsmith = "csmith-v0";
constexpr std::string_view kLlvmStress = "llvm-stress-v0";
constexpr std::string_view kSupported =
    "forkgym loads file:///abs/path (.bc, .ll, .c, .cc, .cpp, .cxx, or a directory of C/C++ "
    "sources), generator://csmith-v0/<seed> and generator://llvm-stress-v0/<seed>";

const std::string kClang = llvmToolPath("clang");
const std::string kLlvmStressTool = llvmToolPath("llvm-stress");
const std::string kCsmithTool = "csmith";
const std::string kCsmithIncludes = "/usr/include/csmith";

// -O0 without optnone, as CompilerGym built its datasets: the IR is
// unoptimised but every pass may still work on it. -w because warnings in
// benchmark sources are not ours to report.
const std::vector<std::string> kCompileFlags = {
    "-O0", "-Xclang", "-disable-O0-optnone", "-emit-llvm", "-c", "-w", "-o", "-"};

// csmith's defaults can produce programs of hundreds of thousands of
// instructions that take minutes to optimise. These bounds keep a random
// program at a few thousand instructions, like CompilerGym's csmith-v0.
const std::vector<std::string> kCsmithFlags = {"--max-funcs", "5", "--max-block-depth", "4",
                                               "--max-expr-complexity", "6"};

Error benchmarkError(std::string message) {
  return makeError(Outcome::BenchmarkError, std::move(message));
}

bool isSourceFile(const std::filesystem::path& path) {
  const std::string extension = path.extension().string();
  return extension == ".c" || extension == ".cc" || extension == ".cpp" || extension == ".cxx";
}

std::string_view trimmed(std::string_view text) {
  const auto isSpace = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!text.empty() && isSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && isSpace(text.back())) text.remove_suffix(1);
  return text;
}

// A seed is a decimal unsigned 32-bit number (llvm-stress's -seed is
// `unsigned`); the canonical form drops leading zeros.
Result<uint32_t> parseSeed(std::string_view text, std::string_view uri) {
  uint32_t seed = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seed);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    return makeError(Outcome::InvalidRequest,
                     "'" + std::string(uri) + "': the seed must be a decimal number from 0 to " +
                         std::to_string(UINT32_MAX) + ", e.g. generator://csmith-v0/42");
  }
  return seed;
}

// Compiles one C/C++ source (given by path, or as text on stdin with an
// explicit language) into a module.
Result<std::unique_ptr<llvm::Module>> compile(std::vector<std::string> inputArgs,
                                              std::string_view stdinText,
                                              std::string_view what, llvm::LLVMContext& context) {
  std::vector<std::string> argv = {kClang};
  argv.insert(argv.end(), kCompileFlags.begin(), kCompileFlags.end());
  argv.insert(argv.end(), inputArgs.begin(), inputArgs.end());
  auto run = runTool(argv, stdinText);
  if (!run.ok()) return run.takeError();
  if (!run->succeeded()) {
    return benchmarkError("clang " + run->describeFailure(kToolTimeLimit) + " compiling " +
                          std::string(what) + ":\n" + run->err);
  }
  return parseBitcode(run->out, context, "clang's output for " + std::string(what));
}

Result<std::unique_ptr<llvm::Module>> parseAssembly(std::string_view text, std::string_view what,
                                                    llvm::LLVMContext& context) {
  llvm::SMDiagnostic diagnostic;
  std::unique_ptr<llvm::Module> module = llvm::parseAssemblyString(
      llvm::StringRef(text.data(), text.size()), diagnostic, context);
  if (!module) {
    std::string message;
    llvm::raw_string_ostream stream(message);
    diagnostic.print(std::string(what).c_str(), stream, /*ShowColors=*/false);
    return benchmarkError(std::string(what) + " is not valid LLVM IR:\n" + stream.str());
  }
  return module;
}

Result<std::string> readWholeFile(const std::string& path) {
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!buffer) {
    return benchmarkError("cannot read " + path + ": " + buffer.getError().message());
  }
  if ((*buffer)->getBufferSize() == 0) {
    return benchmarkError(path + " is empty; give a non-empty .bc, .ll or source file");
  }
  return (*buffer)->getBuffer().str();
}

Result<std::unique_ptr<llvm::Module>> loadDirectory(const std::string& directory,
                                                    llvm::LLVMContext& context) {
  std::vector<std::filesystem::path> sources;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
    if (entry.is_regular_file() && isSourceFile(entry.path())) sources.push_back(entry.path());
  }
  if (error) return benchmarkError("cannot list " + directory + ": " + error.message());
  if (sources.empty()) {
    return benchmarkError(directory + " contains no .c, .cc, .cpp or .cxx files to compile");
  }
  // Sorted so the link order, and so the module, does not depend on the
  // order the file system lists them in.
  std::sort(sources.begin(), sources.end());

  std::unique_ptr<llvm::Module> linked;
  for (const std::filesystem::path& source : sources) {
    auto module = compile({source.string()}, "", source.string(), context);
    if (!module.ok()) return module.takeError();
    if (!linked) {
      linked = std::move(*module);
      continue;
    }
    if (llvm::Linker::linkModules(*linked, std::move(*module))) {
      return benchmarkError("linking " + source.string() + " into the modules before it failed" +
                            " (duplicate or conflicting definitions?)");
    }
  }
  return linked;
}

Result<std::unique_ptr<llvm::Module>> loadFile(const std::string& path,
                                               llvm::LLVMContext& context) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    return benchmarkError("cannot load " + path + ": " + std::strerror(errno) +
                          "; check the path (it must be absolute and readable)");
  }
  if (S_ISDIR(info.st_mode)) return loadDirectory(path, context);

  const std::string extension = std::filesystem::path(path).extension().string();
  if (isSourceFile(path)) return compile({path}, "", path, context);
  if (extension == ".bc") {
    auto bytes = readWholeFile(path);
    if (!bytes.ok()) return bytes.takeError();
    return parseBitcode(*bytes, context, path);
  }
  if (extension == ".ll") {
    auto text = readWholeFile(path);
    if (!text.ok()) return text.takeError();
    return parseAssembly(*text, path, context);
  }
  return benchmarkError("cannot load " + path + ": unknown file type '" + extension + "'; " +
                        std::string(kSupported));
}

Result<std::unique_ptr<llvm::Module>> generateCsmith(uint32_t seed, llvm::LLVMContext& context) {
  std::vector<std::string> argv = {kCsmithTool, "--seed", std::to_string(seed)};
  argv.insert(argv.end(), kCsmithFlags.begin(), kCsmithFlags.end());
  auto program = runTool(argv, "", {.workingDirectory = kNoWritableDirectory});
  if (!program.ok()) return program.takeError();
  if (!program->succeeded()) {
    return benchmarkError("csmith " + program->describeFailure(kToolTimeLimit) + " for seed " +
                          std::to_string(seed) + ":\n" + program->err);
  }
  return compile({"-I", kCsmithIncludes, "-x", "c", "-"}, program->out,
                 "csmith program " + std::to_string(seed), context);
}

Result<std::unique_ptr<llvm::Module>> generateLlvmStress(uint32_t seed,
                                                         llvm::LLVMContext& context) {
  auto run = runTool({kLlvmStressTool, "-seed", std::to_string(seed), "-size", "200", "-o", "-"},
                     "");
  if (!run.ok()) return run.takeError();
  if (!run->succeeded()) {
    return benchmarkError("llvm-stress " + run->describeFailure(kToolTimeLimit) + " for seed " +
                          std::to_string(seed) + ":\n" + run->err);
  }
  return parseAssembly(run->out, "llvm-stress output for seed " + std::to_string(seed), context);
}

Result<std::unique_ptr<llvm::Module>> loadModule(std::string_view uri, llvm::LLVMContext& context) {
  if (uri.starts_with(kFileScheme)) {
    return loadFile(std::string(uri.substr(kFileScheme.size())), context);
  }
  // canonicalBenchmarkUri admits nothing else.
  const std::string_view rest = uri.substr(kGeneratorScheme.size());
  const size_t slash = rest.find('/');
  const std::string_view generator = rest.substr(0, slash);
  auto seed = parseSeed(rest.substr(slash + 1), uri);
  if (!seed.ok()) return seed.takeError();
  if (generator == kCsmith) return generateCsmith(*seed, context);
  return generateLlvmStress(*seed, context);
}

// Which file paths a client may name: never one with a ".." component (a
// path that climbs out of where it seems to point), and, when the server was
// given --benchmark-root directories, only one that resolves inside them.
Status checkFilePath(const std::string& path, std::span<const std::string> allowedRoots) {
  for (const auto& component : std::filesystem::path(path)) {
    if (component == "..") {
      return makeError(Outcome::InvalidRequest,
                       "'" + path + "': benchmark paths may not contain a '..' component; " +
                           "give the absolute path without it");
    }
  }
  if (allowedRoots.empty()) return okStatus();
  auto rootList = [&] {
    std::string list;
    for (const auto& root : allowedRoots) list += (list.empty() ? "" : ", ") + root;
    return list;
  };
  char* resolved = ::realpath(path.c_str(), nullptr);
  if (resolved == nullptr) {
    return makeError(Outcome::BenchmarkError,
                     "cannot load " + path + ": " + std::strerror(errno) +
                         " (this server only serves files under " + rootList() + ")");
  }
  const std::string real = resolved;
  std::free(resolved);
  for (const auto& root : allowedRoots) {
    if (real == root || (real.starts_with(root) && (root.ends_with('/') || real[root.size()] == '/'))) {
      return okStatus();
    }
  }
  return makeError(Outcome::InvalidRequest,
                   "'" + path + "' (resolved to " + real + ") is outside the benchmark roots this " +
                       "server allows: " + rootList() +
                       "; move the file under one of them, or start forkgym-server with " +
                       "--benchmark-root <dir> for its directory");
}

}  // namespace

Result<std::string> canonicalBenchmarkUri(std::string_view uri,
                                          std::span<const std::string> allowedRoots) {
  const std::string_view text = trimmed(uri);
  if (text.empty()) {
    return makeError(Outcome::InvalidRequest, "the benchmark URI is empty; " + std::string(kSupported));
  }
  if (text.starts_with('/') || text.starts_with(kFileScheme)) {
    const std::string_view path = text.starts_with('/') ? text : text.substr(kFileScheme.size());
    if (!path.starts_with('/')) {
      return makeError(Outcome::InvalidRequest,
                       "'" + std::string(text) + "': a file URI needs an absolute path, " +
                           "e.g. file:///home/me/prog.c");
    }
    if (auto allowed = checkFilePath(std::string(path), allowedRoots); !allowed.ok()) {
      return allowed.takeError();
    }
    return std::string(kFileScheme) + std::string(path);
  }
  if (text.starts_with(kGeneratorScheme)) {
    const std::string_view rest = text.substr(kGeneratorScheme.size());
    const size_t slash = rest.find('/');
    const std::string_view generator = rest.substr(0, slash);
    if (generator != kCsmith && generator != kLlvmStress) {
      return makeError(Outcome::InvalidRequest,
                       "'" + std::string(text) + "': unknown generator '" +
                           std::string(generator) + "'; " + std::string(kSupported));
    }
    if (slash == std::string_view::npos) {
      return makeError(Outcome::InvalidRequest, "'" + std::string(text) +
                                                    "': missing seed, e.g. generator://" +
                                                    std::string(generator) + "/42");
    }
    auto seed = parseSeed(rest.substr(slash + 1), text);
    if (!seed.ok()) return seed.takeError();
    return std::string(kGeneratorScheme) + std::string(generator) + "/" + std::to_string(*seed);
  }
  // CompilerGym took a bare "cbench-v1/qsort" as benchmark://cbench-v1/qsort.
  const size_t schemeEnd = text.find("://");
  const std::string named = schemeEnd == std::string_view::npos
                                ? "benchmark://" + std::string(text)
                                : std::string(text);
  if (named.starts_with("benchmark://")) {
    return makeError(Outcome::InvalidRequest,
                     "'" + named + "': datasets are not installed (forkgym does not download " +
                         "CompilerGym's datasets); use a file:///abs/path or generator:// URI " +
                         "instead. " + std::string(kSupported));
  }
  return makeError(Outcome::InvalidRequest,
                   "'" + std::string(text) + "': unknown URI scheme; " + std::string(kSupported));
}

Result<LoadedBitcode> loadBenchmark(std::string_view uri) {
  auto canonical = canonicalBenchmarkUri(uri);
  if (!canonical.ok()) return canonical.takeError();

  llvm::LLVMContext context;
  DiagnosticLog diagnostics;
  diagnostics.installOn(context);
  auto module = loadModule(*canonical, context);
  if (!module.ok()) {
    Error error = module.takeError();
    if (diagnostics.hasErrors()) error.message += "\n" + diagnostics.takeErrors();
    return error;
  }
  if (auto sanitized = sanitizeModule(**module); !sanitized.ok()) return sanitized.takeError();

  std::string problems;
  llvm::raw_string_ostream stream(problems);
  if (llvm::verifyModule(**module, &stream)) {
    return benchmarkError(*canonical + " is not a valid LLVM module:\n" + stream.str());
  }

  LoadedBitcode loaded;
  loaded.uri = *canonical;
  loaded.bitcode = writeBitcode(**module);
  auto costs = computeBenchmarkCosts(loaded.bitcode);
  if (!costs.ok()) return costs.takeError();
  loaded.costs = *costs;
  return loaded;
}

}  // namespace forkgym::passes
