#include "passes/gcc/episode.h"

#include <gtest/gtest.h>

#include "gcc_test_data.h"

namespace forkgym::passes::gcc {
namespace {

using testing::installedSpec;
using testing::readTestFile;

class GccEpisodeTest : public testing::InstalledGccTest {
 protected:
  GccEpisode episode(const GccSpec& spec = installedSpec()) {
    return GccEpisode(spec, space_, readTestFile("small.c"), work_.path(), {});
  }
  int64_t optionIndex(std::string_view name) { return findOption(installedSpec(), name); }
};

TEST_F(GccEpisodeTest, StartsAsPlainGccAndEachStepCompilesTheNewState) {
  GccEpisode e = episode();
  EXPECT_EQ(e.commandLine(), "gcc -w -c src.c -o obj.o");
  auto plain = e.object();
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  const std::string plainObject = **plain;
  auto initial = e.initialObjectSize();
  ASSERT_TRUE(initial.ok());
  EXPECT_EQ(*initial, static_cast<int64_t>(plainObject.size()));

  auto changed = e.apply(std::vector<uint32_t>{action("-Os")});
  ASSERT_TRUE(changed.ok()) << changed.error().message;
  EXPECT_TRUE(*changed);
  EXPECT_EQ(e.commandLine(), "gcc -Os -w -c src.c -o obj.o");
  auto optimised = e.object();
  ASSERT_TRUE(optimised.ok());
  EXPECT_LT((*optimised)->size(), plainObject.size());
  EXPECT_EQ(*e.initialObjectSize(), *initial) << "the reset state's size stays";

  auto again = e.apply(std::vector<uint32_t>{action("-Os")});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again) << "the same choice again changes nothing";
  EXPECT_EQ(e.actions().size(), 2u);
}

TEST_F(GccEpisodeTest, AStateGccRejectsIsRefusedAndTheEpisodeStaysWhereItWas) {
  GccEpisode e = episode();
  ASSERT_TRUE(e.apply(std::vector<uint32_t>{action("-fsection-anchors")}).ok());
  const Choices before = e.choices();
  auto refused = e.apply(std::vector<uint32_t>{action("-fno-toplevel-reorder")});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().outcome, Outcome::InvalidRequest);
  EXPECT_NE(refused.error().message.find("section anchors must be disabled"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(e.choices(), before);
  EXPECT_EQ(e.actions().size(), 1u) << "the refused action is not in the history";
  EXPECT_EQ(e.commandLine(), "gcc -fsection-anchors -w -c src.c -o obj.o");
  auto object = e.object();
  ASSERT_TRUE(object.ok()) << "the episode goes on: " << object.error().message;
}

TEST_F(GccEpisodeTest, AnUnknownActionAppliesNothing) {
  GccEpisode e = episode();
  auto bad = e.apply(std::vector<uint32_t>{action("-O2"), static_cast<uint32_t>(space_.size())});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().outcome, Outcome::InvalidRequest);
  EXPECT_NE(bad.error().message.find("nothing was applied"), std::string::npos);
  EXPECT_EQ(e.choices(), initialChoices(installedSpec()));
}

TEST_F(GccEpisodeTest, ChoicesRoundTripThroughTheParameter) {
  GccEpisode e = episode();
  Choices wanted = initialChoices(installedSpec());
  wanted[static_cast<size_t>(optionIndex("-O"))] = 3;
  wanted[static_cast<size_t>(optionIndex("-funroll-loops"))] = 0;
  auto reply = e.setParameter("choices", formatChoices(wanted));
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(*reply, formatChoices(wanted));
  EXPECT_EQ(e.choices(), wanted);
  EXPECT_EQ(*e.setParameter("choices", ""), formatChoices(wanted)) << "an empty value only reads";

  Choices outOfRange = wanted;
  outOfRange[static_cast<size_t>(optionIndex("-O"))] = 8;
  auto refused = e.setParameter("choices", formatChoices(outOfRange));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("option " + std::to_string(optionIndex("-O")) + " (-O)"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(e.choices(), wanted) << "nothing changed";
}

TEST_F(GccEpisodeTest, ParametersOtherThanGccsAreRefusedNamingTheKeys) {
  GccEpisode e = episode();
  auto unknown = e.setParameter("optimisation", "1");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().outcome, Outcome::InvalidRequest);
  EXPECT_NE(unknown.error().message.find("choices, timeout, gcc_spec"), std::string::npos);
  EXPECT_EQ(*e.setParameter("timeout", "5"), "5");
  EXPECT_EQ(*e.setParameter("timeout", ""), "60");
  EXPECT_FALSE(e.setParameter("timeout", "0").ok());
  EXPECT_FALSE(e.setParameter("timeout", "ten").ok());
  auto spec = e.setParameter("gcc_spec", "");
  ASSERT_TRUE(spec.ok());
  EXPECT_NE(spec->find("{\"name\": \"-O\", \"kind\": \"optimization_level\", \"size\": 8, \"choices\": [\"-O0\""),
            std::string::npos)
      << spec->substr(0, 300);
}

TEST_F(GccEpisodeTest, ACompilerCrashIsCompilerFailedAndTheStepIsUndone) {
  // gcc, except that it crashes when asked for -O3.
  GccSpec crashing = installedSpec();
  crashing.binary = work_.path() + "/crashing-gcc";
  testing::writeFile(crashing.binary, "#!/bin/sh\ncase \" $* \" in *\" -O3 \"*) kill -SEGV $$;; esac\nexec gcc \"$@\"\n",
                     /*executable=*/true);
  GccEpisode e = episode(crashing);
  ASSERT_TRUE(e.apply(std::vector<uint32_t>{action("-O1")}).ok());
  auto crashed = e.apply(std::vector<uint32_t>{action("-O3")});
  ASSERT_FALSE(crashed.ok());
  EXPECT_EQ(crashed.error().outcome, Outcome::CompilerFailed);
  EXPECT_FALSE(endsEpisode(crashed.error().outcome));
  EXPECT_NE(crashed.error().message.find("signal 11"), std::string::npos) << crashed.error().message;
  EXPECT_EQ(e.commandLine(), crashing.binary + " -O1 -w -c src.c -o obj.o");
  ASSERT_TRUE(e.apply(std::vector<uint32_t>{action("-O2")}).ok()) << "the episode goes on";
}

TEST_F(GccEpisodeTest, AssemblyAndRtlDescribeTheCurrentState) {
  GccEpisode e = episode();
  auto plain = e.assembly();
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  const std::string plainAssembly = **plain;
  ASSERT_TRUE(e.apply(std::vector<uint32_t>{action("-O2")}).ok());
  auto optimised = e.assembly();
  ASSERT_TRUE(optimised.ok());
  EXPECT_NE(**optimised, plainAssembly);
  auto rtl = e.rtl();
  ASSERT_TRUE(rtl.ok()) << rtl.error().message;
  EXPECT_NE((*rtl)->find(";; Function"), std::string::npos);
  EXPECT_EQ(*e.initialAssemblySize(), static_cast<int64_t>(plainAssembly.size()));
}

}  // namespace
}  // namespace forkgym::passes::gcc
