#include "passes/llvm/benchmark_loader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <llvm/AsmParser/Parser.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Linker/Linker.h>
#include <llvm/Support/SourceMgr.h>
#include <llvm/Support/raw_ostream.h>

#include <stdlib.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <optional>

#include "base/unique_fd.h"
#include "passes/benchmark_uri.h"
#include "passes/content_hash.h"
#include "passes/benchmark_directory.h"
#include "passes/benchmark_inputs.h"
#include "passes/llvm/bitcode.h"
#include "passes/llvm/diagnostics.h"
#include "passes/llvm/llvm_tools.h"
#include "passes/llvm/module_sanitizer.h"
#include "passes/llvm/source_compiler.h"
#include "passes/module_cache.h"
#include "passes/tool_process.h"

namespace forkgym::passes {
namespace {

constexpr std::string_view kCsmith = "csmith-v0";
constexpr std::string_view kLlvmStress = "llvm-stress-v0";
constexpr std::string_view kSupported =
    "forkgym loads file:///abs/path (.bc, .ll, .c, .cc, .cpp, .cxx, or a directory of C/C++ "
    "sources), benchmark://forkgym-v0/<name>, benchmark://user-v0/<digest> (made by make_benchmark()), "
    "benchmark://<dataset>/<path> (an installed dataset), generator://csmith-v0/<seed> and "
    "generator://llvm-stress-v0/<seed>";
constexpr std::string_view kSourceSuffixes[] = {".c", ".cc", ".cpp", ".cxx"};
constexpr std::string_view kIrSuffixes[] = {".bc", ".ll"};

const std::string kLlvmStressTool = llvmToolPath("llvm-stress");
const std::string kCsmithTool = "csmith";
const std::string kCsmithIncludes = "/usr/include/csmith";

// csmith's defaults can produce programs of hundreds of thousands of
// instructions that take minutes to optimise. These bounds keep a random
// program at a few thousand instructions, like CompilerGym's csmith-v0.
const std::vector<std::string> kCsmithFlags = {"--max-funcs", "5", "--max-block-depth", "4",
                                               "--max-expr-complexity", "6"};

Error benchmarkError(std::string message) {
  return makeError(Outcome::BenchmarkError, std::move(message));
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

Error notRegular(const std::string& path, mode_t mode) {
  return benchmarkError(notRegularFileMessage(path, mode));
}

// Reads a benchmark file through one descriptor: opened without blocking
// (a FIFO swapped in after the zygote's check cannot stall us), checked to
// be a regular file after opening (so what we read is what we checked).
Result<std::string> readWholeFile(const std::string& path, const BenchmarkDirectory& directory,
                                  InputRecorder& recorder) {
  const int fd = ::open(directory.local(path).c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return benchmarkError("cannot read " + path + ": " + std::strerror(errno));
  UniqueFd file(fd);
  struct stat info {};
  if (::fstat(fd, &info) != 0) return benchmarkError("cannot read " + path + ": " + std::strerror(errno));
  if (!S_ISREG(info.st_mode)) return notRegular(path, info.st_mode);
  recorder.record(path, info);
  if (info.st_size == 0) return benchmarkError(path + " is empty; give a non-empty .bc, .ll or source file");
  std::string bytes(static_cast<size_t>(info.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return benchmarkError("cannot read " + path + ": " + std::strerror(errno));
    if (n == 0) break;  // shrank while we read: what we have is the file now
    done += static_cast<size_t>(n);
  }
  bytes.resize(done);
  return bytes;
}

// One load, in two phases: gather() reads everything the benchmark is made
// of (file bytes, preprocessed sources, a generator's output), recording the
// files and hashing the content; build() makes the module from exactly what
// was gathered. Between them, a content hash equal to the one the zygote
// already has ends the load without compiling.
class Load {
 public:
  explicit Load(const LoadRequest& request)
      : request_(request),
        directory_(loaderDirectory(request)),
        recorder_(directory_),
        compiler_({request.roots, request.toolMemoryBytes, directory_}, recorder_) {}

  Status gather(std::string_view uri);
  Result<std::unique_ptr<llvm::Module>> build(llvm::LLVMContext& context);
  std::string contentHash() { return hash_.hex(); }
  BenchmarkInputs inputs() { return recorder_.take(); }

 private:
  enum class Kind { Bitcode, Assembly, Sources, CsmithProgram, DatasetSource };
  Status gatherFile(const std::string& path);
  Status gatherDatasetSource(const std::string& path);
  Result<std::unique_ptr<llvm::Module>> buildDatasetSource(llvm::LLVMContext& context);
  Status gatherDirectory(const std::string& directory);
  Status gatherCsmith(uint32_t seed);
  Status gatherLlvmStress(uint32_t seed);
  ToolOptions toolOptions(ToolOptions options = {}) const {
    options.addressSpaceBytes = request_.toolMemoryBytes;
    return options;
  }

  const LoadRequest& request_;
  // Every path below is absolute; directory_.local() is what is opened.
  BenchmarkDirectory directory_;
  InputRecorder recorder_;
  SourceCompiler compiler_;
  ContentHash hash_;
  Kind kind_ = Kind::Bitcode;
  std::string bytes_;  // bitcode, IR text, or a csmith program
  std::string compiledModule_;  // a dataset source's, when it was compiled in gather()
  CachedModule cacheEntry_;     // what the module cache records of it (module_cache.h)
  std::string what_;   // names it in messages
  std::vector<PreprocessedSource> sources_;
  std::optional<ToolProcess> earlyCompiler_;  // for sources_[0], started during gather()
};

Status Load::gather(std::string_view uri) {
  if (uri.starts_with(kFileScheme) && !request_.recipe.empty()) {
    return gatherDatasetSource(std::string(uri.substr(kFileScheme.size())));
  }
  if (uri.starts_with(kFileScheme)) return gatherFile(std::string(uri.substr(kFileScheme.size())));
  // canonicalBenchmarkUri admits nothing else.
  const std::string_view rest = uri.substr(kGeneratorScheme.size());
  const size_t slash = rest.find('/');
  const std::string_view generator = rest.substr(0, slash);
  auto seed = parseSeed(rest.substr(slash + 1), uri);
  if (!seed.ok()) return seed.takeError();
  if (generator == kCsmith) return gatherCsmith(*seed);
  return gatherLlvmStress(*seed);
}

Status Load::gatherFile(const std::string& path) {
  struct stat info {};
  if (::stat(directory_.local(path).c_str(), &info) != 0) {
    return benchmarkError("cannot load " + path + ": " + std::strerror(errno) +
                          "; check the path (it must be absolute and readable)");
  }
  if (S_ISDIR(info.st_mode)) return gatherDirectory(path);
  if (!S_ISREG(info.st_mode)) return notRegular(path, info.st_mode);

  const std::string extension = std::filesystem::path(path).extension().string();
  what_ = path;
  if (isSourcePath(path)) {
    kind_ = Kind::Sources;
    // Unless this load may end after hashing, the compiler is started now:
    // its start-up runs alongside the preprocessing.
    if (request_.expectedHash.empty()) {
      auto started = compiler_.startCompiler(!path.ends_with(".c"));
      if (started.ok()) earlyCompiler_ = std::move(*started);
    }
    auto source = compiler_.preprocess(path);
    if (!source.ok()) return source.takeError();
    hash_.add("compile options", SourceCompiler::optionsForHash());
    hash_.add(source->cxx ? "c++ source" : "c source", source->text);
    sources_.push_back(std::move(*source));
    return okStatus();
  }
  if (extension != ".bc" && extension != ".ll") {
    return benchmarkError("cannot load " + path + ": unknown file type '" + extension + "'; " +
                          std::string(kSupported));
  }
  kind_ = extension == ".bc" ? Kind::Bitcode : Kind::Assembly;
  auto bytes = readWholeFile(path, directory_, recorder_);
  if (!bytes.ok()) return bytes.takeError();
  bytes_ = std::move(*bytes);
  hash_.add(extension == ".bc" ? "bitcode" : "llvm assembly", bytes_);
  return okStatus();
}

Status Load::gatherDirectory(const std::string& directory) {
  kind_ = Kind::Sources;
  what_ = directory;
  // The directory itself: a source added, removed or renamed changes it.
  if (!recorder_.record(directory)) return benchmarkError("cannot list " + directory + ": " + std::strerror(errno));
  std::vector<std::string> sources;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(directory_.local(directory), error)) {
    const std::string path = directory_.absolute(entry.path().string());
    if (!isSourcePath(path)) continue;
    const std::string local = directory_.local(path);
    struct stat link {}, target {};
    if (::lstat(local.c_str(), &link) != 0 || ::stat(local.c_str(), &target) != 0) {
      return benchmarkError("cannot load " + path + ": " + std::strerror(errno));
    }
    if (!S_ISREG(target.st_mode)) return notRegular(path, target.st_mode);
    if (S_ISLNK(link.st_mode) && !request_.roots.empty()) {
      // A link may point anywhere; with benchmark roots only inside them.
      const std::string real = directory_.realPath(path);
      const bool insideRoots = std::any_of(request_.roots.begin(), request_.roots.end(), [&](const std::string& root) {
        return real.starts_with(root) && (root.ends_with('/') || real.size() == root.size() || real[root.size()] == '/');
      });
      if (!insideRoots) {
        return benchmarkError("refused to compile " + path + ": it is a symbolic link to " +
                              (real.empty() ? "a missing file" : real) +
                              ", outside the benchmark roots; this server compiles only files under its "
                              "--benchmark-root directories");
      }
    }
    sources.push_back(path);
  }
  if (error) return benchmarkError("cannot list " + directory + ": " + error.message());
  if (sources.empty()) {
    return benchmarkError(directory + " contains no .c, .cc, .cpp or .cxx files to compile");
  }
  // Sorted so the link order, and so the module, does not depend on the
  // order the file system lists them in.
  std::sort(sources.begin(), sources.end());
  hash_.add("compile options", SourceCompiler::optionsForHash());
  for (const std::string& path : sources) {
    auto source = compiler_.preprocess(path);
    if (!source.ok()) return source.takeError();
    hash_.add("source name", std::filesystem::path(path).filename().string());
    hash_.add(source->cxx ? "c++ source" : "c source", source->text);
    sources_.push_back(std::move(*source));
  }
  return okStatus();
}

// A source dataset's file: its text, transformed as the dataset says, is
// what is hashed and compiled (no preprocessing step: the dataset is the
// server's installed data, and its headers come with the compiler or the
// dataset). A line marker names it as the dataset does, so diagnostics and
// __FILE__ read the same wherever the dataset is installed.
Status Load::gatherDatasetSource(const std::string& path) {
  kind_ = Kind::DatasetSource;
  what_ = path;
  const SourceRecipe& recipe = request_.recipe;
  auto bytes = readWholeFile(path, directory_, recorder_);
  if (!bytes.ok()) return bytes.takeError();
  const std::string sourceBytes = *bytes;
  std::string text = std::move(*bytes);
  if (!recipe.transform.empty()) {
    const SourceTransform* transform = findSourceTransform(recipe.transform);
    if (transform == nullptr) return benchmarkError("unknown source transform '" + recipe.transform + "'");
    text = transform->apply(text);
  }
  std::string name;
  llvm::raw_string_ostream escaped(name);
  escaped.write_escaped(recipe.name);
  bytes_ = "# 1 \"" + escaped.str() + "\"\n" + text;
  hash_.add("compile options", SourceCompiler::datasetOptionsForHash(recipe));
  hash_.add("dataset source", bytes_);

  // The headers are part of the program: a user's dataset has its own, and
  // edits them. They are known from the module cached beside the source
  // (its key names them), or else from compiling now, in this phase: the
  // content hash must cover them before build() could be skipped.
  std::vector<std::string> headerNames = request_.cachedModuleHeaders;
  if (request_.cachedModule.empty()) {
    auto compiled = compiler_.compileDatasetSource(bytes_, recipe, what_);
    if (!compiled.ok()) return compiled.takeError();
    compiledModule_ = std::move(compiled->bitcode);
    headerNames = std::move(compiled->headers);
  }
  std::vector<HeaderFile> headers;
  for (const std::string& name : headerNames) {
    auto header = readWholeFile(directory_.absolute(name), directory_, recorder_);
    if (!header.ok()) return header.takeError();
    hash_.add("dataset header", name);
    hash_.add("dataset header text", *header);
    headers.push_back({name, std::move(*header)});
  }
  cacheEntry_ = {.sourceDigest = sourceDigest(sourceBytes, headers), .headers = std::move(headerNames)};
  return okStatus();
}

// The module cached beside the source (module_cache.h) if the loader found
// it fresh; else clang's, which the writer then caches there.
Result<std::unique_ptr<llvm::Module>> Load::buildDatasetSource(llvm::LLVMContext& context) {
  if (!request_.cachedModule.empty()) {
    auto cached = parseBitcode(request_.cachedModule, context, what_ + std::string(kCachedModuleSuffix));
    if (cached.ok()) return cached;
    // Written by a build whose LLVM reads what ours cannot: compile it.
    auto compiled = compiler_.compileDatasetSource(bytes_, request_.recipe, what_);
    if (!compiled.ok()) return compiled.takeError();
    compiledModule_ = std::move(compiled->bitcode);
  }
  auto module = parseBitcode(compiledModule_, context, "clang's output for " + what_);
  if (module.ok() && request_.moduleCacheFd >= 0) {
    cacheEntry_.bytes = std::move(compiledModule_);
    sendCachedModule(request_.moduleCacheFd, cacheEntry_);
  }
  return module;
}

Status Load::gatherCsmith(uint32_t seed) {
  kind_ = Kind::CsmithProgram;
  what_ = "csmith program " + std::to_string(seed);
  // A missing generator is this benchmark's error, not the server's: the
  // zygote and every other benchmark are fine, and the fix is an install.
  if (findProgram(kCsmithTool).empty() || ::access(kCsmithIncludes.c_str(), R_OK) != 0) {
    return benchmarkError("generator://csmith-v0 needs csmith and its headers (" + kCsmithIncludes +
                          "), which are not installed where the server runs (no 'csmith' on its PATH, or no "
                          "headers): install them (Debian: apt-get install csmith libcsmith-dev)");
  }
  std::vector<std::string> argv = {kCsmithTool, "--seed", std::to_string(seed)};
  argv.insert(argv.end(), kCsmithFlags.begin(), kCsmithFlags.end());
  auto program = runTool(argv, "", toolOptions({.workingDirectory = kNoWritableDirectory}));
  if (!program.ok()) return program.takeError();
  if (!program->succeeded()) {
    return benchmarkError("csmith " + program->describeFailure(kToolTimeLimit) + " for seed " +
                          std::to_string(seed) + ":\n" + program->diagnostics());
  }
  bytes_ = std::move(program->out);
  hash_.add("compile options", SourceCompiler::optionsForHash() + " -I " + kCsmithIncludes);
  hash_.add("csmith program", bytes_);
  return okStatus();
}

Status Load::gatherLlvmStress(uint32_t seed) {
  kind_ = Kind::Assembly;
  what_ = "llvm-stress output for seed " + std::to_string(seed);
  if (::access(kLlvmStressTool.c_str(), X_OK) != 0) {
    return benchmarkError("generator://llvm-stress-v0 needs llvm-stress (" + kLlvmStressTool +
                          "), which is not installed where the server runs: install it (Debian: apt-get install "
                          "llvm-19)");
  }
  auto run = runTool({kLlvmStressTool, "-seed", std::to_string(seed), "-size", "200", "-o", "-"}, "", toolOptions());
  if (!run.ok()) return run.takeError();
  if (!run->succeeded()) {
    return benchmarkError("llvm-stress " + run->describeFailure(kToolTimeLimit) + " for seed " +
                          std::to_string(seed) + ":\n" + run->diagnostics());
  }
  bytes_ = std::move(run->out);
  hash_.add("llvm assembly", bytes_);
  return okStatus();
}

Result<std::unique_ptr<llvm::Module>> Load::build(llvm::LLVMContext& context) {
  switch (kind_) {
    case Kind::Bitcode:
      return parseBitcode(bytes_, context, what_);
    case Kind::Assembly:
      return parseAssembly(bytes_, what_, context);
    case Kind::CsmithProgram:
      return compiler_.compileText(bytes_, {"-I", kCsmithIncludes, "-x", "c"}, what_, context);
    case Kind::DatasetSource:
      return buildDatasetSource(context);
    case Kind::Sources:
      break;
  }
  std::unique_ptr<llvm::Module> linked;
  for (const PreprocessedSource& source : sources_) {
    ToolProcess* started = earlyCompiler_ && &source == &sources_.front() ? &*earlyCompiler_ : nullptr;
    auto module = compiler_.compile(source, context, started);
    if (!module.ok()) return module.takeError();
    if (!linked) {
      linked = std::move(*module);
      continue;
    }
    if (llvm::Linker::linkModules(*linked, std::move(*module))) {
      return benchmarkError("linking " + source.path + " into the modules before it failed" +
                            " (duplicate or conflicting definitions?)");
    }
  }
  return linked;
}

}  // namespace

Result<BenchmarkLocation> resolveLlvmBenchmark(std::string_view uri, const ResolveContext& context) {
  const std::string text = normalizedUri(uri);
  if (text.empty()) {
    return makeError(Outcome::InvalidRequest, "the benchmark URI is empty; " + std::string(kSupported));
  }
  if (text.starts_with(kFileScheme)) return resolveFile(text, context);
  if (text.starts_with(kGeneratorScheme)) {
    const std::string_view rest = std::string_view(text).substr(kGeneratorScheme.size());
    const size_t slash = rest.find('/');
    const std::string_view generator = rest.substr(0, slash);
    if (generator != kCsmith && generator != kLlvmStress) {
      return makeError(Outcome::InvalidRequest,
                       "'" + text + "': unknown generator '" + std::string(generator) + "'; " + std::string(kSupported));
    }
    if (slash == std::string_view::npos) {
      return makeError(Outcome::InvalidRequest,
                       "'" + text + "': missing seed, e.g. generator://" + std::string(generator) + "/42");
    }
    auto seed = parseSeed(rest.substr(slash + 1), text);
    if (!seed.ok()) return seed.takeError();
    const std::string canonical = std::string(kGeneratorScheme) + std::string(generator) + "/" + std::to_string(*seed);
    return BenchmarkLocation{canonical, canonical, {}};
  }
  if (text.starts_with(kBenchmarkScheme)) {
    const std::string_view dataset = std::string_view(text).substr(kBenchmarkScheme.size());
    if (dataset.starts_with(std::string(kBundledDataset) + "/")) return resolveBundled(text, context, kSourceSuffixes);
    if (dataset.starts_with(std::string(kUserDataset) + "/")) return resolveUserBenchmark(text, context, kIrSuffixes);
    // An installed dataset: its bitcode as it is, or its source with the
    // dataset's recipe (compiled by the loader, the module cached beside it).
    auto file = resolveDatasetFile(text, context);
    if (!file.ok()) return file.takeError();
    return BenchmarkLocation{file->uri, std::string(kFileScheme) + file->path, file->recipe, file->runnable};
  }
  return makeError(Outcome::InvalidRequest, "'" + text + "': unknown URI scheme; " + std::string(kSupported));
}

Result<std::string> canonicalBenchmarkUri(std::string_view uri, std::span<const std::string> allowedRoots) {
  // No dataset directories: a loader's own URIs are files and generators
  // (the zygote resolves dataset benchmarks to files before it asks one).
  ResolveContext context;
  context.roots.assign(allowedRoots.begin(), allowedRoots.end());
  auto location = resolveLlvmBenchmark(uri, context);
  if (!location.ok()) return location.takeError();
  return location->source;
}

Result<LoadedBitcode> loadBenchmark(const LoadRequest& request) {
  auto canonical = canonicalBenchmarkUri(request.uri);
  if (!canonical.ok()) return canonical.takeError();

  llvm::LLVMContext context;
  DiagnosticLog diagnostics;
  diagnostics.installOn(context);
  const auto withDiagnostics = [&](Error error) {
    if (diagnostics.hasErrors()) error.message += "\n" + diagnostics.takeErrors();
    return error;
  };
  Load load(request);
  if (auto gathered = load.gather(*canonical); !gathered.ok()) return withDiagnostics(gathered.takeError());
  LoadedBitcode loaded;
  loaded.uri = *canonical;
  loaded.contentHash = load.contentHash();
  loaded.inputs = load.inputs();
  if (!request.expectedHash.empty() && loaded.contentHash == request.expectedHash) {
    loaded.unchanged = true;  // the zygote's module is this content's: nothing to build
    return loaded;
  }
  auto module = load.build(context);
  if (!module.ok()) return withDiagnostics(module.takeError());
  if (auto sanitized = sanitizeModule(**module); !sanitized.ok()) return sanitized.takeError();

  std::string problems;
  llvm::raw_string_ostream stream(problems);
  if (llvm::verifyModule(**module, &stream)) {
    return benchmarkError(*canonical + " is not a valid LLVM module:\n" + stream.str());
  }

  loaded.bitcode = writeBitcode(**module);
  // The one baseline that costs nothing; the others (a pipeline and a code
  // generation each: most of a large module's load) come when needed
  // (benchmark.h).
  loaded.costs.instructionCount[kInitial] = static_cast<int64_t>((*module)->getInstructionCount());
  return loaded;
}

}  // namespace forkgym::passes
