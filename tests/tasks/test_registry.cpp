#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/typed_text.h"
#include "tests/catch.h"
#include "tests/tasks/task_testing.h"
#include "tasks/registry.h"

using namespace m2b::tasks;
using namespace m2b::tasks::testing;

TEST_CASE("the registry holds every task with a description", "[registry]") {
  std::set<std::string> names;
  for (const auto& info : task_infos()) {
    names.insert(info.name);
    CHECK_FALSE(info.description.empty());
    auto task = make_task(info.name, {});
    CHECK(task->name() == info.name);
  }
  CHECK(names == std::set<std::string>{"s3", "s5", "a5", "cyclic", "parity", "entity_tracking",
                                       "code_execution"});
}

TEST_CASE("tasks register themselves once each and are listed by name", "[registry]") {
  std::vector<std::string> names;
  for (const auto& info : task_infos()) names.push_back(info.name);
  CHECK(std::is_sorted(names.begin(), names.end()));
  CHECK_THROWS_WITH(detail::TaskRegistration(TaskInfo{"s3", "a second s3", {}, nullptr}),
                    "task 's3' is registered twice");
  CHECK(find_task("s3").description != "a second s3");
}

TEST_CASE("unknown tasks and parameters are named with what is valid", "[registry]") {
  CHECK(message_of<TaskError>([] { make_task("s4", {}); }) ==
        "unknown task 's4' (valid: a5, code_execution, cyclic, entity_tracking, parity, s3, s5)");
  CHECK(message_of<m2b::OptionError>([] {
          make_task("cyclic", {{"n", int64_t{0}}});
        }) == "task cyclic: option 'n' must be an integer in [2, 256], got 0");
  CHECK(message_of<m2b::OptionError>([] {
          make_task("s3", {{"n", int64_t{3}}});
        }) == "task s3: unknown option 'n' (valid: bos)");
}

TEST_CASE("every task's examples pass its checker, from length 1 to far past training",
          "[registry]") {
  for (const auto& info : task_infos()) {
    auto task = make_task(info.name, {});
    for (int64_t length : {1, 2, 5, 64, 1000}) {
      for (uint64_t seed = 0; seed < 10; ++seed) {
        INFO(info.name << " length " << length << " seed " << seed);
        Rng rng(derive_seed(seed, length));
        const Example ex = task->sample(length, rng);
        REQUIRE(static_cast<int64_t>(ex.inputs.size()) == task->token_count(length));
        REQUIRE_NOTHROW(task->check(ex));
        int scored = 0;
        for (uint8_t s : ex.scored) scored += s;
        REQUIRE(scored >= 1);
      }
    }
    Rng rng(0);
    CHECK(message_of<TaskError>([&] { task->sample(0, rng); }) ==
          info.name + ": length must be at least 1, got 0");
  }
}

TEST_CASE("examples are pinned by seed and differ between seeds", "[registry]") {
  // FNV-1a of the example of length 32 from Rng(seed) with default parameters: these values
  // change only if the generator changes, which invalidates every recorded result.
  const std::map<std::string, std::pair<uint64_t, uint64_t>> pinned = {
      {"a5", {0x583D66A7C8ACD8BDULL, 0x8D1C8A584B93A14AULL}},
      {"code_execution", {0x46B953BE876904DCULL, 0x740CBDC9E759D77BULL}},
      {"cyclic", {0x2B90D383ABCB2291ULL, 0xB1E6D1F735301410ULL}},
      {"entity_tracking", {0xF22734269CED2840ULL, 0x7AD61A2E33B20A2CULL}},
      {"parity", {0x96E025A7AB7C4314ULL, 0xF5536648E5757135ULL}},
      {"s3", {0x69B0192B69533BD0ULL, 0xB77D8A5DDF3A7F90ULL}},
      {"s5", {0xD7099378E8A1DE27ULL, 0x240D1C04BAB62C93ULL}},
  };
  for (const auto& [name, hashes] : pinned) {
    INFO(name);
    auto task = make_task(name, {});
    Rng a(1), b(2), again(1);
    const Example ex1 = task->sample(32, a), ex2 = task->sample(32, b);
    CHECK(fnv1a(ex1) == fnv1a(task->sample(32, again)));
    CHECK(fnv1a(ex1) != fnv1a(ex2));
    CHECK(fnv1a(ex1) == hashes.first);
    CHECK(fnv1a(ex2) == hashes.second);
  }
}

TEST_CASE("command-line parameters are typed by the task's schema", "[registry]") {
  const auto params =
      parse_task_params("entity_tracking", {"boxes=4", "query_prob=0.25", "swap=false"});
  CHECK(std::get<int64_t>(params.at("boxes")) == 4);
  CHECK(std::get<double>(params.at("query_prob")) == 0.25);
  CHECK(std::get<bool>(params.at("swap")) == false);
  CHECK(resolve_task_params("entity_tracking", params).get_int("objects") == 3);
  CHECK(message_of<m2b::OptionError>([] {
          make_task("cyclic", parse_task_params("cyclic", {"n=abc"}));
        }) == "task cyclic: option 'n' must be an integer in [2, 256], got abc");
  CHECK(message_of<TaskError>([] { parse_task_params("cyclic", {"n"}); }) ==
        "task cyclic: parameter 'n' is not name=value");
  CHECK(message_of<TaskError>([] {
          parse_task_params("cyclic", {"n=3", "n=4"});
        }) == "task cyclic: parameter 'n' given twice");
  CHECK(message_of<TaskError>([] { parse_task_params("nope", {}); }) ==
        "unknown task 'nope' (valid: a5, code_execution, cyclic, entity_tracking, parity, s3, s5)");
}

TEST_CASE("typed text reads the same on the command line as in a suite file", "[registry]") {
  using m2b::OptionType;
  using m2b::OptionValue;
  using m2b::parse_option_value;
  CHECK(parse_option_value(OptionType::Int, "+12") == OptionValue{int64_t{12}});
  CHECK(parse_option_value(OptionType::Float, "3") == OptionValue{int64_t{3}});  // widened later
  CHECK(parse_option_value(OptionType::Float, "1e-4") == OptionValue{1e-4});
  CHECK(parse_option_value(OptionType::Bool, "True") == OptionValue{true});
  CHECK(parse_option_value(OptionType::String, "12") == OptionValue{std::string("12")});
  // Text that is not of the type stays as given, for resolve_options to quote.
  for (const auto& [type, text] :
       std::vector<std::pair<OptionType, std::string>>{{OptionType::Int, "1.5"},
                                                       {OptionType::Int, "1e3"},
                                                       {OptionType::Float, "inf"},
                                                       {OptionType::Float, "0.5x"},
                                                       {OptionType::Bool, "1"},
                                                       {OptionType::Bool, "yes"}})
    CHECK(parse_option_value(type, text) == OptionValue{text});
  CHECK(message_of<m2b::OptionError>([] { make_task("s3", parse_task_params("s3", {"bos=1"})); }) ==
        "task s3: option 'bos' must be true or false, got 1");
}

TEST_CASE("every task's checker rejects any single changed target", "[registry]") {
  for (const auto& info : task_infos()) {
    auto task = make_task(info.name, {});
    const auto vocab = static_cast<Token>(task->vocabulary().size());
    Rng rng(21);
    const Example ex = task->sample(12, rng);
    for (size_t pos = 0; pos < ex.targets.size(); ++pos) {
      INFO(info.name << " position " << pos);
      Example wrong = ex;
      wrong.targets[pos] =
          (wrong.targets[pos] + 1 + static_cast<Token>(rng.below(vocab - 1))) % vocab;
      CHECK(contains(message_of<TaskError>([&] { task->check(wrong); }),
                     info.name + ": position " + std::to_string(pos) + ": "));
    }
  }
}
