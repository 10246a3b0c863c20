#include "passes/module_cache.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/unique_fd.h"
#include "passes/content_hash.h"

namespace forkgym::passes {
namespace {

constexpr char kMagic[4] = {'F', 'G', 'M', 'C'};

std::string digest(std::string_view tag, std::string_view bytes) {
  ContentHash hash;
  hash.add(tag, bytes);
  return hash.hex();
}

std::string moduleDigest(std::string_view bytes) { return digest("module", bytes); }

// "<options key> <source digest> <module digest>", then "\n<header name>"
// for each header.
std::string keyOf(std::string_view optionsKey, const CachedModule& module) {
  std::string key = std::string(optionsKey) + " " + module.sourceDigest + " " + moduleDigest(module.bytes);
  for (const std::string& header : module.headers) key += "\n" + header;
  return key;
}

// Keys stay small: a file's extended attributes share one block on ext4.
constexpr size_t kMaxKeyBytes = 3072;
constexpr size_t kMaxHeaders = 256;

bool validHeaderName(std::string_view name) {
  return !name.empty() && name.size() <= 1024 && name.find('\n') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

bool newer(const timespec& a, const timespec& b) {
  return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

// A regular file's bytes, read through one descriptor opened without
// blocking (a FIFO put in its place is not waited on), if it is at most
// `limit` bytes.
std::optional<std::string> readRegular(int fd, const struct stat& info, uint64_t limit) {
  if (!S_ISREG(info.st_mode) || static_cast<uint64_t>(info.st_size) > limit) return std::nullopt;
  std::string bytes(static_cast<size_t>(info.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;  // an error, or it shrank: not the file we checked
    done += static_cast<size_t>(n);
  }
  return bytes;
}

UniqueFd openForReading(const std::string& path) {
  return UniqueFd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
}

bool writeAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string directoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

std::string sourceDigest(std::string_view bytes, std::span<const HeaderFile> headers) {
  ContentHash hash;
  hash.add("source", bytes);
  for (const HeaderFile& header : headers) {
    hash.add("header name", header.name);
    hash.add("header", header.bytes);
  }
  return hash.hex();
}

std::optional<CachedModule> readCachedModule(const std::string& source, std::string_view optionsKey) {
  UniqueFd sourceFd = openForReading(source);
  struct stat sourceInfo {};
  if (!sourceFd || ::fstat(sourceFd.get(), &sourceInfo) != 0) return std::nullopt;
  const auto sourceBytes = readRegular(sourceFd.get(), sourceInfo, kMaxCachedSourceBytes);
  if (!sourceBytes) return std::nullopt;

  UniqueFd moduleFd = openForReading(source + std::string(kCachedModuleSuffix));
  struct stat moduleInfo {};
  if (!moduleFd || ::fstat(moduleFd.get(), &moduleInfo) != 0) return std::nullopt;
  if (!S_ISREG(moduleInfo.st_mode) || !newer(moduleInfo.st_mtim, sourceInfo.st_mtim)) return std::nullopt;
  char key[kMaxKeyBytes];
  const ssize_t length = ::fgetxattr(moduleFd.get(), kCachedModuleAttribute, key, sizeof(key));
  if (length <= 0) return std::nullopt;
  std::string_view recorded(key, static_cast<size_t>(length));
  const size_t firstLineEnd = recorded.find('\n');
  const std::string_view firstLine = recorded.substr(0, firstLineEnd);

  // The headers it was compiled with, read again: an edited one is another program.
  CachedModule found;
  std::vector<HeaderFile> headers;
  for (std::string_view rest = firstLineEnd == std::string_view::npos ? "" : recorded.substr(firstLineEnd + 1);
       !rest.empty();) {
    const size_t end = rest.find('\n');
    const std::string name(rest.substr(0, end));
    rest = end == std::string_view::npos ? "" : rest.substr(end + 1);
    UniqueFd headerFd = openForReading(name);
    struct stat headerInfo {};
    if (!headerFd || ::fstat(headerFd.get(), &headerInfo) != 0) return std::nullopt;
    auto bytes = readRegular(headerFd.get(), headerInfo, kMaxCachedSourceBytes);
    if (!bytes) return std::nullopt;
    headers.push_back({name, std::move(*bytes)});
    found.headers.push_back(name);
  }
  found.sourceDigest = sourceDigest(*sourceBytes, headers);
  const std::string expectedPrefix = std::string(optionsKey) + " " + found.sourceDigest + " ";
  if (!firstLine.starts_with(expectedPrefix)) return std::nullopt;
  auto module = readRegular(moduleFd.get(), moduleInfo, kMaxCachedModuleBytes);
  // A torn file (a crash before the data reached the disk) fails here.
  if (!module || firstLine.substr(expectedPrefix.size()) != moduleDigest(*module)) return std::nullopt;
  found.bytes = std::move(*module);
  return found;
}

void sendCachedModule(int socket, const CachedModule& module) {
  std::string frame(kMagic, sizeof(kMagic));
  const auto putSize = [&](uint64_t size) { frame.append(reinterpret_cast<const char*>(&size), sizeof(size)); };
  putSize(module.sourceDigest.size());
  frame += module.sourceDigest;
  putSize(module.headers.size());
  for (const std::string& header : module.headers) {
    putSize(header.size());
    frame += header;
  }
  putSize(module.bytes.size());
  // A failed send leaves the frame incomplete: the writer stores nothing.
  if (writeAll(socket, frame)) writeAll(socket, module.bytes);
  ::shutdown(socket, SHUT_WR);
}

std::optional<CachedModule> receiveCachedModule(int socket) {
  std::string bytes;
  char chunk[65536];
  const uint64_t limit = sizeof(kMagic) + 24 + 1024 + kMaxHeaders * 8 + kMaxKeyBytes + kMaxCachedModuleBytes;
  for (;;) {
    const ssize_t n = ::read(socket, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    bytes.append(chunk, static_cast<size_t>(n));
    if (bytes.size() > limit) return std::nullopt;
  }
  std::string_view rest(bytes);
  const auto take = [&](size_t count) -> std::optional<std::string_view> {
    if (rest.size() < count) return std::nullopt;
    const std::string_view taken = rest.substr(0, count);
    rest.remove_prefix(count);
    return taken;
  };
  const auto takeSize = [&]() -> std::optional<uint64_t> {
    const auto raw = take(sizeof(uint64_t));
    if (!raw) return std::nullopt;
    uint64_t size = 0;
    std::memcpy(&size, raw->data(), sizeof(size));
    return size;
  };
  const auto magic = take(sizeof(kMagic));
  if (!magic || std::memcmp(magic->data(), kMagic, sizeof(kMagic)) != 0) return std::nullopt;
  const auto digestSize = takeSize();
  if (!digestSize || *digestSize > 1024) return std::nullopt;
  const auto sourceDigest = take(static_cast<size_t>(*digestSize));
  // A digest is hex: nothing else may go into the key.
  if (!sourceDigest || sourceDigest->empty() ||
      sourceDigest->find_first_not_of("0123456789abcdef") != std::string_view::npos) {
    return std::nullopt;
  }
  CachedModule received{.sourceDigest = std::string(*sourceDigest)};
  const auto headerCount = takeSize();
  if (!headerCount || *headerCount > kMaxHeaders) return std::nullopt;
  for (uint64_t i = 0; i < *headerCount; ++i) {
    const auto nameSize = takeSize();
    if (!nameSize || *nameSize > kMaxKeyBytes) return std::nullopt;
    const auto name = take(static_cast<size_t>(*nameSize));
    // A name becomes a line of the key.
    if (!name || !validHeaderName(*name)) return std::nullopt;
    received.headers.emplace_back(*name);
  }
  const auto moduleSize = takeSize();
  if (!moduleSize || *moduleSize != rest.size() || *moduleSize == 0) return std::nullopt;
  received.bytes = std::string(rest);
  return received;
}

Status storeCachedModule(const std::string& source, std::string_view optionsKey, const CachedModule& module,
                         const std::string& shownAs) {
  const std::string directory = directoryOf(source);
  const std::string target = source + std::string(kCachedModuleSuffix);
  const size_t slash = target.rfind('/');
  const std::string name = slash == std::string::npos ? target : target.substr(slash + 1);
  const std::string temporary = directory + "/." + name + "." + std::to_string(::getpid()) + ".tmp";
  const std::string shown = shownAs.empty() ? directory : shownAs;
  const auto failed = [&](const std::string& what) {
    return makeError(Outcome::ServerError, "compiled modules are not cached in " + shown + " (" + what + ": " +
                                               std::strerror(errno) +
                                               "); the sources there are compiled on every load by a new server");
  };
  // A file there that the server did not write (it has no key) is someone's
  // own: never replaced.
  char existingKey[kMaxKeyBytes];
  if (::getxattr(target.c_str(), kCachedModuleAttribute, existingKey, sizeof(existingKey)) < 0 && errno != ENOENT) {
    struct stat existing {};
    if (::lstat(target.c_str(), &existing) == 0) {
      errno = EEXIST;
      return failed(name + " is there already and is not a module the server cached; it is left as it is");
    }
  }
  // An unnamed file first, so that nothing is left if this process dies;
  // a named temporary file where the file system has no O_TMPFILE.
  bool named = false;
  UniqueFd fd(::open(directory.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644));
  if (!fd) {
    fd = UniqueFd(::open(temporary.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd) return failed("creating a file there");
    named = true;
  }
  const auto abandon = [&](Error error) {
    if (named) ::unlink(temporary.c_str());
    return error;
  };
  if (!writeAll(fd.get(), module.bytes)) return abandon(failed("writing " + name));
  const std::string key = keyOf(optionsKey, module);
  if (key.size() > kMaxKeyBytes) {
    errno = E2BIG;
    return abandon(failed("its key would name " + std::to_string(module.headers.size()) + " headers"));
  }
  if (::fsetxattr(fd.get(), kCachedModuleAttribute, key.data(), key.size(), 0) != 0) {
    return abandon(failed(std::string("recording its key (extended attribute ") + kCachedModuleAttribute + ")"));
  }
  if (!named) {
    const std::string self = "/proc/self/fd/" + std::to_string(fd.get());
    if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, temporary.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      return failed("naming " + name);
    }
  }
  if (::rename(temporary.c_str(), target.c_str()) != 0) {
    Error error = failed("renaming it to " + name);
    ::unlink(temporary.c_str());
    return error;
  }
  return okStatus();
}

}  // namespace forkgym::passes
