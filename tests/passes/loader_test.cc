#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <vector>

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include "passes/benchmark_directory.h"
#include "passes/llvm/benchmark.h"
#include "passes/llvm/benchmark_costs.h"
#include "passes/llvm/benchmark_loader.h"
#include "passes/llvm/bitcode.h"
#include "passes/tool_process.h"
#include "test_benchmarks.h"

namespace forkgym::passes {
namespace {

using testing::dataPath;
using testing::loadForTest;
using testing::parseForTest;
using testing::runLlvmTool;
using testing::TempDir;

TEST(Loader, CanonicalUrisFollowCompilerGymSpelling) {
  EXPECT_EQ(*canonicalBenchmarkUri("/abs/prog.c  "), "file:///abs/prog.c");
  EXPECT_EQ(*canonicalBenchmarkUri("file:///abs/prog.bc"), "file:///abs/prog.bc");
  EXPECT_EQ(*canonicalBenchmarkUri("generator://csmith-v0/007"), "generator://csmith-v0/7");
  EXPECT_EQ(*canonicalBenchmarkUri("generator://llvm-stress-v0/3"),
            "generator://llvm-stress-v0/3");

  for (const char* bad : {"", "file://relative/path.c", "generator://csmith-v0/",
                          "generator://csmith-v0/-1", "generator://csmith-v0/99999999999",
                          "generator://nope-v0/1", "http://example.com/x.c"}) {
    auto uri = canonicalBenchmarkUri(bad);
    ASSERT_FALSE(uri.ok()) << bad;
    EXPECT_EQ(uri.error().outcome, Outcome::InvalidRequest) << bad;
    EXPECT_FALSE(uri.error().message.empty()) << bad;
  }
  EXPECT_NE(canonicalBenchmarkUri("cbench-v1/qsort").error().message.find(
                "benchmark://cbench-v1/qsort"),
            std::string::npos);
}

TEST(Loader, PathsWithDotDotAreAlwaysRefusedNamingThePath) {
  for (const char* bad : {"file:///tmp/../etc/passwd.c", "/a/b/../../etc/x.bc", "file:///.."}) {
    auto uri = canonicalBenchmarkUri(bad);
    ASSERT_FALSE(uri.ok()) << bad;
    EXPECT_EQ(uri.error().outcome, Outcome::InvalidRequest);
    EXPECT_NE(uri.error().message.find("'..'"), std::string::npos) << uri.error().message;
  }
  // A name that merely contains dots is fine.
  EXPECT_TRUE(canonicalBenchmarkUri("file:///abs/a..b.c").ok());
}

TEST(Loader, BenchmarkRootsConfineFilePathsAfterResolvingSymlinks) {
  TempDir inside, outside;
  const std::string root = std::filesystem::canonical(inside.path()).string();
  const std::string good = inside.write("ok.c", "int f(void) { return 1; }\n");
  const std::string secret = outside.write("secret.c", "int g(void) { return 2; }\n");
  std::filesystem::create_symlink(secret, inside.path() / "link.c");
  const std::vector<std::string> roots = {root};

  EXPECT_TRUE(canonicalBenchmarkUri("file://" + good, roots).ok());
  EXPECT_TRUE(canonicalBenchmarkUri("file://" + root + "/", roots).ok());
  auto outsideUri = canonicalBenchmarkUri("file://" + secret, roots);
  ASSERT_FALSE(outsideUri.ok());
  EXPECT_NE(outsideUri.error().message.find(root), std::string::npos) << outsideUri.error().message;
  EXPECT_NE(outsideUri.error().message.find("--benchmark-root"), std::string::npos);
  auto viaLink = canonicalBenchmarkUri("file://" + (inside.path() / "link.c").string(), roots);
  ASSERT_FALSE(viaLink.ok()) << "a symlink out of the root must not escape it";
  // A sibling directory sharing the root's prefix is outside it.
  EXPECT_FALSE(canonicalBenchmarkUri("file://" + good, std::vector<std::string>{root.substr(0, root.size() - 1)}).ok());
  auto missing = canonicalBenchmarkUri("file://" + root + "/missing.c", roots);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("missing.c"), std::string::npos);
}

// A loader is given files and generators: the zygote resolves datasets
// (with its site-data directory), so here none is installed.
TEST(Loader, UnknownDatasetsSayDatasetsAreNotInstalled) {
  for (const char* uri : {"cbench-v1/qsort", "benchmark://cbench-v1/qsort"}) {
    auto canonical = canonicalBenchmarkUri(uri);
    ASSERT_FALSE(canonical.ok());
    EXPECT_EQ(canonical.error().outcome, Outcome::BenchmarkError);
    EXPECT_NE(canonical.error().message.find("not installed"), std::string::npos) << canonical.error().message;
    EXPECT_NE(canonical.error().message.find("--site-data"), std::string::npos) << canonical.error().message;
  }
}

TEST(Loader, CFileIsCompiledUnoptimisedAndSanitised) {
  const ParsedBenchmark benchmark = parseForTest(testing::smallProgramUri());
  ASSERT_TRUE(benchmark.module);
  const llvm::Module& module = *benchmark.module;
  EXPECT_EQ(module.getModuleIdentifier(), "-");
  EXPECT_EQ(module.getSourceFileName(), "-");
  EXPECT_TRUE(module.named_metadata_empty());
  EXPECT_FALSE(module.getTargetTriple().empty());
  for (const llvm::Function& function : module) {
    EXPECT_FALSE(function.hasFnAttribute(llvm::Attribute::OptimizeNone)) << function.getName().str();
  }
  // The load counts instructions and leaves every other baseline to when
  // it is needed (a pipeline and a code generation each).
  const BenchmarkCosts& costs = benchmark.costs;
  EXPECT_EQ(costs.instructionCount[kInitial], static_cast<int64_t>(module.getInstructionCount()));
  EXPECT_GT(costs.instructionCount[kInitial], 100);
  for (CostPoint point : {kO0, kO3, kOz}) EXPECT_EQ(costs.instructionCount[point], kNotComputed) << point;
  for (CostPoint point : {kInitial, kO0, kO3, kOz}) EXPECT_EQ(costs.objectTextSize[point], kNotComputed) << point;
  EXPECT_FALSE(costs.complete());
  auto computed = computeBenchmarkCosts(benchmark.bitcode);
  ASSERT_TRUE(computed.ok()) << computed.error().message;
  EXPECT_TRUE(computed->complete());
  EXPECT_EQ(computed->instructionCount[kInitial], costs.instructionCount[kInitial]);
  EXPECT_LT(computed->instructionCount[kOz], computed->instructionCount[kInitial]);
  EXPECT_GT(computed->objectTextSize[kInitial], 0);
  // (Not smaller than the start: -Oz's full unrolling makes this program's
  // -O0 code larger.)
  EXPECT_GT(computed->objectTextSize[kOz], 0);
  EXPECT_GT(benchmark.approxBytes, benchmark.bitcode.size());
}

TEST(Loader, CsmithAndLlvmStressGenerate) {
  for (const std::string& uri : {"generator://csmith-v0/1", "generator://csmith-v0/2",
                                "generator://llvm-stress-v0/1", "generator://llvm-stress-v0/2"}) {
    auto first = loadBenchmark(uri);
    ASSERT_TRUE(first.ok()) << uri << ": " << first.error().message;
    EXPECT_EQ(first->uri, uri);
    EXPECT_GT(first->costs.instructionCount[kInitial], 10) << uri;
    // Generators are functions of their seed.
    auto again = loadBenchmark(uri);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(sha1Hex(first->bitcode), sha1Hex(again->bitcode)) << uri;
  }
  EXPECT_NE(sha1Hex(loadBenchmark("generator://csmith-v0/1")->bitcode),
            sha1Hex(loadBenchmark("generator://csmith-v0/2")->bitcode));
}

TEST(Loader, CsmithLeavesNoFilesBehind) {
  // csmith writes platform.info into its working directory.
  TempDir dir;
  const auto before = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  auto loaded = loadBenchmark("generator://csmith-v0/11");
  std::filesystem::current_path(before);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(Loader, LlvmStressModuleGetsTheHostTriple) {
  const ParsedBenchmark benchmark = parseForTest("generator://llvm-stress-v0/5");
  ASSERT_TRUE(benchmark.module);
  EXPECT_FALSE(benchmark.module->getTargetTriple().empty());
  EXPECT_FALSE(benchmark.module->getDataLayoutStr().empty());
  EXPECT_EQ(benchmark.module->getModuleIdentifier(), "-");
}

TEST(Loader, MultiFileCProgramLinks) {
  const ParsedBenchmark benchmark = parseForTest("file://" + dataPath("multi"));
  ASSERT_TRUE(benchmark.module);
  const llvm::Function* main = benchmark.module->getFunction("main");
  const llvm::Function* helper = benchmark.module->getFunction("helper_scale");
  ASSERT_NE(main, nullptr);
  ASSERT_NE(helper, nullptr);
  EXPECT_FALSE(main->isDeclaration());
  EXPECT_FALSE(helper->isDeclaration());
}

TEST(Loader, BitcodeAndTextIrFilesLoad) {
  TempDir dir;
  const std::string bitcode = loadForTest(testing::smallProgramUri()).bitcode;
  const std::string bcPath = dir.write("prog.bc", bitcode);
  auto fromBitcode = loadBenchmark(bcPath);
  ASSERT_TRUE(fromBitcode.ok()) << fromBitcode.error().message;
  EXPECT_EQ(fromBitcode->uri, "file://" + bcPath);
  // Sanitising is idempotent: the bitcode round-trips unchanged.
  EXPECT_EQ(sha1Hex(fromBitcode->bitcode), sha1Hex(bitcode));

  const std::string llPath = dir.write(
      "prog.ll", "define i32 @main() {\n  %x = add i32 1, 2\n  ret i32 %x\n}\n");
  auto fromText = loadBenchmark(llPath);
  ASSERT_TRUE(fromText.ok()) << fromText.error().message;
  EXPECT_EQ(fromText->costs.instructionCount[kInitial], 2);
}

TEST(Loader, CppSourcesCompile) {
  TempDir dir;
  const std::string path = dir.write(
      "prog.cc", "template <typename T> T twice(T x) { return x + x; }\n"
                 "int main() { return twice(21); }\n");
  auto loaded = loadBenchmark(path);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_GT(loaded->costs.instructionCount[kInitial], 0);
}

void expectBenchmarkError(std::string_view uri, std::initializer_list<std::string_view> mentions) {
  auto loaded = loadBenchmark(uri);
  ASSERT_FALSE(loaded.ok()) << uri;
  EXPECT_EQ(loaded.error().outcome, Outcome::BenchmarkError) << uri;
  for (std::string_view mention : mentions) {
    EXPECT_NE(loaded.error().message.find(mention), std::string::npos)
        << uri << ": '" << mention << "' not in: " << loaded.error().message;
  }
}

TEST(Loader, BadInputsGiveClearErrors) {
  TempDir dir;
  expectBenchmarkError(dir.write("garbage.bc", "this is not bitcode"),
                       {"garbage.bc", "not valid LLVM bitcode"});
  expectBenchmarkError(dir.write("empty.bc", ""), {"empty.bc", "is empty"});
  expectBenchmarkError((dir.path() / "missing.c").string(),
                       {"missing.c", "No such file or directory"});
  expectBenchmarkError(dir.write("broken.c", "int main(void) { return undeclared_name; }\n"),
                       {"broken.c", "clang exited with status 1", "undeclared_name", "error:"});
  expectBenchmarkError(dir.write("broken.ll", "define i32 @f() { ret i64 0 }\n"),
                       {"broken.ll", "not valid LLVM IR"});
  expectBenchmarkError(dir.write("notes.txt", "hello"), {"unknown file type", ".txt"});
  const std::filesystem::path emptyDir = dir.path() / "nothing";
  std::filesystem::create_directory(emptyDir);
  expectBenchmarkError(emptyDir.string(), {"no .c, .cc, .cpp or .cxx files"});

  // Bitcode that parses but does not verify is refused with the verifier's words.
  const std::string invalid = dir.write(
      "invalid.ll", "define i32 @f() {\nentry:\n  ret i32 %x\nother:\n  %x = add i32 1, 2\n"
                    "  ret i32 %x\n}\n");
  auto loaded = loadBenchmark(invalid);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().outcome, Outcome::BenchmarkError);

  auto unknown = loadBenchmark("ftp://example.com/x.c");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().outcome, Outcome::InvalidRequest);
  EXPECT_NE(unknown.error().message.find("unknown URI scheme"), std::string::npos);
}

// A loader that entered the benchmark's directory (a root server's loader
// does, before it becomes the sandbox user) opens files by relative names,
// yet reports what a load by absolute paths reports: the same content hash
// (line markers and __FILE__ in the hashed text), the same recorded inputs
// (absolute, for the zygote's freshness check), the same messages.
TEST(Loader, ALoadFromInsideTheBenchmarkDirectoryReportsAbsolutePathsAlone) {
  TempDir temp;
  const std::string dir = temp.path().string();
  std::filesystem::create_directories(temp.path() / "sub");
  std::filesystem::create_directories(temp.path() / "multi");
  temp.write("x.c",
             "#include \"x.h\"\n#include \"sub/y.h\"\nconst char *where = __FILE__;\n"
             "const char *here(void) { return __builtin_FILE(); }\nint f(int a) { return a + X + Y; }\n");
  temp.write("x.h", "#define X 1\n");
  temp.write("sub/y.h", "#include \"z.h\"\n#define Y Z\n");
  temp.write("sub/z.h", "#define Z 2\n");
  temp.write("broken.c", "#include \"broken.h\"\nint g(void) { return 0; }\n");
  temp.write("broken.h", "int broken( {\n");
  temp.write("multi/a.c", "#include \"../x.h\"\nint a(void) { return X; }\n");
  temp.write("multi/b.c", "int a(void);\nint b(void) { return a() + 1; }\n");
  runLlvmTool("clang", {"-c", "-emit-llvm", "-o", dir + "/x.bc", dir + "/x.c"});

  const auto load = [&](const std::string& name, bool inside) {
    LoadRequest request;
    request.uri = "file://" + dir + "/" + name;
    const std::filesystem::path before = std::filesystem::current_path();
    if (inside) {
      request.workingDirectory = benchmarkDirectoryOf(request.uri, std::filesystem::is_directory(dir + "/" + name));
      std::filesystem::current_path(request.workingDirectory);
    }
    auto loaded = loadBenchmark(request);
    std::filesystem::current_path(before);
    return loaded;
  };
  for (const std::string name : {"x.c", "x.bc", "multi", "multi/"}) {
    SCOPED_TRACE(name);
    auto outside = load(name, false);
    auto inside = load(name, true);
    ASSERT_TRUE(outside.ok()) << outside.error().message;
    ASSERT_TRUE(inside.ok()) << inside.error().message;
    EXPECT_EQ(inside->contentHash, outside->contentHash);
    EXPECT_TRUE(inside->bitcode == outside->bitcode) << "the modules differ";
    ASSERT_EQ(inside->inputs.files.size(), outside->inputs.files.size());
    for (size_t i = 0; i < inside->inputs.files.size(); ++i) {
      EXPECT_EQ(inside->inputs.files[i].path, outside->inputs.files[i].path);
      EXPECT_TRUE(inside->inputs.files[i].path.starts_with(dir + "/")) << inside->inputs.files[i].path;
    }
  }
  // The headers were recorded, by their absolute names.
  auto source = load("x.c", true);
  ASSERT_TRUE(source.ok());
  std::vector<std::string> paths;
  for (const auto& file : source->inputs.files) paths.push_back(file.path);
  for (const char* name : {"/x.c", "/x.h", "/sub/y.h", "/sub/z.h"}) {
    EXPECT_NE(std::find(paths.begin(), paths.end(), dir + name), paths.end()) << name;
  }
  auto outside = load("broken.c", false);
  auto inside = load("broken.c", true);
  ASSERT_FALSE(inside.ok());
  ASSERT_FALSE(outside.ok());
  EXPECT_EQ(inside.error().message, outside.error().message);
  EXPECT_NE(inside.error().message.find(dir + "/broken.h:1:"), std::string::npos) << inside.error().message;
}

// The one translation between the names a loader opens and the ones it
// reports, both ways.
TEST(Loader, BenchmarkDirectoryMapsLocalNamesToAbsoluteOnesAndBack) {
  const BenchmarkDirectory directory("/data/bench/");
  EXPECT_EQ(directory.path(), "/data/bench");
  EXPECT_EQ(directory.local("/data/bench"), ".");
  EXPECT_EQ(directory.local("/data/bench//"), ".");
  EXPECT_EQ(directory.local("/data/bench/x.c"), "./x.c");
  EXPECT_EQ(directory.local("/data/bench/sub/y.h"), "./sub/y.h");
  EXPECT_EQ(directory.local("/data/benchmark/x.c"), "/data/benchmark/x.c");
  EXPECT_EQ(directory.local("/usr/include/stdio.h"), "/usr/include/stdio.h");
  EXPECT_EQ(directory.absolute("."), "/data/bench");
  EXPECT_EQ(directory.absolute("./x.c"), "/data/bench/x.c");
  EXPECT_EQ(directory.absolute("sub/y.h"), "/data/bench/sub/y.h");
  EXPECT_EQ(directory.absolute("./../x.h"), "/data/bench/../x.h");
  EXPECT_EQ(directory.absolute("/usr/include/stdio.h"), "/usr/include/stdio.h");
  for (const char* path : {"/data/bench", "/data/bench/x.c", "/data/bench/a b/c.c", "/elsewhere/z.h"}) {
    EXPECT_EQ(directory.absolute(directory.local(path)), path);
  }
  const BenchmarkDirectory root("/");
  EXPECT_EQ(root.local("/x.c"), "./x.c");
  EXPECT_EQ(root.absolute("./x.c"), "/x.c");
  const BenchmarkDirectory none;
  EXPECT_EQ(none.local("/data/bench/x.c"), "/data/bench/x.c");
  EXPECT_EQ(none.absolute("x.c"), "x.c");
  EXPECT_EQ(benchmarkDirectoryOf("file:///data/bench/x.c", false), "/data/bench");
  EXPECT_EQ(benchmarkDirectoryOf("file:///x.c", false), "/");
  EXPECT_EQ(benchmarkDirectoryOf("file:///data/bench", true), "/data/bench");
  EXPECT_EQ(benchmarkDirectoryOf("generator://csmith-v0/1", false), "");
}

TEST(Loader, LinkConflictIsAnErrorNotAnExit) {
  TempDir dir;
  std::filesystem::create_directory(dir.path() / "twice");
  dir.write("twice/a.c", "int shared(void) { return 1; }\n");
  dir.write("twice/b.c", "int shared(void) { return 2; }\nint main(void) { return shared(); }\n");
  expectBenchmarkError((dir.path() / "twice").string(), {"b.c", "shared"});
}

TEST(Loader, EncodedRepliesRoundTripAndHostileOnesAreRejected) {
  LoadedBitcode loaded;
  loaded.uri = "generator://csmith-v0/1";
  loaded.bitcode = std::string("BC\xc0\xde", 4) + std::string(100, 'x');
  for (int i = 0; i < kCostPointCount; ++i) {
    loaded.costs.instructionCount[i] = 100 + i;
    loaded.costs.objectTextSize[i] = 1000 + i;
  }
  const std::string bytes = encodeLoaded(loaded);
  auto decoded = decodeLoaded(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->uri, loaded.uri);
  EXPECT_EQ(decoded->bitcode, loaded.bitcode);
  for (int i = 0; i < kCostPointCount; ++i) {
    EXPECT_EQ(decoded->costs.instructionCount[i], 100 + i);
    EXPECT_EQ(decoded->costs.objectTextSize[i], 1000 + i);
  }
  // Every truncation, and any trailing byte, is refused.
  for (size_t length = 0; length < bytes.size(); ++length) {
    EXPECT_FALSE(decodeLoaded(std::string_view(bytes).substr(0, length)).ok()) << length;
  }
  EXPECT_FALSE(decodeLoaded(bytes + "!").ok());
  // A length field claiming more than is there.
  std::string lying = bytes;
  const uint64_t huge = ~uint64_t{0};
  std::memcpy(lying.data() + 8, &huge, sizeof huge);
  EXPECT_FALSE(decodeLoaded(lying).ok());
  auto rejected = decodeLoaded("nonsense");
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.error().outcome, Outcome::BenchmarkError);
}

TEST(Loader, ParsedBenchmarkMovesWithoutFreeingItsContextEarly) {
  ParsedBenchmark first = parseForTest(testing::smallProgramUri());
  ParsedBenchmark second = parseForTest("file://" + dataPath("multi"));
  second = std::move(first);  // frees multi's module before its context
  ASSERT_TRUE(second.module);
  EXPECT_EQ(&second.module->getContext(), second.context.get());
  EXPECT_NE(second.module->getFunction("main"), nullptr);
}

TEST(Loader, ToolThatHangsIsKilledAtTheLimit) {
  auto run = runTool({"sleep", "30"}, "", {.limit = std::chrono::seconds(1)});
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_TRUE(run->timedOut);
  EXPECT_FALSE(run->succeeded());
}

// A tool must not outlive the loader that started it: the zygote kills a
// loader on timeout or when its client goes, and a compiler left running
// would go on using memory and CPU with nobody waiting for it.
TEST(Loader, ToolDiesWithTheProcessThatStartedIt) {
  char dir[] = "/tmp/fgtest-tool-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string fifo = std::string(dir) + "/pid";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const pid_t loader = fork();
  ASSERT_GE(loader, 0);
  if (loader == 0) {
    // Stands for a loader: runs a tool that reports its pid, then waits.
    (void)runTool({"sh", "-c", "echo $$ > " + fifo + "; exec sleep 1000"}, "",
                  {.limit = std::chrono::seconds(600)});
    _exit(0);
  }
  FILE* reader = fopen(fifo.c_str(), "r");  // blocks until the tool opens it
  ASSERT_NE(reader, nullptr);
  int toolPid = 0;
  ASSERT_EQ(fscanf(reader, "%d", &toolPid), 1);
  fclose(reader);
  ASSERT_GT(toolPid, 0);
  const int toolPidfd = static_cast<int>(syscall(SYS_pidfd_open, toolPid, 0));
  ASSERT_GE(toolPidfd, 0);

  kill(loader, SIGKILL);
  waitpid(loader, nullptr, 0);
  // The tool's pidfd turns readable when it exits; it is not our child, so
  // this is the way to wait for it without polling.
  pollfd exited{toolPidfd, POLLIN, 0};
  EXPECT_EQ(poll(&exited, 1, 60'000), 1) << "the tool outlived the process that started it";
  close(toolPidfd);
  unlink(fifo.c_str());
  rmdir(dir);
}

TEST(Loader, ToolRunsUnderTheAddressSpaceLimitItIsGiven) {
  auto run = runTool({"sh", "-c", "ulimit -v"}, "", {.addressSpaceBytes = uint64_t{768} << 20});
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_EQ(run->out, "786432\n");
}

TEST(Loader, ToolThatIsMissingIsAClearError) {
  auto run = runTool({"/nonexistent/forkgym-tool"}, "");
  ASSERT_FALSE(run.ok());
  EXPECT_NE(run.error().message.find("/nonexistent/forkgym-tool"), std::string::npos);
}

TEST(Loader, ToolStdinAndStdoutAreStreamed) {
  // Larger than a pipe buffer both ways, to catch a deadlock.
  const std::string input(1 << 20, 'a');
  auto run = runTool({"cat"}, input);
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_TRUE(run->succeeded());
  EXPECT_EQ(run->out, input);
}

}  // namespace
}  // namespace forkgym::passes
