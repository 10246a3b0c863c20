#include "passes/gcc/artifacts.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include "gcc_test_data.h"
#include "passes/tool_process.h"

namespace forkgym::passes::gcc {
namespace {

TEST(GccArtifacts, HashesAreMd5HexAsCompilerGymsHashlib) {
  EXPECT_EQ(md5Hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(md5Hex("The quick brown fox jumps over the lazy dog"), "9e107d9d372bb6826bd81d3542a419d6");
}

TEST(GccArtifacts, InstructionCountsFollowCompilerGymsPattern) {
  const std::string assembly =
      "\t.file\t\"src.c\"\n"
      "\t.text\n"
      "\t.globl\tf\n"
      "f:\n"
      ".LFB0:\n"
      "\tleal\t(%rdi,%rdi,2), %eax\n"
      "\tret\n"
      "\tleal\t1(%rdi), %eax\n"
      "\trep stosq\n"
      "\t\n"
      "  movl not-a-tab\n"
      "\t.ident\t\"GCC\"";  // no final newline
  const auto counts = instructionCounts(assembly);
  const std::vector<std::pair<std::string, int64_t>> expected = {
      {".file", 1}, {".globl", 1}, {".ident", 1}, {".text", 1}, {"leal", 2}, {"rep", 1}, {"ret", 1}};
  EXPECT_EQ(counts, expected);
}

TEST(GccArtifacts, ExecutableBytesSumEveryCodeSectionOfARealObject) {
  testing::ScratchDirectory directory;
  // At -O2 gcc puts main in .text.startup: a ".text only" count would miss it.
  testing::writeFile(directory.path() + "/src.c",
                     "int g(int x) { return x * 7 + 1; }\nint main(int c, char** v) { return g(c) + v[0][0]; }\n");
  ToolOptions options{.workingDirectory = directory.path().c_str()};
  auto compiled = runTool({"gcc", "-O2", "-c", "src.c", "-o", "obj.o"}, "", options);
  ASSERT_TRUE(compiled.ok() && compiled->succeeded());
  // binutils' own account of the sections.
  auto sizes = runTool({"size", "-A", "obj.o"}, "", options);
  ASSERT_TRUE(sizes.ok() && sizes->succeeded());
  int64_t expected = 0;
  bool sawStartup = false;
  std::istringstream lines(sizes->out);
  std::string name;
  int64_t size = 0, address = 0;
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    if (!(fields >> name >> size >> address)) continue;
    if (name == ".text" || name.rfind(".text.", 0) == 0) expected += size;
    sawStartup |= name == ".text.startup";
  }
  ASSERT_TRUE(sawStartup) << sizes->out;
  std::ifstream in(directory.path() + "/obj.o", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto measured = executableBytes(bytes);
  ASSERT_TRUE(measured.ok()) << measured.error().message;
  EXPECT_EQ(*measured, expected);
  EXPECT_GT(*measured, 0);
}

TEST(GccArtifacts, NonObjectBytesAreAnError) {
  auto measured = executableBytes("this is not an ELF file");
  ASSERT_FALSE(measured.ok());
  EXPECT_NE(measured.error().message.find("not a readable ELF object"), std::string::npos);
  auto truncated = executableBytes(std::string("\x7f" "ELF\x02\x01\x01", 7));
  ASSERT_FALSE(truncated.ok());
}

}  // namespace
}  // namespace forkgym::passes::gcc
