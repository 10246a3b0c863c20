// Shared by the passes suites: LLVM initialised once per test process,
// benchmarks loaded the way the zygote loads them, and the LLVM command-line
// tools (opt, llc, llvm-size) that results are checked against.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "passes/llvm/benchmark.h"

namespace forkgym::passes::testing {

// tests/data/<relative>
std::string dataPath(std::string_view relative);
// "file://" + dataPath("small.c"): ~160 instructions with loops, calls and a switch.
std::string smallProgramUri();

// loadBenchmark + encode/decode + parseTrustedBitcode, as the zygote does.
// Cached per URI within a test process. Fails the test on error.
const LoadedBitcode& loadForTest(const std::string& uri);
ParsedBenchmark parseForTest(const std::string& uri);

// Runs an LLVM tool from the LLVM we build against (e.g. "opt") with `input`
// on stdin; fails the test unless it exits 0. Returns its stdout.
std::string runLlvmTool(const std::string& tool, std::vector<std::string> args,
                        std::string_view input = "");

// A private directory removed (with its contents) when this goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  // Writes `contents` to path()/name and returns the full path.
  std::string write(const std::string& name, std::string_view contents) const;

 private:
  std::filesystem::path path_;
};

}  // namespace forkgym::passes::testing
