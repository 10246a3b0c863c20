#include "passes/session.h"

namespace forkgym::passes {

Error unknownParameter(std::string_view backend, std::string_view key, std::span<const std::string_view> accepted) {
  std::string keys;
  for (std::string_view name : accepted) keys += (keys.empty() ? "" : ", ") + std::string(name);
  return makeError(Outcome::InvalidRequest,
                   "the " + std::string(backend) + " backend has no parameter '" + std::string(key) + "'; " +
                       (keys.empty() ? "it accepts none" : "it accepts " + keys));
}

}  // namespace forkgym::passes
