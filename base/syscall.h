// The one thin wrapper every syscall goes through: retries EINTR (against a
// deadline, for calls that wait) and, on failure, captures errno together
// with the call's name so the message says which call failed and why.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "base/result.h"

namespace forkgym {

// Runs `call` until it does not fail with EINTR. Returns its value, or an
// Error "<what>: <strerror>" when it returned -1.
template <typename Call>
auto sys(const char* what, Call&& call) -> Result<decltype(call())> {
  using R = decltype(call());
  for (;;) {
    R value = call();
    if (value != static_cast<R>(-1)) return value;
    if (errno == EINTR) continue;
    return makeError(Outcome::ServerError, std::string(what) + ": " + std::strerror(errno));
  }
}

// For hot paths where one failure is expected and frequent (a non-blocking
// receive that finds nothing): runs `call` until it does not fail with EINTR
// and returns its raw value with errno intact, building no message. The
// caller handles the expected errno and turns any other into an Error with
// errnoMessage().
template <typename Call>
auto sysRaw(Call&& call) -> decltype(call()) {
  using R = decltype(call());
  for (;;) {
    R value = call();
    if (value != static_cast<R>(-1) || errno != EINTR) return value;
  }
}

// For blocking calls that take a timeout in milliseconds (poll): runs
// call(timeoutMs) until it does not fail with EINTR, giving each retry only
// the time left until `deadline` (nullopt: no deadline, -1), so a signal
// arriving every few milliseconds cannot keep restarting the whole wait.
// Returns call's value: 0 when the deadline passed.
template <typename Call>
auto sysUntil(const char* what, std::optional<std::chrono::steady_clock::time_point> deadline, Call&& call)
    -> Result<decltype(call(0))> {
  using R = decltype(call(0));
  for (;;) {
    int timeoutMs = -1;
    if (deadline) {
      const auto left = *deadline - std::chrono::steady_clock::now();
      // Rounded up: poll() with 0 would spin through the last millisecond.
      timeoutMs = left <= left.zero() ? 0
                                      : static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(left).count());
    }
    R value = call(timeoutMs);
    if (value != static_cast<R>(-1)) return value;
    if (errno == EINTR) continue;
    return makeError(Outcome::ServerError, std::string(what) + ": " + std::strerror(errno));
  }
}

// errno-preserving message for code that already knows a call failed.
inline std::string errnoMessage(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

}  // namespace forkgym
