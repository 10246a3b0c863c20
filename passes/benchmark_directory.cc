#include "passes/benchmark_directory.h"

namespace forkgym::passes {

BenchmarkDirectory::BenchmarkDirectory(std::string_view directory) : directory_(directory) {
  while (directory_.size() > 1 && directory_.back() == '/') directory_.pop_back();
}

std::string BenchmarkDirectory::local(std::string_view absolute) const {
  if (!entered() || !absolute.starts_with('/')) return std::string(absolute);
  std::string_view trimmed = absolute;  // "dir/" is the directory too
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.remove_suffix(1);
  if (trimmed == directory_) return ".";
  const std::string_view base = directory_ == "/" ? std::string_view() : std::string_view(directory_);
  if (absolute.size() > base.size() + 1 && absolute.starts_with(base) && absolute[base.size()] == '/') {
    std::string_view rest = absolute.substr(base.size() + 1);
    return std::string(kLocalPrefix) + std::string(rest);
  }
  return std::string(absolute);
}

std::string BenchmarkDirectory::absolute(std::string_view local) const {
  if (!entered() || local.starts_with('/')) return std::string(local);
  if (local == "." || local == kLocalPrefix) return directory_;
  if (local.starts_with(kLocalPrefix)) local.remove_prefix(kLocalPrefix.size());
  return absolutePrefix() + std::string(local);
}

}  // namespace forkgym::passes
