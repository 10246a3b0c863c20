// Result<T>: the error regime before fork() and in every parent process.
//
// Functions that can fail return Result<T> (or Status) and never throw across
// a public API. An error carries the Outcome and a message written for the
// person who has to act on it: what was wrong and what to do.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

#include "base/outcome.h"

namespace forkgym {

struct Error {
  Outcome outcome = Outcome::InvalidRequest;
  std::string message;
  int signal = 0;  // for Outcome::Crashed: the signal that killed the worker
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}
  Result(Error error) : state_(std::move(error)) {}

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(state_); }
  const T& value() const& { assert(ok()); return std::get<0>(state_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { assert(!ok()); return std::get<1>(state_); }
  Error&& takeError() { assert(!ok()); return std::get<1>(std::move(state_)); }

 private:
  std::variant<T, Error> state_;
};

struct Unit {};
using Status = Result<Unit>;
inline Status okStatus() { return Unit{}; }

inline Error makeError(Outcome outcome, std::string message) {
  return Error{outcome, std::move(message), 0};
}

}  // namespace forkgym
