#include "passes/gcc/choices.h"

#include <gtest/gtest.h>

#include <set>

#include "gcc_test_data.h"

namespace forkgym::passes::gcc {
namespace {

using testing::sampleSpec;

std::string allAbsentExcept(size_t index, int64_t value) {
  Choices choices = initialChoices(sampleSpec());
  choices[index] = value;
  return formatChoices(choices);
}

TEST(GccChoices, RoundTripThroughText) {
  const GccSpec& spec = sampleSpec();
  Choices choices = initialChoices(spec);
  choices[0] = 2;
  choices[static_cast<size_t>(findOption(spec, "--param=align-threshold"))] = 65535;
  auto parsed = parseChoices(spec, formatChoices(choices));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, choices);
  // Spaces around the commas are fine.
  std::string spaced;
  for (size_t i = 0; i < choices.size(); ++i) spaced += (i ? " , " : " ") + std::to_string(choices[i]);
  auto reparsed = parseChoices(spec, spaced);
  ASSERT_TRUE(reparsed.ok()) << reparsed.error().message;
  EXPECT_EQ(*reparsed, choices);
}

// A client names a worker's command line in a reproducer only if each of
// its arguments is one of these forms (client/connection.h): every argument
// a state can give must be, and in no other way than the option's own.
TEST(GccChoices, ArgumentFormsAdmitEveryArgumentAStateCanGive) {
  const GccSpec& spec = sampleSpec();
  const std::vector<std::string> forms = argumentForms(spec);
  const std::set<std::string> formSet(forms.begin(), forms.end());
  EXPECT_EQ(formSet.size(), forms.size()) << "two options write the same argument";
  for (const GccOption& option : spec.options) {
    const bool integer = option.kind == OptionKind::FlagInt || option.kind == OptionKind::ParamInt;
    for (int64_t choice : {int64_t{0}, option.size() / 2, option.size() - 1}) {
      const std::string argument = option.argument(choice);
      if (!integer) {
        EXPECT_TRUE(formSet.contains(argument)) << argument;
        continue;
      }
      const std::string form = argument.substr(0, argument.rfind('=') + 1);
      EXPECT_TRUE(formSet.contains(form)) << argument;
      EXPECT_FALSE(formSet.contains(argument)) << argument;
    }
  }
}

TEST(GccChoices, OutOfRangeNamesTheOptionAndItsRange) {
  const GccSpec& spec = sampleSpec();
  const size_t threshold = static_cast<size_t>(findOption(spec, "--param=align-threshold"));
  auto parsed = parseChoices(spec, allAbsentExcept(threshold, 65536));
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().outcome, Outcome::InvalidRequest);
  const std::string& message = parsed.error().message;
  EXPECT_NE(message.find("--param=align-threshold"), std::string::npos) << message;
  EXPECT_NE(message.find("-1 (absent) to 65535"), std::string::npos) << message;
  EXPECT_NE(message.find(std::to_string(threshold)), std::string::npos) << message;

  auto negative = parseChoices(spec, allAbsentExcept(0, -2));
  ASSERT_FALSE(negative.ok());
  EXPECT_NE(negative.error().message.find("-O"), std::string::npos);
  EXPECT_NE(negative.error().message.find("-Oz"), std::string::npos) << "a small option lists its choices";
}

TEST(GccChoices, WrongCountOrNotIntegersIsAClearError) {
  const GccSpec& spec = sampleSpec();
  auto few = parseChoices(spec, "1,2,3");
  ASSERT_FALSE(few.ok());
  EXPECT_NE(few.error().message.find("has 3 values but this gcc has " + std::to_string(spec.options.size())),
            std::string::npos)
      << few.error().message;
  auto empty = parseChoices(spec, "");
  ASSERT_FALSE(empty.ok());
  auto words = parseChoices(spec, "-1,x");
  ASSERT_FALSE(words.ok());
  EXPECT_NE(words.error().message.find("item 1 is 'x'"), std::string::npos) << words.error().message;
  auto trailing = parseChoices(spec, formatChoices(initialChoices(spec)) + ",");
  ASSERT_FALSE(trailing.ok());
}

TEST(GccChoices, CommandLinesAreCompilerGyms) {
  const GccSpec& spec = sampleSpec();
  Choices choices = initialChoices(spec);
  EXPECT_EQ(commandLineText(spec, choices), "gcc -w -c src.c -o obj.o");
  choices[0] = 6;
  choices[static_cast<size_t>(findOption(spec, "-ftree-vectorize"))] = 1;
  choices[static_cast<size_t>(findOption(spec, "--param=align-threshold"))] = 9;
  EXPECT_EQ(commandLineText(spec, choices),
            "gcc -Os -fno-tree-vectorize --param=align-threshold=10 -w -c src.c -o obj.o");
  EXPECT_EQ(commandLine(spec, choices, Artifact::Assembly),
            (std::vector<std::string>{"gcc", "-Os", "-fno-tree-vectorize", "--param=align-threshold=10", "-w", "-S",
                                      "src.c", "-o", "asm.s"}));
  EXPECT_EQ(commandLine(spec, choices, Artifact::AssemblyAndRtl)[7], "-fdump-rtl-dfinish=rtl.lsp");
}

}  // namespace
}  // namespace forkgym::passes::gcc
