#include "passes/gcc/action_space.h"

#include <gtest/gtest.h>

#include <set>

#include "gcc_test_data.h"
#include "passes/gcc/choices.h"

namespace forkgym::passes::gcc {
namespace {

using testing::sampleSpec;

std::vector<std::string> namesFor(const GccActionSpace& space, std::string_view option) {
  const int index = findOption(sampleSpec(), option);
  std::vector<std::string> names;
  for (const GccAction& action : space.actions()) {
    if (static_cast<int>(action.option) == index) names.push_back(action.name);
  }
  return names;
}

TEST(GccActionSpace, SmallOptionsGetOneActionPerChoice) {
  const GccActionSpace space(sampleSpec());
  EXPECT_EQ(namesFor(space, "-O"),
            (std::vector<std::string>{"-O0", "-O1", "-O2", "-O3", "-Ofast", "-Og", "-Os", "-Oz"}));
  EXPECT_EQ(namesFor(space, "-ftree-vectorize"), (std::vector<std::string>{"-ftree-vectorize", "-fno-tree-vectorize"}));
  EXPECT_EQ(namesFor(space, "-flifetime-dse"),
            (std::vector<std::string>{"-flifetime-dse=0", "-flifetime-dse=1", "-flifetime-dse=2"}));
  EXPECT_EQ(namesFor(space, "-fstack-protector-all"), (std::vector<std::string>{"-fstack-protector-all"}));
  // 7 choices (10..16): still one action each.
  EXPECT_EQ(namesFor(space, "--param=stack-clash-protection-probe-interval").size(), 7u);
  EXPECT_EQ(namesFor(space, "--param=stack-clash-protection-probe-interval").front(),
            "--param=stack-clash-protection-probe-interval=10");
}

TEST(GccActionSpace, LargerRangesGetStepsThatGrowWithTheirSize) {
  const GccActionSpace space(sampleSpec());
  // 10 choices: +-1.
  EXPECT_EQ(namesFor(space, "--param=max-ssa-name-query-depth"),
            (std::vector<std::string>{"--param=max-ssa-name-query-depth[+1]", "--param=max-ssa-name-query-depth[-1]"}));
  // 51 choices: +-1, +-10.
  EXPECT_EQ(namesFor(space, "--param=predictable-branch-outcome").size(), 4u);
  // 999 choices: +-1, +-10, +-100.
  EXPECT_EQ(namesFor(space, "--param=ranger-logical-depth"),
            (std::vector<std::string>{"--param=ranger-logical-depth[+1]", "--param=ranger-logical-depth[-1]",
                                      "--param=ranger-logical-depth[+10]", "--param=ranger-logical-depth[-10]",
                                      "--param=ranger-logical-depth[+100]", "--param=ranger-logical-depth[-100]"}));
  // 65536 choices: up to +-1000.
  EXPECT_EQ(namesFor(space, "--param=align-threshold").back(), "--param=align-threshold[-1000]");
  EXPECT_EQ(namesFor(space, "--param=align-threshold").size(), 8u);
}

TEST(GccActionSpace, NamesAreUniqueAndEveryOptionHasAnAction) {
  const GccActionSpace space(sampleSpec());
  std::set<std::string> names;
  std::set<uint32_t> options;
  for (const GccAction& action : space.actions()) {
    EXPECT_TRUE(names.insert(action.name).second) << action.name;
    options.insert(action.option);
  }
  EXPECT_EQ(options.size(), sampleSpec().options.size());
}

TEST(GccActionSpace, SetActionsSetAndStepActionsClampToTheRange) {
  const GccSpec& spec = sampleSpec();
  const GccActionSpace space(spec);
  const auto find = [&](std::string_view name) { return testing::actionNamed(space, name); };
  Choices choices = initialChoices(spec);
  const size_t level = static_cast<size_t>(findOption(spec, "-O"));
  EXPECT_TRUE(space.apply(find("-O2"), choices));
  EXPECT_EQ(choices[level], 2);
  EXPECT_FALSE(space.apply(find("-O2"), choices)) << "setting the same choice changes nothing";

  const size_t depth = static_cast<size_t>(findOption(spec, "--param=max-ssa-name-query-depth"));
  const uint32_t up = find("--param=max-ssa-name-query-depth[+1]");
  const uint32_t down = find("--param=max-ssa-name-query-depth[-1]");
  EXPECT_FALSE(space.apply(down, choices)) << "already absent: -1 is the floor";
  EXPECT_EQ(choices[depth], -1);
  EXPECT_TRUE(space.apply(up, choices));
  EXPECT_EQ(choices[depth], 0) << "from absent, +1 gives the first value";
  EXPECT_EQ(chosenArguments(spec, choices),
            (std::vector<std::string>{"-O2", "--param=max-ssa-name-query-depth=1"}));
  for (int i = 0; i < 20; ++i) space.apply(up, choices);
  EXPECT_EQ(choices[depth], 9) << "clamped at the last choice";
  const uint32_t bigDown = find("--param=align-threshold[-1000]");
  const size_t threshold = static_cast<size_t>(findOption(spec, "--param=align-threshold"));
  choices[threshold] = 500;
  EXPECT_TRUE(space.apply(bigDown, choices));
  EXPECT_EQ(choices[threshold], -1);
}

TEST(GccActionSpace, HashCoversTheSpecAndTheActions) {
  const GccActionSpace space(sampleSpec());
  EXPECT_EQ(space.hash(), GccActionSpace(sampleSpec()).hash());
  GccSpec changed = sampleSpec();
  changed.options.pop_back();
  EXPECT_NE(GccActionSpace(changed).hash(), space.hash());
}

}  // namespace
}  // namespace forkgym::passes::gcc
