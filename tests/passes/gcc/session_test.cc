#include "passes/gcc/session.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include "gcc_test_data.h"
#include "passes/gcc/artifacts.h"
#include "passes/tool_process.h"

namespace forkgym::passes::gcc {
namespace {

using testing::installedSpec;
using testing::readTestFile;
using testing::ScratchDirectory;

class GccSessionTest : public testing::InstalledGccTest {
 protected:
  GccSessionTest() : session_(installedSpec(), space_, readTestFile("crc32.c"), work_.path()) {}
  template <typename T>
  T observe(std::string_view name) {
    auto value = session_.observe(name);
    EXPECT_TRUE(value.ok()) << name << ": " << (value.ok() ? "" : value.error().message);
    if (!value.ok() || !std::holds_alternative<T>(*value)) return T{};
    return std::get<T>(*value);
  }

  GccSession session_;
};

TEST_F(GccSessionTest, EveryRowComputesAValueOfItsDeclaredType) {
  const std::vector<Space> spaces = gccObservationSpaces(installedSpec());
  ASSERT_EQ(spaces.size(), GccSession::observationRows().size());
  for (size_t i = 0; i < spaces.size(); ++i) {
    auto value = session_.observe(i);
    ASSERT_TRUE(value.ok()) << spaces[i].name << ": " << value.error().message;
    EXPECT_TRUE(checkValue(spaces[i], *value).ok()) << spaces[i].name;
  }
  const std::vector<std::string> expected = {"source", "rtl",      "asm",     "asm_size",     "asm_hash",
                                             "instruction_counts", "obj", "obj_size", "obj_hash", "choices",
                                             "command_line",       "obj_text_size"};
  std::vector<std::string> names;
  for (const Space& space : spaces) names.push_back(space.name);
  EXPECT_EQ(names, expected);
}

TEST_F(GccSessionTest, ObjectObservationsAreTheFileTheCommandLineWritesByHand) {
  ASSERT_TRUE(session_.applyActions(std::vector<uint32_t>{action("-O2"),
                                                          action("-fno-inline-small-functions")})
                  .ok());
  const std::string commandLine = observe<std::string>("command_line");
  EXPECT_EQ(commandLine, session_.commandLine());
  const auto object = observe<std::vector<uint8_t>>("obj");
  EXPECT_EQ(observe<int64_t>("obj_size"), static_cast<int64_t>(object.size()));
  const std::string bytes(object.begin(), object.end());
  EXPECT_EQ(observe<std::string>("obj_hash"), md5Hex(bytes));
  EXPECT_EQ(observe<int64_t>("obj_text_size"), *executableBytes(bytes));

  // By hand: the source observation saved as src.c, the command line run.
  ScratchDirectory byHand;
  testing::writeFile(byHand.path() + "/src.c", observe<std::string>("source"));
  std::vector<std::string> argv;
  std::istringstream words(commandLine);
  for (std::string word; words >> word;) argv.push_back(word);
  auto run = runTool(argv, "", {.workingDirectory = byHand.path().c_str()});
  ASSERT_TRUE(run.ok() && run->succeeded());
  std::ifstream in(byHand.path() + "/obj.o", std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()), bytes);
}

TEST_F(GccSessionTest, AsmObservationsAgree) {
  const std::string assembly = observe<std::string>("asm");
  EXPECT_EQ(observe<int64_t>("asm_size"), static_cast<int64_t>(assembly.size()));
  EXPECT_EQ(observe<std::string>("asm_hash"), md5Hex(assembly));
  const auto counts = observe<std::vector<NamedCount>>("instruction_counts");
  int64_t rets = 0;
  for (const NamedCount& count : counts) rets += count.name == "ret" ? count.count : 0;
  EXPECT_GT(rets, 0);
}

TEST_F(GccSessionTest, SizeRewardsAreTheReductionSinceTheLastStep) {
  const int64_t plain = observe<int64_t>("obj_size");
  ASSERT_TRUE(session_.applyActions(std::vector<uint32_t>{action("-Os")}).ok());
  const int64_t small = observe<int64_t>("obj_size");
  auto first = session_.reward("obj_size");
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(*first, static_cast<double>(plain - small)) << "from the reset state's size";
  ASSERT_TRUE(session_.applyActions(std::vector<uint32_t>{action("-O3")}).ok());
  const int64_t large = observe<int64_t>("obj_size");
  EXPECT_EQ(*session_.reward("obj_size"), static_cast<double>(small - large));
  EXPECT_EQ(*session_.reward("obj_size"), 0.0) << "no step, no change";

  const int64_t asmNow = observe<int64_t>("asm_size");
  ScratchDirectory other;
  GccSession fresh(installedSpec(), space_, readTestFile("crc32.c"), other.path());
  const int64_t asmPlain = std::get<int64_t>(*fresh.observe("asm_size"));
  EXPECT_EQ(*session_.reward("asm_size"), static_cast<double>(asmPlain - asmNow));
}

TEST_F(GccSessionTest, ChoicesObservationAndParameterAgree) {
  const std::string reply = *session_.setParameter("choices", "");
  std::vector<int64_t> choices = observe<std::vector<int64_t>>("choices");
  EXPECT_EQ(formatChoices(choices), reply);
  choices[0] = 4;  // -Ofast
  ASSERT_TRUE(session_.setParameter("choices", formatChoices(choices)).ok());
  EXPECT_EQ(observe<std::vector<int64_t>>("choices"), choices);
  EXPECT_EQ(session_.commandLine(), "gcc -Ofast -w -c src.c -o obj.o");
}

}  // namespace
}  // namespace forkgym::passes::gcc
