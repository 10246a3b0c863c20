#include "passes/gcc/artifacts.h"

#include <gelf.h>
#include <libelf.h>
#include <nettle/md5.h>

#include <map>
#include <memory>

namespace forkgym::passes::gcc {
namespace {

bool isMnemonicChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

struct ElfCloser {
  void operator()(Elf* elf) const { elf_end(elf); }
};

}  // namespace

std::string md5Hex(std::string_view bytes) {
  md5_ctx context;
  md5_init(&context);
  md5_update(&context, bytes.size(), reinterpret_cast<const uint8_t*>(bytes.data()));
  uint8_t digest[MD5_DIGEST_SIZE];
  md5_digest(&context, sizeof digest, digest);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (uint8_t byte : digest) {
    hex += kDigits[byte >> 4];
    hex += kDigits[byte & 15];
  }
  return hex;
}

std::vector<std::pair<std::string, int64_t>> instructionCounts(std::string_view assembly) {
  std::map<std::string, int64_t, std::less<>> counts;
  while (!assembly.empty()) {
    const size_t newline = assembly.find('\n');
    const std::string_view line = assembly.substr(0, newline);
    if (line.size() > 1 && line.front() == '\t') {
      size_t end = 1;
      while (end < line.size() && isMnemonicChar(line[end])) ++end;
      if (end > 1) ++counts[std::string(line.substr(1, end - 1))];
    }
    if (newline == std::string_view::npos) break;
    assembly.remove_prefix(newline + 1);
  }
  return {counts.begin(), counts.end()};
}

Result<int64_t> executableBytes(std::string_view object) {
  if (elf_version(EV_CURRENT) == EV_NONE) {
    return makeError(Outcome::ServerError, std::string("libelf: ") + elf_errmsg(-1));
  }
  // elf_memory wants a mutable pointer but ELF_C_READ_MMAP-style reads do
  // not write to it.
  std::unique_ptr<Elf, ElfCloser> elf(elf_memory(const_cast<char*>(object.data()), object.size()));
  const auto notObject = [&](std::string why) {
    return makeError(Outcome::BenchmarkError, "gcc's output is not a readable ELF object file (" + why + ")");
  };
  if (!elf || elf_kind(elf.get()) != ELF_K_ELF) return notObject(elf_errmsg(-1) ? elf_errmsg(-1) : "not ELF");
  int64_t total = 0;
  for (Elf_Scn* section = elf_nextscn(elf.get(), nullptr); section != nullptr;
       section = elf_nextscn(elf.get(), section)) {
    GElf_Shdr header;
    if (gelf_getshdr(section, &header) == nullptr) return notObject(elf_errmsg(-1));
    if ((header.sh_flags & SHF_ALLOC) && (header.sh_flags & SHF_EXECINSTR) && header.sh_type != SHT_NOBITS) {
      total += static_cast<int64_t>(header.sh_size);
    }
  }
  if (elf_errno() != 0) return notObject(elf_errmsg(-1));
  return total;
}

}  // namespace forkgym::passes::gcc
