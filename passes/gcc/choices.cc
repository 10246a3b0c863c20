#include "passes/gcc/choices.h"

#include <charconv>

#include "base/trimmed.h"

namespace forkgym::passes::gcc {
Choices initialChoices(const GccSpec& spec) { return Choices(spec.options.size(), -1); }

Result<Choices> parseChoices(const GccSpec& spec, std::string_view text) {
  const std::string count = std::to_string(spec.options.size());
  Choices choices;
  std::string_view rest = text;
  // Empty text is no values (the count check below says so).
  for (bool more = !trimmed(text).empty(); more;) {
    const size_t comma = rest.find(',');
    const std::string_view item = trimmed(rest.substr(0, comma));
    int64_t value = 0;
    const auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (item.empty() || error != std::errc() || end != item.data() + item.size()) {
      return makeError(Outcome::InvalidRequest,
                       "choices must be " + count + " comma-separated integers (-1 for an option left out); item " +
                           std::to_string(choices.size()) + " is '" + std::string(item) + "'");
    }
    choices.push_back(value);
    more = comma != std::string_view::npos;
    if (more) rest.remove_prefix(comma + 1);
  }
  if (choices.size() != spec.options.size()) {
    return makeError(Outcome::InvalidRequest, "choices has " + std::to_string(choices.size()) +
                                                  " values but this gcc has " + count +
                                                  " options: give one value per option (-1 leaves it out)");
  }
  for (size_t i = 0; i < choices.size(); ++i) {
    const GccOption& option = spec.options[i];
    if (choices[i] < -1 || choices[i] >= option.size()) {
      return makeError(Outcome::InvalidRequest, "choice " + std::to_string(choices[i]) + " for option " +
                                                    std::to_string(i) + " (" + option.displayName() +
                                                    ") is out of range: it takes " + option.describeRange());
    }
  }
  return choices;
}

std::string formatChoices(const Choices& choices) {
  std::string text;
  for (size_t i = 0; i < choices.size(); ++i) text += (i ? "," : "") + std::to_string(choices[i]);
  return text;
}

std::vector<std::string> chosenArguments(const GccSpec& spec, const Choices& choices) {
  std::vector<std::string> arguments;
  for (size_t i = 0; i < spec.options.size() && i < choices.size(); ++i) {
    if (choices[i] >= 0) arguments.push_back(spec.options[i].argument(choices[i]));
  }
  return arguments;
}

std::vector<std::string> argumentForms(const GccSpec& spec) {
  std::vector<std::string> forms;
  for (const GccOption& option : spec.options) {
    if (option.kind == OptionKind::FlagInt || option.kind == OptionKind::ParamInt) {
      const std::string first = option.argument(0);
      forms.push_back(first.substr(0, first.rfind('=') + 1));
      continue;
    }
    for (int64_t choice = 0; choice < option.size(); ++choice) forms.push_back(option.argument(choice));
  }
  return forms;
}

std::vector<std::string> commandLine(const GccSpec& spec, const Choices& choices, Artifact artifact) {
  std::vector<std::string> argv = {spec.binary};
  const std::vector<std::string> chosen = chosenArguments(spec, choices);
  argv.insert(argv.end(), chosen.begin(), chosen.end());
  switch (artifact) {
    case Artifact::Object:
      argv.insert(argv.end(), {"-w", "-c", std::string(kSourceFile), "-o", std::string(kObjectFile)});
      break;
    case Artifact::Assembly:
      argv.insert(argv.end(), {"-w", "-S", std::string(kSourceFile), "-o", std::string(kAssemblyFile)});
      break;
    case Artifact::AssemblyAndRtl:
      argv.insert(argv.end(), {"-w", "-S", std::string(kSourceFile), "-fdump-rtl-dfinish=" + std::string(kRtlFile),
                               "-o", std::string(kAssemblyFile)});
      break;
  }
  return argv;
}

std::string commandLineText(const GccSpec& spec, const Choices& choices) {
  std::string text;
  for (const std::string& arg : commandLine(spec, choices, Artifact::Object)) text += (text.empty() ? "" : " ") + arg;
  return text;
}

}  // namespace forkgym::passes::gcc
