#include <cmath>
#include <map>
#include <string>

#include "tests/catch.h"
#include "tests/tasks/task_testing.h"
#include "tasks/registry.h"

using namespace m2b::tasks;
using namespace m2b::tasks::testing;
using Params = std::map<std::string, m2b::OptionValue>;

namespace {
const char* const kInputs =
    "o0 b2 o1 b0  swap b0 b2 where o0  remove o1 - what b2  put o1 b1 - -  move o0 b2 where o1";
}

TEST_CASE("entity tracking answers follow the operations", "[entity_tracking]") {
  auto task = make_task("entity_tracking", {{"boxes", int64_t{3}}, {"objects", int64_t{2}}});
  CHECK(task->token_count(4) == 2 * 2 + 5 * 4);
  // Start: b2 holds o0, b0 holds o1. The swap moves o0 to b0 and o1 to b2; o1 leaves; o1 goes
  // into b1; o0 moves from b0 to b2.
  CHECK_NOTHROW(task->check(example_from_text(
      *task, kInputs, ". . . .  . . . . b0  . . . . empty  . . . . .  . . . . b1")));
  CHECK(message_of<TaskError>([&] {
          task->check(example_from_text(
              *task, kInputs, ". . . .  . . . . b2  . . . . empty  . . . . .  . . . . b1"));
        }) == "entity_tracking: position 8: target is 'b2', expected 'b0'");
  CHECK(message_of<TaskError>([&] {
          task->check(
              example_from_text(*task, "o0 b2 o1 b0  move o0 b0 where o0", ". . . .  . . . . b0"));
        }) == "entity_tracking: position 6: b0 is not empty");
  CHECK(message_of<TaskError>([&] {
          task->check(
              example_from_text(*task, "o0 b2 o1 b0  put o0 b1 where o0", ". . . .  . . . . b1"));
        }) == "entity_tracking: position 4: 'put' of o0, which is in a box");
  CHECK(
      message_of<TaskError>([&] {
        task->check(example_from_text(*task, "o0 b2 o1 b0  swap b0 b2 - -", ". . . .  . . . . ."));
      }) ==
      "entity_tracking: position 7: expected a query (where, what: the last step always has one), got '-'");
  CHECK(message_of<TaskError>([&] {
          task->check(
              example_from_text(*task, "o0 b2 o1 b2  swap b0 b2 where o0", ". . . .  . . . . b0"));
        }) == "entity_tracking: position 3: box b2 assigned twice");
  // An operation that its parameters disable is named as such, whatever the state.
  auto no_remove = make_task("entity_tracking",
                             {{"boxes", int64_t{3}}, {"objects", int64_t{2}}, {"remove", false}});
  CHECK(message_of<TaskError>([&] {
          no_remove->check(example_from_text(*no_remove, "o0 b2 o1 b0  remove o1 - where o1",
                                             ". . . .  . . . . out"));
        }) == "entity_tracking: position 4: remove, but remove=false");
}

TEST_CASE("entity tracking examples pass their checker at every length", "[entity_tracking]") {
  const std::vector<Params> variants = {
      {},
      {{"boxes", int64_t{1}}, {"objects", int64_t{1}}, {"swap", false}},
      {{"boxes", int64_t{6}}, {"objects", int64_t{6}}, {"remove", false}},
      {{"boxes", int64_t{4}}, {"objects", int64_t{2}}, {"swap", false}, {"remove", false}},
      {{"boxes", int64_t{8}}, {"objects", int64_t{5}}, {"query_prob", 1.0}},
      {{"query_prob", 0.0}},
  };
  for (const auto& params : variants) {
    auto task = make_task("entity_tracking", params);
    for (int64_t length : {1, 2, 3, 17, 1000}) {
      for (uint64_t seed = 0; seed < (length == 1000 ? 3u : 30u); ++seed) {
        Rng rng(derive_seed(seed, length));
        const Example ex = task->sample(length, rng);
        REQUIRE(static_cast<int64_t>(ex.inputs.size()) == task->token_count(length));
        REQUIRE_NOTHROW(task->check(ex));
      }
    }
  }
}

TEST_CASE("entity tracking draws operations and queries as documented", "[entity_tracking]") {
  auto task = make_task("entity_tracking",
                        {{"boxes", int64_t{5}}, {"objects", int64_t{3}}, {"query_prob", 0.25}});
  std::map<std::string, int> ops, queries, answers;
  Rng rng(9);
  const int64_t length = 100, examples = 40;
  for (int i = 0; i < examples; ++i) {
    const Example ex = task->sample(length, rng);
    for (int64_t step = 0; step < length; ++step) {
      const int64_t at = 6 + 5 * step;
      ++ops[task->vocabulary()[ex.inputs[at]]];
      if (step + 1 < length) ++queries[task->vocabulary()[ex.inputs[at + 3]]];
      if (ex.scored[at + 4]) ++answers[task->vocabulary()[ex.targets[at + 4]]];
    }
  }
  // 4000 operations; with 3 objects in 5 boxes, move and swap are always possible, remove
  // whenever an object is in a box, put whenever one is out: each kind is frequent.
  for (const char* op : {"move", "swap", "remove", "put"}) {
    INFO(op);
    CHECK(ops[op] > 400);
  }
  CHECK(ops["move"] + ops["swap"] + ops["remove"] + ops["put"] == length * examples);
  const int asked = queries["where"] + queries["what"];
  CHECK(std::abs(asked - 0.25 * (length - 1) * examples) < 150);  // sd about 27
  CHECK(std::abs(queries["where"] - queries["what"]) < 150);
  for (const char* answer : {"out", "empty", "b0", "b4", "o0", "o2"}) {
    INFO(answer);
    CHECK(answers[answer] > 10);
  }
}

TEST_CASE("entity tracking with query_prob 0 scores only the last step", "[entity_tracking]") {
  auto task = make_task("entity_tracking", {{"query_prob", 0.0}});
  Rng rng(1);
  const Example ex = task->sample(40, rng);
  int scored = 0;
  for (uint8_t s : ex.scored) scored += s;
  CHECK(scored == 1);
  CHECK(ex.scored.back() == 1);
}

TEST_CASE("entity tracking rejects bad parameters with clear messages", "[entity_tracking]") {
  CHECK(message_of<m2b::OptionError>([] {
          make_task("entity_tracking", {{"boxes", int64_t{0}}});
        }) == "task entity_tracking: option 'boxes' must be an integer in [1, 256], got 0");
  CHECK(
      message_of<TaskError>([] {
        make_task("entity_tracking", {{"boxes", int64_t{5}}, {"objects", int64_t{7}}});
      }) ==
      "entity_tracking: objects (7) must not exceed boxes (5): each box holds at most one object");
  CHECK(message_of<TaskError>([] {
          make_task("entity_tracking", {{"boxes", int64_t{1}}, {"objects", int64_t{1}}});
        }) ==
        "entity_tracking: swap=true needs boxes >= 2 (got boxes 1); set swap=false or add boxes");
  CHECK(message_of<TaskError>([] {
          make_task(
              "entity_tracking",
              {{"boxes", int64_t{3}}, {"objects", int64_t{3}}, {"swap", false}, {"remove", false}});
        }) ==
        "entity_tracking: with swap=false, remove=false and objects == boxes (3) no operation is "
        "possible; enable swap or remove, or use fewer objects than boxes");
  CHECK(message_of<m2b::OptionError>([] {
          make_task("entity_tracking", {{"query_prob", 1.5}});
        }) == "task entity_tracking: option 'query_prob' must be a number in [0, 1], got 1.5");
  CHECK(
      message_of<m2b::OptionError>([] {
        make_task("entity_tracking", {{"colours", int64_t{2}}});
      }) ==
      "task entity_tracking: unknown option 'colours' (valid: boxes, objects, query_prob, swap, remove)");
}
