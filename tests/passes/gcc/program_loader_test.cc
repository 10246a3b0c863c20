#include "passes/gcc/program_loader.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace forkgym::passes::gcc
