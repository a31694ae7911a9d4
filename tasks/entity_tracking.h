#pragma once
// Entity tracking: `boxes` boxes, each holding at most one of `objects` objects.
//
// Layout (token_count = 2 * objects + 5 * length):
//   initial assignment, one pair per object in order:  o0 b3  o1 b0 ...   (every object placed)
//   then per step an operation slot of 3 tokens        move oX bK   (a placed object into an
//                                                                   empty box)
//                                                      swap bJ bK   (two boxes exchange contents)
//                                                      remove oX -  (a placed object leaves)
//                                                      put oX bK    (a removed object into an
//                                                                   empty box)
//   and a query slot of 2 tokens                       where oX  -> bK or `out`
//                                                      what bK   -> oX or `empty`
//                                                      - -          (no query)
// The answer is the target at the query's second token, the only scored positions. After each
// step a query comes with probability query_prob, and the last step always has one. Each step
// draws its operation uniformly among the enabled kinds that the state allows, then its
// arguments uniformly among the legal ones; queries ask `where` or `what` with equal odds.
#include "common/options.h"
#include "tasks/slotted.h"

namespace m2b::tasks {

class EntityTrackingTask : public Task {
 public:
  static const std::vector<OptionSpec>& option_specs();
  explicit EntityTrackingTask(const Options& options);  // resolved against option_specs()

  const std::string& name() const override;
  const std::vector<std::string>& vocabulary() const override { return vocab_.words(); }
  int64_t token_count(int64_t length) const override;
  Example sample(int64_t length, Rng& rng) const override;
  // Replays the operations from their token text and recomputes every answer.
  void check(const Example& example) const override;

 private:
  int64_t boxes_, objects_;
  double query_prob_;
  bool swap_, remove_;
  Vocabulary vocab_;
  Token pad_, move_, swap_op_, remove_op_, put_, where_, what_, out_, empty_, box0_, object0_;
};

}  // namespace m2b::tasks
