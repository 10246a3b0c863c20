#include "forkserver/baseline_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "base/syscall.h"
#include "passes/content_hash.h"

namespace forkgym::forkserver {
namespace {

constexpr std::string_view kMagic = "forkgym baselines 1\n";
constexpr size_t kDigestHex = 64;          // BLAKE3, hex
constexpr off_t kLargestFile = 64 << 10;  // a key and a few numbers

std::string digest(std::string_view tag, std::string_view bytes) {
  passes::ContentHash hash;
  hash.add(tag, bytes);
  return hash.hex();
}

// Safe to trust: ours, and nobody else may write it.
bool ownedAndPrivate(const struct stat& info) {
  return info.st_uid == geteuid() && (info.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

void putLength(std::string& out, uint32_t length) { out.append(reinterpret_cast<const char*>(&length), 4); }

bool takeLength(std::string_view& rest, uint32_t& length) {
  if (rest.size() < 4) return false;
  std::memcpy(&length, rest.data(), 4);
  rest.remove_prefix(4);
  return length <= rest.size();
}

}  // namespace

std::string BaselineCache::defaultDirectory() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && xdg[0] == '/') {
    return std::string(xdg) + "/forkgym/baselines";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && home[0] == '/') {
    return std::string(home) + "/.cache/forkgym/baselines";
  }
  return {};
}

Result<BaselineCache> BaselineCache::open(const std::string& directory) {
  std::error_code error;
  std::filesystem::create_directories(std::filesystem::path(directory).parent_path(), error);
  if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST) {
    return makeError(Outcome::ServerError, errnoMessage(("mkdir " + directory).c_str()));
  }
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return makeError(Outcome::ServerError, errnoMessage(("open " + directory).c_str()));
  UniqueFd owned(fd);
  struct stat info {};
  if (::fstat(fd, &info) != 0) return makeError(Outcome::ServerError, errnoMessage(("stat " + directory).c_str()));
  if (!ownedAndPrivate(info)) {
    return makeError(Outcome::InvalidRequest,
                     directory + " belongs to uid " + std::to_string(info.st_uid) + " with mode " +
                         std::to_string(info.st_mode & 07777) + ": a baseline cache must belong to this server's user (uid " +
                         std::to_string(geteuid()) + ") and be writable by it alone; fix it or name another directory");
  }
  return BaselineCache(directory, std::move(owned));
}

std::optional<std::string> BaselineCache::read(const std::string& key) const {
  const std::string name = digest("baseline key", key);
  const int fd = ::openat(fd_.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  UniqueFd file(fd);
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode) || !ownedAndPrivate(info) || info.st_size > kLargestFile) {
    return std::nullopt;
  }
  std::string bytes(static_cast<size_t>(info.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = sysRaw([&] { return ::read(fd, bytes.data() + done, bytes.size() - done); });
    if (n <= 0) return std::nullopt;
    done += static_cast<size_t>(n);
  }
  // magic, u32 key length, key, u32 payload length, payload, checksum (hex)
  if (bytes.size() < kMagic.size() + kDigestHex) return std::nullopt;
  const std::string_view body = std::string_view(bytes).substr(0, bytes.size() - kDigestHex);
  if (digest("baseline file", body) != std::string_view(bytes).substr(body.size())) return std::nullopt;
  std::string_view rest = body;
  if (!rest.starts_with(kMagic)) return std::nullopt;
  rest.remove_prefix(kMagic.size());
  uint32_t keyLength = 0, payloadLength = 0;
  if (!takeLength(rest, keyLength) || rest.substr(0, keyLength) != key) return std::nullopt;
  rest.remove_prefix(keyLength);
  if (!takeLength(rest, payloadLength) || rest.size() != payloadLength) return std::nullopt;
  return std::string(rest);
}

Status BaselineCache::write(const std::string& key, const std::string& encoded) const {
  std::string body(kMagic);
  putLength(body, static_cast<uint32_t>(key.size()));
  body += key;
  putLength(body, static_cast<uint32_t>(encoded.size()));
  body += encoded;
  body += digest("baseline file", body);

  const std::string name = digest("baseline key", key);
  const std::string temporary = ".tmp-" + std::to_string(getpid()) + "-" + name;
  const int fd = ::openat(fd_.get(), temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return makeError(Outcome::ServerError, errnoMessage(("create " + directory_ + "/" + temporary).c_str()));
  UniqueFd file(fd);
  size_t done = 0;
  while (done < body.size()) {
    const ssize_t n = sysRaw([&] { return ::write(fd, body.data() + done, body.size() - done); });
    if (n <= 0) {
      const std::string why = errnoMessage(("write " + directory_ + "/" + temporary).c_str());
      ::unlinkat(fd_.get(), temporary.c_str(), 0);
      return makeError(Outcome::ServerError, why);
    }
    done += static_cast<size_t>(n);
  }
  file.reset();
  if (::renameat(fd_.get(), temporary.c_str(), fd_.get(), name.c_str()) != 0) {
    const std::string why = errnoMessage(("rename into " + directory_).c_str());
    ::unlinkat(fd_.get(), temporary.c_str(), 0);
    return makeError(Outcome::ServerError, why);
  }
  return okStatus();
}

}  // namespace forkgym::forkserver
