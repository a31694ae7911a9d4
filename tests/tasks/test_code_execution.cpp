#include <cmath>
#include <map>
#include <string>

#include "tests/catch.h"
#include "tests/tasks/task_testing.h"
#include "tasks/registry.h"

using namespace m2b::tasks;
using namespace m2b::tasks::testing;
using Params = std::map<std::string, m2b::OptionValue>;

TEST_CASE("code execution prints the values the program computes", "[code_execution]") {
  auto task = make_task("code_execution", {{"variables", int64_t{3}}, {"modulus", int64_t{10}}});
  CHECK(task->token_count(5) == 35);
  // a = 3; b = a + 4 (7); a += b (10 mod 10 = 0); swap a b (a 7, b 0); c = a (7).
  const char* program =
      "a = 3 - - print a  b = a + 4 print b  a += b - - print a  swap a b - - print b  c = a - - print c";
  const char* answers = ". . . . . . 3  . . . . . . 7  . . . . . . 0  . . . . . . 0  . . . . . . 7";
  CHECK_NOTHROW(task->check(example_from_text(*task, program, answers)));
  CHECK(message_of<TaskError>([&] {
          task->check(example_from_text(
              *task, program,
              ". . . . . . 3  . . . . . . 7  . . . . . . 0  . . . . . . 0  . . . . . . 0"));
        }) == "code_execution: position 34: target is '0', expected '7'");
  CHECK(message_of<TaskError>([&] {
          task->check(example_from_text(*task, "a = b + - print a", ". . . . . . 0"));
        }) == "code_execution: position 4: expected a constant 0..9, got '-'");
  CHECK(
      message_of<TaskError>(
          [&] { task->check(example_from_text(*task, "a = 1 - - - -", ". . . . . . .")); }) ==
      "code_execution: position 5: expected 'print' (the last statement always has one), got '-'");
}

TEST_CASE("code execution examples pass their checker at every length", "[code_execution]") {
  const std::vector<Params> variants = {
      {},
      {{"variables", int64_t{1}}, {"swap", false}},
      {{"variables", int64_t{26}}, {"modulus", int64_t{100}}, {"query_prob", 1.0}},
      {{"variables", int64_t{2}}, {"modulus", int64_t{2}}, {"query_prob", 0.0}},
  };
  for (const auto& params : variants) {
    auto task = make_task("code_execution", params);
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

TEST_CASE("code execution draws statements, variables and values evenly", "[code_execution]") {
  auto task = make_task("code_execution", {{"variables", int64_t{3}}, {"modulus", int64_t{5}}});
  std::map<std::string, int> kinds, printed, values;
  Rng rng(4);
  const int64_t length = 100, examples = 50;
  for (int i = 0; i < examples; ++i) {
    const Example ex = task->sample(length, rng);
    for (int64_t step = 0; step < length; ++step) {
      const int64_t at = 7 * step;
      const auto& v = task->vocabulary();
      const std::string kind = v[ex.inputs[at]] == "swap"     ? "swap"
                               : v[ex.inputs[at + 1]] == "+=" ? "accumulate"
                               : v[ex.inputs[at + 3]] == "+"  ? "add"
                               : std::isdigit(static_cast<unsigned char>(v[ex.inputs[at + 2]][0]))
                                   ? "set"
                                   : "copy";
      ++kinds[kind];
      if (ex.scored[at + 6]) {
        ++printed[v[ex.inputs[at + 6]]];
        ++values[v[ex.targets[at + 6]]];
      }
    }
  }
  // 5000 statements, 1000 per kind expected (sd about 28).
  for (const char* kind : {"set", "copy", "add", "accumulate", "swap"}) {
    INFO(kind);
    CHECK(std::abs(kinds[kind] - 1000) < 150);
  }
  const int queries = printed["a"] + printed["b"] + printed["c"];
  CHECK(std::abs(queries - 0.5 * (length - 1) * examples - examples) < 150);
  for (const char* var : {"a", "b", "c"}) CHECK(std::abs(printed[var] - queries / 3) < 150);
  for (const char* value : {"0", "1", "2", "3", "4"}) CHECK(values[value] > queries / 10);
}

TEST_CASE("code execution without swap never swaps", "[code_execution]") {
  auto task = make_task("code_execution", {{"swap", false}});
  Rng rng(2);
  const Example ex = task->sample(300, rng);
  for (Token t : ex.inputs) REQUIRE(task->vocabulary()[t] != "swap");
}

TEST_CASE("code execution rejects bad parameters with clear messages", "[code_execution]") {
  CHECK(
      message_of<TaskError>([] {
        make_task("code_execution", {{"variables", int64_t{1}}});
      }) ==
      "code_execution: swap=true needs variables >= 2 (got variables 1); set swap=false or add variables");
  CHECK(message_of<m2b::OptionError>([] {
          make_task("code_execution", {{"modulus", int64_t{0}}});
        }) == "task code_execution: option 'modulus' must be an integer in [2, 100], got 0");
  CHECK(message_of<m2b::OptionError>([] {
          make_task("code_execution", {{"variables", int64_t{27}}});
        }) == "task code_execution: option 'variables' must be an integer in [1, 26], got 27");
  CHECK(message_of<m2b::OptionError>([] {
          make_task("code_execution", {{"swap", std::string("yes")}});
        }) == "task code_execution: option 'swap' must be true or false, got yes");
}
