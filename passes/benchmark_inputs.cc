#include "passes/benchmark_inputs.h"

#include <time.h>

#include <algorithm>
#include <utility>

namespace forkgym::passes {
namespace {

// File times come from a coarse clock (one scheduler tick, 1-10 ms); a file
// changed less than this before (or while) the load read it may change again
// without its times moving.
constexpr int64_t kRacyMarginNs = 100'000'000;

int64_t nanoseconds(const timespec& time) { return int64_t{time.tv_sec} * 1'000'000'000 + time.tv_nsec; }

int64_t realtimeNowNs() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return nanoseconds(now);
}

}  // namespace

InputFile InputFile::fromStat(std::string path, const struct stat& info) {
  return InputFile{std::move(path),
                   static_cast<uint64_t>(info.st_dev),
                   static_cast<uint64_t>(info.st_ino),
                   static_cast<uint64_t>(info.st_size),
                   nanoseconds(info.st_mtim),
                   nanoseconds(info.st_ctim),
                   static_cast<uint32_t>(info.st_mode & S_IFMT)};
}

Freshness check(const BenchmarkInputs& inputs) {
  for (const InputFile& file : inputs.files) {
    struct stat info {};
    if (::stat(file.path.c_str(), &info) != 0) return Freshness::Changed;
    if (!(InputFile::fromStat(file.path, info) == file)) return Freshness::Changed;
  }
  return inputs.racy ? Freshness::Unsure : Freshness::Fresh;
}

InputRecorder::InputRecorder(BenchmarkDirectory directory)
    : startNs_(realtimeNowNs()), directory_(std::move(directory)) {}

bool InputRecorder::record(const std::string& path) {
  struct stat info {};
  if (::stat(directory_.local(path).c_str(), &info) != 0) return false;
  record(path, info);
  return true;
}

void InputRecorder::record(const std::string& path, const struct stat& info) {
  InputFile file = InputFile::fromStat(path, info);
  // Changed after the load started (or just before): what was read may be
  // older than this stat, or a later change may keep these times.
  if (std::max(file.mtimeNs, file.ctimeNs) + kRacyMarginNs > startNs_) inputs_.racy = true;
  if (std::find(inputs_.files.begin(), inputs_.files.end(), file) == inputs_.files.end()) {
    inputs_.files.push_back(std::move(file));
  }
}

}  // namespace forkgym::passes
