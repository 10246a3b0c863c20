// The CpuInfo observation: the host's processor as CompilerGym described it
// (its name, core count, and each cache level's size in bytes and count),
// one JSON object:
//   {"name": str, "cores_count": int,
//    "l1i_cache_size": int, "l1i_cache_count": int, "l1d_...", "l2_...",
//    "l3_...", "l4_..."}
// A size is that of the level's first cache, -1 where the host has none.
//
// Lifecycle:
//   1. The zygote reads the host once (initializeLlvm(), before any fork):
//      libcpuinfo reads /proc and /sys, which a worker's sandbox refuses.
//   2. Workers read the copy they inherited; nothing is read again.
#pragma once

#include <string>

namespace forkgym::passes {

struct HostCpuInfo {
  bool ok = false;
  std::string json;   // when ok
  std::string error;  // why not, otherwise
};

// Zygote first (step 1); any process afterwards.
const HostCpuInfo& hostCpuInfo();

}  // namespace forkgym::passes
