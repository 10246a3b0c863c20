#include "passes/llvm/cpu_info.h"

#include <cpuinfo.h>

#include <cstdint>

#include <llvm/Support/JSON.h>
#include <llvm/Support/raw_ostream.h>

namespace forkgym::passes {
namespace {

struct CacheLevel {
  const char* name;  // the keys' prefix
  uint32_t (*count)();
  const cpuinfo_cache* (*first)(uint32_t);
};

// The levels in CompilerGym's key order.
constexpr CacheLevel kCacheLevels[] = {
    {"l1i", cpuinfo_get_l1i_caches_count, cpuinfo_get_l1i_cache},
    {"l1d", cpuinfo_get_l1d_caches_count, cpuinfo_get_l1d_cache},
    {"l2", cpuinfo_get_l2_caches_count, cpuinfo_get_l2_cache},
    {"l3", cpuinfo_get_l3_caches_count, cpuinfo_get_l3_cache},
    {"l4", cpuinfo_get_l4_caches_count, cpuinfo_get_l4_cache},
};

HostCpuInfo readHost() {
  HostCpuInfo info;
  if (!cpuinfo_initialize()) {
    info.error = "libcpuinfo could not read this host's processor (/proc/cpuinfo, /sys/devices/system/cpu)";
    return info;
  }
  const cpuinfo_package* package = cpuinfo_get_packages_count() > 0 ? cpuinfo_get_package(0) : nullptr;
  llvm::raw_string_ostream stream(info.json);
  llvm::json::OStream json(stream);
  json.object([&] {
    json.attribute("name", package != nullptr ? std::string(package->name) : std::string());
    json.attribute("cores_count", static_cast<int64_t>(cpuinfo_get_cores_count()));
    for (const CacheLevel& level : kCacheLevels) {
      const uint32_t count = level.count();
      const cpuinfo_cache* first = count > 0 ? level.first(0) : nullptr;
      json.attribute(std::string(level.name) + "_cache_size", first != nullptr ? static_cast<int64_t>(first->size) : -1);
      json.attribute(std::string(level.name) + "_cache_count", static_cast<int64_t>(count));
    }
  });
  stream.flush();
  info.ok = true;
  return info;
}

}  // namespace

const HostCpuInfo& hostCpuInfo() {
  static const HostCpuInfo info = readHost();
  return info;
}

}  // namespace forkgym::passes
