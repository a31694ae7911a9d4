// Summaries committed by earlier versions keep loading in later ones: a field that is absent
// (added since) takes its default, while the fields a summary is judged by stay required.
#include <fstream>
#include <string>

#include "harness/results/results.h"
#include "tests/catch.h"
#include "tests/harness/suite_fixtures.h"

using m2b::test::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// results/quickstart/475bccbde7cf as committed (config.yaml and summary.json), written before
// summaries held prefix accuracies.
const fs::path kCommittedRun = fs::path(__FILE__).parent_path() / "fixtures" / "475bccbde7cf";

json committed_summary() {
  std::ifstream in(kCommittedRun / "summary.json");
  return json::parse(in);
}

// The committed summary as this version writes it: the fields added since at their defaults.
json committed_summary_rewritten() {
  json j = committed_summary();
  j["peak_reserved_bytes"] = 0;
  return j;
}

// Writes `summary` as <root>/summary.json and reads it back.
m2b::RunSummary reread(const fs::path& root, const json& summary) {
  m2b::write_atomic(root / "summary.json", summary.dump(2));
  auto back = m2b::read_summary(root);
  REQUIRE(back);
  return *back;
}

}  // namespace

TEST_CASE("a summary committed before prefix accuracies existed loads as its run's own",
          "[results]") {
  const m2b::StoredRun run = m2b::read_stored_run(kCommittedRun);
  INFO(run.problem);
  REQUIRE(run.state == m2b::RunState::finished);
  const m2b::RunSummary& s = *run.summary;
  CHECK(s.id == "475bccbde7cf");
  CHECK(s.model == "gated_deltanet");
  CHECK(s.train_max_length == 16);
  REQUIRE(s.eval.size() == 3);
  CHECK(s.eval[1].length == 32);
  CHECK(s.eval[1].accuracy == 0.5496826171875);
  CHECK(s.eval[1].prefix_accuracy.empty());
  // Read and written again, it is the same file but for the fields it lacked.
  CHECK(json(s) == committed_summary_rewritten());
}

TEST_CASE("a summary without a field that is not required loads with that field's default",
          "[results]") {
  TempDir dir;
  const json defaults = json(m2b::RunSummary{});
  for (const char* key :
       {"steps", "diverged_at_step", "stopped_early", "wall_s", "tokens_per_s", "peak_memory_bytes",
        "peak_reserved_bytes", "train_min_length", "train_max_length", "provenance"}) {
    INFO(key);
    json summary = committed_summary();
    summary.erase(key);
    json expected = committed_summary_rewritten();
    expected[key] = defaults.at(key);
    CHECK(json(reread(dir.path(), summary)) == expected);
  }
  json without_loss = committed_summary();
  without_loss.at("eval").at(0).erase("loss");
  CHECK(reread(dir.path(), without_loss).eval[0].loss == 0);
}

TEST_CASE("a summary without its identity, status or accuracies is reported, naming the field",
          "[results]") {
  TempDir dir;
  const auto problem = [&](const json& summary) {
    m2b::write_atomic(dir.path() / "summary.json", summary.dump(2));
    try {
      m2b::read_summary(dir.path());
    } catch (const m2b::BadSummary& e) {
      return std::string(e.what());
    }
    return std::string("loaded");
  };
  for (const char* key : {"id", "suite", "model", "task", "seed", "status", "eval"}) {
    INFO(key);
    json summary = committed_summary();
    summary.erase(key);
    CHECK_THAT(problem(summary), Catch::Matchers::Contains("not a run summary (key '" +
                                                           std::string(key) + "' not found)"));
  }
  for (const char* key : {"length", "accuracy", "sequence_accuracy"}) {
    INFO(key);
    json summary = committed_summary();
    summary.at("eval").at(2).erase(key);
    CHECK_THAT(problem(summary), Catch::Matchers::Contains("not a run summary (key '" +
                                                           std::string(key) + "' not found)"));
  }
}
