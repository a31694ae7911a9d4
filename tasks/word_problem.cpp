#include "tasks/word_problem.h"

#include <numeric>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tasks/slotted.h"

namespace m2b::tasks {

WordProblemTask::WordProblemTask(std::string name, Group group)
    : name_(std::move(name)), group_(std::move(group)) {}

Example WordProblemTask::sample(int64_t length, Rng& rng) const {
  require_length(*this, length);
  Example ex;
  ex.inputs.resize(length);
  ex.targets.resize(length);
  ex.scored.assign(length, 1);
  int32_t product = group_.identity;
  for (int64_t t = 0; t < length; ++t) {
    const auto g = static_cast<int32_t>(rng.below(group_.order()));
    product = group_.compose(g, product);
    ex.inputs[t] = g;
    ex.targets[t] = product;
  }
  return ex;
}

void WordProblemTask::check(const Example& ex) const {
  check_tokens(*this, ex);
  // where[i]: the point that i has been moved to by the inputs so far.
  std::vector<int> where(group_.degree());
  std::iota(where.begin(), where.end(), 0);
  for (size_t t = 0; t < ex.inputs.size(); ++t) {
    const auto& g = group_.perms[ex.inputs[t]];
    for (int& w : where) w = g[w];
    if (!ex.scored[t]) fail_at(*this, t, "every position of a word problem is scored");
    if (group_.perms[ex.targets[t]] != where)
      fail_at(*this, t,
              fmt::format("target '{}' is not the product of the inputs so far, which sends "
                          "0..{} to [{}]",
                          group_.names[ex.targets[t]], where.size() - 1, fmt::join(where, " ")));
  }
}

}  // namespace m2b::tasks
