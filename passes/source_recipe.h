// SourceRecipe: how a source dataset's file is made into a benchmark — its
// language, the dataset's extra compiler flags, and a named rewrite of the
// text before it is compiled (dataset.h reads these from dataset.ini).
//
// Lifecycle:
//   1. Zygote: a backend's resolve() puts the recipe of a source dataset's
//      file into its BenchmarkLocation (benchmark_uri.h); the recipe is part
//      of the zygote's BenchmarkKey, so a dataset whose flags change loads
//      again.
//   2. Loader child: the backend's load() gets it in the LoadRequest
//      (benchmark_load.h), applies the transform to the text it read, and
//      compiles with the language's and the dataset's flags.
// Any process; strings only.
#pragma once

#include <compare>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace forkgym::passes {

struct SourceRecipe {
  std::string dataset;             // its name ("gcc-c-torture-v0"), for messages
  std::string language;            // a SourceLanguage's name; empty: not a dataset source
  std::vector<std::string> flags;  // after the base command; {dataset} already expanded
  std::string transform;           // a SourceTransform's name, or empty
  // The file as the dataset names it, relative to its root with the suffix
  // ("execute/20000112-1.c"): what diagnostics and __FILE__ say, the same
  // on every machine wherever the dataset is installed.
  std::string name;

  bool empty() const { return language.empty(); }
  auto operator<=>(const SourceRecipe&) const = default;
  bool operator==(const SourceRecipe&) const = default;
};

// The languages a dataset's sources may be in (dataset.ini's `language`).
struct SourceLanguage {
  std::string_view name;       // as dataset.ini spells it
  std::string_view clangName;  // clang's -x
};
std::span<const SourceLanguage> sourceLanguages();
const SourceLanguage* findSourceLanguage(std::string_view name);

// Named rewrites of a source's text before it is compiled (dataset.ini's
// `transform`).
struct SourceTransform {
  std::string_view name;
  std::string_view description;
  std::string (*apply)(std::string_view text);
};
std::span<const SourceTransform> sourceTransforms();
const SourceTransform* findSourceTransform(std::string_view name);

// "a, b and c" of the names above, for messages.
std::string sourceLanguageNames();
std::string sourceTransformNames();

}  // namespace forkgym::passes
