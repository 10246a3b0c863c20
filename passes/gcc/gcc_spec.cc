#include "passes/gcc/gcc_spec.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <map>
#include <optional>

#include "base/trimmed.h"
#include "passes/tool_process.h"

namespace forkgym::passes::gcc {
namespace {

// gcc's integer options and params are C ints: 2147483648 is "bigger than
// 2147483647", a negative number "should be a non-negative integer".
constexpr int64_t kIntMax = INT_MAX;

// CompilerGym's corrections to what gcc's help says (gcc.py _fix_options),
// those gcc 12 still needs, as data.
struct SpecFix {
  enum class What : uint8_t { Drop, NoNegativeForm, PowersOfTwoUpTo16 } what;
  OptionKind kind;
  std::string_view name;
  std::string_view why;
};
constexpr SpecFix kSpecFixes[] = {
    {SpecFix::What::NoNegativeForm, OptionKind::Flag, "stack-protector-all",
     "gcc has no -fno-stack-protector-all"},
    {SpecFix::What::NoNegativeForm, OptionKind::Flag, "stack-protector-explicit",
     "gcc has no -fno-stack-protector-explicit"},
    {SpecFix::What::NoNegativeForm, OptionKind::Flag, "stack-protector-strong",
     "gcc has no -fno-stack-protector-strong"},
    {SpecFix::What::PowersOfTwoUpTo16, OptionKind::FlagInt, "pack-struct",
     "-fpack-struct= takes a small power of two, though the help says <number>"},
    {SpecFix::What::Drop, OptionKind::FlagEnum, "live-patching",
     "-flive-patching= makes gcc reject most IPA flags beside it (CompilerGym left it out)"},
    // Debug output modes of passes, not optimisations: they only make gcc
    // write traces.
    {SpecFix::What::Drop, OptionKind::ParamEnum, "ranger-debug", "a debugging trace switch"},
    {SpecFix::What::Drop, OptionKind::ParamEnum, "threader-debug", "a debugging trace switch"},
    {SpecFix::What::Drop, OptionKind::ParamInt, "min-nondebug-insn-uid",
     "a debugging aid that numbers instructions from its value: gcc 12 allocates tables that large (out of "
     "memory, or an internal compiler error, from 715827867 on)"},
};

GccOption integerOption(OptionKind kind, std::string name, int64_t min, int64_t max) {
  GccOption option;
  option.kind = kind;
  option.name = std::move(name);
  option.min = min;
  option.max = max;
  return option;
}

GccOption enumOption(OptionKind kind, std::string name, std::vector<std::string> values) {
  GccOption option;
  option.kind = kind;
  option.name = std::move(name);
  option.values = std::move(values);
  return option;
}

std::vector<std::string_view> lines(std::string_view text) {
  std::vector<std::string_view> result;
  while (!text.empty()) {
    const size_t newline = text.find('\n');
    result.push_back(text.substr(0, newline));
    if (newline == std::string_view::npos) break;
    text.remove_prefix(newline + 1);
  }
  return result;
}

// "-fname=<1,2>  default" -> {"-fname=<1,2>", "default"}
std::pair<std::string_view, std::string_view> splitSpec(std::string_view line) {
  line = trimmed(line);
  size_t end = 0;
  while (end < line.size() && line[end] != ' ' && line[end] != '\t') ++end;
  return {line.substr(0, end), trimmed(line.substr(end))};
}

std::optional<int64_t> parseInteger(std::string_view text) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// "<min,max>" -> {min, max}
std::optional<std::pair<int64_t, int64_t>> parseInterval(std::string_view text) {
  if (text.size() < 5 || text.front() != '<' || text.back() != '>') return std::nullopt;
  text = text.substr(1, text.size() - 2);
  const size_t comma = text.find(',');
  if (comma == std::string_view::npos) return std::nullopt;
  const auto min = parseInteger(text.substr(0, comma));
  const auto max = parseInteger(text.substr(comma + 1));
  if (!min || !max || *min > *max) return std::nullopt;
  return std::pair{*min, *max};
}

// "[a|b|c]" -> {"a", "b", "c"}
std::optional<std::vector<std::string>> parseEnum(std::string_view text) {
  if (text.size() < 3 || text.front() != '[' || text.back() != ']') return std::nullopt;
  text = text.substr(1, text.size() - 2);
  std::vector<std::string> values;
  while (true) {
    const size_t bar = text.find('|');
    const std::string_view value = text.substr(0, bar);
    if (value.empty() || value.find_first_of(" \t[]<>") != std::string_view::npos) return std::nullopt;
    values.emplace_back(value);
    if (bar == std::string_view::npos) break;
    text.remove_prefix(bar + 1);
  }
  return values;
}

// Options by name; a typed form (=<...>, =[...]) replaces a plain flag of
// the same name, never the other way round (CompilerGym's priority).
class OptionSet {
 public:
  void addLevel(std::string value) {
    GccOption& level = options_["O"];
    level.kind = OptionKind::OptimizationLevel;
    level.name = "O";
    level.values.push_back(std::move(value));
  }
  void addFlag(std::string name) {
    if (options_.contains(name)) return;
    options_[name] = enumOption(OptionKind::Flag, name, {});
  }
  void addTyped(GccOption option) { options_[option.name] = std::move(option); }
  std::vector<GccOption> take() {
    std::vector<GccOption> result;
    for (auto& [name, option] : options_) result.push_back(std::move(option));
    return result;
  }
  bool empty() const { return options_.empty(); }
  bool hasLevels() const { return options_.contains("O"); }

 private:
  std::map<std::string, GccOption> options_;  // sorted by name, "O" first
};

void parseOptimizerLine(std::string_view line, OptionSet& options) {
  const auto [spec, status] = splitSpec(line);
  if (spec == "-O<number>") {
    for (const char* level : {"0", "1", "2", "3"}) options.addLevel(level);
    return;
  }
  if (spec.size() > 2 && spec.starts_with("-O") &&
      std::all_of(spec.begin() + 2, spec.end(), [](char c) { return c >= 'a' && c <= 'z'; })) {
    options.addLevel(std::string(spec.substr(2)));
    return;
  }
  if (!spec.starts_with("-f") || spec.size() == 2) return;  // -gstatement-frontiers and the like
  // "-fhandle-exceptions  -fexceptions": an alias of another option.
  if (status.starts_with("-f")) return;
  std::string_view name = spec.substr(2);
  const size_t equals = name.find('=');
  if (equals == std::string_view::npos) {
    // -fno-threadsafe-statics is listed by its negative form.
    if (name.starts_with("no-")) name.remove_prefix(3);
    options.addFlag(std::string(name));
    return;
  }
  const std::string base(name.substr(0, equals));
  const std::string_view argument = name.substr(equals + 1);
  if (argument == "<number>") {
    options.addTyped(integerOption(OptionKind::FlagInt, base, 0, kIntMax));
  } else if (auto interval = parseInterval(argument)) {
    options.addTyped(integerOption(OptionKind::FlagInt, base, interval->first, interval->second));
  } else if (auto values = parseEnum(argument)) {
    options.addTyped(enumOption(OptionKind::FlagEnum, base, std::move(*values)));
  }
  // "-falign-loops=" (n:m:n2:m2), "-fpatchable-function-entry=" (N,M): no
  // range to enumerate.
}

// "--param=evrp-mode=[legacy|ranger|legacy-first|ranger-first]" in the
// description column of `gcc --help=params`, for params whose -Q line
// shows only the default.
std::optional<std::vector<std::string>> describedValues(std::string_view descriptions, const std::string& name) {
  const std::string needle = "--param=" + name + "=[";
  for (std::string_view line : lines(descriptions)) {
    const auto [spec, description] = splitSpec(line);
    if (!description.starts_with(needle)) continue;
    const auto [values, rest] = splitSpec(description.substr(needle.size() - 1));
    return parseEnum(values);
  }
  return std::nullopt;
}

void parseParamLine(std::string_view line, std::string_view descriptions, OptionSet& params) {
  const auto [spec, status] = splitSpec(line);
  if (!spec.starts_with("--param=")) return;
  const std::string_view body = spec.substr(8);
  const size_t equals = body.find('=');
  if (equals == std::string_view::npos || equals == 0) return;
  const std::string name(body.substr(0, equals));
  const std::string_view argument = body.substr(equals + 1);
  const std::string_view defaultValue = splitSpec(status).first;
  if (auto interval = parseInterval(argument)) {
    params.addTyped(integerOption(OptionKind::ParamInt, name, interval->first, interval->second));
  } else if (auto values = parseEnum(argument)) {
    params.addTyped(enumOption(OptionKind::ParamEnum, name, std::move(*values)));
  } else if (!argument.empty()) {
    return;
  } else if (parseInteger(defaultValue)) {
    // A default of -1 means "unset": gcc takes only 0..INT_MAX here.
    params.addTyped(integerOption(OptionKind::ParamInt, name, 0, kIntMax));
  } else if (auto described = describedValues(descriptions, name)) {
    params.addTyped(enumOption(OptionKind::ParamEnum, name, std::move(*described)));
  }
  // Otherwise (--param=lazy-modules= [available in C++]): nothing to enumerate.
}

// Applies kSpecFixes; false drops the option.
bool applyFixes(GccOption& option) {
  for (const SpecFix& fix : kSpecFixes) {
    if (fix.kind != option.kind || fix.name != option.name) continue;
    switch (fix.what) {
      case SpecFix::What::Drop:
        return false;
      case SpecFix::What::NoNegativeForm:
        option.hasNegative = false;
        break;
      case SpecFix::What::PowersOfTwoUpTo16:
        option = enumOption(OptionKind::FlagEnum, option.name, {"1", "2", "4", "8", "16"});
        break;
    }
  }
  return true;
}

uint64_t fnv1a(uint64_t hash, std::string_view text) {
  // Length first, so ("ab", "c") and ("a", "bc") differ.
  const uint64_t size = text.size();
  for (int i = 0; i < 8; ++i) {
    hash ^= (size >> (8 * i)) & 0xff;
    hash *= 1099511628211ull;
  }
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

std::string kindPrefix(OptionKind kind) {
  switch (kind) {
    case OptionKind::OptimizationLevel: return "-";
    case OptionKind::Flag:
    case OptionKind::FlagEnum:
    case OptionKind::FlagInt: return "-f";
    case OptionKind::ParamEnum:
    case OptionKind::ParamInt: return "--param=";
  }
  return "";
}

}  // namespace

int64_t GccOption::size() const {
  switch (kind) {
    case OptionKind::Flag: return hasNegative ? 2 : 1;
    case OptionKind::FlagInt:
    case OptionKind::ParamInt: return max - min + 1;
    default: return static_cast<int64_t>(values.size());
  }
}

std::string GccOption::argument(int64_t choice) const {
  switch (kind) {
    case OptionKind::OptimizationLevel: return "-O" + values.at(static_cast<size_t>(choice));
    case OptionKind::Flag: return choice == 0 ? "-f" + name : "-fno-" + name;
    case OptionKind::FlagEnum: return "-f" + name + "=" + values.at(static_cast<size_t>(choice));
    case OptionKind::FlagInt: return "-f" + name + "=" + std::to_string(min + choice);
    case OptionKind::ParamEnum: return "--param=" + name + "=" + values.at(static_cast<size_t>(choice));
    case OptionKind::ParamInt: return "--param=" + name + "=" + std::to_string(min + choice);
  }
  return {};
}

std::string GccOption::displayName() const { return kindPrefix(kind) + name; }

std::string GccOption::describeRange() const {
  const std::string range = "-1 (absent) to " + std::to_string(size() - 1);
  if (kind == OptionKind::FlagInt || kind == OptionKind::ParamInt) {
    return range + " (choice k means " + displayName() + "=" + std::to_string(min) + "+k, up to " +
           std::to_string(max) + ")";
  }
  std::string list;
  for (int64_t choice = 0; choice < size(); ++choice) list += (choice ? ", " : ": ") + argument(choice);
  return range + list;
}

Result<GccSpec> parseGccSpec(const GccHelpText& text) {
  GccSpec spec;
  spec.version = std::string(trimmed(lines(text.version).empty() ? "" : lines(text.version).front()));
  OptionSet optimizers;
  for (std::string_view line : lines(text.optimizers)) parseOptimizerLine(line, optimizers);
  OptionSet params;
  for (std::string_view line : lines(text.params)) parseParamLine(line, text.paramDescriptions, params);
  if (!optimizers.hasLevels() || params.empty()) {
    return makeError(Outcome::ServerError,
                     "could not read gcc's option lists (no -O levels or no --param lines in its "
                     "--help=optimizers / --help=params output); gcc-v0 needs GCC 10 or later");
  }
  for (auto* set : {&optimizers, &params}) {
    for (GccOption& option : set->take()) {
      if (applyFixes(option)) spec.options.push_back(std::move(option));
    }
  }
  return spec;
}

Result<GccHelpText> readGccHelp(const std::string& binary) {
  // Unwrapped lines, and gcc's own words rather than a translation.
  const ToolOptions options{.environment = {"COLUMNS=100000", "LC_ALL=C"}};
  GccHelpText text;
  const std::pair<std::vector<std::string>, std::string*> runs[] = {
      {{binary, "--version"}, &text.version},
      {{binary, "-Q", "--help=optimizers"}, &text.optimizers},
      {{binary, "-Q", "--help=params"}, &text.params},
      {{binary, "--help=params"}, &text.paramDescriptions},
  };
  for (const auto& [argv, output] : runs) {
    auto run = runTool(argv, "", options);
    if (!run.ok()) return run.takeError();
    if (!run->succeeded()) {
      std::string command;
      for (const auto& arg : argv) command += (command.empty() ? "" : " ") + arg;
      return makeError(Outcome::ServerError, "`" + command + "` " + run->describeFailure(kToolTimeLimit) + ":\n" +
                                                 run->diagnostics());
    }
    *output = std::move(run->out);
  }
  return text;
}

std::string programPath(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string_view rest = path != nullptr && *path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const size_t colon = rest.find(':');
    const std::string directory(rest.substr(0, colon));
    const std::string candidate = (directory.empty() ? "." : directory) + "/" + name;
    struct stat info {};
    if (::stat(candidate.c_str(), &info) == 0 && S_ISREG(info.st_mode) && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    if (colon == std::string_view::npos) return {};
    rest.remove_prefix(colon + 1);
  }
}

Result<std::vector<std::string>> gccPrograms(const std::string& binary) {
  std::vector<std::string> programs;
  const std::string driver = programPath(binary);
  struct stat info {};
  if (binary.find('/') == std::string::npos && driver.empty()) {
    return makeError(Outcome::ServerError, "no '" + binary + "' on PATH");
  }
  if (driver[0] != '/') return makeError(Outcome::ServerError, "'" + driver + "' is not an absolute path");
  if (::stat(driver.c_str(), &info) != 0 || !S_ISREG(info.st_mode) || ::access(driver.c_str(), X_OK) != 0) {
    return makeError(Outcome::ServerError, "'" + driver + "' is not an executable file");
  }
  programs.push_back(driver);
  for (const char* pass : {"cc1", "as"}) {
    auto run = runTool({driver, std::string("-print-prog-name=") + pass}, "", {.environment = {"LC_ALL=C"}});
    if (!run.ok()) return run.takeError();
    if (!run->succeeded()) {
      return makeError(Outcome::ServerError, "`" + driver + " -print-prog-name=" + pass + "` " +
                                                 run->describeFailure(kToolTimeLimit) + ":\n" + run->diagnostics());
    }
    std::string name = run->out;
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    const std::string path = programPath(name);
    if (path.empty() || path[0] != '/') {
      return makeError(Outcome::ServerError, "`" + driver + " -print-prog-name=" + pass + "` named '" + name +
                                                 "', which is not an executable file: gcc-v0 cannot compile with it");
    }
    programs.push_back(path);
  }
  return programs;
}

Result<GccSpec> discoverGccSpec(const std::string& binary) {
  auto text = readGccHelp(binary);
  if (!text.ok()) return text.takeError();
  auto spec = parseGccSpec(*text);
  if (!spec.ok()) return spec.takeError();
  spec->binary = binary;
  return spec;
}

uint64_t specHash(const GccSpec& spec) {
  uint64_t hash = fnv1a(14695981039346656037ull, "gcc");
  hash = fnv1a(hash, spec.version);
  for (const GccOption& option : spec.options) {
    hash = fnv1a(hash, std::to_string(static_cast<int>(option.kind)));
    hash = fnv1a(hash, option.name);
    for (const std::string& value : option.values) hash = fnv1a(hash, value);
    hash = fnv1a(hash, std::to_string(option.min) + "," + std::to_string(option.max) + "," +
                           (option.hasNegative ? "neg" : "noneg"));
  }
  return hash;
}

int findOption(const GccSpec& spec, std::string_view name) {
  for (size_t i = 0; i < spec.options.size(); ++i) {
    if (spec.options[i].displayName() == name || spec.options[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace forkgym::passes::gcc
