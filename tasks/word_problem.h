#pragma once
// Group word problems (s3, s5, a5, cyclic, parity): the input is a sequence of group elements
// g_1 .. g_L, and the target at every position t is the running product
//     P_t = g_t ∘ P_{t-1} = g_t ∘ ... ∘ g_1,   P_t(i) = g_t(P_{t-1}(i)),
// i.e. P_{t-1} is applied first: P_t sends point i to where the permutations g_1, then g_2, ...,
// then g_t move it. Every position is scored; the vocabulary is the element names.
#include "tasks/group.h"
#include "tasks/task.h"

namespace m2b::tasks {

class WordProblemTask : public Task {
 public:
  WordProblemTask(std::string name, Group group);
  const std::string& name() const override { return name_; }
  const std::vector<std::string>& vocabulary() const override { return group_.names; }
  int64_t token_count(int64_t length) const override { return length; }
  Example sample(int64_t length, Rng& rng) const override;
  // Recomputes each P_t by moving the points 0..n-1 through the input permutations one at a
  // time, without the multiplication table.
  void check(const Example& example) const override;
  const Group& group() const { return group_; }

 private:
  std::string name_;
  Group group_;
};

}  // namespace m2b::tasks
