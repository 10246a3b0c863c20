// Shared set-up for the runtime suites: a private zygote per suite, paths to
// test data and LLVM's tools, and /proc-based leak checks.
//
// Temporary files the tests make themselves are named /tmp/fgtest-*; the
// leak checks look for /tmp/forkgym-* (what the product would leave), so
// suites running in parallel under ctest -j do not see each other's files.
#pragma once

#include <dirent.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "client/connection.h"
#include "client/env.h"

namespace forkgym::testing {

// The suites run forkgym-test-server (FORKGYM_SERVER_BINARY): the product
// server with the test-only actions and requests compiled in. The product
// forkgym-server (FORKGYM_PRODUCT_SERVER_BINARY) has neither; only the tests
// about the product build itself spawn it.
inline ServerOptions testServer(ServerOptions options = {}) {
  options.serverPath = FORKGYM_SERVER_BINARY;
  return options;
}

inline std::string dataPath(const std::string& name) { return std::string(FORKGYM_TEST_DATA) + "/" + name; }
inline std::string fileUri(const std::string& name) { return "file://" + dataPath(name); }
inline std::string llvmTool(const std::string& tool) { return "/usr/lib/llvm-19/bin/" + tool; }

// Runs a shell command, returns its stdout.
inline std::string run(const std::string& command) {
  std::string out;
  if (FILE* pipe = popen(command.c_str(), "r")) {
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
    pclose(pipe);
  }
  return out;
}

inline std::set<std::string> listDir(const std::string& path) {
  std::set<std::string> names;
  if (DIR* dir = opendir(path.c_str())) {
    while (dirent* entry = readdir(dir)) {
      std::string name = entry->d_name;
      if (name != "." && name != "..") names.insert(name);
    }
    closedir(dir);
  }
  return names;
}

inline size_t openFdCount() { return listDir("/proc/self/fd").size(); }

// True when `pid` no longer runs (gone, or a zombie nobody needs).
inline bool processGone(pid_t pid) {
  if (kill(pid, 0) != 0) return true;
  FILE* stat = fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (!stat) return true;
  char buffer[512] = {};
  size_t n = fread(buffer, 1, sizeof(buffer) - 1, stat);
  fclose(stat);
  std::string text(buffer, n);
  auto close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && (text[close + 2] == 'Z' || text[close + 2] == 'X');
}

inline bool waitUntilGone(pid_t pid, std::chrono::milliseconds within) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (processGone(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return processGone(pid);
}

inline int64_t asInt(const Observation& value) { return std::get<int64_t>(value); }
inline const std::string& asText(const Observation& value) { return std::get<std::string>(value); }

class RuntimeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto connection = Connection::spawn(testServer());
    ASSERT_TRUE(connection) << connection.error().message;
    connection_ = *connection;
    auto description = connection_->describe();
    ASSERT_TRUE(description) << description.error().message;
    description_ = *description;
  }
  static void TearDownTestSuite() {
    description_.reset();
    connection_.reset();
  }

  Env newEnv(EnvOptions options = {}) { return Env(connection_, options); }
  uint32_t action(const std::string& flag) {
    int index = description_->findAction(flag);
    EXPECT_GE(index, 0) << flag;
    return static_cast<uint32_t>(index);
  }

  static inline std::shared_ptr<Connection> connection_;
  static inline std::shared_ptr<const Description> description_;
};

}  // namespace forkgym::testing
