#include "passes/content_hash.h"

#include <llvm/Support/BLAKE3.h>

#include <cstdint>

namespace forkgym::passes {

// LLVM's BLAKE3 (every backend links LLVM's support library through the
// server; Debian has no separate BLAKE3 package).
struct ContentHash::Hasher {
  llvm::BLAKE3 blake3;
};

ContentHash::ContentHash() : hasher_(std::make_unique<Hasher>()) { add("forkgym benchmark content", "1"); }

ContentHash::~ContentHash() = default;

void ContentHash::add(std::string_view tag, std::string_view bytes) {
  for (std::string_view part : {tag, bytes}) {
    const uint64_t size = part.size();
    hasher_->blake3.update(llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t*>(&size), sizeof size));
    hasher_->blake3.update(llvm::StringRef(part.data(), part.size()));
  }
}

std::string ContentHash::hex() {
  const auto digest = hasher_->blake3.final();
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text;
  for (uint8_t byte : digest) {
    text += kDigits[byte >> 4];
    text += kDigits[byte & 15];
  }
  return text;
}

}  // namespace forkgym::passes
