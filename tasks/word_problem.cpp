#include "tasks/word_problem.h"

#include <functional>
#include <memory>
#include <numeric>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tasks/registry.h"
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

namespace {

const char* const kWordProblem =
    "Input: group elements g_1..g_L; target at every position (all scored): the running product "
    "P_t = g_t o P_{t-1}, i.e. P_{t-1} applied first, P_t(i) = g_t(P_{t-1}(i)).";

// Every word problem takes `bos`; off by default and then left out of run ids, which predate it.
TaskInfo word_problem_info(std::string name, const std::string& what,
                           std::vector<OptionSpec> params,
                           std::function<Group(const Options&)> group) {
  OptionSpec bos{"bos", OptionType::Bool, false,
                 "prepend an unscored beginning-of-sequence token <bos> (the DeltaProduct "
                 "protocol); an example of length L then has L + 1 tokens"};
  bos.omit_when_default = true;
  params.push_back(std::move(bos));
  auto factory = [name, group](const Options& o) -> std::unique_ptr<Task> {
    return std::make_unique<WordProblemTask>(name, group(o), o.get_bool("bos"));
  };
  return {std::move(name), what + " " + kWordProblem, std::move(params), factory};
}

}  // namespace

M2B_REGISTER_TASK(
    s3,
    word_problem_info(
        "s3",
        "Word problem over S3, the 6 permutations of 3 points in one-line notation (\"120\" sends "
        "0->1, 1->2, 2->0): the paper's headline task.",
        {}, [](const Options&) { return symmetric_group(3); }));
M2B_REGISTER_TASK(
    s5,
    word_problem_info("s5",
                      "Word problem over S5 (the 120 permutations of 5 points, one-line notation).",
                      {}, [](const Options&) { return symmetric_group(5); }));
M2B_REGISTER_TASK(
    a5, word_problem_info(
            "a5",
            "Word problem over A5 (the 60 even permutations of 5 points, one-line notation; the "
            "smallest non-solvable group).",
            {}, [](const Options&) { return alternating_group(5); }));
M2B_REGISTER_TASK(
    cyclic, word_problem_info(
                "cyclic", "Word problem over Z_n: elements 0..n-1, the product is their sum mod n.",
                {{"n", OptionType::Int, int64_t{5}, "order of the cyclic group Z_n", 2, 256}},
                [](const Options& o) { return cyclic_group(static_cast<int>(o.get_int("n"))); }));
M2B_REGISTER_TASK(
    parity,
    word_problem_info("parity",
                      "Word problem over Z_2: bits 0/1, the target is the running parity (XOR).",
                      {}, [](const Options&) { return cyclic_group(2); }));

}  // namespace m2b::tasks
