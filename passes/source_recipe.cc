#include "passes/source_recipe.h"

namespace forkgym::passes {
namespace {

std::string replacedAll(std::string text, std::string_view from, std::string_view to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// CompilerGym's POJ-104 preprocessing (poj104.py), step for step: many of
// the programs declare main without a return type or as void, and use a few
// names they never define. "\nmain" loses its newline, as CompilerGym's did.
std::string poj104(std::string_view source) {
  std::string text = replacedAll(std::string(source), "void main", "int main");
  text = replacedAll(std::move(text), "\nmain", "int main");
  if (text.starts_with("main")) text = "int " + text;
  return "#include <bits/stdc++.h>\nusing namespace std;\n"
         "#define LEN 128\n#define MAX_LENGTH 1024\n#define MAX 1024\n" +
         text;
}

constexpr SourceLanguage kLanguages[] = {
    {"c", "c"},
    {"c++", "c++"},
    {"opencl", "cl"},
};

constexpr SourceTransform kTransforms[] = {
    {"poj104",
     "POJ-104's programs as CompilerGym compiled them: main given an int return type, <bits/stdc++.h> and "
     "`using namespace std` prepended, LEN, MAX_LENGTH and MAX defined",
     &poj104},
};

template <typename Rows>
std::string namesOf(const Rows& rows) {
  std::string names;
  for (size_t i = 0; i < std::size(rows); ++i) {
    if (i > 0) names += i + 1 == std::size(rows) ? " and " : ", ";
    names += rows[i].name;
  }
  return names;
}

}  // namespace

std::span<const SourceLanguage> sourceLanguages() { return kLanguages; }

const SourceLanguage* findSourceLanguage(std::string_view name) {
  for (const SourceLanguage& language : kLanguages) {
    if (language.name == name) return &language;
  }
  return nullptr;
}

std::span<const SourceTransform> sourceTransforms() { return kTransforms; }

const SourceTransform* findSourceTransform(std::string_view name) {
  for (const SourceTransform& transform : kTransforms) {
    if (transform.name == name) return &transform;
  }
  return nullptr;
}

std::string sourceLanguageNames() { return namesOf(kLanguages); }
std::string sourceTransformNames() { return namesOf(kTransforms); }

}  // namespace forkgym::passes
