#include "passes/spaces.h"

namespace forkgym::passes {

std::optional<size_t> findSpace(std::span<const Space> spaces, std::string_view name) {
  for (size_t i = 0; i < spaces.size(); ++i) {
    if (spaces[i].name == name) return i;
  }
  return std::nullopt;
}

Status checkValue(const Space& space, const ObservationValue& value) {
  static constexpr const char* kTypeNames[] = {"int64",  "int64 list", "text",       "bytes",
                                               "bool",   "float64",    "float64 list", "int64 map"};
  if (typeOf(value) != space.type) {
    return makeError(Outcome::ServerError, "observation '" + space.name + "' computed a value of type " +
                                               kTypeNames[value.index()] + " where its space promises " +
                                               kTypeNames[static_cast<size_t>(space.type)] +
                                               " (a bug in its backend)");
  }
  if (space.shape.size() != 1) return okStatus();
  const size_t want = static_cast<size_t>(space.shape[0]);
  const size_t got = std::visit(
      [](const auto& v) -> size_t {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, std::vector<int64_t>> || std::is_same_v<V, std::vector<double>> ||
                      std::is_same_v<V, std::vector<NamedCount>>) {
          return v.size();
        } else {
          return 0;
        }
      },
      value);
  if ((space.type == ValueType::Int64List || space.type == ValueType::Float64List) && got != want) {
    return makeError(Outcome::ServerError, "observation '" + space.name + "' computed " + std::to_string(got) +
                                               " values where its space promises " + std::to_string(want) +
                                               " (a bug in its backend)");
  }
  return okStatus();
}

std::vector<std::string> toStrings(std::span<const std::string_view> names) {
  return std::vector<std::string>(names.begin(), names.end());
}

}  // namespace forkgym::passes
