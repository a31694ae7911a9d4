#pragma once
// Code execution: straight-line programs over `variables` variables (a, b, c, ...), all starting
// at 0, with values mod `modulus`.
//
// Layout (token_count = 7 * length): per step a statement slot of 5 tokens
//   x = 7 - -      set          x = c
//   x = y - -      copy         x = y
//   x = y + 3      add          x = (y + c) mod m
//   x += y - -     accumulate   x = (x + y) mod m
//   swap x y - -   swap         exchange x and y (only with swap=true; x != y)
// then a query slot of 2 tokens: `print x`, whose answer (x's current value) is the target at
// the x token and the only kind of scored position, or `- -` (no query). After each statement a
// query comes with probability query_prob, and the last statement always has one. Statement
// kinds are drawn uniformly, then variables and constants uniformly (the source may equal the
// destination).
#include "common/options.h"
#include "tasks/slotted.h"

namespace m2b::tasks {

class CodeExecutionTask : public Task {
 public:
  static const std::vector<OptionSpec>& option_specs();
  explicit CodeExecutionTask(const Options& options);  // resolved against option_specs()

  const std::string& name() const override;
  const std::vector<std::string>& vocabulary() const override { return vocab_.words(); }
  int64_t token_count(int64_t length) const override;
  Example sample(int64_t length, Rng& rng) const override;
  // Interprets the program from its token text and recomputes every printed value.
  void check(const Example& example) const override;

 private:
  int64_t variables_, modulus_;
  double query_prob_;
  bool swap_;
  Vocabulary vocab_;
  Token pad_, assign_, accumulate_, plus_, swap_op_, print_, var0_, const0_;
};

}  // namespace m2b::tasks
