#include "passes/dataset.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

#include "base/trimmed.h"
#include "base/unique_fd.h"

namespace forkgym::passes {
namespace {

constexpr std::string_view kScheme = "benchmark://";

Error benchmarkError(std::string message) { return makeError(Outcome::BenchmarkError, std::move(message)); }

int64_t nanoseconds(const timespec& time) { return static_cast<int64_t>(time.tv_sec) * 1'000'000'000 + time.tv_nsec; }

std::string reinstallAdvice(std::string_view name) {
  return "reinstall it: python -m forkgym datasets uninstall " + std::string(name) +
         ", then python -m forkgym datasets install " + std::string(name) +
         " (a dataset of yours: register its directory again)";
}

// dataset.ini's keys, each with what it may hold (checked in parseDatasetIni).
constexpr std::string_view kKeys[] = {"uri",       "kind",     "root",    "suffix",         "language",
                                      "flags",     "transform", "runnable", "runnable_prefix"};

std::string keyList() {
  std::string list;
  for (std::string_view key : kKeys) list += (list.empty() ? "" : ", ") + std::string(key);
  return list;
}

std::vector<std::string> splitWords(std::string_view text) {
  std::vector<std::string> words;
  size_t at = 0;
  while (at < text.size()) {
    const size_t start = text.find_first_not_of(" \t", at);
    if (start == std::string_view::npos) break;
    const size_t end = std::min(text.find_first_of(" \t", start), text.size());
    words.emplace_back(text.substr(start, end - start));
    at = end;
  }
  return words;
}

std::string expandDataset(std::string word, const std::string& directory) {
  constexpr std::string_view kPlaceholder = "{dataset}";
  for (size_t at = word.find(kPlaceholder); at != std::string::npos;
       at = word.find(kPlaceholder, at + directory.size())) {
    word.replace(at, kPlaceholder.size(), directory);
  }
  return word;
}

// A dataset name or a path component a client may use: not empty, not "."
// or "..", no '/' or NUL.
bool plainComponent(std::string_view text) {
  return !text.empty() && text != "." && text != ".." && text.find('/') == std::string_view::npos &&
         text.find('\0') == std::string_view::npos;
}

}  // namespace

std::string installAdvice(std::string_view name) {
  return "python -m forkgym datasets install " + std::string(name);
}

Result<DatasetSpec> parseDatasetIni(std::string_view text, const std::string& path, const std::string& name,
                                    const std::string& directory) {
  std::map<std::string, std::pair<std::string, int>> values;  // key -> (value, line)
  int number = 0;
  const auto lineError = [&](int line, const std::string& problem) {
    return benchmarkError(path + ":" + std::to_string(line) + ": " + problem + "; fix that line, or " +
                          reinstallAdvice(name));
  };
  while (!text.empty()) {
    ++number;
    const size_t newline = text.find('\n');
    const std::string_view raw = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    const std::string_view line = trimmed(raw);
    if (line.empty() || line.starts_with('#')) continue;
    const size_t equals = line.find('=');
    if (equals == std::string_view::npos) {
      return lineError(number, "expected `key = value`, got '" + std::string(line) + "'");
    }
    const std::string key(trimmed(line.substr(0, equals)));
    const std::string value(trimmed(line.substr(equals + 1)));
    if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys)) {
      return lineError(number, "unknown key '" + key + "' (the keys are " + keyList() + ")");
    }
    if (auto previous = values.find(key); previous != values.end()) {
      return lineError(number, "'" + key + "' is given twice (first on line " +
                                   std::to_string(previous->second.second) + ")");
    }
    values.emplace(key, std::make_pair(value, number));
  }
  const auto line = [&](const std::string& key) { return values.count(key) ? values[key].second : number; };
  const auto missing = [&](const std::string& key, const std::string& example) {
    return benchmarkError(path + " has no '" + key + "' line (e.g. `" + example + "`); " + reinstallAdvice(name));
  };

  DatasetSpec spec;
  spec.name = name;
  spec.directory = directory;
  spec.uri = std::string(kScheme) + name;
  if (auto uri = values.find("uri"); uri != values.end() && uri->second.first != spec.uri) {
    return lineError(line("uri"), "uri is '" + uri->second.first + "', but the dataset's directory says " + spec.uri);
  }

  if (!values.count("kind")) return missing("kind", "kind = prebuilt");
  const std::string& kind = values["kind"].first;
  if (kind != "prebuilt" && kind != "source") {
    return lineError(line("kind"), "kind is '" + kind + "': it must be prebuilt (bitcode or IR loaded as it is) or "
                                   "source (compiled on demand)");
  }
  spec.kind = kind == "prebuilt" ? DatasetKind::Prebuilt : DatasetKind::Source;

  if (!values.count("root") || values["root"].first.empty()) return missing("root", "root = contents/" + name);
  const std::string& root = values["root"].first;
  spec.root = root.starts_with('/') ? root : directory + "/" + root;
  while (spec.root.size() > 1 && spec.root.ends_with('/')) spec.root.pop_back();

  if (!values.count("suffix")) return missing("suffix", spec.kind == DatasetKind::Prebuilt ? "suffix = .bc" : "suffix = .c");
  spec.suffix = values["suffix"].first;
  if (spec.suffix.empty() || spec.suffix.find('/') != std::string::npos) {
    return lineError(line("suffix"), "suffix '" + spec.suffix + "' must be a file name ending, e.g. .bc or .c");
  }

  const std::string language = values.count("language") ? values["language"].first : "";
  if (spec.kind == DatasetKind::Prebuilt) {
    if (!language.empty() && language != "bitcode") {
      return lineError(line("language"), "a prebuilt dataset's language is bitcode, not '" + language +
                                             "' (kind = source compiles sources)");
    }
    if (spec.suffix != ".bc" && spec.suffix != ".ll") {
      return lineError(line("suffix"), "a prebuilt dataset's files are bitcode (.bc) or IR (.ll), not '" + spec.suffix +
                                           "' (kind = source compiles sources)");
    }
    for (const char* sourceOnly : {"flags", "transform"}) {
      if (values.count(sourceOnly)) {
        return lineError(line(sourceOnly), std::string(sourceOnly) + " applies to source datasets only (kind = source)");
      }
    }
    spec.language = "bitcode";
  } else {
    if (language.empty()) return missing("language", "language = c");
    if (!findSourceLanguage(language)) {
      return lineError(line("language"),
                       "unknown language '" + language + "' for a source dataset (it may be " + sourceLanguageNames() + ")");
    }
    spec.language = language;
    if (values.count("flags")) {
      for (std::string& word : splitWords(values["flags"].first)) spec.flags.push_back(expandDataset(word, directory));
    }
    if (values.count("transform") && !values["transform"].first.empty()) {
      spec.transform = values["transform"].first;
      if (!findSourceTransform(spec.transform)) {
        return lineError(line("transform"), "unknown transform '" + spec.transform + "' (there is " +
                                                sourceTransformNames() + ")");
      }
    }
  }
  if (values.count("runnable")) {
    const std::string& runnable = values["runnable"].first;
    if (runnable != "true" && runnable != "false") {
      return lineError(line("runnable"), "runnable is '" + runnable + "': it must be true or false");
    }
    spec.runnable = runnable == "true";
  }
  if (values.count("runnable_prefix")) {
    if (!spec.runnable) {
      return lineError(line("runnable_prefix"), "runnable_prefix says which benchmarks run; it needs runnable = true");
    }
    spec.runnablePrefix = values["runnable_prefix"].first;
  }
  return spec;
}

Result<DatasetSpec> InstalledDatasets::spec(const std::string& name) {
  const std::string directory = datasetsDir() + "/" + name;
  const std::string path = directory + "/" + std::string(kDatasetIni);
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    parsed_.erase(name);
    return benchmarkError("the dataset " + name + " is installed but cannot be read: " + path + ": " +
                          std::strerror(errno) + "; " + reinstallAdvice(name));
  }
  if (auto cached = parsed_.find(name); cached != parsed_.end()) {
    const Parsed& known = cached->second;
    if (known.device == info.st_dev && known.inode == info.st_ino && known.size == info.st_size &&
        known.mtimeNs == nanoseconds(info.st_mtim) && known.ctimeNs == nanoseconds(info.st_ctim)) {
      return known.spec;
    }
  }
  const auto refuse = [&](const std::string& problem) {
    return benchmarkError(path + " " + problem + "; " + reinstallAdvice(name));
  };
  if (!S_ISREG(info.st_mode)) return refuse("is not a regular file");
  if (static_cast<uint64_t>(info.st_size) > kMaxDatasetIniBytes) {
    return refuse("is " + std::to_string(info.st_size) + " bytes, not a dataset.ini (at most " +
                  std::to_string(kMaxDatasetIniBytes) + ")");
  }
  // Opened without blocking and checked again through the descriptor: what
  // is read is what was checked, even if the path was swapped meanwhile.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!fd) return refuse(std::string("cannot be opened: ") + std::strerror(errno));
  if (::fstat(fd.get(), &info) != 0) return refuse(std::string("cannot be read: ") + std::strerror(errno));
  if (!S_ISREG(info.st_mode)) return refuse("is not a regular file");
  if (static_cast<uint64_t>(info.st_size) > kMaxDatasetIniBytes) return refuse("is too large to be a dataset.ini");
  std::string text(kMaxDatasetIniBytes + 1, '\0');
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::read(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return refuse(std::string("cannot be read: ") + std::strerror(errno));
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  if (done > kMaxDatasetIniBytes) return refuse("is too large to be a dataset.ini");
  text.resize(done);
  Parsed parsed;
  parsed.device = info.st_dev;
  parsed.inode = info.st_ino;
  parsed.size = info.st_size;
  parsed.mtimeNs = nanoseconds(info.st_mtim);
  parsed.ctimeNs = nanoseconds(info.st_ctim);
  parsed.spec = parseDatasetIni(text, path, name, directory);
  auto result = parsed.spec;
  parsed_.insert_or_assign(name, std::move(parsed));
  return result;
}

Result<DatasetFile> InstalledDatasets::find(std::string_view uri) {
  const std::string text(uri);
  std::string_view rest = uri.starts_with(kScheme) ? uri.substr(kScheme.size()) : uri;
  const size_t slash = rest.find('/');
  const std::string name(rest.substr(0, slash));
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  // CompilerGym ignores both: a query names a run configuration (cbench's
  // ?dataset=N), a fragment nothing.
  path = path.substr(0, std::min(path.find('?'), path.find('#')));
  if (!plainComponent(name) || name.starts_with('.')) {
    return makeError(Outcome::InvalidRequest, "'" + text + "': '" + name + "' is not a dataset name; a benchmark URI "
                                              "is benchmark://<dataset>/<benchmark>, e.g. benchmark://cbench-v1/qsort");
  }
  if (path.empty()) {
    return makeError(Outcome::InvalidRequest, "'" + text + "' names a dataset, not one of its benchmarks; e.g. " +
                                                  std::string(kScheme) + name + "/<benchmark>");
  }
  for (size_t at = 0; at <= path.size();) {
    const size_t end = std::min(path.find('/', at), path.size());
    if (!plainComponent(path.substr(at, end - at))) {
      return makeError(Outcome::InvalidRequest,
                       "'" + text + "': a benchmark's path within its dataset may not be absolute or have an empty, "
                       "'.' or '..' component; give it as the dataset lists it, e.g. " +
                           std::string(kScheme) + name + "/dir/name");
    }
    at = end + 1;
  }
  if (siteDataDir_.empty()) {
    return benchmarkError("'" + text + "': this server has no site-data directory, so no dataset is installed "
                          "(start forkgym-server with --site-data DIR, or set FORKGYM_SITE_DATA or HOME)");
  }

  const std::string directory = datasetsDir() + "/" + name;
  struct stat info {};
  if (::stat(directory.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
    std::string installed;
    for (const std::string& one : installedNames()) installed += (installed.empty() ? "" : ", ") + one;
    return benchmarkError("'" + text + "': unknown dataset '" + name + "': it is not installed in " + datasetsDir() +
                          " (installed: " + (installed.empty() ? std::string("none") : installed) +
                          "). A catalogue dataset installs with " + installAdvice(name) +
                          ", or on first use when Python resets to it (forkgym.make(..., benchmark=...)); "
                          "python -m forkgym datasets lists them");
  }
  const std::string marker = directory + "/" + std::string(kInstalledMarker);
  if (::stat(marker.c_str(), &info) != 0) {
    return benchmarkError("'" + text + "': the dataset " + name + " is not installed: " + directory +
                          " has no .installed marker (only its manifest was fetched, or an install was "
                          "interrupted); install it with " + installAdvice(name) +
                          ", or reset to it from Python (forkgym.make(..., benchmark=...)), which installs it on "
                          "first use");
  }
  auto spec = this->spec(name);
  if (!spec) return spec.takeError();

  DatasetFile file;
  file.uri = text;
  file.path = spec->root + "/" + std::string(path) + spec->suffix;
  if (::stat(file.path.c_str(), &info) != 0) {
    return benchmarkError("'" + text + "': no benchmark '" + std::string(path) + "' in the dataset " + name + " (" +
                          file.path + ": " + std::strerror(errno) + "); its benchmarks are listed by "
                          "env.datasets['" + name + "'].benchmark_uris() in Python, or in " + directory +
                          "/manifest.txt");
  }
  if (spec->kind == DatasetKind::Source) {
    file.recipe.dataset = name;
    file.recipe.language = spec->language;
    file.recipe.flags = spec->flags;
    file.recipe.transform = spec->transform;
    file.recipe.name = std::string(path) + spec->suffix;
  }
  file.runnable = spec->runnable && path.starts_with(spec->runnablePrefix);
  file.spec = std::move(*spec);
  return file;
}

std::vector<std::string> InstalledDatasets::installedNames() const {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(datasetsDir(), error)) {
    std::error_code ignored;
    if (std::filesystem::exists(entry.path() / std::string(kInstalledMarker), ignored)) {
      names.push_back(entry.path().filename().string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string defaultSiteDataDir() {
  if (const char* own = ::getenv("FORKGYM_SITE_DATA"); own && *own) return std::filesystem::absolute(own).string();
  if (const char* xdg = ::getenv("XDG_DATA_HOME"); xdg && *xdg) {
    return (std::filesystem::absolute(xdg) / "forkgym").string();
  }
  // Root's datasets are outside /root, readable by a root server's sandbox user.
  if (::geteuid() == 0) return "/var/lib/forkgym";
  if (const char* home = ::getenv("HOME"); home && *home) return std::string(home) + "/.local/share/forkgym";
  return {};
}

}  // namespace forkgym::passes
