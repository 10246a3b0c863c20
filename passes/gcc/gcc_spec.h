// GccSpec: the options of the installed gcc, as CompilerGym's gcc-v0 read
// them from gcc itself rather than from a hand-written list.
//
// Lifecycle:
//   1. discoverGccSpec() runs `gcc --version`, `gcc -Q --help=optimizers`,
//      `gcc -Q --help=params` and `gcc --help=params` (the last one only for
//      the values of enumerated params whose -Q line shows just a default),
//      with COLUMNS set wide so no line is wrapped. The zygote does this once
//      at start-up, before any worker exists; the spec is then inherited.
//   2. parseGccSpec() turns that text into options, sorted as CompilerGym
//      sorted them: the -f options and -O by name, then the params by name.
//   3. Each option has size() choices; a session's state is one choice per
//      option, -1 meaning "not on the command line" (choices.h).
//
// Parsing follows CompilerGym's rules (compiler_gym/envs/gcc/gcc.py), with
// its fixes kept as data (kSpecFixes in gcc_spec.cc) and these differences,
// each because gcc 12 would otherwise reject a choice:
//   - an unbounded integer (`=<number>`, or a `--param=name=` with an integer
//     default) ranges over 0..2147483647 (gcc's INT_MAX), not 0..2^31, and
//     never below 0 (a default of -1 means unset; gcc refuses -1 itself);
//   - -falign-X keeps its two plain forms (-falign-X, -fno-align-X); the
//     `-falign-X=` forms (n:m:n2:m2) are left out;
//   - an alias line (whose second column is another -f option, such as
//     -fhandle-exceptions -> -fexceptions) is left out, and so are lines gcc
//     gives no range or values for (-fpatchable-function-entry=).
// Any process; only discoverGccSpec() runs anything (gcc, via tool_process.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace forkgym::passes::gcc {

enum class OptionKind : uint8_t {
  OptimizationLevel,  // -O0 -O1 -O2 -O3 -Ofast -Og -Os -Oz
  Flag,               // -fname / -fno-name
  FlagEnum,           // -fname=value
  FlagInt,            // -fname=<integer in [min, max]>
  ParamEnum,          // --param=name=value
  ParamInt,           // --param=name=<integer in [min, max]>
};

struct GccOption {
  OptionKind kind = OptionKind::Flag;
  std::string name;                 // "O", "tree-vectorize", "max-inline-insns-auto"
  std::vector<std::string> values;  // OptimizationLevel ("0", "fast", ...), FlagEnum, ParamEnum
  int64_t min = 0;                  // FlagInt, ParamInt
  int64_t max = 0;
  bool hasNegative = true;  // Flag: gcc accepts -fno-name

  // How many choices (besides "absent"): 2 for a flag with a -fno- form,
  // max - min + 1 for an integer, the number of values otherwise.
  int64_t size() const;
  // The command-line argument for choice 0 <= choice < size(): "-O2",
  // "-fno-tree-vectorize", "--param=max-unroll-times=8".
  std::string argument(int64_t choice) const;
  // CompilerGym's name for the option: "-O", "-ftree-vectorize",
  // "--param=max-unroll-times".
  std::string displayName() const;
  // The choices in words, for messages: "-1 (absent) to 1: -ftree-vectorize,
  // -fno-tree-vectorize", "-1 (absent) to 2147483647 (values 0..2147483647)".
  std::string describeRange() const;
  bool operator==(const GccOption&) const = default;
};

struct GccSpec {
  std::string binary;   // what is run: "gcc" (from PATH) or an absolute path
  std::string version;  // first line of `gcc --version`
  std::vector<GccOption> options;
};

// The text gcc printed, kept so a spec can be parsed again (tests keep a
// gcc 12 sample in tests/data/gcc/).
struct GccHelpText {
  std::string version;             // `gcc --version`
  std::string optimizers;          // `gcc -Q --help=optimizers`
  std::string params;              // `gcc -Q --help=params`
  std::string paramDescriptions;   // `gcc --help=params`
};

// InvalidRequest-free: a line it does not understand is skipped (gcc adds
// options with every release); an output with no -O line or no params at
// all is a ServerError (that is not a gcc we know how to read).
Result<GccSpec> parseGccSpec(const GccHelpText& text);

// Runs `binary` four times (loader-style tool runs, 60 s each). ServerError
// when gcc cannot be run or fails, naming the command.
Result<GccHelpText> readGccHelp(const std::string& binary);
Result<GccSpec> discoverGccSpec(const std::string& binary = "gcc");

// `name` as execvp() would run it: itself when it holds a '/', else the
// first executable file of that name on PATH; empty when there is none.
std::string programPath(const std::string& name);

// What a compile of gcc-v0 (-c, -S) executes, by absolute path, for the
// worker's sandbox to allow: the driver `binary`, its cc1 and the assembler
// it runs (`-print-prog-name=`; a bare name is looked up on PATH, as the
// driver does). ServerError naming the program that cannot be found ("no
// 'gcc' on PATH", "'/x/gcc' is not an executable file ...").
Result<std::vector<std::string>> gccPrograms(const std::string& binary);

// FNV-1a over the version and every option (kind, name, values, range), in
// order: two gccs with the same hash give the same meaning to every choice.
uint64_t specHash(const GccSpec& spec);

// Index of the option whose displayName() or name is `name`, or -1.
int findOption(const GccSpec& spec, std::string_view name);

}  // namespace forkgym::passes::gcc
