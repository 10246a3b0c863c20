#include "passes/gcc/action_space.h"

#include <algorithm>

namespace forkgym::passes::gcc {
namespace {

// CompilerGym's thresholds: from this many choices, steps of this size.
struct StepRule {
  int64_t fromChoices;
  int64_t step;
};
constexpr StepRule kStepRules[] = {{10, 1}, {50, 10}, {500, 100}, {5000, 1000}};
constexpr int64_t kOneActionPerChoiceBelow = 10;

uint64_t mix(uint64_t hash, std::string_view text) {
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  hash ^= 0xff;  // separator: no name is a prefix of the next
  return hash * 1099511628211ull;
}

}  // namespace

GccActionSpace::GccActionSpace(const GccSpec& spec) : spec_(&spec) {
  for (uint32_t i = 0; i < spec.options.size(); ++i) {
    const GccOption& option = spec.options[i];
    const int64_t size = option.size();
    if (size < kOneActionPerChoiceBelow) {
      for (int64_t choice = 0; choice < size; ++choice) {
        actions_.push_back({GccAction::Kind::Set, i, choice, option.argument(choice)});
      }
      continue;
    }
    for (const StepRule& rule : kStepRules) {
      if (size < rule.fromChoices) break;
      for (int64_t step : {rule.step, -rule.step}) {
        actions_.push_back({GccAction::Kind::Step, i, step,
                            option.displayName() + "[" + (step > 0 ? "+" : "") + std::to_string(step) + "]"});
      }
    }
  }
  hash_ = specHash(spec);
  for (const GccAction& action : actions_) hash_ = mix(hash_, action.name);
}

bool GccActionSpace::apply(uint32_t index, std::vector<int64_t>& choices) const {
  const GccAction& action = actions_.at(index);
  int64_t& choice = choices.at(action.option);
  const int64_t before = choice;
  if (action.kind == GccAction::Kind::Set) {
    choice = action.value;
  } else {
    const int64_t last = spec_->options[action.option].size() - 1;
    choice = std::clamp<int64_t>(choice + action.value, -1, last);
  }
  return choice != before;
}

}  // namespace forkgym::passes::gcc
