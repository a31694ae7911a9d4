// The results store: whole files or none, metrics that survive a torn line, summaries that read
// back. (The run claim's tests are in test_run_claim.cpp.)
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "harness/results/results.h"
#include "harness/train/run_claim.h"
#include "tests/catch.h"
#include "tests/harness/suite_fixtures.h"

using m2b::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::string> entries_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

m2b::RunSummary sample_summary() {
  m2b::RunSummary s;
  s.id = "0123456789ab";
  s.suite = "quick";
  s.model = "m2rnn";
  s.task = "s3";
  s.seed = 2;
  s.status = "diverged";
  s.steps = 120;
  s.diverged_at_step = 118;
  s.wall_s = 3.5;
  s.tokens_per_s = 1e5;
  s.peak_memory_bytes = 1 << 20;
  s.train_min_length = 1;
  s.train_max_length = 16;
  s.eval = {{16, 0.5, 0.25, 1.5}, {64, 0.25, 0.0, 2.5}};
  s.provenance = {{"git_sha", "abc"}, {"eval_seed", 1234}};
  return s;
}

}  // namespace

TEST_CASE("write_atomic replaces a file whole and leaves no temporary behind", "[results]") {
  TempDir dir;
  const fs::path file = dir.path() / "new" / "summary.json";
  m2b::write_atomic(file, "first");
  CHECK(read(file) == "first");
  m2b::write_atomic(file, "second, longer");
  CHECK(read(file) == "second, longer");
  CHECK(entries_in(file.parent_path()) == std::vector<std::string>{"summary.json"});
}

TEST_CASE("a failed atomic write keeps the old file and says why", "[results]") {
  TempDir dir;
  const fs::path file = dir.path() / "config.yaml";
  m2b::write_atomic(file, "old");
  fs::create_directories(dir.path() / "blocked");
  // A folder where the file should go: the rename must fail.
  CHECK_THROWS_WITH(
      m2b::write_atomic(dir.path() / "blocked", "new"),
      Catch::Matchers::Contains("cannot replace") && Catch::Matchers::Contains("blocked"));
  CHECK(read(file) == "old");
  CHECK(entries_in(dir.path()) == std::vector<std::string>{"blocked", "config.yaml"});
}

TEST_CASE("a reader never sees a half-written file", "[results]") {
  TempDir dir;
  const fs::path file = dir.path() / "summary.json";
  const std::string a(200000, 'a'), b(300000, 'b');
  m2b::write_atomic(file, a);
  pid_t writer = fork();
  if (writer == 0) {
    for (int i = 0; i < 200; ++i) m2b::write_atomic(file, i % 2 ? a : b);
    _exit(0);
  }
  int torn = 0;
  for (int i = 0; i < 400; ++i) {
    std::string seen = read(file);
    torn += seen != a && seen != b;
  }
  int status = 0;
  waitpid(writer, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(torn == 0);
}

TEST_CASE("a run summary reads back as written", "[results]") {
  TempDir dir;
  m2b::RunSummary s = sample_summary();
  m2b::write_summary(dir.path(), s);
  auto back = m2b::read_summary(dir.path());
  REQUIRE(back);
  CHECK(nlohmann::json(*back) == nlohmann::json(s));
  CHECK(back->diverged_at_step == 118);
  CHECK(back->eval[1].length == 64);
  CHECK_FALSE(m2b::read_summary(dir.path() / "nothing"));
  m2b::write_atomic(dir.path() / "bad" / "summary.json", "{\"id\": 1}");
  CHECK_THROWS_AS(m2b::read_summary(dir.path() / "bad"), m2b::BadSummary);
  CHECK_THROWS_WITH(m2b::read_summary(dir.path() / "bad"),
                    Catch::Matchers::Contains("summary.json: not a run summary"));
}

TEST_CASE("metrics lines append, and a torn last line is skipped then cut off", "[results]") {
  TempDir dir;
  m2b::append_metrics(dir.path(), {{"step", 1}, {"kind", "train"}, {"loss", 2.0}});
  m2b::append_metrics(dir.path(), {{"step", 2}, {"kind", "train"}, {"loss", 1.5}});
  {  // a crash in the middle of the third line
    std::ofstream out(dir.path() / "metrics.jsonl", std::ios::app | std::ios::binary);
    out << "{\"step\": 3, \"ki";
  }
  auto lines = m2b::read_metrics(dir.path());
  REQUIRE(lines.size() == 2);
  CHECK(lines[1]["loss"] == 1.5);
  m2b::append_metrics(dir.path(), {{"step", 3}, {"kind", "eval"}, {"length", 64}});
  lines = m2b::read_metrics(dir.path());
  REQUIRE(lines.size() == 3);
  CHECK(lines[2]["length"] == 64);
  CHECK(read(dir.path() / "metrics.jsonl").find("\"ki\n") == std::string::npos);
  CHECK_THROWS_AS(m2b::append_metrics(dir.path(), nlohmann::json::array()), std::invalid_argument);
  CHECK(m2b::read_metrics(dir.path() / "none").empty());
}

TEST_CASE("the state of a run follows its files", "[results]") {
  TempDir dir;
  m2b::RunConfig config;
  config.canonical_yaml = "suite: x\n";
  m2b::RunSummary s = sample_summary();
  s.id = m2b::run_id(config.canonical_yaml);
  const fs::path run = dir.path() / s.id;  // a run's folder is named by its id
  CHECK(m2b::run_state(run) == m2b::RunState::missing);
  m2b::write_config(run, config);
  CHECK(m2b::run_state(run) == m2b::RunState::started);
  m2b::write_summary(run, s);
  CHECK(m2b::run_state(run) == m2b::RunState::diverged);
  s.status = "finished";
  m2b::write_summary(run, s);
  CHECK(m2b::run_state(run) == m2b::RunState::finished);
}

TEST_CASE("run_dir is results/<suite>/<id>", "[results]") {
  m2b::RunConfig config;
  config.suite = "quick";
  config.id = "0123456789ab";
  CHECK(m2b::run_dir("results", config) == fs::path("results/quick/0123456789ab"));
}

TEST_CASE("prefix-accuracy curves read back as written, and a summary without them still loads",
          "[results]") {
  TempDir dir;
  m2b::RunSummary s = sample_summary();
  s.eval[0].prefix_accuracy = {1.0, 0.75, 0.5};
  m2b::write_summary(dir.path(), s);
  auto back = m2b::read_summary(dir.path());
  REQUIRE(back);
  CHECK(back->eval[0].prefix_accuracy == std::vector<double>{1.0, 0.75, 0.5});
  CHECK(back->eval[1].prefix_accuracy.empty());
  // Written before the curve existed: no "prefix_accuracy" key at all.
  auto old = nlohmann::json(sample_summary());
  for (auto& e : old.at("eval")) CHECK_FALSE(e.contains("prefix_accuracy"));
  m2b::write_atomic(dir.path() / "old" / "summary.json", old.dump());
  auto old_back = m2b::read_summary(dir.path() / "old");
  REQUIRE(old_back);
  CHECK(old_back->eval[0].accuracy == 0.5);
  CHECK(old_back->eval[0].prefix_accuracy.empty());
}

TEST_CASE(
    "a summary is trusted only when it is its run's own, with accuracies in [0, 1] and a "
    "known status",
    "[results]") {
  TempDir dir;
  m2b::RunConfig config;
  config.canonical_yaml = "suite: x\nseed: 1\n";
  const std::string id = m2b::run_id(config.canonical_yaml);
  const fs::path run = dir.path() / id;
  m2b::write_config(run, config);
  const auto problem = [&](const m2b::RunSummary& s) {
    m2b::write_summary(run, s);
    const m2b::StoredRun stored = m2b::read_stored_run(run);
    CHECK_FALSE(stored.summary);
    return stored.state == m2b::RunState::invalid ? stored.problem : "trusted";
  };
  m2b::RunSummary s = sample_summary();
  s.id = id;
  m2b::write_summary(run, s);
  CHECK(m2b::read_stored_run(run).state == m2b::RunState::diverged);

  const std::string file = (run / "summary.json").string() + ": ";
  const std::string to_do = "; delete it to retrain the run";
  m2b::RunSummary other = s;
  other.id = "0123456789ab";  // copied from another run
  CHECK(problem(other) == file +
                              "it is the summary of run 0123456789ab, but config.yaml beside "
                              "it is run " +
                              id + "'s" + to_do);
  m2b::RunSummary high = s;
  high.eval[1].sequence_accuracy = 7.5;
  CHECK(problem(high) == file + "sequence_accuracy at length 64 is 7.5, outside [0, 1]" + to_do);
  m2b::RunSummary prefix = s;
  prefix.eval[0].prefix_accuracy = {1.0, 2.0};
  CHECK(problem(prefix) == file + "prefix_accuracy at length " + std::to_string(s.eval[0].length) +
                               ", t = 2 is 2, outside [0, 1]" + to_do);
  m2b::RunSummary running = s;
  running.status = "running";
  CHECK(problem(running) == file + "status \"running\" is not one of finished, diverged" + to_do);

  // A whole folder copied under another run's name: the summary and config agree, the name not.
  const fs::path renamed = dir.path() / "fedcba987654";
  fs::create_directories(renamed);
  fs::copy(run / "config.yaml", renamed / "config.yaml");
  m2b::write_summary(renamed, s);
  CHECK(m2b::read_stored_run(renamed).problem ==
        (renamed / "summary.json").string() + ": it is the summary of run " + id +
            ", but its folder is named fedcba987654 (a run's folder is named by its id)" + to_do);
}

TEST_CASE("what run writes is never written through a symbolic link", "[results]") {
  TempDir dir;
  const fs::path outside = dir.path() / "outside.txt";
  std::ofstream(outside) << "precious";
  const fs::path run = dir.path() / "suite" / "run";
  fs::create_directories(run);
  fs::create_symlink(outside, run / "metrics.jsonl");
  CHECK_THROWS_WITH(
      m2b::append_metrics(run, {{"step", 1}}),
      Catch::Matchers::Contains((run / "metrics.jsonl").string() + " is a symbolic link"));
  fs::create_symlink(outside, run / ".lock");
  CHECK_THROWS_WITH(m2b::RunClaim::try_claim(run),
                    Catch::Matchers::Contains((run / ".lock").string() + " is a symbolic link"));
  CHECK(read(outside) == "precious");
  // write_atomic replaces a link with a file of its own, leaving the link's target alone.
  fs::create_symlink(outside, run / "summary.json");
  m2b::write_atomic(run / "summary.json", "{}");
  CHECK_FALSE(fs::is_symlink(run / "summary.json"));
  CHECK(read(outside) == "precious");
}
