#include "passes/gcc/episode.h"

#include <charconv>

namespace forkgym::passes::gcc {
namespace {

constexpr std::string_view kAcceptedKeys = "choices, timeout, gcc_spec";
// A gcc run longer than a day is a mistake, not a setting.
constexpr int64_t kMaxTimeoutSeconds = 86400;

std::string jsonString(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[(c >> 4) & 15];
      out += kHex[c & 15];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string_view kindName(OptionKind kind) {
  switch (kind) {
    case OptionKind::OptimizationLevel: return "optimization_level";
    case OptionKind::Flag: return "flag";
    case OptionKind::FlagEnum: return "flag_enum";
    case OptionKind::FlagInt: return "flag_int";
    case OptionKind::ParamEnum: return "param_enum";
    case OptionKind::ParamInt: return "param_int";
  }
  return "";
}

}  // namespace

Error compileError(const CompileResult& result) {
  return makeError(result.failure == CompileFailure::Rejected ? Outcome::InvalidRequest : Outcome::CompilerFailed,
                   result.message);
}

std::string specJson(const GccSpec& spec) {
  std::string json = "{\"binary\": " + jsonString(spec.binary) + ", \"version\": " + jsonString(spec.version) +
                     ", \"options\": [";
  for (size_t i = 0; i < spec.options.size(); ++i) {
    const GccOption& option = spec.options[i];
    json += i ? ", " : "";
    json += "{\"name\": " + jsonString(option.displayName()) + ", \"kind\": " + jsonString(kindName(option.kind)) +
            ", \"size\": " + std::to_string(option.size());
    if (option.kind == OptionKind::FlagInt || option.kind == OptionKind::ParamInt) {
      json += ", \"min\": " + std::to_string(option.min) + ", \"max\": " + std::to_string(option.max);
    } else {
      json += ", \"choices\": [";
      for (int64_t choice = 0; choice < option.size(); ++choice) {
        json += (choice ? ", " : "") + jsonString(option.argument(choice));
      }
      json += "]";
    }
    json += "}";
  }
  return json + "]}";
}

GccEpisode::GccEpisode(const GccSpec& spec, const GccActionSpace& actions, std::string source, std::string workBase,
                       CompileLimits limits)
    : spec_(&spec),
      actionSpace_(&actions),
      workspace_(std::move(workBase), std::move(source)),
      limits_(limits),
      initial_(initialChoices(spec)),
      choices_(initial_) {}

Status GccEpisode::ensure(const Choices& choices, Artifacts& into, Artifact artifact) {
  std::optional<std::string>& slot = artifact == Artifact::Object ? into.object : into.assembly;
  if (slot && (artifact != Artifact::AssemblyAndRtl || into.rtl)) return okStatus();
  auto result = compile(*spec_, choices, artifact, workspace_, limits_);
  if (!result.ok()) return result.takeError();
  if (result->failure != CompileFailure::None) return compileError(*result);
  slot = std::move(result->output.primary);
  if (artifact == Artifact::AssemblyAndRtl) into.rtl = std::move(result->output.rtl);
  return okStatus();
}

Status GccEpisode::moveTo(Choices next) {
  if (next == choices_) return okStatus();
  Artifacts fresh;
  Artifacts& target = next == initial_ ? initialArtifacts_ : fresh;
  if (auto compiled = ensure(next, target, Artifact::Object); !compiled.ok()) return compiled.takeError();
  choices_ = std::move(next);
  if (choices_ != initial_) currentArtifacts_ = std::move(fresh);
  return okStatus();
}

Result<bool> GccEpisode::apply(std::span<const uint32_t> actions) {
  for (uint32_t action : actions) {
    if (action >= actionSpace_->size()) {
      return makeError(Outcome::InvalidRequest, "action " + std::to_string(action) + " is out of range: gcc-v0 has " +
                                                    std::to_string(actionSpace_->size()) +
                                                    " actions (0.." + std::to_string(actionSpace_->size() - 1) +
                                                    "); nothing was applied");
    }
  }
  Choices next = choices_;
  bool changed = false;
  for (uint32_t action : actions) changed |= actionSpace_->apply(action, next);
  changed = changed && next != choices_;  // e.g. +1 then -1
  if (auto moved = moveTo(std::move(next)); !moved.ok()) return moved.takeError();
  applied_.insert(applied_.end(), actions.begin(), actions.end());
  return changed;
}

Result<std::string> GccEpisode::setParameter(std::string_view key, std::string_view value) {
  if (key == "choices") {
    if (!value.empty()) {
      auto parsed = parseChoices(*spec_, value);
      if (!parsed.ok()) return parsed.takeError();
      if (auto moved = moveTo(std::move(*parsed)); !moved.ok()) return moved.takeError();
    }
    return formatChoices(choices_);
  }
  if (key == "timeout") {
    if (value.empty()) {
      limits_.timeout = CompileLimits{}.timeout;
    } else {
      int64_t seconds = 0;
      const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
      if (error != std::errc() || end != value.data() + value.size() || seconds < 1 || seconds > kMaxTimeoutSeconds) {
        return makeError(Outcome::InvalidRequest, "timeout must be a whole number of seconds from 1 to " +
                                                      std::to_string(kMaxTimeoutSeconds) + " (or empty for the " +
                                                      "default), not '" + std::string(value) + "'");
      }
      limits_.timeout = std::chrono::seconds(seconds);
    }
    return std::to_string(limits_.timeout.count());
  }
  if (key == "gcc_spec") return specJson(*spec_);
  return makeError(Outcome::InvalidRequest, "gcc-v0 has no parameter '" + std::string(key) +
                                                "'; it accepts: " + std::string(kAcceptedKeys));
}

Result<const std::string*> GccEpisode::object() {
  Artifacts& artifacts = current();
  if (auto made = ensure(choices_, artifacts, Artifact::Object); !made.ok()) return made.takeError();
  return &*artifacts.object;
}

Result<const std::string*> GccEpisode::assembly() {
  Artifacts& artifacts = current();
  if (auto made = ensure(choices_, artifacts, Artifact::Assembly); !made.ok()) return made.takeError();
  return &*artifacts.assembly;
}

Result<const std::string*> GccEpisode::rtl() {
  Artifacts& artifacts = current();
  if (auto made = ensure(choices_, artifacts, Artifact::AssemblyAndRtl); !made.ok()) return made.takeError();
  return &*artifacts.rtl;
}

Result<int64_t> GccEpisode::initialObjectSize() {
  if (auto made = ensure(initial_, initialArtifacts_, Artifact::Object); !made.ok()) return made.takeError();
  return static_cast<int64_t>(initialArtifacts_.object->size());
}

Result<int64_t> GccEpisode::initialAssemblySize() {
  if (auto made = ensure(initial_, initialArtifacts_, Artifact::Assembly); !made.ok()) return made.takeError();
  return static_cast<int64_t>(initialArtifacts_.assembly->size());
}

}  // namespace forkgym::passes::gcc
