// The one thin wrapper every syscall goes through: retries EINTR and, on
// failure, captures errno together with the call's name so the message says
// which call failed and why.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>

#include "ipc/result.h"

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

// errno-preserving message for code that already knows a call failed.
inline std::string errnoMessage(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

}  // namespace forkgym
