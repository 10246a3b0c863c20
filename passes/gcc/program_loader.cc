#include "passes/gcc/program_loader.h"

#include <charconv>

#include "passes/content_hash.h"
#include "passes/preprocessor_report.h"
#include "passes/tool_process.h"

namespace forkgym::passes::gcc {
namespace {

constexpr std::string_view kCsmith = "csmith-v0";
constexpr std::string_view kSupported =
    "gcc-v0 loads one C file: file:///abs/path.c, benchmark://forkgym-v0/<name>, benchmark://user-v0/<digest> "
    "(a C source from make_benchmark()), benchmark://<dataset>/<path> (an installed dataset of C sources) or "
    "generator://csmith-v0/<seed>";
constexpr std::string_view kSourceSuffixes[] = {".c"};
const std::string kCsmithIncludes = "/usr/include/csmith";
// As the LLVM backend bounds csmith: programs of a few thousand instructions.
const std::vector<std::string> kCsmithFlags = {"--max-funcs", "5", "--max-block-depth", "4",
                                               "--max-expr-complexity", "6"};
// -P: no line markers (see the header); -w: warnings are not ours to report.
const std::vector<std::string> kPreprocessFlags = {"-E", "-P", "-w", "-MD", "-MF", "/dev/fd/3", "-MT", "forkgym"};
// __DATE__ and __TIME__ from a fixed clock; gcc's own words.
const std::vector<std::string> kEnvironment = {"SOURCE_DATE_EPOCH=0", "LC_ALL=C"};

Error benchmarkError(std::string message) { return makeError(Outcome::BenchmarkError, std::move(message)); }

std::string joined(const std::vector<std::string>& words) {
  std::string text;
  for (const auto& word : words) text += (text.empty() ? "" : " ") + word;
  return text;
}

struct Preprocessed {
  std::string text;
};

// gcc -E -P on `path` (or, when empty, on `input` from stdin), with the
// roots checked against everything it read. Files under the loader's
// working directory (benchmark_directory.h) are given to gcc by relative
// names and named absolutely in whatever comes back (the dependency list,
// diagnostics, __FILE__), so the text and its hash are what an absolute
// path would give.
Result<Preprocessed> preprocess(const GccSpec& spec, const LoadRequest& request, const BenchmarkDirectory& directory,
                                const std::string& path, std::string_view input,
                                const std::vector<std::string>& extraArgs, InputRecorder& recorder) {
  const BenchmarkRoots roots(request.roots, directory);
  std::vector<std::string> argv = {spec.binary};
  argv.insert(argv.end(), kPreprocessFlags.begin(), kPreprocessFlags.end());
  if (!roots.empty()) argv.push_back("-fno-diagnostics-show-caret");
  if (directory.entered()) {
    argv.push_back("-fmacro-prefix-map=" + std::string(BenchmarkDirectory::kLocalPrefix) + "=" +
                   directory.absolutePrefix());
  }
  argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
  argv.insert(argv.end(), {"-v", "-x", "c", path.empty() ? "-" : directory.local(path), "-o", "-"});
  auto run = runTool(argv, input,
                     {.addressSpaceBytes = request.toolMemoryBytes, .captureDescriptor3 = true,
                      .environment = kEnvironment});
  if (!run.ok()) return run.takeError();
  std::vector<std::string> system;
  takeIncludeSearchList(run->err, system);
  run->err = absoluteLocations(run->err, directory);
  std::vector<std::string> files = parseDependencyRule(run->descriptor3);
  for (std::string& file : files) {
    if (file != "-" && file != "<stdin>") file = directory.absolute(file);
  }
  const std::string what = path.empty() ? "the generated program" : path;
  if (auto refused = roots.firstRefused(files, run->succeeded() ? "" : run->diagnostics(), system);
      !refused.empty()) {
    return benchmarkError("refused to compile " + what + ": it reads " + refused +
                          ", which is outside the benchmark roots (" + roots.list() +
                          ") and the system include directories; this server compiles only files under its "
                          "--benchmark-root directories");
  }
  if (!run->succeeded()) {
    return benchmarkError("gcc " + run->describeFailure(kToolTimeLimit) + " preprocessing " + what + ":\n" +
                          run->diagnostics());
  }
  for (const std::string& file : files) {
    if (file == "-" || file == "<stdin>") continue;
    const std::string real = roots.realPath(file);
    if (!real.empty() && insideAnyDirectory(real, system)) continue;  // changes with gcc, not the benchmark
    if (!recorder.record(file)) {
      return benchmarkError(file + ", read while preprocessing " + what + ", disappeared meanwhile; try again");
    }
  }
  return Preprocessed{std::move(run->out)};
}

Result<uint32_t> parseSeed(std::string_view text, std::string_view uri) {
  uint32_t seed = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seed);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    return makeError(Outcome::InvalidRequest, "'" + std::string(uri) + "': the seed must be a decimal number from 0 to " +
                                                  std::to_string(UINT32_MAX) + ", e.g. generator://csmith-v0/42");
  }
  return seed;
}

}  // namespace

Result<BenchmarkLocation> resolveGccBenchmark(std::string_view uri, const ResolveContext& context) {
  const std::string text = normalizedUri(uri);
  if (text.empty()) return makeError(Outcome::InvalidRequest, "the benchmark URI is empty; " + std::string(kSupported));
  if (text.starts_with(kFileScheme)) {
    if (!text.ends_with(".c")) {
      return makeError(Outcome::InvalidRequest, "'" + text + "' is not a .c file; " + std::string(kSupported));
    }
    return resolveFile(text, context);
  }
  if (text.starts_with(std::string(kBenchmarkScheme) + std::string(kBundledDataset) + "/")) {
    return resolveBundled(text, context, kSourceSuffixes);
  }
  if (text.starts_with(std::string(kBenchmarkScheme) + std::string(kUserDataset) + "/")) {
    return resolveUserBenchmark(text, context, kSourceSuffixes);
  }
  if (text.starts_with(kBenchmarkScheme)) {
    auto file = resolveDatasetFile(text, context);
    if (!file.ok()) return file.takeError();
    // gcc compiles C with its own options: the dataset's flags are clang's.
    if (file->spec.kind != DatasetKind::Source || file->spec.language != "c") {
      return makeError(Outcome::InvalidRequest,
                       "'" + text + "': gcc-v0 compiles C sources, and the dataset " + file->spec.name + " holds " +
                           (file->spec.kind == DatasetKind::Source ? file->spec.language + " sources"
                                                                   : std::string("LLVM bitcode")) +
                           "; use it with an LLVM environment (llvm-v0), or give gcc-v0 a dataset of C sources");
    }
    return BenchmarkLocation{file->uri, std::string(kFileScheme) + file->path, {}};
  }
  const std::string csmith = std::string(kGeneratorScheme) + std::string(kCsmith) + "/";
  if (text.starts_with(csmith)) {
    auto seed = parseSeed(std::string_view(text).substr(csmith.size()), text);
    if (!seed.ok()) return seed.takeError();
    const std::string canonical = csmith + std::to_string(*seed);
    return BenchmarkLocation{canonical, canonical, {}};
  }
  return makeError(Outcome::InvalidRequest, "'" + text + "': not a benchmark gcc-v0 knows; " + std::string(kSupported));
}

Result<LoadedBenchmark> loadGccProgram(const GccSpec& spec, const LoadRequest& request) {
  // Every path below is absolute; directory.local() is what is opened.
  const BenchmarkDirectory directory = loaderDirectory(request);
  InputRecorder recorder(directory);
  ContentHash hash;
  hash.add("compiler", spec.version);
  hash.add("preprocess options", joined(kPreprocessFlags) + " " + joined(kEnvironment));
  Result<Preprocessed> source = Preprocessed{};
  if (request.uri.starts_with(kFileScheme)) {
    const std::string path = request.uri.substr(kFileScheme.size());
    source = preprocess(spec, request, directory, path, "", {}, recorder);
  } else {
    const std::string prefix = std::string(kGeneratorScheme) + std::string(kCsmith) + "/";
    if (!request.uri.starts_with(prefix)) {
      return makeError(Outcome::InvalidRequest, "'" + request.uri + "': " + std::string(kSupported));
    }
    auto seed = parseSeed(std::string_view(request.uri).substr(prefix.size()), request.uri);
    if (!seed.ok()) return seed.takeError();
    std::vector<std::string> argv = {"csmith", "--seed", std::to_string(*seed)};
    argv.insert(argv.end(), kCsmithFlags.begin(), kCsmithFlags.end());
    auto program = runTool(argv, "",
                           {.workingDirectory = kNoWritableDirectory, .addressSpaceBytes = request.toolMemoryBytes});
    if (!program.ok()) return program.takeError();
    if (!program->succeeded()) {
      return benchmarkError("csmith " + program->describeFailure(kToolTimeLimit) + " for seed " +
                            std::to_string(*seed) + ":\n" + program->diagnostics());
    }
    // The csmith runtime headers are system headers here, like gcc's own.
    source = preprocess(spec, request, directory, "", program->out, {"-isystem", kCsmithIncludes}, recorder);
  }
  if (!source.ok()) return source.takeError();
  hash.add("c source", source->text);

  LoadedBenchmark loaded;
  loaded.uri = request.uri;
  loaded.contentHash = hash.hex();
  loaded.inputs = recorder.take();
  if (!request.expectedHash.empty() && loaded.contentHash == request.expectedHash) {
    loaded.unchanged = true;
    return loaded;
  }
  // Compiled once, to a pipe: a program gcc refuses is refused here.
  auto check = runTool({spec.binary, "-w", "-S", "-x", "c", "-", "-o", "-"}, source->text,
                       {.addressSpaceBytes = request.toolMemoryBytes, .environment = {"LC_ALL=C"}});
  if (!check.ok()) return check.takeError();
  if (!check->succeeded()) {
    return benchmarkError("gcc " + check->describeFailure(kToolTimeLimit) + " compiling " + request.uri +
                          " (preprocessed):\n" + check->diagnostics());
  }
  loaded.payload = std::move(source->text);
  return loaded;
}

}  // namespace forkgym::passes::gcc
