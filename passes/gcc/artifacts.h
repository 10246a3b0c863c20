// What gcc-v0 measures in gcc's output files, as CompilerGym measured it:
//   asm_hash, obj_hash   md5 of the file, lower-case hex (hashlib's hexdigest)
//   instruction_counts   per line of the .s that starts with a tab, the run
//                        of [A-Za-z0-9.-] after it: mnemonics, and also
//                        directives (.file, .text, .align), as CompilerGym's
//                        regex counted them
//   obj_text_size        (new) bytes of machine code in the object file: the
//                        sizes of its executable sections summed, read with
//                        elfutils' libelf. Summed, not just ".text", because
//                        gcc moves code out of .text: main to .text.startup
//                        at -O2, cold parts to .text.unlikely, every
//                        function to its own section under -ffunction-sections.
// Worker process (and tests); pure functions of the bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace forkgym::passes::gcc {

std::string md5Hex(std::string_view bytes);

// Sorted by mnemonic.
std::vector<std::pair<std::string, int64_t>> instructionCounts(std::string_view assembly);

// BenchmarkError when the bytes are not an ELF object (saying what is wrong).
Result<int64_t> executableBytes(std::string_view object);

}  // namespace forkgym::passes::gcc
