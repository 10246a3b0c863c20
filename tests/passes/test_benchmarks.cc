#include "test_benchmarks.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <map>

#include "passes/llvm/benchmark_loader.h"
#include "passes/llvm/session.h"
#include "passes/tool_process.h"

namespace forkgym::passes::testing {
namespace {

// Every suite needs the native target; initialise once per process, as the
// zygote does.
class LlvmEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { initializeLlvm(); }
};
[[maybe_unused]] ::testing::Environment* const kLlvmEnvironment =
    ::testing::AddGlobalTestEnvironment(new LlvmEnvironment);

}  // namespace

std::string dataPath(std::string_view relative) {
  return std::string(FORKGYM_TEST_DATA_DIR) + "/" + std::string(relative);
}

std::string smallProgramUri() { return "file://" + dataPath("small.c"); }

const LoadedBitcode& loadForTest(const std::string& uri) {
  static std::map<std::string, LoadedBitcode> cache;
  auto found = cache.find(uri);
  if (found != cache.end()) return found->second;
  auto loaded = loadBenchmark(uri);
  if (!loaded.ok()) {
    ADD_FAILURE() << "loading " << uri << ": " << loaded.error().message;
    static const LoadedBitcode empty;
    return empty;
  }
  // Through the pipe format, as the zygote receives it.
  auto decoded = decodeLoaded(encodeLoaded(*loaded));
  EXPECT_TRUE(decoded.ok());
  return cache.emplace(uri, std::move(*decoded)).first->second;
}

ParsedBenchmark parseForTest(const std::string& uri) {
  auto parsed = parseTrustedBitcode(loadForTest(uri));
  if (!parsed.ok()) {
    ADD_FAILURE() << "parsing " << uri << ": " << parsed.error().message;
    return ParsedBenchmark();
  }
  return std::move(*parsed);
}

std::string runLlvmTool(const std::string& tool, std::vector<std::string> args,
                        std::string_view input) {
  args.insert(args.begin(), std::string(FORKGYM_LLVM_BIN_DIR) + "/" + tool);
  auto run = runTool(args, input);
  if (!run.ok()) {
    ADD_FAILURE() << run.error().message;
    return "";
  }
  EXPECT_TRUE(run->succeeded()) << tool << " " << run->describeFailure(kToolTimeLimit) << ":\n"
                                << run->err;
  return run->out;
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "fgtest-passes-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::write(const std::string& name, std::string_view contents) const {
  const std::filesystem::path file = path_ / name;
  std::ofstream(file, std::ios::binary).write(contents.data(),
                                              static_cast<std::streamsize>(contents.size()));
  return file.string();
}

}  // namespace forkgym::passes::testing
