#include "passes/gcc/gcc_spec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <functional>
#include <map>

#include "gcc_test_data.h"
#include "passes/gcc/choices.h"
#include "passes/tool_process.h"

namespace forkgym::passes::gcc {
namespace {

using testing::installedSpec;
using testing::sampleSpec;

const GccOption* option(const GccSpec& spec, std::string_view name) {
  const int index = findOption(spec, name);
  return index < 0 ? nullptr : &spec.options[static_cast<size_t>(index)];
}

TEST(GccSpec, ReadsTheOptimisationLevelsFromTheOptimizersHelp) {
  const GccSpec& spec = sampleSpec();
  ASSERT_FALSE(spec.options.empty());
  // "O" sorts before every lower-case -f name, as in CompilerGym.
  const GccOption& level = spec.options.front();
  EXPECT_EQ(level.kind, OptionKind::OptimizationLevel);
  EXPECT_EQ(level.displayName(), "-O");
  EXPECT_EQ(level.values, (std::vector<std::string>{"0", "1", "2", "3", "fast", "g", "s", "z"}));
  EXPECT_EQ(level.argument(2), "-O2");
  EXPECT_EQ(level.argument(7), "-Oz");
  EXPECT_EQ(spec.version.rfind("gcc (Debian 12", 0), 0u) << spec.version;
}

TEST(GccSpec, PlainFlagsHaveAPositiveAndANegativeChoice) {
  const GccOption* flag = option(sampleSpec(), "-ftree-vectorize");
  ASSERT_NE(flag, nullptr);
  EXPECT_EQ(flag->kind, OptionKind::Flag);
  EXPECT_EQ(flag->size(), 2);
  EXPECT_EQ(flag->argument(0), "-ftree-vectorize");
  EXPECT_EQ(flag->argument(1), "-fno-tree-vectorize");
  // Listed by its negative form, kept under its positive name.
  ASSERT_NE(option(sampleSpec(), "-fthreadsafe-statics"), nullptr);
  EXPECT_EQ(option(sampleSpec(), "-fno-threadsafe-statics"), nullptr);
}

TEST(GccSpec, TypedFormsReplaceThePlainFlagOfTheSameName) {
  const GccOption* lifetime = option(sampleSpec(), "-flifetime-dse");
  ASSERT_NE(lifetime, nullptr);
  EXPECT_EQ(lifetime->kind, OptionKind::FlagInt);
  EXPECT_EQ(lifetime->min, 0);
  EXPECT_EQ(lifetime->max, 2);
  EXPECT_EQ(lifetime->argument(1), "-flifetime-dse=1");

  const GccOption* contract = option(sampleSpec(), "-ffp-contract");
  ASSERT_NE(contract, nullptr);
  EXPECT_EQ(contract->kind, OptionKind::FlagEnum);
  EXPECT_EQ(contract->values, (std::vector<std::string>{"off", "on", "fast"}));
  EXPECT_EQ(contract->argument(2), "-ffp-contract=fast");

  const GccOption* stalled = option(sampleSpec(), "-fsched-stalled-insns");
  ASSERT_NE(stalled, nullptr);
  EXPECT_EQ(stalled->kind, OptionKind::FlagInt);
  EXPECT_EQ(stalled->max, INT_MAX) << "gcc rejects 2147483648 as 'bigger than 2147483647'";
}

TEST(GccSpec, AppliesCompilerGymsFixesThatGcc12StillNeeds) {
  const GccSpec& spec = sampleSpec();
  const GccOption* all = option(spec, "-fstack-protector-all");
  ASSERT_NE(all, nullptr);
  EXPECT_EQ(all->size(), 1) << "gcc has no -fno-stack-protector-all";
  const GccOption* pack = option(spec, "-fpack-struct");
  ASSERT_NE(pack, nullptr);
  EXPECT_EQ(pack->kind, OptionKind::FlagEnum);
  EXPECT_EQ(pack->values, (std::vector<std::string>{"1", "2", "4", "8", "16"}));
  EXPECT_EQ(option(spec, "-flive-patching"), nullptr);
  EXPECT_EQ(option(spec, "-fhandle-exceptions"), nullptr) << "an alias of -fexceptions";
  EXPECT_EQ(option(spec, "-fpatchable-function-entry"), nullptr) << "N,M: nothing to enumerate";
  const GccOption* align = option(spec, "-falign-loops");
  ASSERT_NE(align, nullptr);
  EXPECT_EQ(align->kind, OptionKind::Flag);
  EXPECT_EQ(align->size(), 2);
}

TEST(GccSpec, ParamsComeWithTheirRangesOrValues) {
  const GccSpec& spec = sampleSpec();
  const GccOption* threshold = option(spec, "--param=align-threshold");
  ASSERT_NE(threshold, nullptr);
  EXPECT_EQ(threshold->kind, OptionKind::ParamInt);
  EXPECT_EQ(threshold->min, 1);
  EXPECT_EQ(threshold->max, 65536);
  EXPECT_EQ(threshold->argument(0), "--param=align-threshold=1");
  EXPECT_EQ(threshold->size(), 65536);

  const GccOption* unbounded = option(spec, "--param=align-loop-iterations");
  ASSERT_NE(unbounded, nullptr);
  EXPECT_EQ(unbounded->kind, OptionKind::ParamInt);
  EXPECT_EQ(unbounded->min, 0);
  EXPECT_EQ(unbounded->max, INT_MAX);
  // Its -Q default is -1 ("unset"), but gcc refuses a negative value.
  const GccOption* stride = option(spec, "--param=prefetch-minimum-stride");
  ASSERT_NE(stride, nullptr);
  EXPECT_EQ(stride->min, 0);

  const GccOption* schedule = option(spec, "--param=parloops-schedule");
  ASSERT_NE(schedule, nullptr);
  EXPECT_EQ(schedule->values, (std::vector<std::string>{"static", "dynamic", "guided", "auto", "runtime"}));

  // The -Q line shows only the default ("ranger"); the values come from the
  // description column of the plain help.
  const GccOption* evrp = option(spec, "--param=evrp-mode");
  ASSERT_NE(evrp, nullptr);
  EXPECT_EQ(evrp->kind, OptionKind::ParamEnum);
  EXPECT_EQ(evrp->values, (std::vector<std::string>{"legacy", "ranger", "legacy-first", "ranger-first"}));

  EXPECT_NE(option(spec, "--param=sra-max-scalarization-size-Osize"), nullptr) << "upper case in a name";
  EXPECT_EQ(option(spec, "--param=lazy-modules"), nullptr) << "C++ only: no default, no values";
  EXPECT_EQ(option(spec, "--param=ranger-debug"), nullptr) << "a trace switch, not an optimisation";
  EXPECT_EQ(option(spec, "--param=min-nondebug-insn-uid"), nullptr) << "large values crash gcc 12";
}

TEST(GccSpec, FlagsThenParamsEachSortedByName) {
  const GccSpec& spec = sampleSpec();
  const auto firstParam = std::find_if(spec.options.begin(), spec.options.end(), [](const GccOption& o) {
    return o.kind == OptionKind::ParamInt || o.kind == OptionKind::ParamEnum;
  });
  ASSERT_NE(firstParam, spec.options.end());
  const auto byName = [](const GccOption& a, const GccOption& b) { return a.name < b.name; };
  EXPECT_TRUE(std::is_sorted(spec.options.begin(), firstParam, byName));
  EXPECT_TRUE(std::is_sorted(firstParam, spec.options.end(), byName));
  EXPECT_TRUE(std::none_of(firstParam, spec.options.end(), [](const GccOption& o) {
    return o.kind != OptionKind::ParamInt && o.kind != OptionKind::ParamEnum;
  }));
  EXPECT_GT(firstParam - spec.options.begin(), 150);
  EXPECT_GT(spec.options.end() - firstParam, 200);
}

TEST(GccSpec, OutputWithoutOptionListsIsAClearError) {
  auto parsed = parseGccSpec(GccHelpText{"gcc 1.0", "nothing here", "", ""});
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().outcome, Outcome::ServerError);
  EXPECT_NE(parsed.error().message.find("--help=optimizers"), std::string::npos) << parsed.error().message;
}

TEST(GccSpec, HashChangesWithAnyRangeAndStaysForTheSameSpec) {
  GccSpec spec = sampleSpec();
  const uint64_t hash = specHash(spec);
  EXPECT_EQ(hash, specHash(sampleSpec()));
  spec.options.back().max -= 1;
  EXPECT_NE(specHash(spec), hash);
  spec = sampleSpec();
  spec.version += " (patched)";
  EXPECT_NE(specHash(spec), hash);
}

TEST(GccSpec, DiscoversTheInstalledGcc) {
  const GccSpec& spec = installedSpec();
  ASSERT_GT(spec.options.size(), 300u);
  EXPECT_EQ(spec.binary, "gcc");
  EXPECT_EQ(spec.version.rfind("gcc", 0), 0u) << spec.version;
  EXPECT_EQ(spec.options.front().displayName(), "-O");
}

TEST(GccSpec, DiscoveringAMissingCompilerSaysWhichOne) {
  auto spec = discoverGccSpec("/nonexistent/gcc-99");
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.error().message.find("/nonexistent/gcc-99"), std::string::npos) << spec.error().message;
}

// Every choice the spec offers, tried on the installed gcc: each must be
// accepted on its own (a rejected combination is a step's error, a rejected
// single choice would be a bug in the spec). Choices are tried many options
// at a time; a group gcc refuses is retried one option at a time.
TEST(GccSpec, InstalledGccAcceptsEveryChoiceOnItsOwn) {
  const GccSpec& spec = installedSpec();
  testing::ScratchDirectory directory;
  testing::writeFile(directory.path() + "/src.c", "int f(int x) { return x * 3; }\n");
  const auto accepted = [&](const std::vector<std::string>& arguments, std::string* diagnostics) {
    std::vector<std::string> argv = {spec.binary};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    argv.insert(argv.end(), {"-w", "-c", "src.c", "-o", "obj.o"});
    auto run = runTool(argv, "", {.workingDirectory = directory.path().c_str(), .environment = {"LC_ALL=C"}});
    if (!run.ok()) return false;
    if (diagnostics) *diagnostics = run->diagnostics();
    return run->succeeded();
  };
  // Round r tries choice r of every option that has one (for integers: the
  // two ends of the range); a refused group is halved until the refused
  // choices are found.
  std::vector<std::string> refused;
  std::function<void(const std::vector<std::string>&)> search = [&](const std::vector<std::string>& group) {
    std::string diagnostics;
    if (group.empty() || accepted(group, &diagnostics)) return;
    if (group.size() == 1) {
      refused.push_back(group.front() + ": " + diagnostics.substr(0, 300));
      return;
    }
    const auto middle = group.begin() + static_cast<std::ptrdiff_t>(group.size() / 2);
    search({group.begin(), middle});
    search({middle, group.end()});
  };
  for (int64_t round = 0; round < 8; ++round) {
    std::vector<std::string> group;
    for (const GccOption& option : spec.options) {
      const bool integer = option.kind == OptionKind::FlagInt || option.kind == OptionKind::ParamInt;
      if (integer && round < 2) group.push_back(option.argument(round == 0 ? 0 : option.size() - 1));
      if (!integer && round < option.size()) group.push_back(option.argument(round));
    }
    search(group);
  }
  std::string list;
  for (const auto& line : refused) list += line + "\n";
  EXPECT_TRUE(refused.empty()) << "gcc refuses these choices on their own:\n" << list;
}

}  // namespace
}  // namespace forkgym::passes::gcc
