// HostileGcc: the "gcc" of hostile_gcc.c, set up for a server to run, for
// the fault rows of the external-compiler sandbox profile
// (tests/reliability/fault_matrix_test.cc). A test binary using it defines
// FORKGYM_HOSTILE_GCC (the built hostile_gcc) and includes
// tests/forkserver/runtime_fixture.h first.
//
// Lifecycle (a test process):
//   1. HostileGcc gcc; — copies the built binary to a fresh
//      /var/tmp/fgtest-gcc-XXXXXX/hostile_gcc (searchable and runnable by
//      all): a server started as root runs gcc as its sandbox user (nobody),
//      who may not reach the build tree (a clone under /root), and a gcc
//      worker sees /tmp as its own private directory, so not there.
//   2. { ScopedVariable gccIs = gcc.asServersGcc(); start a server } — the
//      server's gcc backend runs it (FORKGYM_GCC), as it would an installed
//      gcc; discovery and loads go to the real gcc.
//   3. gcc.source("read") — a C source whose compile (-c) makes it attack
//      (hostile_gcc.c lists the attacks); processes() — its live processes.
//   4. ~HostileGcc — removes the copy.
#pragma once

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace forkgym::testing {

class HostileGcc {
 public:
  HostileGcc() {
    char pattern[] = "/var/tmp/fgtest-gcc-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) return;
    directory_ = pattern;
    ::chmod(directory_.c_str(), 0755);
    std::error_code error;
    std::filesystem::copy_file(FORKGYM_HOSTILE_GCC, directory_ + "/hostile_gcc", error);
    if (!error && ::chmod((directory_ + "/hostile_gcc").c_str(), 0755) == 0) path_ = directory_ + "/hostile_gcc";
  }
  ~HostileGcc() {
    std::error_code ignored;
    if (!directory_.empty()) std::filesystem::remove_all(directory_, ignored);
  }
  HostileGcc(const HostileGcc&) = delete;
  HostileGcc& operator=(const HostileGcc&) = delete;

  // Its absolute path; empty if it could not be set up.
  const std::string& path() const { return path_; }
  ScopedVariable asServersGcc() const { return ScopedVariable("FORKGYM_GCC", path_); }

  // A program whose compile does `attack` (hostile_gcc.c).
  static std::string source(const std::string& attack) {
    return "int forkgym_hostile_" + attack + ";\nint main(void) { return 0; }\n";
  }
  // Its live processes (the driver and the passes it forked), by command line.
  std::vector<pid_t> processes() const { return path_.empty() ? std::vector<pid_t>() : processesMentioning(path_); }

 private:
  std::string directory_;
  std::string path_;
};

}  // namespace forkgym::testing
