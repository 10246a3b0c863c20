// The benchmark cache is keyed by content: a reset always gets the program
// that is on disk at that reset (a .c, a .bc, a header the .c includes), and
// the episode says which content it ran (SessionStarted's content hash).
#include <sys/stat.h>
#include <utime.h>

#include "tests/forkserver/runtime_fixture.h"

namespace forkgym::testing {
namespace {

class Freshness : public RuntimeTest {
 protected:
  // The module's IR, to see which version of the program a reset gave.
  std::string irAfterReset(Env& env, const std::string& uri) {
    auto status = env.reset(uri);
    EXPECT_TRUE(status) << status.error().message;
    if (!status) return {};
    auto result = env.observe(std::vector<std::string>{"Ir"});
    EXPECT_TRUE(result.ok()) << result.message;
    return result.ok() ? asText(result.observations[0]) : std::string();
  }
  static std::string program(const std::string& name, int value) {
    return "int " + name + "(void) { return " + std::to_string(value) + "; }\n"
           "int main(void) { return " + name + "(); }\n";
  }
};

TEST_F(Freshness, AnEditedSourceIsTheNewProgramAtTheNextReset) {
  TestDir dir;
  const std::string uri = "file://" + dir.write("prog.c", program("first_version", 1));
  Env env = newEnv();
  EXPECT_NE(irAfterReset(env, uri).find("@first_version"), std::string::npos);
  const std::string firstHash = env.benchmarkHash();
  EXPECT_EQ(firstHash.size(), 64u) << "a hex BLAKE3 content hash";

  dir.write("prog.c", program("second_version", 2));
  const std::string ir = irAfterReset(env, uri);
  EXPECT_NE(ir.find("@second_version"), std::string::npos) << ir;
  EXPECT_EQ(ir.find("@first_version"), std::string::npos);
  EXPECT_NE(env.benchmarkHash(), firstHash);
  EXPECT_EQ(env.reproducer().benchmarkHash, env.benchmarkHash());
}

TEST_F(Freshness, AnEditedHeaderIsPartOfTheProgram) {
  TestDir dir;
  dir.write("values.h", "#define VALUE_NAME header_v1\n");
  const std::string uri =
      "file://" + dir.write("prog.c", "#include \"values.h\"\nint VALUE_NAME(void) { return 1; }\nint main(void) { return VALUE_NAME(); }\n");
  Env env = newEnv();
  EXPECT_NE(irAfterReset(env, uri).find("@header_v1"), std::string::npos);
  dir.write("values.h", "#define VALUE_NAME header_v2\n");
  EXPECT_NE(irAfterReset(env, uri).find("@header_v2"), std::string::npos);
}

TEST_F(Freshness, AnEditedBitcodeFileIsTheNewModule) {
  TestDir dir;
  const std::string first = dir.write("first.c", program("bitcode_v1", 1));
  const std::string second = dir.write("second.c", program("bitcode_v2", 2));
  const std::string bitcode = dir.path + "/prog.bc";
  run(llvmTool("clang") + " -c -emit-llvm -O0 " + first + " -o " + bitcode);
  Env env = newEnv();
  EXPECT_NE(irAfterReset(env, "file://" + bitcode).find("@bitcode_v1"), std::string::npos);
  // Replaced the way editors and build tools do: a new file renamed over it.
  run(llvmTool("clang") + " -c -emit-llvm -O0 " + second + " -o " + bitcode + ".new && mv " + bitcode + ".new " + bitcode);
  EXPECT_NE(irAfterReset(env, "file://" + bitcode).find("@bitcode_v2"), std::string::npos);
  // And rewritten in place.
  run(llvmTool("clang") + " -c -emit-llvm -O0 " + first + " -o " + bitcode);
  EXPECT_NE(irAfterReset(env, "file://" + bitcode).find("@bitcode_v1"), std::string::npos);
}

// File times come from a coarse clock: an edit right after a load, keeping
// the size, may keep the file's times too. The content decides all the same.
TEST_F(Freshness, AnEditInTheSameInstantAndOfTheSameSizeIsSeen) {
  TestDir dir;
  const std::string uri = "file://" + dir.write("prog.c", program("same_size_a", 1));
  Env env = newEnv();
  for (const char* version : {"same_size_b", "same_size_c", "same_size_d"}) {
    irAfterReset(env, uri);
    dir.write("prog.c", program(version, 1));
    EXPECT_NE(irAfterReset(env, uri).find(std::string("@") + version), std::string::npos) << version;
  }
}

TEST_F(Freshness, TouchingAFileKeepsItsContentHash) {
  TestDir dir;
  const std::string path = dir.write("prog.c", program("touched", 1));
  Env env = newEnv();
  irAfterReset(env, "file://" + path);
  const std::string hash = env.benchmarkHash();
  ASSERT_EQ(utime(path.c_str(), nullptr), 0);
  EXPECT_NE(irAfterReset(env, "file://" + path).find("@touched"), std::string::npos);
  EXPECT_EQ(env.benchmarkHash(), hash);
}

TEST_F(Freshness, GeneratorBenchmarksHashTheirGeneratedContent) {
  Env env = newEnv();
  irAfterReset(env, "generator://csmith-v0/3");
  const std::string three = env.benchmarkHash();
  irAfterReset(env, "generator://csmith-v0/4");
  EXPECT_EQ(three.size(), 64u);
  EXPECT_NE(env.benchmarkHash(), three);
  irAfterReset(env, "generator://csmith-v0/3");
  EXPECT_EQ(env.benchmarkHash(), three);
}

// On a shared server, whoever loaded a path first does not decide what the
// others get: each reset gets what is on disk then.
TEST(SharedFreshness, EachClientGetsTheContentOnDiskAtItsReset) {
  TestDir dir;
  SocketServer server;
  auto a = server.connect();
  auto b = server.connect();
  ASSERT_TRUE(a && b);
  const auto ir = [](Env& env) {
    auto result = env.observe(std::vector<std::string>{"Ir"});
    return result.ok() ? asText(result.observations[0]) : result.message;
  };
  const std::string uri = "file://" + dir.write("shared.c", "int shared_v1(void) { return 1; }\n");
  Env envA(a), envB(b);
  ASSERT_TRUE(envA.reset(uri));
  EXPECT_NE(ir(envA).find("@shared_v1"), std::string::npos);
  dir.write("shared.c", "int shared_v2(void) { return 2; }\n");
  ASSERT_TRUE(envB.reset(uri));
  EXPECT_NE(ir(envB).find("@shared_v2"), std::string::npos);
  EXPECT_NE(ir(envA).find("@shared_v1"), std::string::npos) << "a running episode keeps its program";
  ASSERT_TRUE(envA.reset(uri));
  EXPECT_NE(ir(envA).find("@shared_v2"), std::string::npos);
}

}  // namespace
}  // namespace forkgym::testing
