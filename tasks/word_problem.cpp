#include "tasks/word_problem.h"

#include <numeric>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tasks/slotted.h"

namespace m2b::tasks {

WordProblemTask::WordProblemTask(std::string name, Group group, bool bos)
    : name_(std::move(name)), group_(std::move(group)), bos_(bos), vocabulary_(group_.names) {
  if (bos_) vocabulary_.push_back("<bos>");
}

Example WordProblemTask::sample(int64_t length, Rng& rng) const {
  require_length(*this, length);
  const int64_t first = bos_ ? 1 : 0;  // where the group elements start
  Example ex;
  ex.inputs.resize(length + first);
  ex.targets.resize(length + first);
  ex.scored.assign(length + first, 1);
  if (bos_) {
    ex.inputs[0] = static_cast<Token>(group_.order());
    ex.targets[0] = group_.identity;
    ex.scored[0] = 0;
  }
  int32_t product = group_.identity;
  for (int64_t t = first; t < length + first; ++t) {
    const auto g = static_cast<int32_t>(rng.below(group_.order()));
    product = group_.compose(g, product);
    ex.inputs[t] = g;
    ex.targets[t] = product;
  }
  return ex;
}

void WordProblemTask::check(const Example& ex) const {
  check_tokens(*this, ex);
  const auto bos_id = static_cast<Token>(group_.order());
  size_t first = 0;
  if (bos_) {
    if (ex.inputs[0] != bos_id) fail_at(*this, 0, "the first input must be <bos>");
    if (ex.scored[0] || ex.targets[0] != group_.identity)
      fail_at(*this, 0, "the <bos> position is unscored with the identity as its target");
    first = 1;
  }
  // where[i]: the point that i has been moved to by the inputs so far.
  std::vector<int> where(group_.degree());
  std::iota(where.begin(), where.end(), 0);
  for (size_t t = first; t < ex.inputs.size(); ++t) {
    if (bos_ && ex.inputs[t] == bos_id) fail_at(*this, t, "<bos> only comes first");
    const auto& g = group_.perms[ex.inputs[t]];
    for (int& w : where) w = g[w];
    if (!ex.scored[t]) fail_at(*this, t, "every position of a word problem is scored");
    if (ex.targets[t] >= bos_id || group_.perms[ex.targets[t]] != where)
      fail_at(*this, t,
              fmt::format("target '{}' is not the product of the inputs so far, which sends "
                          "0..{} to [{}]",
                          vocabulary_[ex.targets[t]], where.size() - 1, fmt::join(where, " ")));
  }
}

}  // namespace m2b::tasks
