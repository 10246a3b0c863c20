#include "passes/benchmark_uri.h"

#include <sys/stat.h>
#include <unistd.h>

#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

#include "base/trimmed.h"

namespace forkgym::passes {
namespace {

const char* fileKind(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFIFO: return "a FIFO";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFSOCK: return "a socket";
    case S_IFDIR: return "a directory";
    case S_IFLNK: return "a symbolic link";
    default: return "a regular file";
  }
}

bool insideRoot(const std::string& real, const std::string& root) {
  return real == root || (real.starts_with(root) && (root.ends_with('/') || real[root.size()] == '/'));
}

// Which file paths a client may name: never one with a ".." component (a
// path that climbs out of where it seems to point), and, when the server was
// given --benchmark-root directories, only one that resolves inside them.
Status checkFilePath(const std::string& path, std::span<const std::string> allowedRoots) {
  for (const auto& component : std::filesystem::path(path)) {
    if (component == "..") {
      return makeError(Outcome::InvalidRequest,
                       "'" + path + "': benchmark paths may not contain a '..' component; " +
                           "give the absolute path without it");
    }
  }
  if (allowedRoots.empty()) return okStatus();
  auto rootList = [&] {
    std::string list;
    for (const auto& root : allowedRoots) list += (list.empty() ? "" : ", ") + root;
    return list;
  };
  char* resolved = ::realpath(path.c_str(), nullptr);
  if (resolved == nullptr) {
    return makeError(Outcome::BenchmarkError,
                     "cannot load " + path + ": " + std::strerror(errno) +
                         " (this server only serves files under " + rootList() + ")");
  }
  const std::string real = resolved;
  std::free(resolved);
  for (const auto& root : allowedRoots) {
    if (insideRoot(real, root)) return okStatus();
  }
  return makeError(Outcome::InvalidRequest,
                   "'" + path + "' (resolved to " + real + ") is outside the benchmark roots this " +
                       "server allows: " + rootList() +
                       "; move the file under one of them, or start forkgym-server with " +
                       "--benchmark-root <dir> for its directory");
}

// "benchmark://<dataset>/<name>" -> name, if the dataset is `dataset` and
// the name is one plain file name.
std::optional<std::string_view> datasetName(std::string_view uri, std::string_view dataset) {
  if (!uri.starts_with(kBenchmarkScheme)) return std::nullopt;
  std::string_view rest = uri.substr(kBenchmarkScheme.size());
  if (!rest.starts_with(dataset) || rest.size() <= dataset.size() || rest[dataset.size()] != '/') return std::nullopt;
  return rest.substr(dataset.size() + 1);
}

bool plainName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

bool isRegularFile(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

}  // namespace

std::string normalizedUri(std::string_view uri) {
  const std::string_view text = trimmed(uri);
  if (text.starts_with('/')) return std::string(kFileScheme) + std::string(text);
  // CompilerGym took a bare "cbench-v1/qsort" as benchmark://cbench-v1/qsort.
  if (!text.empty() && text.find("://") == std::string_view::npos) return std::string(kBenchmarkScheme) + std::string(text);
  return std::string(text);
}

Result<BenchmarkLocation> resolveFile(std::string_view fileUri, const ResolveContext& context) {
  const std::string_view path = fileUri.substr(kFileScheme.size());
  if (!path.starts_with('/')) {
    return makeError(Outcome::InvalidRequest, "'" + std::string(fileUri) +
                                                  "': a file URI needs an absolute path, e.g. file:///home/me/prog.c");
  }
  if (auto allowed = checkFilePath(std::string(path), context.roots); !allowed.ok()) return allowed.takeError();
  const std::string canonical = std::string(kFileScheme) + std::string(path);
  return BenchmarkLocation{canonical, canonical, {}};
}

Result<BenchmarkLocation> resolveBundled(std::string_view uri, const ResolveContext& context,
                                         std::span<const std::string_view> suffixes) {
  const auto name = datasetName(uri, kBundledDataset);
  if (name && plainName(*name) && !context.bundledDir.empty()) {
    for (std::string_view suffix : suffixes) {
      const std::string path = context.bundledDir + "/" + std::string(*name) + std::string(suffix);
      if (isRegularFile(path)) return BenchmarkLocation{std::string(uri), std::string(kFileScheme) + path, {}};
    }
  }
  std::string names;
  for (const std::string& bundled : bundledBenchmarks(context, suffixes)) names += (names.empty() ? "" : ", ") + bundled;
  return makeError(Outcome::BenchmarkError,
                   "no benchmark '" + std::string(name.value_or(uri)) + "' in " + std::string(kBundledDataset) +
                       (names.empty() ? "; this server has no bundled benchmarks (" +
                                            (context.bundledDir.empty() ? std::string("none installed")
                                                                        : "none in " + context.bundledDir) +
                                            ")"
                                      : "; it has " + names));
}

Result<BenchmarkLocation> resolveUserBenchmark(std::string_view uri, const ResolveContext& context,
                                               std::span<const std::string_view> suffixes) {
  const auto digest = datasetName(uri, kUserDataset);
  if (digest && plainName(*digest) && !context.userCacheDir.empty()) {
    for (std::string_view suffix : suffixes) {
      const std::string path = context.userCacheDir + "/" + std::string(*digest) + std::string(suffix);
      if (!isRegularFile(path)) continue;
      auto file = resolveFile(std::string(kFileScheme) + path, context);
      if (!file.ok()) return file.takeError();
      return BenchmarkLocation{std::string(uri), file->source, {}};
    }
  }
  return makeError(Outcome::BenchmarkError,
                   std::string(uri) + " is not in this user's benchmark cache (" +
                       (context.userCacheDir.empty() ? std::string("none found") : context.userCacheDir) +
                       "): it was made by make_benchmark() as another user, on another machine, or the cache was "
                       "emptied");
}

Result<DatasetFile> resolveDatasetFile(std::string_view uri, const ResolveContext& context) {
  if (!context.datasets) {
    return makeError(Outcome::BenchmarkError, "'" + std::string(uri) +
                                                  "': the dataset is not installed here: no site-data directory is "
                                                  "known (forkgym-server takes --site-data DIR)");
  }
  auto file = context.datasets->find(uri);
  if (!file.ok() || context.roots.empty()) return file;
  // With benchmark roots (to which the server adds its site-data
  // directory's datasets/), a dataset of yours registered in place must be
  // inside them like any file.
  if (auto allowed = checkFilePath(file->path, context.roots); !allowed.ok()) return allowed.takeError();
  return file;
}

std::vector<std::string> bundledBenchmarks(const ResolveContext& context, std::span<const std::string_view> suffixes) {
  std::vector<std::string> uris;
  if (context.bundledDir.empty()) return uris;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(context.bundledDir, error)) {
    const std::string extension = entry.path().extension().string();
    if (std::find(suffixes.begin(), suffixes.end(), extension) == suffixes.end()) continue;
    uris.push_back(std::string(kBenchmarkScheme) + std::string(kBundledDataset) + "/" + entry.path().stem().string());
  }
  std::sort(uris.begin(), uris.end());
  uris.erase(std::unique(uris.begin(), uris.end()), uris.end());
  return uris;
}

Status checkBenchmarkInput(std::string_view source) {
  if (!source.starts_with(kFileScheme)) return okStatus();
  const std::string path(source.substr(kFileScheme.size()));
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    return makeError(Outcome::BenchmarkError, "cannot load " + path + ": " + std::strerror(errno) +
                                                  "; check the path (it must be absolute and readable)");
  }
  if (!S_ISREG(info.st_mode) && !S_ISDIR(info.st_mode)) {
    return makeError(Outcome::BenchmarkError, notRegularFileMessage(path, info.st_mode));
  }
  return okStatus();
}

std::string notRegularFileMessage(const std::string& path, mode_t mode) {
  return "cannot load " + path + ": it is " + fileKind(mode) +
         ", not a regular file; a benchmark is a regular .bc, .ll or C/C++ source file, or a directory of sources";
}

std::string defaultUserCacheDir() {
  if (const char* root = ::getenv("FORKGYM_CACHE_DIR"); root && *root) return std::string(root) + "/benchmarks";
  if (const char* cache = ::getenv("FORKGYM_CACHE"); cache && *cache) return std::string(cache) + "/benchmarks";
  const char* xdg = ::getenv("XDG_CACHE_HOME");
  // Root's cache is outside /root, readable by a root server's sandbox user.
  if (::geteuid() == 0 && !(xdg && *xdg)) return "/var/cache/forkgym/benchmarks";
  if (xdg && *xdg) return std::string(xdg) + "/forkgym/benchmarks";
  if (const char* home = ::getenv("HOME"); home && *home) return std::string(home) + "/.cache/forkgym/benchmarks";
  return {};
}

}  // namespace forkgym::passes
