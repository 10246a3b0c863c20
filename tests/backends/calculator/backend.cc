#include "tests/backends/calculator/backend.h"

#include <algorithm>
#include <charconv>

#include "passes/content_hash.h"

namespace forkgym::calculator {
namespace {

using namespace passes;

struct Op {
  const char* name;
  int64_t (*apply)(int64_t);
};
constexpr Op kOps[] = {{"add1", [](int64_t v) { return v + 1; }},
                       {"double", [](int64_t v) { return v * 2; }},
                       {"halve", [](int64_t v) { return v / 2; }},
                       {"negate", [](int64_t v) { return -v; }}};
constexpr std::string_view kParameters[] = {"value"};
constexpr std::string_view kDataset = "generator://calculator-v0/";

Result<int64_t> number(std::string_view text) {
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    return makeError(Outcome::InvalidRequest, "'" + std::string(text) + "' is not a whole number");
  }
  return value;
}

const ActionSpace& actionSpace() {
  static const ActionSpace space = [] {
    ActionSpace out{.name = "Ops", .replay = {"calculator", " ", " ", "", ""}};
    for (const Op& op : kOps) {
      out.actions.push_back({.name = op.name, .replay = op.name, .description = std::string("v = ") + op.name + "(v)"});
    }
    return out;
  }();
  return space;
}

class Calculator : public TableSession<Calculator> {
 public:
  explicit Calculator(int64_t start) : start(start), value(start) {}
  Result<ApplyResult> applyActions(std::span<const uint32_t> actions) override {
    if (std::ranges::any_of(actions, [](uint32_t a) { return a >= std::size(kOps); })) {
      return makeError(Outcome::InvalidRequest, "the calculator has actions 0.." + std::to_string(std::size(kOps) - 1));
    }
    ApplyResult result;
    for (uint32_t a : actions) {
      const int64_t before = std::exchange(value, kOps[a].apply(value));
      result.actionHadNoEffect = result.actionHadNoEffect && value == before;
      applied.push_back(a);
    }
    return result;
  }
  Result<std::string> setParameter(std::string_view key, std::string_view text) override {
    if (key != "value") return unknownParameter("calculator", key, kParameters);
    auto parsed = number(text);
    if (!parsed.ok()) return parsed.takeError();
    return std::to_string(value = *parsed);
  }
  std::string commandLine() const override { return replayCommandLine(actionSpace(), applied); }
  const std::vector<uint32_t>& actions() const override { return applied; }

  // The tables: one row per space and the function that computes it.
  static std::span<const ObservationRow<Calculator>> observationRows() {
    static const std::vector<ObservationRow<Calculator>> rows = {
        {{.name = "Value", .description = "the integer"}, [](Calculator& c) -> Value { return ObservationValue(c.value); }},
        {{.name = "IsEven", .type = ValueType::Bool, .description = "whether it is even"},
         [](Calculator& c) -> Value { return ObservationValue(c.value % 2 == 0); }},
        {{.name = "OpCounts", .type = ValueType::Int64Map, .description = "how often each action ran"},
         [](Calculator& c) -> Value {
           std::vector<NamedCount> counts;
           for (uint32_t a = 0; a < std::size(kOps); ++a) counts.push_back({kOps[a].name, std::ranges::count(c.applied, a)});
           return ObservationValue(std::move(counts));
         }},
    };
    return rows;
  }
  static std::span<const RewardRow<Calculator>> rewardRows() {
    static const std::vector<RewardRow<Calculator>> rows = {
        {{.name = "Decrease", .type = ValueType::Float64, .description = "how far it fell since last asked"},
         [](Calculator& c, RewardState& state) -> Result<double> {
           const double previous = state.previous.value_or(static_cast<double>(c.start));
           state.previous = static_cast<double>(c.value);
           return previous - static_cast<double>(c.value);
         }},
    };
    return rows;
  }

  using Value = Result<ObservationValue>;
  int64_t start, value;
  std::vector<uint32_t> applied;
};

// A benchmark, generator://calculator-v0/<start>, is its start value: the
// loader child hashes it and ships its digits, the zygote caches the number.
struct Start : CachedBenchmark {
  explicit Start(int64_t v) : value(v) {}
  size_t sizeInCache() const override { return sizeof(*this); }
  int64_t value;
};

Result<BenchmarkLocation> resolve(std::string_view uri, const ResolveContext&) {
  const std::string text = normalizedUri(uri);
  auto start = text.starts_with(kDataset) ? number(std::string_view(text).substr(kDataset.size()))
                                          : Result<int64_t>(makeError(Outcome::InvalidRequest, "'" + text + "'"));
  if (!start.ok()) return makeError(Outcome::InvalidRequest, start.error().message + ": the calculator loads " +
                                                                 std::string(kDataset) + "<integer>");
  const std::string canonical = std::string(kDataset) + std::to_string(*start);
  return BenchmarkLocation{canonical, canonical, {}};
}

Result<LoadedBenchmark> load(const LoadRequest& request) {
  LoadedBenchmark loaded{.uri = request.uri, .payload = request.uri.substr(kDataset.size())};
  ContentHash hash;
  hash.add("start", loaded.payload);
  loaded.contentHash = hash.hex();
  return loaded;
}

}  // namespace

const Backend kBackend = {
    .name = "calculator",
    .description = "a toy compiler whose program is an integer",
    .startUp = StartUp::Preloaded,
    .sandbox = WorkerSandbox::InProcessCompiler,
    .initialize = [] { return Result<BackendIdentity>(BackendIdentity{"1.0", {}}); },
    .actionSpace = &actionSpace,
    .observationSpaces = &observationSpacesOf<Calculator>,
    .rewardSpaces = &rewardSpacesOf<Calculator>,
    .resolve = &resolve,
    .load = &load,
    .prepare = [](const LoadedBenchmark& loaded) -> Result<std::unique_ptr<CachedBenchmark>> {
      auto start = number(loaded.payload);
      if (!start.ok()) return start.takeError();
      return std::unique_ptr<CachedBenchmark>(std::make_unique<Start>(*start));
    },
    .startSession = [](CachedBenchmark& start) -> Result<std::unique_ptr<Session>> {
      return std::unique_ptr<Session>(std::make_unique<Calculator>(static_cast<Start&>(start).value));
    },
};

}  // namespace forkgym::calculator
