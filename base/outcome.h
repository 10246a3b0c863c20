// The outcome taxonomy: how a request to a worker or the zygote ended.
//
// One enum for the whole system. The wire protocol carries it as a UInt16,
// the C++ client returns it, and the Python package mirrors it by value
// (forkgym.Outcome), so adding a row here is the only change needed.
// Values are never renumbered.
#pragma once

#include <cstdint>
#include <string_view>

namespace forkgym {

#define FORKGYM_OUTCOMES(X)                                                              \
  X(Ok, 0, "ok", "the request succeeded")                                                \
  X(InvalidRequest, 1, "invalid_request", "the request was malformed or named something unknown") \
  X(BenchmarkError, 2, "benchmark_error", "the benchmark could not be found, built or parsed") \
  X(Crashed, 3, "crashed", "the worker died from a signal")                              \
  X(TimedOut, 4, "timed_out", "the worker exceeded its wall-clock or CPU limit and was killed") \
  X(OutOfMemory, 5, "out_of_memory", "the worker exceeded its memory limit")             \
  X(SandboxViolation, 6, "sandbox_violation", "the worker made a system call its sandbox denies") \
  X(VerifierFailed, 7, "verifier_failed", "a pass produced IR that fails the LLVM verifier") \
  X(SetupFailed, 8, "setup_failed", "the worker could not be set up (a sandbox stage failed)") \
  X(ServerError, 9, "server_error", "the zygote could not be reached or failed")        \
  X(ProtocolMismatch, 10, "protocol_mismatch", "client and server speak different protocol versions or action tables") \
  X(SessionClosed, 11, "session_closed", "the session was closed or never started")        \
  X(Interrupted, 12, "interrupted", "the client interrupted the request (e.g. Ctrl-C); the worker was killed") \
  X(ResourceExhausted, 13, "resource_exhausted", "the client process ran out of a resource (e.g. file descriptors); the episode is unaffected") \
  X(LimitReached, 14, "limit_reached", "the request would exceed a server limit (e.g. an episode's process limit); the episode goes on") \
  X(CompilerFailed, 15, "compiler_failed", "an external compiler crashed or timed out on the new state; the step was undone and the episode goes on") \
  X(BackendUnavailable, 16, "backend_unavailable", "the server has this backend but could not start it (e.g. its compiler is not installed); it serves its other backends") \
  X(BuildFailed, 17, "build_failed", "the benchmark's program could not be built (the linker or build command failed); the episode goes on") \
  X(OutputTooLarge, 18, "output_too_large", "the benchmark's program wrote more than its limit (files or captured output) and was stopped")

enum class Outcome : uint16_t {
#define X(name, value, text, doc) name = value,
  FORKGYM_OUTCOMES(X)
#undef X
};

// Stable snake_case name, used in logs, Python and reproducers.
constexpr std::string_view outcomeName(Outcome outcome) {
  switch (outcome) {
#define X(name, value, text, doc) \
  case Outcome::name:             \
    return text;
    FORKGYM_OUTCOMES(X)
#undef X
  }
  return "unknown";
}

// True for outcomes after which the worker is gone and the episode is over.
constexpr bool endsEpisode(Outcome outcome) {
  switch (outcome) {
    case Outcome::Ok:
    case Outcome::InvalidRequest:
    case Outcome::BenchmarkError:
    case Outcome::ProtocolMismatch:
    case Outcome::ResourceExhausted:
    case Outcome::LimitReached:
    case Outcome::CompilerFailed:
    case Outcome::BackendUnavailable:
    case Outcome::BuildFailed:
    case Outcome::OutputTooLarge:
      return false;
    default:
      return true;
  }
}

// True for the values FORKGYM_OUTCOMES defines: a peer's other values say
// nothing a reader may act on.
constexpr bool isWireOutcome(uint16_t value) {
  switch (value) {
#define X(name, v, text, doc) \
  case v:                     \
    return true;
    FORKGYM_OUTCOMES(X)
#undef X
  }
  return false;
}

constexpr Outcome outcomeFromWire(uint16_t value) {
  switch (value) {
#define X(name, v, text, doc) \
  case v:                     \
    return Outcome::name;
    FORKGYM_OUTCOMES(X)
#undef X
  }
  return Outcome::InvalidRequest;
}

}  // namespace forkgym
