// Observation and reward spaces as data, and the tables that compute them.
//
// Each backend has one table of observations and one of rewards: a row per
// space, holding its description (name, value type, shape, bounds, feature
// names, flags, one line of text) and the function that computes it. Every
// other list is derived from those rows: the worker's dispatch (a name is
// found in the table, then its function runs), the describe reply (the
// rows' Space parts, ipc/protocol.capnp's SpaceDescription), and from that
// the clients' spaces (Python builds its gymnasium spaces from the
// description alone). Adding an observation is one row and its function.
//
// Any process may read the tables; the functions run in a worker (or in a
// test) on that backend's session.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"

namespace forkgym::passes {

// The wire's ValueType (ipc/protocol.capnp), in its order; ObservationValue's
// alternatives follow the same order, so value.index() is its type.
enum class ValueType : uint8_t { Int64, Int64List, Text, Bytes, Bool, Float64, Float64List, Int64Map };

// One entry of an Int64Map value: a named count (e.g. gcc's instruction
// counts by mnemonic), in the order the backend chose.
struct NamedCount {
  std::string name;
  int64_t count = 0;
  bool operator==(const NamedCount&) const = default;
};

using ObservationValue = std::variant<int64_t,                  // Int64
                                      std::vector<int64_t>,     // Int64List
                                      std::string,              // Text
                                      std::vector<uint8_t>,     // Bytes
                                      bool,                     // Bool
                                      double,                   // Float64
                                      std::vector<double>,      // Float64List
                                      std::vector<NamedCount>>; // Int64Map

// How a client presents a value (ipc/protocol.capnp's ValueForm, in its
// order): a table row says it so that every client shows CompilerGym's
// shapes (a dict, a parsed JSON document, a file) from the description alone.
enum class ValueForm : uint8_t { Plain, FeatureDict, Json, File, Records, ProgramGraph, ProgramGraphNodeLink };

inline ValueType typeOf(const ObservationValue& value) { return static_cast<ValueType>(value.index()); }

inline constexpr double kUnbounded = std::numeric_limits<double>::infinity();

// A space as the description carries it.
struct Space {
  std::string name;
  ValueType type = ValueType::Int64;
  // Empty for a scalar, text, bytes or a list of no fixed length; {n} for a
  // list that always has n values.
  std::vector<int64_t> shape;
  // Bounds of each value (of a number, or of every element of a list); a
  // reward's range. +-kUnbounded when there is none.
  double low = -kUnbounded;
  double high = kUnbounded;
  // One name per element of a fixed-length list, in order (InstCount's 70).
  std::vector<std::string> featureNames;
  // The same benchmark and actions always give the same value.
  bool deterministic = true;
  // The value depends on the machine (e.g. its code generator).
  bool platformDependent = false;
  // Computed by building and running the benchmark's program (runner.h):
  // InvalidRequest on a benchmark without a run configuration.
  bool needsRunConfig = false;
  // How the client presents the value; FeatureDict and Records use
  // featureNames as keys (fields).
  ValueForm form = ValueForm::Plain;
  // The client gives float64 values as float32 (CompilerGym's dtype).
  bool float32 = false;
  // Form File: the suffix of the file's name (".bc").
  std::string fileSuffix;
  std::string description;
};

// A reward's running state, kept per reward by the session: CompilerGym's
// rewards are differences between the previous step's cost and this one's.
struct RewardState {
  std::optional<double> previous;  // unset until the reward is first asked for
};

template <typename Session>
struct ObservationRow {
  Space space;
  Result<ObservationValue> (*compute)(Session& session);
};

template <typename Session>
struct RewardRow {
  Space space;
  Result<double> (*compute)(Session& session, RewardState& state);
};

// The Space part of each row, in order (what the description carries).
template <typename Row>
std::vector<Space> spacesOf(std::span<const Row> rows) {
  std::vector<Space> spaces;
  spaces.reserve(rows.size());
  for (const Row& row : rows) spaces.push_back(row.space);
  return spaces;
}

// The index of the space named `name`, if any.
std::optional<size_t> findSpace(std::span<const Space> spaces, std::string_view name);

// Checks that `value` is what `space` promises (its type, and its length for
// a fixed-length list): a backend that computes something else has a bug,
// which must not reach a client as a well-formed answer.
Status checkValue(const Space& space, const ObservationValue& value);

// Owned copies of static names (feature-name tables are string_views).
std::vector<std::string> toStrings(std::span<const std::string_view> names);

}  // namespace forkgym::passes
