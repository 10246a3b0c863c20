// BenchmarkDirectory: how a loader names the files of a benchmark whose
// directory it entered while still privileged.
//
// A root server's loader becomes the sandbox user before it reads anything,
// and that user may not be able to search the benchmark's ancestors (/root
// is 0700; a CI clone may sit anywhere). So, in order:
//   1. The loader child, still privileged and with the client's file-system
//      identity (sandbox/client_identity.h), chdir()s into the benchmark's
//      directory — a file's parent, or a directory benchmark itself — and
//      records it here (LoadRequest::workingDirectory).
//   2. After it gave up its privileges, it opens every file under that
//      directory by the relative name local() gives: a relative lookup checks
//      the permissions of the directory and below only, so the sandbox user
//      needs the benchmark's directory searchable and its files readable,
//      nothing above them.
//   3. Whatever it reports — messages, the files the zygote re-checks on
//      each reset (benchmark_inputs.h), the line markers and __FILE__ of the
//      preprocessed text (and so the content hash) — is mapped back with
//      absolute(), the one translation between the two spellings.
//   4. With --benchmark-root, every file a load reads is checked against the
//      roots by its real path. realPath() resolves it as the sandbox user
//      can: under the working directory by its local name, under a root
//      through the root's descriptor (opened, like the working directory,
//      while privileged; a lookup from a descriptor checks nothing above
//      it), elsewhere as it is.
// An empty directory (a load run in-process, a generator) leaves every path
// as it is.
//
// Any process may use this; it rewrites strings, and realPath() looks paths up.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace forkgym::passes {

class BenchmarkDirectory {
 public:
  BenchmarkDirectory() = default;
  // `directory`: absolute, the process's working directory. `roots`: the
  // realpath'd --benchmark-root directories, each with an O_PATH descriptor
  // of it (-1: none), which must stay open while this is used.
  explicit BenchmarkDirectory(std::string_view directory, std::vector<std::pair<std::string, int>> roots = {});

  bool entered() const { return !directory_.empty(); }
  const std::string& path() const { return directory_; }

  // The name to open `absolute` by: "." for the directory, "./rest" for
  // anything under it, `absolute` itself elsewhere.
  std::string local(std::string_view absolute) const;
  // The absolute name of `local` (a name local() gave, or one a compiler
  // built from it: "./x.h", "sub/y.h", "./../z.h"); absolute names are
  // returned as they are. Joined, not normalised: "a/../b" stays as the
  // kernel resolves it (through symbolic links), as a compiler given the
  // absolute name would have spelled it.
  std::string absolute(std::string_view local) const;

  // The real path (symbolic links resolved) of `absolute`, or empty if it
  // does not resolve (missing, or out of reach).
  std::string realPath(std::string_view absolute) const;

  // The prefix local() puts before names under the directory, and what
  // absolute() puts in its place — for compiler options that remap it
  // (clang's -fmacro-prefix-map=./=<dir>/).
  static constexpr std::string_view kLocalPrefix = "./";
  std::string absolutePrefix() const { return directory_ == "/" ? directory_ : directory_ + "/"; }

 private:
  std::string directory_;  // without a trailing slash, except "/" itself
  std::vector<std::pair<std::string, int>> roots_;
};

}  // namespace forkgym::passes
