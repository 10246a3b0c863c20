#include "passes/llvm/observations.h"

#include <array>

#include "passes/llvm/autophase.h"
#include "passes/llvm/inst_count.h"
#include "passes/llvm/session.h"

namespace forkgym::passes {
namespace {

struct Row {
  Observation id;
  ObservationSpaceInfo info;
};

// Deterministic: the same benchmark and actions give the same value.
// Platform-dependent: the value depends on the host's code generator.
// Everything about the IR is portable; object code is not.
constexpr Row kRows[] = {
    {Observation::Ir, {"Ir", ValueType::Text, 0, true, false}},
    {Observation::IrSha1, {"IrSha1", ValueType::Text, 0, true, false}},
    {Observation::Bitcode, {"Bitcode", ValueType::Bytes, 0, true, false}},
    {Observation::IrInstructionCount, {"IrInstructionCount", ValueType::Int64, 0, true, false}},
    {Observation::IrInstructionCountO0, {"IrInstructionCountO0", ValueType::Int64, 0, true, false}},
    {Observation::IrInstructionCountO3, {"IrInstructionCountO3", ValueType::Int64, 0, true, false}},
    {Observation::IrInstructionCountOz, {"IrInstructionCountOz", ValueType::Int64, 0, true, false}},
    {Observation::InstCount,
     {"InstCount", ValueType::Int64List, static_cast<int64_t>(kInstCountFeatureCount), true, false}},
    {Observation::Autophase,
     {"Autophase", ValueType::Int64List, static_cast<int64_t>(kAutophaseFeatureCount), true, false}},
    {Observation::ObjectTextSizeBytes, {"ObjectTextSizeBytes", ValueType::Int64, 0, true, true}},
    {Observation::ObjectTextSizeO0, {"ObjectTextSizeO0", ValueType::Int64, 0, true, true}},
    {Observation::ObjectTextSizeO3, {"ObjectTextSizeO3", ValueType::Int64, 0, true, true}},
    {Observation::ObjectTextSizeOz, {"ObjectTextSizeOz", ValueType::Int64, 0, true, true}},
};

constexpr std::array<ObservationSpaceInfo, std::size(kRows)> makeSpaces() {
  std::array<ObservationSpaceInfo, std::size(kRows)> spaces{};
  for (size_t i = 0; i < std::size(kRows); ++i) spaces[i] = kRows[i].info;
  return spaces;
}
constexpr std::array<ObservationSpaceInfo, std::size(kRows)> kSpaces = makeSpaces();

}  // namespace

std::span<const ObservationSpaceInfo> observationSpaces() { return kSpaces; }

std::optional<Observation> findObservation(std::string_view name) {
  for (const Row& row : kRows) {
    if (row.info.name == name) return row.id;
  }
  return std::nullopt;
}

}  // namespace forkgym::passes
