#include "passes/gcc/session.h"

#include <algorithm>

#include "passes/gcc/artifacts.h"

namespace forkgym::passes::gcc {
namespace {

using Row = ObservationRow<GccSession>;

Space text(std::string name, bool platformDependent, std::string description) {
  Space space;
  space.name = std::move(name);
  space.type = ValueType::Text;
  space.platformDependent = platformDependent;
  space.description = std::move(description);
  return space;
}

Space bytesCount(std::string name, std::string description) {
  Space space;
  space.name = std::move(name);
  space.type = ValueType::Int64;
  space.low = 0;
  space.platformDependent = true;
  space.description = std::move(description);
  return space;
}

template <typename F>
Result<ObservationValue> fromText(Result<const std::string*> artifact, F&& f) {
  if (!artifact.ok()) return artifact.takeError();
  return ObservationValue(f(**artifact));
}

const Row kObservationRows[] = {
    {text("source", false, "the preprocessed C source, as src.c holds it"),
     [](GccSession& s) -> Result<ObservationValue> { return ObservationValue(std::string(s.episode().source())); }},
    {text("rtl", true, "gcc's RTL after its last pass (-fdump-rtl-dfinish)"),
     [](GccSession& s) { return fromText(s.episode().rtl(), [](const std::string& t) { return t; }); }},
    {text("asm", true, "the assembly gcc writes with -S"),
     [](GccSession& s) { return fromText(s.episode().assembly(), [](const std::string& t) { return t; }); }},
    {bytesCount("asm_size", "size in bytes of the -S output"),
     [](GccSession& s) {
       return fromText(s.episode().assembly(), [](const std::string& t) { return static_cast<int64_t>(t.size()); });
     }},
    {text("asm_hash", true, "md5 of the -S output, hex"),
     [](GccSession& s) { return fromText(s.episode().assembly(), [](const std::string& t) { return md5Hex(t); }); }},
    {[] {
       Space space;
       space.name = "instruction_counts";
       space.type = ValueType::Int64Map;
       space.low = 0;
       space.platformDependent = true;
       space.description = "count of each mnemonic (and directive) in the -S output, by name";
       return space;
     }(),
     [](GccSession& s) {
       return fromText(s.episode().assembly(), [](const std::string& t) {
         std::vector<NamedCount> counts;
         for (auto& [name, count] : instructionCounts(t)) counts.push_back({std::move(name), count});
         return counts;
       });
     }},
    {[] {
       Space space;
       space.name = "obj";
       space.type = ValueType::Bytes;
       space.platformDependent = true;
       space.description = "the object file the command line writes";
       return space;
     }(),
     [](GccSession& s) {
       return fromText(s.episode().object(), [](const std::string& t) { return std::vector<uint8_t>(t.begin(), t.end()); });
     }},
    {bytesCount("obj_size", "size in bytes of the object file the command line writes"),
     [](GccSession& s) {
       return fromText(s.episode().object(), [](const std::string& t) { return static_cast<int64_t>(t.size()); });
     }},
    {text("obj_hash", true, "md5 of the object file, hex"),
     [](GccSession& s) { return fromText(s.episode().object(), [](const std::string& t) { return md5Hex(t); }); }},
    {[] {
       Space space;
       space.name = "choices";
       space.type = ValueType::Int64List;
       space.low = -1;
       space.description = "one choice per option of gcc_spec, -1 for an option left out";
       return space;  // shape and high: gccObservationSpaces()
     }(),
     [](GccSession& s) -> Result<ObservationValue> { return ObservationValue(s.episode().choices()); }},
    {text("command_line", true, "gcc <choices> -w -c src.c -o obj.o"),
     [](GccSession& s) -> Result<ObservationValue> { return ObservationValue(s.episode().commandLine()); }},
    {bytesCount("obj_text_size", "bytes of machine code in the object file (its executable sections summed)"),
     [](GccSession& s) -> Result<ObservationValue> {
       auto object = s.episode().object();
       if (!object.ok()) return object.takeError();
       auto size = executableBytes(**object);
       if (!size.ok()) return size.takeError();
       return ObservationValue(*size);
     }},
};

Space reward(std::string name, std::string description) {
  Space space;
  space.name = std::move(name);
  space.type = ValueType::Float64;
  // CompilerGym marked both non-deterministic and platform dependent.
  space.deterministic = false;
  space.platformDependent = true;
  space.description = std::move(description);
  return space;
}

// r = previous - now; previous starts at the reset state's size.
template <Result<int64_t> (GccEpisode::*Initial)(), Result<const std::string*> (GccEpisode::*Artifact)()>
Result<double> sizeReduction(GccSession& session, RewardState& state) {
  if (!state.previous) {
    auto initial = (session.episode().*Initial)();
    if (!initial.ok()) return initial.takeError();
    state.previous = static_cast<double>(*initial);
  }
  auto now = (session.episode().*Artifact)();
  if (!now.ok()) return now.takeError();
  const double size = static_cast<double>((*now)->size());
  const double reward = *state.previous - size;
  state.previous = size;
  return reward;
}

const RewardRow<GccSession> kRewardRows[] = {
    {reward("asm_size", "reduction of asm_size since the last step (bytes)"),
     &sizeReduction<&GccEpisode::initialAssemblySize, &GccEpisode::assembly>},
    {reward("obj_size", "reduction of obj_size since the last step (bytes)"),
     &sizeReduction<&GccEpisode::initialObjectSize, &GccEpisode::object>},
};

}  // namespace

GccSession::GccSession(const GccSpec& spec, const GccActionSpace& actions, std::string source, std::string workBase)
    : episode_(spec, actions, std::move(source), std::move(workBase), {}) {}

GccSession::~GccSession() = default;

Result<ApplyResult> GccSession::applyActions(std::span<const uint32_t> actions) {
  auto changed = episode_.apply(actions);
  if (!changed.ok()) return changed.takeError();
  return ApplyResult{.actionHadNoEffect = !*changed};
}

Result<std::string> GccSession::setParameter(std::string_view key, std::string_view value) {
  return episode_.setParameter(key, value);
}

std::span<const ObservationRow<GccSession>> GccSession::observationRows() { return kObservationRows; }
std::span<const RewardRow<GccSession>> GccSession::rewardRows() { return kRewardRows; }

std::vector<Space> gccObservationSpaces(const GccSpec& spec) {
  std::vector<Space> spaces = spacesOf(GccSession::observationRows());
  for (Space& space : spaces) {
    if (space.name != "choices") continue;
    space.shape = {static_cast<int64_t>(spec.options.size())};
    int64_t largest = 0;
    for (const GccOption& option : spec.options) largest = std::max(largest, option.size());
    space.high = static_cast<double>(largest - 1);
  }
  return spaces;
}

std::vector<Space> gccRewardSpaces() { return spacesOf(GccSession::rewardRows()); }

}  // namespace forkgym::passes::gcc
