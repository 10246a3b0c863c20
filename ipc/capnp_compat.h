// Force-included (-include) into every translation unit that links
// forkgym_ipc. Debian 12's Cap'n Proto 0.9 headers compare `const char*` with
// kj::StringPtr in a way clang's C++20 rewritten-operator rules reject; this
// supplies the free operator they need. Remove with Cap'n Proto >= 0.10.
#pragma once

#ifdef __cplusplus
#include <kj/string.h>

namespace kj {
inline bool operator==(const char* a, const StringPtr& b) { return StringPtr(a) == b; }
}  // namespace kj
#endif
