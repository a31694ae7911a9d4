// Suite expansion: the grid, overrides, includes, row names and the committed suites.
#include <set>

#include "harness/config/suite.h"
#include "harness/results/report.h"
#include "tests/catch.h"
#include "tests/harness/suite_fixtures.h"

using m2b::test::config_error;
using m2b::test::kTestModels;
using m2b::test::TempDir;

namespace fs = std::filesystem;

namespace {

const char* kGridSuite = R"(suite: grid
include: models.yaml
defaults:
  task: {name: s3, train_max_length: 4}
  train: {steps: 10, lr: 1e-3}
grid:
  model: [att, gru]
  seed: [0, 1, 2]
overrides:
  - when: {model: att}
    set: {train.lr: 3e-4, train.batch_size: 8}
  - when: {seed: 2.0}
    set: {train: {steps: 20}}
)";

}  // namespace

TEST_CASE("the grid expands into every combination, the first key outermost", "[suite]") {
  TempDir dir;
  dir.write("models.yaml", kTestModels);
  m2b::Suite suite = m2b::load_suite(dir.write("s.yaml", kGridSuite));
  CHECK(suite.name == "grid");
  REQUIRE(suite.runs.size() == 6);
  std::vector<std::pair<std::string, uint64_t>> order;
  for (const auto& run : suite.runs) order.emplace_back(run.model_name, run.seed);
  CHECK(order == std::vector<std::pair<std::string, uint64_t>>{
                     {"att", 0}, {"att", 1}, {"att", 2}, {"gru", 0}, {"gru", 1}, {"gru", 2}});
  std::set<std::string> ids;
  for (const auto& run : suite.runs) {
    ids.insert(run.id);
    CHECK(run.suite == "grid");
    CHECK(run.task.name == "s3");
  }
  CHECK(ids.size() == 6);  // distinct
  CHECK(suite.runs[0].model.layers[0].mixer == "attention");
  CHECK(suite.runs[3].model.layers[0].mixer == "gru");
}

TEST_CASE("overrides change the runs they match, compared as numbers where they are", "[suite]") {
  TempDir dir;
  dir.write("models.yaml", kTestModels);
  m2b::Suite suite = m2b::load_suite(dir.write("s.yaml", kGridSuite));
  for (const auto& run : suite.runs) {
    bool att = run.model_name == "att";
    CHECK(run.train.lr == (att ? 3e-4 : 1e-3));
    CHECK(run.train.batch_size == (att ? 8 : 32));
    CHECK(run.train.steps == (run.seed == 2 ? 20 : 10));  // `seed: 2.0` matches seed 2
  }
}

TEST_CASE("an override may only test keys that defaults or grid set", "[suite]") {
  TempDir dir;
  dir.write("models.yaml", kTestModels);
  auto path = dir.write("s.yaml", R"(suite: t
include: models.yaml
defaults: {model: att, task.name: s3}
overrides:
  - when: {train.steps: 10}
    set: {train.lr: 1}
)");
  CHECK(config_error([&] { m2b::load_suite(path); }) ==
        path.string() +
            ":5:25: train.steps: neither defaults nor grid set this key, so the "
            "override could never match");
}

TEST_CASE("an override that matches no run names the value no run has", "[suite]") {
  TempDir dir;
  dir.write("models.yaml", kTestModels);
  auto typo = dir.write("typo.yaml", R"(suite: t
include: models.yaml
defaults: {task.name: s3}
grid: {model: [att, gru], seed: [0, 1]}
overrides:
  - when: {seed: 1, model: gruu}
    set: {train.lr: 1}
)");
  CHECK(config_error([&] { m2b::load_suite(typo); }) ==
        typo.string() +
            ":6:28: model: no run has \"gruu\" (the runs have: att, gru), so this override "
            "matches none");
}

TEST_CASE("a grid key takes a non-empty list", "[suite]") {
  TempDir dir;
  dir.write("models.yaml", kTestModels);
  auto path = dir.write("s.yaml", "suite: t\ninclude: models.yaml\ngrid:\n  seed: 3\n");
  CHECK(config_error([&] { m2b::load_suite(path); }) ==
        path.string() + ":4:9: seed: expected a non-empty list of values, got 3");
  auto twice =
      dir.write("twice.yaml", "suite: t\ninclude: models.yaml\ngrid:\n  train.lr: [1e-2, 0.01]\n");
  CHECK(config_error([&] { m2b::load_suite(twice); }) ==
        twice.string() + ":4:20: train.lr: expected distinct values, got 1e-2 and 0.01");
}

TEST_CASE("an include is found relative to the file that includes it", "[suite]") {
  TempDir dir;
  dir.write("library/models.yaml", "include: more/extra.yaml\n" + std::string(kTestModels));
  dir.write("library/more/extra.yaml",
            "models:\n  tiny_gru: {d_model: 8, n_layers: 1, layers: [{mixer: gru}]}\n");
  m2b::Suite suite = m2b::load_suite(dir.write("suites/s.yaml", R"(suite: inc
include: [../library/models.yaml]
defaults: {task.name: s3}
grid:
  model: [tiny_gru, att]
)"));
  REQUIRE(suite.runs.size() == 2);
  CHECK(suite.runs[0].model_name == "tiny_gru");
  CHECK(suite.runs[0].model.d_model == 8);
  CHECK(suite.runs[1].model.d_model == 32);
}

TEST_CASE("grid keys other than model, seed and task name the table row", "[suite]") {
  TempDir dir;
  dir.write("models.yaml", kTestModels);
  const std::string text = R"(suite: rows
include: models.yaml
defaults: {task.name: s3}
grid:
  model: [att]
  model.d_model: [32, 64]
  task.train_max_length: [4, 8]
  train.lr: [LRS]
)";
  const auto suite_with = [&](const std::string& lrs) {
    std::string s = text;
    s.replace(s.find("LRS"), 3, lrs);
    return m2b::load_suite(dir.write("s.yaml", s));
  };
  const m2b::Suite suite = suite_with("1e-3");
  REQUIRE(suite.runs.size() == 4);
  CHECK(suite.runs[0].model_name == "att model.d_model=32 train.lr=1e-3");
  CHECK(suite.runs[0].model.d_model == 32);
  CHECK(suite.runs[2].model_name == "att model.d_model=64 train.lr=1e-3");
  CHECK(suite.runs[2].model.d_model == 64);
  CHECK(suite.runs[1].task.train_max_length == 8);
  CHECK(suite.runs[1].task.eval_lengths == std::vector<int64_t>{8, 16, 32});
  // A grid key of one value names the rows too, so that a value added to it later leaves the
  // runs there are their names and ids: finished runs are not trained again.
  const m2b::Suite grown = suite_with("1e-3, 3e-3");
  REQUIRE(grown.runs.size() == 8);
  CHECK(grown.runs[0].id == suite.runs[0].id);
}

TEST_CASE("an inline model needs a name, and runs that resolve alike are listed once", "[suite]") {
  TempDir dir;
  auto unnamed = dir.write("a.yaml", R"(suite: t
defaults:
  task.name: s3
  model: {d_model: 8, layers: [{mixer: gru}]}
)");
  CHECK(config_error([&] { m2b::load_suite(unnamed); }) ==
        unnamed.string() + ":4:10: model: an inline model needs a name: (it is the table row)");
  m2b::Suite suite = m2b::load_suite(dir.write("b.yaml", R"(suite: t
defaults:
  task.name: s3
  model: {name: g, d_model: 8, layers: [{mixer: gru}]}
grid:
  seed: [0, 1]
overrides:
  - when: {seed: 1}
    set: {seed: 0}
)"));
  CHECK(suite.runs.size() == 1);
}

TEST_CASE("nothing is written for a suite that fails validation", "[suite]") {
  TempDir dir;
  dir.write("models.yaml", kTestModels);
  auto path = dir.write("s.yaml",
                        "suite: t\ninclude: models.yaml\ndefaults: {model: att, "
                        "task.name: s3, train.lr: -1}\n");
  const fs::path results = dir.path() / "results";
  CHECK_THROWS_AS(m2b::write_suite_tables(path, results, std::nullopt), m2b::ConfigError);
  CHECK_FALSE(fs::exists(results));
}

TEST_CASE("every committed suite validates", "[suite]") {
  // The source tree, from this file's place in it.
  const fs::path experiments =
      fs::path(__FILE__).parent_path().parent_path().parent_path() / "experiments";
  int suites = 0;
  for (const auto& entry : fs::recursive_directory_iterator(experiments)) {
    // Files of shared models (models.yaml, paper/m2rnn_variant_models.yaml) are included by
    // suites, not suites themselves: their names end in models.yaml.
    const std::string name = entry.path().filename().string();
    const std::string shared = "models.yaml";
    const bool shared_models =
        name.size() >= shared.size() &&
        name.compare(name.size() - shared.size(), shared.size(), shared) == 0;
    if (entry.path().extension() != ".yaml" || shared_models || name == "reference_numbers.yaml")
      continue;
    INFO(entry.path().string());
    m2b::Suite suite = m2b::load_suite(entry.path());
    CHECK_FALSE(suite.runs.empty());
    ++suites;
  }
  CHECK(suites >= 2);
  CHECK_NOTHROW(m2b::load_reference_numbers(experiments / "paper" / "reference_numbers.yaml"));
}
