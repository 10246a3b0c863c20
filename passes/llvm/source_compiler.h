// Compiling C/C++ benchmark sources with the build's clang, in two steps so
// that what is compiled is exactly what is hashed and checked:
//
//   1. preprocess(path): clang -E, with -MD listing every file it read. With
//      --benchmark-root, a file read outside the roots and the system include
//      directories (an #include or #embed of /etc/shadow, a source that is a
//      symlink out of the root) refuses the benchmark, naming the file, before
//      anything is compiled; diagnostics are printed without quoted source
//      lines, and none located outside the roots is echoed. Every file read
//      outside the system directories is recorded (InputRecorder) for the
//      zygote's freshness check.
//   2. compile(preprocessed): clang compiles that text from stdin, reading no
//      file at all. (It may be started before step 1, so its start-up
//      overlaps the preprocessing; it reads nothing until step 2.)
// __DATE__ and __TIME__ expand to a fixed time (SOURCE_DATE_EPOCH=0), so the
// same sources give the same module.
//
// Loader child only (it runs clang). What is not closed: a client that can
// write inside a root and swaps a directory for a symlink while clang -E runs
// could still have clang read outside (the later checks see the swapped-back
// path). A mount namespace showing clang only the roots closes that; see the
// README's threat model.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "passes/benchmark_directory.h"
#include "passes/benchmark_inputs.h"
#include "passes/source_recipe.h"
#include "passes/tool_process.h"

namespace llvm {
class LLVMContext;
class Module;
}  // namespace llvm

namespace forkgym::passes {

struct SourceCompilerOptions {
  std::vector<std::string> roots;  // realpath'd --benchmark-root directories; empty: anywhere
  uint64_t addressSpaceBytes = 0;  // clang's RLIMIT_AS; 0: inherited
  // The loader's working directory: clang is given relative names under it,
  // and the names it gives back are made absolute again — in the
  // dependency list, the diagnostics, and the preprocessed text's line
  // markers and __FILE__ — so the text and its hash are what they would be
  // had clang been given the absolute path.
  BenchmarkDirectory directory;
};

struct PreprocessedSource {
  std::string path;      // as named (absolute)
  bool cxx = false;      // C++ (.cc, .cpp, .cxx) rather than C
  std::string text;      // clang -E output
};

class SourceCompiler {
 public:
  SourceCompiler(SourceCompilerOptions options, InputRecorder& recorder)
      : options_(std::move(options)), recorder_(recorder) {}

  Result<PreprocessedSource> preprocess(const std::string& path);
  // Starts the compiler for a source of this language before its text is
  // ready, so clang's own start-up overlaps preprocess(); compile() then
  // hands it the text (until then it has read nothing, and destroying it
  // unused kills it).
  Result<ToolProcess> startCompiler(bool cxx);
  Result<std::unique_ptr<llvm::Module>> compile(const PreprocessedSource& source, llvm::LLVMContext& context,
                                                ToolProcess* started = nullptr);
  // Compiles program text given on stdin (a generator's output), with extra
  // clang arguments (include directories).
  Result<std::unique_ptr<llvm::Module>> compileText(std::string_view text, const std::vector<std::string>& extraArgs,
                                                    std::string_view what, llvm::LLVMContext& context);

  // Every compile option, for the content hash.
  static std::string optionsForHash();

  // A source dataset's file (source_recipe.h), as CompilerGym compiled its
  // datasets: `text` (read and transformed by the loader) on clang's stdin,
  //   clang -c -emit-llvm -O1 -Xclang -disable-llvm-passes
  //         -Xclang -disable-llvm-optzns <dataset flags> -x <language> -
  // — unoptimised IR without -O0's optnone and noinline. Returns clang's
  // bitcode as it wrote it (the module cached beside the source) and the
  // headers it read but for the system's, as clang named them (relative to
  // the working directory, or absolute): those of a user's dataset are the
  // user's to edit.
  struct DatasetModule {
    std::string bitcode;
    std::vector<std::string> headers;
  };
  Result<DatasetModule> compileDatasetSource(std::string_view text, const SourceRecipe& recipe, std::string_view what);
  // Every option of that compile, for the content hash and the cached
  // module's key.
  static std::string datasetOptionsForHash(const SourceRecipe& recipe);

 private:
  std::vector<std::string> compileArgs(const std::vector<std::string>& extraArgs) const;
  static std::vector<std::string> datasetCompileArgs(const SourceRecipe& recipe);
  Result<std::unique_ptr<llvm::Module>> finishCompile(ToolProcess& tool, std::string_view text, std::string_view what,
                                                      llvm::LLVMContext& context);

  SourceCompilerOptions options_;
  InputRecorder& recorder_;
};

bool isSourcePath(std::string_view path);

}  // namespace forkgym::passes
