#include "gcc_test_data.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace forkgym::passes::gcc::testing {

std::string readTestFile(const std::string& path) {
  std::ifstream in(std::string(FORKGYM_TEST_DATA_DIR) + "/" + path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void writeFile(const std::string& path, const std::string& bytes, bool executable) {
  {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
  }
  if (executable) ::chmod(path.c_str(), 0755);
}

const GccSpec& sampleSpec() {
  static const GccSpec spec = [] {
    GccHelpText text{readTestFile("gcc/gcc12-version.txt"), readTestFile("gcc/gcc12-optimizers-Q.txt"),
                     readTestFile("gcc/gcc12-params-Q.txt"), readTestFile("gcc/gcc12-params.txt")};
    auto parsed = parseGccSpec(text);
    EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.error().message);
    GccSpec result = parsed.ok() ? *parsed : GccSpec{};
    result.binary = "gcc";
    return result;
  }();
  return spec;
}

const GccSpec& installedSpec() {
  static const GccSpec spec = [] {
    auto discovered = discoverGccSpec("gcc");
    EXPECT_TRUE(discovered.ok()) << (discovered.ok() ? "" : discovered.error().message);
    return discovered.ok() ? *discovered : GccSpec{};
  }();
  return spec;
}

uint32_t actionNamed(const GccActionSpace& space, std::string_view name) {
  for (uint32_t i = 0; i < space.size(); ++i) {
    if (space.actions()[i].name == name) return i;
  }
  ADD_FAILURE() << "no action " << name;
  return 0;
}

ScratchDirectory::ScratchDirectory() {
  const char* tmp = std::getenv("TMPDIR");
  // fgtest-*, as every test's own files (runtime_fixture.h): the fault
  // matrix, running beside this suite, counts /tmp/forkgym-* as the
  // product's leaks.
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/fgtest-gcc-XXXXXX";
  if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  EXPECT_FALSE(path_.empty());
}

ScratchDirectory::~ScratchDirectory() {
  std::error_code ignored;
  if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
}

}  // namespace forkgym::passes::gcc::testing
