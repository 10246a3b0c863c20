#include "passes/benchmark_directory.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

namespace forkgym::passes {

BenchmarkDirectory::BenchmarkDirectory(std::string_view directory, std::vector<std::pair<std::string, int>> roots)
    : directory_(directory), roots_(std::move(roots)) {
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

std::string BenchmarkDirectory::realPath(std::string_view absolute) const {
  // Opened rather than realpath()'d: realpath() looks up the absolute name
  // of every component, through ancestors the sandbox user may not search.
  // A lookup relative to the working directory or to a root's descriptor
  // checks nothing above them; the kernel then names what it found.
  const std::string path(absolute);
  const std::string name = local(path);
  int found = -1;
  if (name != path || !entered()) {
    found = open(name.c_str(), O_PATH | O_CLOEXEC);
  } else {
    const auto root = std::find_if(roots_.begin(), roots_.end(), [&](const auto& entry) {
      const std::string& dir = entry.first;
      return entry.second >= 0 && path.size() > dir.size() && path.starts_with(dir) && path[dir.size()] == '/';
    });
    found = root == roots_.end() ? open(path.c_str(), O_PATH | O_CLOEXEC)
                                 : openat(root->second, path.c_str() + root->first.size() + 1, O_PATH | O_CLOEXEC);
  }
  if (found < 0) return {};
  char target[4096];
  const std::string link = "/proc/self/fd/" + std::to_string(found);
  const ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
  close(found);
  return n > 0 && target[0] == '/' ? std::string(target, static_cast<size_t>(n)) : std::string();
}

}  // namespace forkgym::passes
