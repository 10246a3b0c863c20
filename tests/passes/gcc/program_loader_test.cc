#include "passes/gcc/program_loader.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "passes/benchmark_load.h"

#include "gcc_test_data.h"

namespace forkgym::passes::gcc {
namespace {

using testing::installedSpec;
using testing::ScratchDirectory;

const std::string kData = FORKGYM_TEST_DATA_DIR;

LoadRequest request(std::string uri, std::vector<std::string> roots = {}) {
  LoadRequest r;
  r.uri = std::move(uri);
  r.roots = std::move(roots);
  return r;
}

TEST(GccProgramLoader, ResolvesCFilesBundledProgramsAndCsmith) {
  ResolveContext context;
  context.bundledDir = kData;
  auto file = resolveGccBenchmark(" " + kData + "/crc32.c ", context);
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_EQ(file->source, "file://" + kData + "/crc32.c");
  auto bundled = resolveGccBenchmark("benchmark://forkgym-v0/small", context);
  ASSERT_TRUE(bundled.ok()) << bundled.error().message;
  EXPECT_EQ(bundled->uri, "benchmark://forkgym-v0/small");
  EXPECT_EQ(bundled->source, "file://" + kData + "/small.c");
  auto csmith = resolveGccBenchmark("generator://csmith-v0/007", context);
  ASSERT_TRUE(csmith.ok()) << csmith.error().message;
  EXPECT_EQ(csmith->uri, "generator://csmith-v0/7");

  auto bitcode = resolveGccBenchmark("file://" + kData + "/empty.bc", context);
  ASSERT_FALSE(bitcode.ok());
  EXPECT_EQ(bitcode.error().outcome, Outcome::InvalidRequest);
  EXPECT_NE(bitcode.error().message.find("gcc-v0 loads one C file"), std::string::npos) << bitcode.error().message;
  EXPECT_FALSE(resolveGccBenchmark("generator://llvm-stress-v0/1", context).ok());
}

TEST(GccProgramLoader, PreprocessesOnceWithoutLineMarkersAndHashesTheText) {
  auto loaded = loadGccProgram(installedSpec(), request("file://" + kData + "/small.c"));
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->payload.find("#include"), std::string::npos);
  EXPECT_EQ(loaded->payload.find("# 1 \""), std::string::npos) << "no line markers (-P)";
  EXPECT_NE(loaded->payload.find("checksum"), std::string::npos);
  ASSERT_FALSE(loaded->inputs.files.empty());
  EXPECT_EQ(loaded->inputs.files.front().path, kData + "/small.c");
  EXPECT_EQ(loaded->contentHash.size(), 64u);

  LoadRequest again = request("file://" + kData + "/small.c");
  again.expectedHash = loaded->contentHash;
  auto unchanged = loadGccProgram(installedSpec(), again);
  ASSERT_TRUE(unchanged.ok());
  EXPECT_TRUE(unchanged->unchanged);
  EXPECT_TRUE(unchanged->payload.empty());
}

TEST(GccProgramLoader, CsmithProgramsArePreprocessedWithTheirRuntime) {
  auto loaded = loadGccProgram(installedSpec(), request("generator://csmith-v0/3"));
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_NE(loaded->payload.find("main"), std::string::npos);
  auto same = loadGccProgram(installedSpec(), request("generator://csmith-v0/3"));
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->contentHash, loaded->contentHash);
}

TEST(GccProgramLoader, AProgramGccCannotCompileIsRefusedAtLoad) {
  auto loaded = loadGccProgram(installedSpec(), request("file://" + kData + "/does_not_compile.c"));
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().outcome, Outcome::BenchmarkError);
  EXPECT_NE(loaded.error().message.find("error:"), std::string::npos) << loaded.error().message;
}

TEST(GccProgramLoader, WithRootsAnIncludeFromOutsideIsRefusedNamingIt) {
  ScratchDirectory root, outside;
  testing::writeFile(outside.path() + "/secret.h", "int secret = 42;\n");
  testing::writeFile(root.path() + "/prog.c", "#include \"" + outside.path() + "/secret.h\"\nint f(void) { return secret; }\n");
  auto loaded = loadGccProgram(installedSpec(), request("file://" + root.path() + "/prog.c", {root.path()}));
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().message.find("refused to compile"), std::string::npos) << loaded.error().message;
  EXPECT_NE(loaded.error().message.find(outside.path() + "/secret.h"), std::string::npos) << loaded.error().message;
  EXPECT_EQ(loaded.error().message.find("42"), std::string::npos) << "nothing of the file is echoed";

  testing::writeFile(root.path() + "/inside.h", "int inside = 1;\n");
  testing::writeFile(root.path() + "/ok.c", "#include \"inside.h\"\n#include <string.h>\nint g(void) { return inside; }\n");
  auto allowed = loadGccProgram(installedSpec(), request("file://" + root.path() + "/ok.c", {root.path()}));
  ASSERT_TRUE(allowed.ok()) << allowed.error().message;
}

// A root server's loader enters the benchmark's directory, then becomes the
// sandbox user, who may not search the directories above it: the load
// opens its files by relative names from there, and reports what a load by
// absolute paths reports (content hash, text with __FILE__, inputs,
// messages). The child here loses the way in from above as that user would
// (nobody under root; an ancestor with no permissions otherwise).
TEST(GccProgramLoader, ALoadFromInsideTheBenchmarkDirectoryNeedsNothingAboveItAndReportsAbsolutePaths) {
  ScratchDirectory scratch;
  const std::string dir = scratch.path() + "/bench";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((dir + "/sub").c_str(), 0755), 0);
  testing::writeFile(dir + "/x.c",
                     "#include \"x.h\"\n#include \"sub/y.h\"\nconst char *where = __FILE__;\n"
                     "int f(int a) { return a + X + Y; }\n");
  testing::writeFile(dir + "/x.h", "#define X 1\n");
  testing::writeFile(dir + "/sub/y.h", "#define Y 2\n");
  testing::writeFile(dir + "/broken.c", "#include \"broken.h\"\nint g(void) { return 0; }\n");
  testing::writeFile(dir + "/broken.h", "#include \"nothere.h\"\n");
  for (const char* name : {"/x.c", "/x.h", "/sub/y.h", "/broken.c", "/broken.h"}) ::chmod((dir + name).c_str(), 0644);
  ASSERT_EQ(::chmod(scratch.path().c_str(), 0700), 0);

  // What the child reports: the hash and inputs, or the error's message.
  const auto loadInside = [&](const std::string& name) {
    int out[2];
    EXPECT_EQ(::pipe(out), 0);
    const pid_t child = ::fork();
    if (child == 0) {
      ::close(out[0]);
      // No roots: a server refuses roots its sandbox user cannot reach.
      LoadRequest r = request("file://" + dir + "/" + name);
      r.workingDirectory = dir;
      if (::chdir(dir.c_str()) != 0) _exit(2);
      if (::geteuid() == 0) {
        if (::setgid(65534) != 0 || ::setuid(65534) != 0) _exit(3);
      } else if (::chmod(scratch.path().c_str(), 0) != 0) {
        _exit(4);
      }
      auto loaded = loadGccProgram(installedSpec(), r);
      std::string report = loaded.ok() ? loaded->contentHash : "error: " + loaded.error().message;
      if (loaded.ok()) {
        for (const auto& file : loaded->inputs.files) report += "\n" + file.path;
      }
      const bool written = ::write(out[1], report.data(), report.size()) == static_cast<ssize_t>(report.size());
      _exit(written ? 0 : 5);
    }
    ::close(out[1]);
    std::string report;
    char buffer[4096];
    for (ssize_t n; (n = ::read(out[0], buffer, sizeof buffer)) > 0;) report.append(buffer, static_cast<size_t>(n));
    ::close(out[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    ::chmod(scratch.path().c_str(), 0700);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    return report;
  };

  auto outside = loadGccProgram(installedSpec(), request("file://" + dir + "/x.c"));
  ASSERT_TRUE(outside.ok()) << outside.error().message;
  EXPECT_NE(outside->payload.find("\"" + dir + "/x.c\""), std::string::npos) << "__FILE__ is the absolute path";
  std::string expected = outside->contentHash;
  for (const auto& file : outside->inputs.files) expected += "\n" + file.path;
  EXPECT_EQ(loadInside("x.c"), expected);

  auto broken = loadGccProgram(installedSpec(), request("file://" + dir + "/broken.c"));
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.error().message.find(dir + "/broken.h:1:"), std::string::npos) << broken.error().message;
  EXPECT_EQ(loadInside("broken.c"), "error: " + broken.error().message);
}

}  // namespace
}  // namespace forkgym::passes::gcc
