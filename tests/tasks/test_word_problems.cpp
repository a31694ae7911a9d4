#include <cstdlib>
#include <numeric>
#include <string>
#include <vector>

#include "tests/catch.h"
#include "tests/tasks/task_testing.h"
#include "tasks/group.h"
#include "tasks/registry.h"
#include "tasks/render.h"
#include "tasks/word_problem.h"

using namespace m2b::tasks;
using namespace m2b::tasks::testing;

namespace {

// One-line notation read back from a token's text: "120" sends 0->1, 1->2, 2->0.
std::vector<int> perm_of(const std::string& name) {
  std::vector<int> p;
  for (char c : name) p.push_back(c - '0');
  return p;
}

// The independent implementation: carry the list [0, 1, ..., n-1] of where each point is, and
// apply the input permutations to it one at a time, first to last.
std::vector<std::vector<int>> running_positions(const std::vector<std::string>& inputs, int n) {
  std::vector<int> where(n);
  std::iota(where.begin(), where.end(), 0);
  std::vector<std::vector<int>> out;
  for (const auto& name : inputs) {
    const auto g = perm_of(name);
    for (int& w : where) w = g[w];
    out.push_back(where);
  }
  return out;
}

}  // namespace

TEST_CASE("groups have the right orders, identities and associative tables", "[word_problem]") {
  for (const auto& [group, order] :
       std::vector<std::pair<Group, int64_t>>{{symmetric_group(3), 6},
                                              {symmetric_group(5), 120},
                                              {alternating_group(5), 60},
                                              {cyclic_group(7), 7},
                                              {cyclic_group(2), 2}}) {
    INFO(group.name);
    REQUIRE(group.order() == order);
    std::vector<int> identity(group.degree());
    std::iota(identity.begin(), identity.end(), 0);
    CHECK(group.perms[group.identity] == identity);
    for (int32_t a = 0; a < order; ++a) {
      CHECK(group.compose(a, group.identity) == a);
      CHECK(group.compose(group.identity, a) == a);
    }
    for (int32_t a = 0; a < order; a += 7)
      for (int32_t b = 0; b < order; ++b)
        for (int32_t c = 0; c < order; c += 3)
          REQUIRE(group.compose(group.compose(a, b), c) == group.compose(a, group.compose(b, c)));
  }
  CHECK(symmetric_group(3).names ==
        std::vector<std::string>{"012", "021", "102", "120", "201", "210"});
  CHECK(alternating_group(5).names[0] == "01234");
}

TEST_CASE("the running product applies the earlier elements first", "[word_problem]") {
  auto s3 = make_task("s3", {});
  // 102 swaps points 0 and 1, then 021 swaps 1 and 2: point 0 -> 1 -> 2, 1 -> 0 -> 0,
  // 2 -> 2 -> 1, so the product is 201 (applying them the other way round would give 120).
  CHECK_NOTHROW(s3->check(example_from_text(*s3, "102 021", "102 201")));
  CHECK(message_of<TaskError>([&] { s3->check(example_from_text(*s3, "102 021", "102 120")); }) ==
        "s3: position 1: target '120' is not the product of the inputs so far, which sends 0..2 to "
        "[2 0 1]");
}

TEST_CASE("targets match moving the points through the permutations one at a time",
          "[word_problem]") {
  for (const char* name : {"s3", "s5", "a5"}) {
    INFO(name);
    auto task = make_task(name, {});
    const int n = static_cast<int>(task->vocabulary()[0].size());
    for (uint64_t seed = 0; seed < 20; ++seed) {
      Rng rng(seed);
      const Example ex = task->sample(50, rng);
      const auto inputs = token_texts(*task, ex.inputs);
      const auto expected = running_positions(inputs, n);
      for (size_t t = 0; t < inputs.size(); ++t) {
        REQUIRE(ex.scored[t] == 1);
        REQUIRE(perm_of(task->vocabulary()[ex.targets[t]]) == expected[t]);
      }
      // The same product seen as an arrangement: put item i at slot i, and let each g carry the
      // item in slot s to slot g(s). The final arrangement is the inverse of P_L.
      std::vector<int> slot_item(n);
      std::iota(slot_item.begin(), slot_item.end(), 0);
      for (const auto& g : inputs) {
        std::vector<int> next(n);
        for (int s = 0; s < n; ++s) next[perm_of(g)[s]] = slot_item[s];
        slot_item = next;
      }
      const auto last = perm_of(task->vocabulary()[ex.targets.back()]);
      for (int s = 0; s < n; ++s) REQUIRE(last[slot_item[s]] == s);
    }
  }
}

TEST_CASE("cyclic and parity targets are running sums", "[word_problem]") {
  for (const auto& [name, n] :
       std::vector<std::pair<std::string, int64_t>>{{"cyclic", 7}, {"parity", 2}}) {
    auto task = make_task(name, name == "cyclic"
                                    ? std::map<std::string, m2b::OptionValue>{{"n", int64_t{7}}}
                                    : std::map<std::string, m2b::OptionValue>{});
    Rng rng(3);
    const Example ex = task->sample(200, rng);
    int64_t sum = 0;
    for (size_t t = 0; t < ex.inputs.size(); ++t) {
      sum = (sum + std::stoll(task->vocabulary()[ex.inputs[t]])) % n;
      REQUIRE(std::stoll(task->vocabulary()[ex.targets[t]]) == sum);
    }
  }
}

TEST_CASE("every group element appears with its expected frequency", "[word_problem]") {
  for (const char* name : {"s3", "a5"}) {
    auto task = make_task(name, {});
    const size_t order = task->vocabulary().size();
    std::vector<int> inputs(order, 0), targets(order, 0);
    Rng rng(11);
    const int draws = 600 * static_cast<int>(order);
    for (int i = 0; i < draws / 100; ++i) {
      const Example ex = task->sample(100, rng);
      for (size_t t = 0; t < ex.inputs.size(); ++t) {
        ++inputs[ex.inputs[t]];
        ++targets[ex.targets[t]];
      }
    }
    // 600 expected per element: a standard deviation of about 24.
    for (size_t e = 0; e < order; ++e) {
      INFO(name << " element " << task->vocabulary()[e]);
      CHECK(std::abs(inputs[e] - 600) < 150);
      CHECK(std::abs(targets[e] - 600) < 150);
    }
  }
}

TEST_CASE("the word-problem checker rejects corrupted examples", "[word_problem]") {
  auto s5 = make_task("s5", {});
  Rng rng(5);
  Example ex = s5->sample(30, rng);
  REQUIRE_NOTHROW(s5->check(ex));
  Example wrong = ex;
  wrong.targets[17] = (wrong.targets[17] + 1) % 120;
  CHECK(contains(message_of<TaskError>([&] { s5->check(wrong); }), "s5: position 17: target"));
  Example unscored = ex;
  unscored.scored[4] = 0;
  CHECK(message_of<TaskError>([&] { s5->check(unscored); }) ==
        "s5: position 4: every position of a word problem is scored");
  Example outside = ex;
  outside.inputs[2] = 120;
  CHECK(message_of<TaskError>([&] { s5->check(outside); }) ==
        "s5: position 2: input id 120 outside the vocabulary [0, 120)");
}

TEST_CASE(
    "with bos a word problem starts with an unscored <bos>, then the same elements and "
    "products",
    "[word_problem][bos]") {
  for (const char* name : {"s3", "parity"}) {
    INFO(name);
    auto plain = make_task(name, {});
    auto with_bos = make_task(name, {{"bos", true}});
    const auto& words = with_bos->vocabulary();
    REQUIRE(words.size() == plain->vocabulary().size() + 1);
    CHECK(words.back() == "<bos>");
    CHECK(with_bos->token_count(12) == 13);
    Rng a(9), b(9);
    const Example base = plain->sample(12, a), ex = with_bos->sample(12, b);
    REQUIRE(ex.inputs.size() == 13);
    CHECK(words[ex.inputs[0]] == "<bos>");
    CHECK(ex.scored[0] == 0);
    // The empty product: the identity (one-line notation 012, or 0 for parity).
    const std::string identity = words[ex.targets[0]];
    CHECK(identity == (std::string(name) == "s3" ? "012" : "0"));
    CHECK(std::vector<Token>(ex.inputs.begin() + 1, ex.inputs.end()) == base.inputs);
    CHECK(std::vector<Token>(ex.targets.begin() + 1, ex.targets.end()) == base.targets);
    CHECK(std::vector<uint8_t>(ex.scored.begin() + 1, ex.scored.end()) == base.scored);
    CHECK_NOTHROW(with_bos->check(ex));
  }
}

TEST_CASE("word problems are without bos by default: vocabulary and token count unchanged",
          "[word_problem][bos]") {
  auto s3 = make_task("s3", {});
  CHECK(s3->vocabulary().size() == 6);
  CHECK(s3->token_count(16) == 16);
  CHECK(resolve_task_params("s3", {}).get_bool("bos") == false);
}

TEST_CASE("the word-problem checker rejects a missing, scored or repeated <bos>",
          "[word_problem][bos]") {
  auto s3 = make_task("s3", {{"bos", true}});
  Rng rng(4);
  const Example ex = s3->sample(6, rng);
  Example no_bos = ex;
  no_bos.inputs[0] = 0;
  CHECK(message_of<TaskError>([&] { s3->check(no_bos); }) ==
        "s3: position 0: the first input must be <bos>");
  Example scored = ex;
  scored.scored[0] = 1;
  CHECK(message_of<TaskError>([&] { s3->check(scored); }) ==
        "s3: position 0: the <bos> position is unscored with the identity as its target");
  Example repeated = ex;
  repeated.inputs[3] = 6;
  CHECK(message_of<TaskError>([&] { s3->check(repeated); }) ==
        "s3: position 3: <bos> only comes first");
  Example bos_target = ex;
  bos_target.targets[2] = 6;
  CHECK(contains(message_of<TaskError>([&] { s3->check(bos_target); }),
                 "s3: position 2: target '<bos>' is not the product"));
}
