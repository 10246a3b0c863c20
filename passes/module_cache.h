// The module compiled from a source dataset's file, cached beside the source
// as <path>.bc (CompilerGym's layout), so a server started later need not
// compile it again. The file carries its key in an extended attribute
// (user.forkgym.key): the backend's key of the compile options, the digest of
// the source and of the headers it included from outside the system's
// include directories (a user's dataset has its own headers, and edits
// them), the names of those headers, and the digest of the module itself —
// so changed flags, a changed source or header, or a torn file all mean
// "compile again", never a wrong module.
//
// Who does what. A root server's loader runs as the sandbox user, who may
// not write the dataset's directory, and it compiles untrusted sources: the
// write is done by a process of its own that holds the client's identity
// and nothing else.
//   1. Loader child, still privileged, as the client, in the source's
//      directory (forkserver/loader.cc): readCachedModule() returns the
//      module's bytes if <name>.bc is a regular file newer than the source
//      and its key matches; they travel in the LoadRequest. Otherwise, if
//      the client may write the directory, the loader forks a writer
//      (forkserver/module_cache_writer.h) and keeps one end of a socket pair
//      to it (LoadRequest::moduleCacheFd).
//   2. Loader, sandboxed: the backend uses the cached bytes instead of
//      compiling; or it compiles, and sendCachedModule() hands the writer
//      clang's bytes with the digest of the source they were made from.
//   3. Writer: receiveCachedModule(), then storeCachedModule(): an unnamed
//      file in the directory (O_TMPFILE), written and given its key, linked
//      under a temporary name and renamed over <name>.bc — a reader sees the
//      old file or the whole new one; a writer killed midway leaves nothing
//      (or, where the file system has no O_TMPFILE, a temporary file it
//      removes on every failure it lives through).
// Any process may call these; they only read and write the files named.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace forkgym::passes {

inline constexpr std::string_view kCachedModuleSuffix = ".bc";
inline constexpr const char* kCachedModuleAttribute = "user.forkgym.key";
// As large as a tool's output may be (tool_process.h).
inline constexpr uint64_t kMaxCachedModuleBytes = uint64_t{256} << 20;
// A source larger than this is compiled without being cached.
inline constexpr uint64_t kMaxCachedSourceBytes = uint64_t{64} << 20;

// A header the module was compiled with: its name as the compiler found it
// (relative to the source's directory, or absolute) and its bytes.
struct HeaderFile {
  std::string name;
  std::string bytes;
};

// The digest of a source file's bytes and of its headers, as the key records it.
std::string sourceDigest(std::string_view bytes, std::span<const HeaderFile> headers = {});

// Step 3's product, and what step 1 finds.
struct CachedModule {
  std::string sourceDigest;          // of the source and its headers
  std::string bytes;                 // the module
  std::vector<std::string> headers;  // names of the headers it was compiled with
};

// Step 1: `source` names the source (relative to the working directory, or
// absolute), `optionsKey` the backend's key of its recipe. The cached
// module when it is fresh; nullopt when it is missing, older than the
// source, made with other options or from another source or other headers
// (each is read again), or torn.
std::optional<CachedModule> readCachedModule(const std::string& source, std::string_view optionsKey);

// Step 2 (loader): the compiled module, the digest of the source and headers
// it was compiled from and the headers' names, to the writer on `socket`.
// The writer's answer is read by whoever owns the socket
// (forkserver/loader.cc), after the load.
void sendCachedModule(int socket, const CachedModule& module);

// Step 3 (writer).
// Reads what sendCachedModule() sent, until the sender shuts its side; nullopt
// when nothing complete came (the load failed or ended without compiling).
std::optional<CachedModule> receiveCachedModule(int socket);
// Stores `module` as <source>.bc beside `source`, atomically, keyed by
// `optionsKey`. The error says what failed (for the server's log), naming
// the directory as `shownAs` (the source's absolute directory; default: as
// `source` names it).
Status storeCachedModule(const std::string& source, std::string_view optionsKey, const CachedModule& module,
                         const std::string& shownAs = {});

}  // namespace forkgym::passes
