#include "passes/preprocessor_report.h"

#include <stdlib.h>

#include <algorithm>
#include <cctype>

namespace forkgym::passes {

std::string realPathOf(const std::string& path) {
  char* resolved = ::realpath(path.c_str(), nullptr);
  if (resolved == nullptr) return {};
  std::string real = resolved;
  std::free(resolved);
  return real;
}

bool insideDirectory(const std::string& real, const std::string& directory) {
  return real == directory ||
         (real.starts_with(directory) && (directory.ends_with('/') || real[directory.size()] == '/'));
}

bool insideAnyDirectory(const std::string& real, const std::vector<std::string>& directories) {
  return std::any_of(directories.begin(), directories.end(),
                     [&](const std::string& d) { return insideDirectory(real, d); });
}

std::vector<std::string> parseDependencyRule(std::string_view rule) {
  std::vector<std::string> files;
  const size_t colon = rule.find(": ");
  if (colon == std::string_view::npos) return files;
  std::string current;
  for (size_t i = colon + 2; i < rule.size(); ++i) {
    const char c = rule[i];
    if (c == '\\' && i + 1 < rule.size()) {
      const char next = rule[i + 1];
      if (next == '\n') {
        ++i;
        continue;
      }
      if (next == ' ' || next == '#' || next == '\\') {
        current += next;
        ++i;
        continue;
      }
    }
    if (c == '$' && i + 1 < rule.size() && rule[i + 1] == '$') {
      current += '$';
      ++i;
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!current.empty()) files.push_back(std::move(current));
      current.clear();
      continue;
    }
    current += c;
  }
  if (!current.empty()) files.push_back(std::move(current));
  return files;
}

std::string diagnosticLocation(std::string_view line) {
  constexpr std::string_view kIncluded = "In file included from ";
  if (line.starts_with(kIncluded)) line.remove_prefix(kIncluded.size());
  for (size_t colon = line.find(':'); colon != std::string_view::npos; colon = line.find(':', colon + 1)) {
    size_t digits = colon + 1;
    while (digits < line.size() && std::isdigit(static_cast<unsigned char>(line[digits]))) ++digits;
    if (digits > colon + 1 && digits < line.size() && line[digits] == ':') return std::string(line.substr(0, colon));
  }
  return {};
}

bool takeIncludeSearchList(std::string& err, std::vector<std::string>& dirs) {
  constexpr std::string_view kStart = "#include <...> search starts here:\n";
  constexpr std::string_view kEnd = "End of search list.\n";
  const size_t start = err.find(kStart);
  const size_t end = err.find(kEnd);
  if (start == std::string::npos || end == std::string::npos || end < start) return false;
  std::string_view list = std::string_view(err).substr(start + kStart.size(), end - start - kStart.size());
  while (!list.empty()) {
    const size_t newline = list.find('\n');
    std::string_view line = list.substr(0, newline);
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    line = line.substr(0, line.find(" ("));  // "/path (framework directory)" on some platforms
    if (!line.empty()) {
      const std::string real = realPathOf(std::string(line));
      if (!real.empty()) dirs.push_back(real);
    }
    if (newline == std::string_view::npos) break;
    list.remove_prefix(newline + 1);
  }
  err.erase(0, end + kEnd.size());
  return true;
}

std::string BenchmarkRoots::refusal(const std::string& file, const std::vector<std::string>& systemDirs) const {
  if (roots_.empty()) return {};
  const std::string real = realPath(file);
  if (real.empty()) return file + " (which no longer exists)";
  if (insideAnyDirectory(real, roots_) || insideAnyDirectory(real, systemDirs)) return {};
  return real == file ? file : file + " (resolved to " + real + ")";
}

std::string BenchmarkRoots::firstRefused(const std::vector<std::string>& files, std::string_view diagnostics,
                                         const std::vector<std::string>& systemDirs) const {
  for (const std::string& file : files) {
    if (auto refused = refusal(file, systemDirs); !refused.empty()) return refused;
  }
  size_t start = 0;
  while (start < diagnostics.size()) {
    const size_t end = std::min(diagnostics.find('\n', start), diagnostics.size());
    const std::string location = diagnosticLocation(diagnostics.substr(start, end - start));
    if (!location.empty()) {
      if (auto refused = refusal(location, systemDirs); !refused.empty()) return refused;
    }
    start = end + 1;
  }
  return {};
}

std::string absoluteLocations(std::string_view diagnostics, const BenchmarkDirectory& directory) {
  if (!directory.entered()) return std::string(diagnostics);
  std::string out;
  while (!diagnostics.empty()) {
    const size_t newline = diagnostics.find('\n');
    std::string_view line =
        diagnostics.substr(0, newline == std::string_view::npos ? diagnostics.size() : newline + 1);
    diagnostics.remove_prefix(line.size());
    const std::string location = diagnosticLocation(line);
    const size_t at = location.empty() ? std::string_view::npos : line.find(location);
    if (at == std::string_view::npos || !location.starts_with(BenchmarkDirectory::kLocalPrefix)) {
      out += line;
      continue;
    }
    out += line.substr(0, at);
    out += directory.absolute(location);
    out += line.substr(at + location.size());
  }
  return out;
}

std::string BenchmarkRoots::list() const {
  std::string text;
  for (const auto& root : roots_) text += (text.empty() ? "" : ", ") + root;
  return text;
}

}  // namespace forkgym::passes
