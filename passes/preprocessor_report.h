// What a C preprocessor (clang -E or gcc -E) says it read, checked against
// the server's benchmark roots. Both compilers print the same two reports:
//   -MD -MF /dev/fd/3 -MT forkgym   a make rule listing every file read;
//   -v                              the system include directories, between
//                                   "#include <...> search starts here:" and
//                                   "End of search list." on stderr.
// With --benchmark-root, a file read outside the roots and the system
// include directories refuses the benchmark (naming the file) before
// anything is compiled; files inside the system directories are not inputs
// of the benchmark (they change with the compiler).
//
// Loader child (and tests); strings and realpath() only.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "passes/benchmark_directory.h"

namespace forkgym::passes {

// The files of "forkgym: a.c /x/b.h \\\n ...", undoing the escapes both
// compilers write ("\ " for a space, "\#" for '#', "$$" for '$').
std::vector<std::string> parseDependencyRule(std::string_view rule);

// Takes the system include directories (realpath'd) out of `err`, leaving
// only the diagnostics after the list. False when there is no list (the
// compiler failed before preprocessing): `err` is then left as it is.
bool takeIncludeSearchList(std::string& err, std::vector<std::string>& dirs);

// "path:12:3: error: ..." -> "path"; "In file included from path:3:" -> "path".
std::string diagnosticLocation(std::string_view line);

std::string realPathOf(const std::string& path);  // empty if it does not resolve

// Diagnostics with each location under `directory` ("./x.h:2:3: error",
// "In file included from ./x.c:1:") naming its file absolutely, as the
// compiler would have had it been given absolute names; quoted source lines
// are left alone.
std::string absoluteLocations(std::string_view diagnostics, const BenchmarkDirectory& directory);

class BenchmarkRoots {
 public:
  // `directory`: the loader's working directory (benchmark_directory.h);
  // files under it are resolved from there (its ancestors may not be
  // searchable by the sandbox user).
  explicit BenchmarkRoots(std::vector<std::string> roots, BenchmarkDirectory directory = {})
      : roots_(std::move(roots)), directory_(std::move(directory)) {}
  bool empty() const { return roots_.empty(); }
  // The real path of an absolute `path` as a loader that gave up its
  // privileges can resolve it (BenchmarkDirectory::realPath(): from the
  // working directory or a root's descriptor); empty if it does not resolve.
  std::string realPath(const std::string& path) const { return directory_.realPath(path); }
  // How to name `file` if it is refused (outside the roots and
  // `systemDirs`); empty when it is allowed (always, without roots).
  std::string refusal(const std::string& file, const std::vector<std::string>& systemDirs) const;
  // The first file of `files`, or of the diagnostics' locations, that is
  // refused, as refusal() names it; empty if none.
  std::string firstRefused(const std::vector<std::string>& files, std::string_view diagnostics,
                           const std::vector<std::string>& systemDirs) const;
  std::string list() const;  // "a, b" for messages

 private:
  std::vector<std::string> roots_;
  BenchmarkDirectory directory_;
};

// True if realpath'd `real` is `directory` or inside it.
bool insideDirectory(const std::string& real, const std::string& directory);
bool insideAnyDirectory(const std::string& real, const std::vector<std::string>& directories);

}  // namespace forkgym::passes
