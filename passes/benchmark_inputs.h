// The files a benchmark was made from, as stat() saw them when they were
// read: what the zygote checks on every reset to know that its cached module
// is still the program on disk.
//
// Lifecycle:
//   1. The loader child records each file it (or clang) reads — the .bc/.ll
//      file, the C/C++ source and every header outside the system include
//      directories, a source directory itself — with an InputRecorder
//      started before the first read. Paths are absolute; the recorder
//      stats them by the name the loader opens them by
//      (benchmark_directory.h).
//   2. The inputs travel to the zygote with the loaded bitcode and stay with
//      the cached module.
//   3. On each reset the zygote calls check(): a stat() per input. Fresh:
//      serve the cached module. Changed: load again. Unsure: a file changed
//      so close to being read that a later edit could have left its stat as
//      it was (file times are coarse); the loader re-reads and re-hashes it
//      (cheap: no compile when the content is the same) and records again.
// Any process may use this; it only stats paths.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <vector>

#include "passes/benchmark_directory.h"

namespace forkgym::passes {

struct InputFile {
  std::string path;  // as the load named it (symlinks are followed by stat)
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t size = 0;
  int64_t mtimeNs = 0;
  int64_t ctimeNs = 0;
  uint32_t type = 0;  // st_mode & S_IFMT

  static InputFile fromStat(std::string path, const struct stat& info);
  bool operator==(const InputFile&) const = default;
};

struct BenchmarkInputs {
  std::vector<InputFile> files;
  // Some file changed within kRacyMargin of the load reading it: its stat
  // may not change again when its content does, so check the content next
  // time.
  bool racy = false;
};

enum class Freshness { Fresh, Changed, Unsure };

// One stat() per input.
Freshness check(const BenchmarkInputs& inputs);

// Records inputs during one load.
class InputRecorder {
 public:
  // Starts now: every file read from here on is compared with this time.
  // Files under `directory` are stat()ed by their names relative to it.
  explicit InputRecorder(BenchmarkDirectory directory = {});
  // stat()s `path` (absolute, after it was read) and records it. False if
  // it is gone.
  bool record(const std::string& path);
  // Records an already-open file's fstat() under `path` (absolute).
  void record(const std::string& path, const struct stat& info);
  BenchmarkInputs take() { return std::move(inputs_); }

 private:
  int64_t startNs_;
  BenchmarkDirectory directory_;
  BenchmarkInputs inputs_;
};

}  // namespace forkgym::passes
