// Shared by the gcc backend's tests: gcc 12's saved help output and the
// spec parsed from it, the installed gcc's spec (discovered once per test
// binary), files, and a scratch directory removed with the test.
#pragma once

#include <string>

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

}  // namespace forkgym::passes::gcc::testing
