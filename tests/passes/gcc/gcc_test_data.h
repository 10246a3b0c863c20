// Shared by the gcc backend's tests: gcc 12's saved help output and the
// spec parsed from it, the installed gcc's spec (discovered once per test
// binary), files, a scratch directory removed with the test, actions by
// name, and the fixture of the episode and session tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "passes/gcc/action_space.h"
#include "passes/gcc/gcc_spec.h"

namespace forkgym::passes::gcc::testing {

std::string readTestFile(const std::string& path);  // relative to tests/data
void writeFile(const std::string& path, const std::string& bytes, bool executable = false);

// tests/data/gcc/gcc12-*.txt, parsed.
const GccSpec& sampleSpec();
// The installed gcc, discovered once.
const GccSpec& installedSpec();

// A fresh directory under $TMPDIR, removed by the destructor.
class ScratchDirectory {
 public:
  ScratchDirectory();
  ~ScratchDirectory();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The index of the action named `name` in `space` (a test failure, and 0,
// when there is none).
uint32_t actionNamed(const GccActionSpace& space, std::string_view name);

// One episode's or session's surroundings: the installed gcc's action space
// and a scratch directory to compile in.
class InstalledGccTest : public ::testing::Test {
 protected:
  uint32_t action(std::string_view name) const { return actionNamed(space_, name); }

  ScratchDirectory work_;
  GccActionSpace space_{installedSpec()};
};

}  // namespace forkgym::passes::gcc::testing
