// A gcc-v0 state: one choice per option of the spec, -1 meaning "not on the
// command line" (CompilerGym's `choices`), and the command lines it gives.
//
// Lifecycle (worker process; tests anywhere):
//   1. A session starts with every choice at -1: plain `gcc -w -c`.
//   2. Actions move choices (action_space.h), or the client sets them all
//      at once: setParameter("choices", "-1,3,-1,...") is parsed and
//      validated here; a bad list changes nothing.
//   3. The command lines are built from the choices in option order:
//        gcc <choices> -w -c src.c -o obj.o     (command_line, obj)
//        gcc <choices> -w -S src.c -o asm.s     (asm)
//        gcc <choices> -w -S src.c -fdump-rtl-dfinish=rtl.lsp -o asm.s  (rtl)
//      exactly as CompilerGym ran them, in a directory holding src.c.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "passes/gcc/gcc_spec.h"

namespace forkgym::passes::gcc {

using Choices = std::vector<int64_t>;

// Every choice -1.
Choices initialChoices(const GccSpec& spec);

// "c0,c1,...,cn-1" (spaces allowed around commas). InvalidRequest naming
// the first problem: not a list of integers, the wrong count (saying how
// many options there are), or a value out of its option's range (naming the
// option, its index and its range).
Result<Choices> parseChoices(const GccSpec& spec, std::string_view text);
std::string formatChoices(const Choices& choices);

// The chosen options' arguments, in option order.
std::vector<std::string> chosenArguments(const GccSpec& spec, const Choices& choices);

// Every argument chosenArguments() can give, as ReplayCommand.stateArguments
// writes them (passes/backend.h): "-O2", "-fno-tree-vectorize" as
// themselves; an integer option as its text up to '=' ("--param=max-unroll-times=").
std::vector<std::string> argumentForms(const GccSpec& spec);

// The files a compilation reads and writes, relative to its directory.
inline constexpr std::string_view kSourceFile = "src.c";
inline constexpr std::string_view kObjectFile = "obj.o";
inline constexpr std::string_view kAssemblyFile = "asm.s";
inline constexpr std::string_view kRtlFile = "rtl.lsp";

enum class Artifact : uint8_t { Object, Assembly, AssemblyAndRtl };

// argv for gcc producing `artifact` from kSourceFile in the current
// directory; argv[0] is spec.binary.
std::vector<std::string> commandLine(const GccSpec& spec, const Choices& choices, Artifact artifact);

// The `command_line` observation: the Object argv joined with spaces.
std::string commandLineText(const GccSpec& spec, const Choices& choices);

}  // namespace forkgym::passes::gcc
