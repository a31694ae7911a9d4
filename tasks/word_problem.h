#pragma once
// Group word problems (s3, s5, a5, cyclic, parity): the input is a sequence of group elements
// g_1 .. g_L, and the target at every position t is the running product
//     P_t = g_t ∘ P_{t-1} = g_t ∘ ... ∘ g_1,   P_t(i) = g_t(P_{t-1}(i)),
// i.e. P_{t-1} is applied first: P_t sends point i to where the permutations g_1, then g_2, ...,
// then g_t move it. Every position is scored; the vocabulary is the element names.
// With `bos`, a beginning-of-sequence token "<bos>" (the last vocabulary id) comes first: an
// example of length L then has L + 1 tokens, the first unscored with the identity (the empty
// product) as its target, as in the DeltaProduct paper's state-tracking protocol.
#include "tasks/group.h"
#include "tasks/task.h"

namespace m2b::tasks {

class WordProblemTask : public Task {
 public:
  WordProblemTask(std::string name, Group group, bool bos = false);
  const std::string& name() const override { return name_; }
  const std::vector<std::string>& vocabulary() const override { return vocabulary_; }
  int64_t token_count(int64_t length) const override { return length + (bos_ ? 1 : 0); }
  Example sample(int64_t length, Rng& rng) const override;
  // Recomputes each P_t by moving the points 0..n-1 through the input permutations one at a
  // time, without the multiplication table.
  void check(const Example& example) const override;
  const Group& group() const { return group_; }
  bool bos() const { return bos_; }

 private:
  std::string name_;
  Group group_;
  bool bos_;
  std::vector<std::string> vocabulary_;  // the element names, then "<bos>" with bos
};

}  // namespace m2b::tasks
