// Installed datasets through the C++ client: benchmark://<dataset>/<path>
// is resolved by the server in its site-data directory (passes/dataset.h),
// so the C++ client and the CLI reach every dataset Python installs. Each
// test installs its datasets by hand in a site-data directory of its own
// (TestSite: FORKGYM_SITE_DATA, which the private server inherits).
#include <sys/stat.h>
#include <sys/xattr.h>

#include "tests/forkserver/runtime_fixture.h"

namespace forkgym::testing {
namespace {

constexpr const char* kPrebuiltIni =
    "# written by hand, as python -m forkgym datasets install writes it\n"
    "uri = benchmark://fgtest-prebuilt-v0\n"
    "kind = prebuilt\n"
    "root = contents/fgtest-prebuilt-v0\n"
    "suffix = .bc\n"
    "language = bitcode\n";

std::string sourceIni(const std::string& name, const std::string& flags, const std::string& extra = "") {
  return "uri = benchmark://" + name + "\nkind = source\nroot = contents\nsuffix = .c\nlanguage = c\nflags = " + flags +
         "\n" + extra;
}

constexpr const char* kScaled = "int scaled(int x) { return x * SCALE + OFFSET; }\n";

class Datasets : public ::testing::Test {
 protected:
  // A server per test: each installs its own datasets in site_.
  void SetUp() override { spawnDescribed(connection_, description_); }
  uint32_t action(const std::string& flag) { return actionIndex(*description_, flag); }
  // clang-19's bitcode of a test program, as make_benchmark() would keep it.
  static std::string bitcodeOf(const std::string& source) {
    TestDir scratch;
    const std::string out = scratch.path + "/out.bc";
    run(llvmTool("clang") + " -c -emit-llvm -O0 -Xclang -disable-O0-optnone " + dataPath(source) + " -o " + out);
    return readFile(out);
  }
  std::string ir(Env& env) {
    auto observed = env.observe(std::vector<std::string>{"Ir"});
    EXPECT_TRUE(observed.ok()) << observed.message;
    return observed.ok() ? asText(observed.observations[0]) : "";
  }
  int64_t instructions(Env& env) {
    auto observed = env.observe(std::vector<std::string>{"IrInstructionCount"});
    EXPECT_TRUE(observed.ok()) << observed.message;
    return observed.ok() ? asInt(observed.observations[0]) : -1;
  }

  TestSite site_;  // before the server: it inherits FORKGYM_SITE_DATA
  std::shared_ptr<Connection> connection_;
  std::shared_ptr<const Description> description_;
};

TEST_F(Datasets, APrebuiltBenchmarkResetsByItsUriAndItsBareName) {
  const std::string bitcode = bitcodeOf("crc32.c");
  ASSERT_GT(bitcode.size(), 100u);
  const std::string directory = site_.install("fgtest-prebuilt-v0", kPrebuiltIni,
                                              {{"contents/fgtest-prebuilt-v0/sub/crc32.bc", bitcode}});
  Env direct(connection_);
  ASSERT_TRUE(direct.reset("file://" + directory + "/contents/fgtest-prebuilt-v0/sub/crc32.bc"));

  for (const char* uri : {"benchmark://fgtest-prebuilt-v0/sub/crc32", "fgtest-prebuilt-v0/sub/crc32"}) {
    SCOPED_TRACE(uri);
    Env env(connection_);
    auto reset = env.reset(uri);
    ASSERT_TRUE(reset) << reset.error().message;
    // The URI stays the dataset's: reproducers and states are portable.
    EXPECT_EQ(env.benchmark(), "benchmark://fgtest-prebuilt-v0/sub/crc32");
    EXPECT_EQ(env.benchmarkHash(), direct.benchmarkHash()) << "the same bitcode is the same content";
    EXPECT_EQ(instructions(env), instructions(direct));
    const uint32_t mem2reg[] = {action("-mem2reg")};
    auto stepped = env.step(mem2reg, std::vector<std::string>{"IrInstructionCount"});
    ASSERT_TRUE(stepped.ok()) << stepped.message;
    EXPECT_LT(asInt(stepped.observations[0]), instructions(direct));
  }
}

// forkgym-server --site-data DIR: that directory, whatever the environment says.
TEST_F(Datasets, TheSiteDataOptionNamesTheDirectoryWhateverTheEnvironmentSays) {
  TestDir other;
  const std::string bitcode = bitcodeOf("crc32.c");
  site_.install("fgtest-prebuilt-v0", kPrebuiltIni, {{"contents/fgtest-prebuilt-v0/crc32.bc", bitcode}});
  ServerOptions options;
  options.extraArgs = {"--site-data", other.path};
  auto elsewhere = Connection::spawn(testServer(options));
  ASSERT_TRUE(elsewhere) << elsewhere.error().message;
  Env env(*elsewhere);
  auto refused = env.reset("benchmark://fgtest-prebuilt-v0/crc32");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("not installed in " + other.path + "/datasets"), std::string::npos)
      << refused.error().message;
  Env inherited(connection_);  // spawned with FORKGYM_SITE_DATA = the test's site
  auto found = inherited.reset("benchmark://fgtest-prebuilt-v0/crc32");
  EXPECT_TRUE(found) << found.error().message;
}

TEST_F(Datasets, ASourceBenchmarkIsCompiledWithTheReferenceCommandAndTheDatasetsFlags) {
  const std::string directory =
      site_.install("fgtest-source-v0", sourceIni("fgtest-source-v0", "-ferror-limit=1 -w -DSCALE=5 -DOFFSET=2"),
                    {{"contents/lib/scaled.c", kScaled}});
  Env env(connection_);
  auto reset = env.reset("benchmark://fgtest-source-v0/lib/scaled");
  ASSERT_TRUE(reset) << reset.error().message;
  const std::string text = ir(env);
  EXPECT_NE(text.find("mul nsw i32"), std::string::npos) << text;
  EXPECT_NE(text.find(", 5"), std::string::npos) << text;
  EXPECT_NE(text.find(", 2"), std::string::npos) << text;
  // -O1 with LLVM's passes off: unoptimised (the argument still goes
  // through memory), and neither optnone nor noinline, unlike -O0.
  EXPECT_NE(text.find("alloca"), std::string::npos) << text;
  EXPECT_EQ(text.find("optnone"), std::string::npos) << text;
  EXPECT_EQ(text.find("noinline"), std::string::npos) << text;

  // Other flags in its dataset.ini: another module (the recipe is part of
  // what the server caches a benchmark by).
  const std::string firstHash = env.benchmarkHash();
  site_.install("fgtest-source-v0", sourceIni("fgtest-source-v0", "-ferror-limit=1 -w -DSCALE=5 -DOFFSET=7"), {});
  Env again(connection_);
  ASSERT_TRUE(again.reset("benchmark://fgtest-source-v0/lib/scaled"));
  EXPECT_NE(again.benchmarkHash(), firstHash);
  EXPECT_NE(ir(again).find(", 7"), std::string::npos);
}

TEST_F(Datasets, SourceLanguagesAndThePoj104TransformCompile) {
  site_.install("fgtest-cxx-v0",
                "kind = source\nroot = contents\nsuffix = .cc\nlanguage = c++\nflags = -w -std=c++17\n",
                {{"contents/twice.cc", "template <typename T> T twice(T x) { return x + x; }\n"
                                       "int use(int x) { return twice(x); }\n"}});
  // POJ-104's programs: `void main`, no includes, names they never define.
  site_.install("fgtest-poj-v0",
                "kind = source\nroot = contents\nsuffix = .txt\nlanguage = c++\n"
                "flags = -xc++ -ferror-limit=1 -w -std=c++11\ntransform = poj104\n",
                {{"contents/1/1.txt", "void main()\n{\n  int a[MAX];\n  vector<int> v;\n  v.push_back(LEN);\n"
                                      "  printf(\"%d\\n\", (int)v.size() + a[0]);\n}\n"}});
  for (const char* uri : {"benchmark://fgtest-cxx-v0/twice", "benchmark://fgtest-poj-v0/1/1"}) {
    SCOPED_TRACE(uri);
    Env env(connection_);
    auto reset = env.reset(uri);
    ASSERT_TRUE(reset) << reset.error().message;
    EXPECT_GT(instructions(env), 0);
  }
  Env env(connection_);
  ASSERT_TRUE(env.reset("benchmark://fgtest-poj-v0/1/1"));
  EXPECT_NE(ir(env).find("define dso_local noundef i32 @main()"), std::string::npos) << "main returns int";
}

// clgen-v0's kind: OpenCL kernels compiled for nvptx64-nvidia-nvcl. The
// passes see NVPTX's target; it emits no object files, so the object-size
// spaces say they are unavailable, and the episode goes on.
TEST_F(Datasets, OpenClKernelsCompileForNvptxAndTheirObjectSizesAreUnavailable) {
  site_.install("fgtest-cl-v0",
                "kind = source\nroot = kernels\nsuffix = .cl\nlanguage = opencl\n"
                "flags = -target nvptx64-nvidia-nvcl -ferror-limit=1 -w\n",
                {{"kernels/k.cl", "__kernel void A(__global float* a, const int b) {\n"
                                  "  int c = get_global_id(0);\n  if (c < b) a[c] = a[c] * 2.0f;\n}\n"}});
  Env env(connection_);
  auto reset = env.reset("benchmark://fgtest-cl-v0/k");
  ASSERT_TRUE(reset) << reset.error().message;
  EXPECT_NE(ir(env).find("target triple = \"nvptx64-nvidia-nvcl\""), std::string::npos);
  const uint32_t actions[] = {action("-mem2reg"), action("-instcombine")};
  auto stepped = env.step(actions, std::vector<std::string>{"IrInstructionCount"},
                          std::vector<std::string>{"IrInstructionCountOz"});
  ASSERT_TRUE(stepped.ok()) << stepped.message;
  EXPECT_GT(asInt(stepped.observations[0]), 0);
  for (const char* space : {"ObjectTextSizeBytes", "ObjectTextSizeOz"}) {
    SCOPED_TRACE(space);
    auto size = env.observe(std::vector<std::string>{space});
    ASSERT_FALSE(size.ok());
    EXPECT_EQ(size.outcome, Outcome::InvalidRequest);
    EXPECT_NE(size.message.find("nvptx64-nvidia-nvcl' emits no object files"), std::string::npos) << size.message;
  }
  EXPECT_GT(instructions(env), 0) << "the episode goes on";
}

// The module compiled from a source is cached beside it as <path>.bc (with
// its key in an extended attribute), written by the client's identity while
// the loader runs as the sandbox user; a new server uses it instead of
// compiling. The signal: the file a compile stores is a new file (renamed
// into place); one that was used is left as it was.
TEST_F(Datasets, TheCompiledModuleIsCachedBesideTheSourceAndAnotherServerUsesIt) {
  const std::string flags = "-ferror-limit=1 -w -DSCALE=5 -DOFFSET=2";
  const std::string directory =
      site_.install("fgtest-cached-v0", sourceIni("fgtest-cached-v0", flags), {{"contents/lib/scaled.c", kScaled}});
  const std::string cached = directory + "/contents/lib/scaled.c.bc";
  const auto inode = [&]() -> ino_t {
    struct stat info {};
    return stat(cached.c_str(), &info) == 0 ? info.st_ino : 0;
  };
  const auto resetOnANewServer = [&](std::string* irSha1 = nullptr) {
    auto connection = Connection::spawn(testServer());
    EXPECT_TRUE(connection) << connection.error().message;
    Env env(*connection);
    auto reset = env.reset("benchmark://fgtest-cached-v0/lib/scaled");
    EXPECT_TRUE(reset) << reset.error().message;
    if (irSha1) {
      auto observed = env.observe(std::vector<std::string>{"IrSha1"});
      EXPECT_TRUE(observed.ok()) << observed.message;
      if (observed.ok()) *irSha1 = asText(observed.observations[0]);
    }
    return env.benchmarkHash();
  };

  std::string compiledSha1, cachedSha1;
  const std::string compiledHash = resetOnANewServer(&compiledSha1);
  const ino_t first = inode();
  ASSERT_NE(first, 0u) << "no " << cached;
  EXPECT_GT(getxattr(cached.c_str(), "user.forkgym.key", nullptr, 0), 0) << "the module carries its key";
  EXPECT_EQ(readFile(cached).substr(0, 4), "BC\xc0\xde") << "clang's bitcode";
  EXPECT_EQ(run("ls -A '" + directory + "/contents/lib'"), "scaled.c\nscaled.c.bc\n") << "nothing else left there";

  // Used as it is: the same content, the same module, the same file.
  EXPECT_EQ(resetOnANewServer(&cachedSha1), compiledHash);
  EXPECT_EQ(cachedSha1, compiledSha1);
  EXPECT_EQ(inode(), first);

  // Other flags: compiled again, and cached again.
  site_.install("fgtest-cached-v0", sourceIni("fgtest-cached-v0", flags + " -DUNUSED=1"), {});
  EXPECT_NE(resetOnANewServer(), compiledHash);
  const ino_t second = inode();
  EXPECT_NE(second, first);
  site_.install("fgtest-cached-v0", sourceIni("fgtest-cached-v0", flags), {});

  // A torn module (its bytes not those its key was written for) is never
  // used: compiled again, the same module as the first time.
  {
    std::string bytes = readFile(cached);
    bytes[bytes.size() / 2] = static_cast<char>(~bytes[bytes.size() / 2]);
    std::fstream(cached, std::ios::in | std::ios::out | std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  std::string afterTornSha1;
  EXPECT_EQ(resetOnANewServer(&afterTornSha1), compiledHash);
  EXPECT_EQ(afterTornSha1, compiledSha1);
  EXPECT_NE(inode(), second);
}

// Where the module cannot be stored, the source is compiled each time: no
// error for the client, and the episode is the same.
TEST_F(Datasets, ASourceWhoseModuleCannotBeStoredStillLoads) {
  const std::string directory = site_.install("fgtest-nocache-v0", sourceIni("fgtest-nocache-v0", "-w -DSCALE=3 -DOFFSET=1"),
                                              {{"contents/scaled.c", kScaled}});
  // A directory where the module would go: the rename over it fails.
  ASSERT_EQ(mkdir((directory + "/contents/scaled.c.bc").c_str(), 0755), 0);
  for (int server = 0; server < 2; ++server) {
    auto connection = Connection::spawn(testServer());
    ASSERT_TRUE(connection) << connection.error().message;
    Env env(*connection);
    auto reset = env.reset("benchmark://fgtest-nocache-v0/scaled");
    ASSERT_TRUE(reset) << reset.error().message;
    const uint32_t mem2reg[] = {action("-mem2reg")};
    EXPECT_TRUE(env.step(mem2reg).ok());
  }
  EXPECT_EQ(run("ls -A '" + directory + "/contents'"), "scaled.c\nscaled.c.bc\n") << "no temporary file left";
}

// CompilerGym's prebuilt datasets are LLVM 10 bitcode. histogram-llvm10.bc
// is tests/data/histogram.c written by LLVM 10.0.1 (its identification block
// says so): LLVM 19 reads it, upgrading typed pointers and old intrinsics.
TEST_F(Datasets, Llvm10BitcodeLoadsStepsAndIsObservedAsAFileAndAsADatasetEntry) {
  const std::string old = readFile(dataPath("histogram-llvm10.bc"));
  ASSERT_NE(run(llvmTool("llvm-bcanalyzer") + " -dump " + dataPath("histogram-llvm10.bc")).find("'LLVM10.0.1'"),
            std::string::npos)
      << "the test file is LLVM 10's bitcode (its identification block names the writer)";
  site_.install("fgtest-prebuilt-v0", kPrebuiltIni, {{"contents/fgtest-prebuilt-v0/histogram.bc", old}});
  for (const std::string& uri : {fileUri("histogram-llvm10.bc"), std::string("benchmark://fgtest-prebuilt-v0/histogram")}) {
    SCOPED_TRACE(uri);
    Env env(connection_);
    auto reset = env.reset(uri);
    ASSERT_TRUE(reset) << reset.error().message;
    EXPECT_EQ(instructions(env), 152);
    const std::string text = ir(env);
    EXPECT_NE(text.find("ptr"), std::string::npos) << "typed pointers became opaque";
    EXPECT_EQ(text.find("i8*"), std::string::npos) << text;
    const uint32_t actions[] = {action("-mem2reg"), action("-instcombine"), action("-simplifycfg")};
    auto stepped = env.step(actions, std::vector<std::string>{"IrInstructionCount", "Autophase", "InstCount"},
                            std::vector<std::string>{"IrInstructionCountOz"});
    ASSERT_TRUE(stepped.ok()) << stepped.message;
    EXPECT_LT(asInt(stepped.observations[0]), 152);
    EXPECT_GT(stepped.rewards[0], 0.0);
  }
}

}  // namespace
}  // namespace forkgym::testing
