// The observation spaces a session can compute, as a table: name, value
// type and flags (exposed through observationSpaces() in session.h), plus
// the identifier the session switches on.
// Any process; no LLVM state.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace forkgym::passes {

enum class Observation : uint8_t {
  Ir,
  IrSha1,
  Bitcode,
  IrInstructionCount,
  IrInstructionCountO0,
  IrInstructionCountO3,
  IrInstructionCountOz,
  InstCount,
  Autophase,
  ObjectTextSizeBytes,
  ObjectTextSizeO0,
  ObjectTextSizeO3,
  ObjectTextSizeOz,
};

std::optional<Observation> findObservation(std::string_view name);

}  // namespace forkgym::passes
