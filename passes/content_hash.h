// ContentHash: the hex BLAKE3 a benchmark's content is known by — in the
// zygote's cache, in every session (SessionStarted.benchmarkHash), in
// reproducers and saved states.
//
// A loader child adds the parts a benchmark is made of, each with a tag
// (e.g. "c source" + the preprocessed text, "compile options" + the flags);
// parts are length-prefixed, so no two different lists of parts hash alike.
// Any process; no state beyond the object.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace forkgym::passes {

class ContentHash {
 public:
  ContentHash();
  ~ContentHash();
  ContentHash(const ContentHash&) = delete;
  ContentHash& operator=(const ContentHash&) = delete;

  void add(std::string_view tag, std::string_view bytes);
  // The digest of everything added so far, in hex.
  std::string hex();

 private:
  struct Hasher;
  std::unique_ptr<Hasher> hasher_;
};

}  // namespace forkgym::passes
