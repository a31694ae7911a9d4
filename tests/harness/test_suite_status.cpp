// `m2bench status`: where each run of a suite stands and when the suite will be done, read from
// the run folders alone.
#include <fstream>

#include "harness/config/suite.h"
#include "harness/results/results.h"
#include "harness/results/suite_status.h"
#include "harness/train/checkpoint.h"
#include "harness/train/progress.h"
#include "harness/train/run_claim.h"
#include "harness/train/runner.h"
#include "tests/catch.h"
#include "tests/harness/suite_fixtures.h"
#include "tests/harness/tiny_run.h"  // one intra-op thread
#include "tests/tiny_suite.h"

using namespace m2b;
using Catch::Matchers::Contains;
using Catch::Matchers::WithinRel;
using m2b::test::TempDir;
namespace fs = std::filesystem;

// Four runs of 30 steps, logged every 10.
static const std::string kStatusSuite = m2b::test::tiny_suite(
    "status", "steps: 30, log_every: 10, eval_every: 100, checkpoint_every: 10",
    "grid:\n  seed: [0, 1, 2, 3]\n");

// A run's folder as a worker leaves it after logging `step` steps in `wall_s` seconds.
static void begin_run(const fs::path& results, const RunConfig& run, int64_t step, double wall_s) {
  const fs::path dir = run_dir(results, run);
  write_config(dir, run);
  append_metrics(dir, {{"step", 0}, {"kind", "start"}});
  append_metrics(dir,
                 {{"step", step}, {"kind", "train"}, {"tokens_per_s", 1500.0}, {"wall_s", wall_s}});
}

TEST_CASE(
    "status counts finished, training, stopped and missing runs, with a training run's "
    "worker, step, pace and ETA, and the suite's ETA",
    "[suite_status]") {
  TempDir dir;
  const Suite suite = load_suite(dir.write("status.yaml", kStatusSuite));
  const fs::path results = dir.path() / "results";
  SuiteRunOptions options;
  options.results_root = results;
  options.only = {suite.runs[0].id};
  REQUIRE(run_suite(suite, options).finished == 1);
  begin_run(results, suite.runs[1], 10, 2.0);  // held by this process: training
  auto claim = RunClaim::try_claim(run_dir(results, suite.runs[1]));
  REQUIRE(claim);
  begin_run(results, suite.runs[2], 20, 3.0);  // nobody holds it: stopped
  const fs::path checkpoint = checkpoint_path(run_dir(results, suite.runs[2]));
  std::ofstream(checkpoint) << "a checkpoint\n";

  const SuiteStatus status = suite_status(suite, results);
  CHECK(status.count(RunActivity::finished) == 1);
  CHECK(status.count(RunActivity::training) == 1);
  CHECK(status.count(RunActivity::stopped) == 1);
  CHECK(status.count(RunActivity::missing) == 1);
  const RunStatus& training = status.runs[1];
  CHECK(training.step == 10);
  REQUIRE(training.eta_s);
  CHECK_THAT(*training.eta_s, WithinRel(4.0, 1e-9));  // 2 s for 10 steps, 20 to go
  // The two runs waiting take the finished one's time each, on the one worker training.
  const double finished_s = read_summary(run_dir(results, suite.runs[0]))->wall_s;
  REQUIRE(status.eta_s);
  CHECK_THAT(*status.eta_s, WithinRel(4.0 + 2 * finished_s, 1e-9));

  const std::string text = format_status(suite, results, status);
  CHECK_THAT(text, Contains("suite status (" + (results / "status").string() +
                            "): 4 runs: 1 finished, 0 diverged, 1 training, 1 stopped, 1 missing"));
  CHECK_THAT(text, Contains("training  [2/4] gru parity seed 1  " + suite.runs[1].id +
                            "  step 10/30  1.5k tok/s  ETA 4s  " + describe(this_worker())));
  CHECK_THAT(text, Contains("stopped   [3/4] gru parity seed 2  " + suite.runs[2].id +
                            "  step 20/30 logged  (the next `m2bench run` resumes it from its "
                            "checkpoint)"));
  CHECK_THAT(text, Contains("missing   [4/4] gru parity seed 3  " + suite.runs[3].id));
  // Stopped (or failed) before its first checkpoint: it starts over.
  fs::remove(checkpoint);
  CHECK_THAT(format_status(suite, results, suite_status(suite, results)),
             Contains("  step 20/30 logged  (the next `m2bench run` starts it over: it has no "
                      "checkpoint)"));
  CHECK_THAT(text, Contains("suite ETA ") && Contains(" with 1 worker training"));
}

// The owner record of a worker that claimed the run long ago and beat last `heartbeat_age` ago.
static void hold_run(const fs::path& results, const RunConfig& run, const nlohmann::json& worker,
                     int64_t heartbeat_age) {
  std::ofstream(run_dir(results, run) / ".owner")
      << nlohmann::json{{"worker", worker},
                        {"claimed_at", unix_now() - 1000},
                        {"heartbeat", unix_now() - heartbeat_age}};
}

TEST_CASE(
    "a held run trains while its worker's heartbeat is fresh and is stalled once it stops, on "
    "another host and on this one",
    "[suite_status]") {
  TempDir dir;
  const Suite suite = load_suite(dir.write("status.yaml", kStatusSuite));
  const fs::path results = dir.path() / "results";
  begin_run(results, suite.runs[0], 10, 2.0);
  SECTION("on another host, with that host's worker shown") {
    const nlohmann::json node7 = {{"host", "node7"}, {"pid", 99}, {"job", "12_1"}, {"gpu", "3"}};
    hold_run(results, suite.runs[0], node7, 20);
    CHECK_THAT(format_status(suite, results, suite_status(suite, results)),
               Contains("ETA 4s  host node7 pid 99 job 12_1 gpu 3"));
    hold_run(results, suite.runs[0], node7, kStaleSeconds + 60);
    const SuiteStatus stalled = suite_status(suite, results);
    CHECK(stalled.count(RunActivity::stalled) == 1);
    CHECK_FALSE(stalled.eta_s);
    CHECK_THAT(format_status(suite, results, stalled),
               Contains("no heartbeat from its worker for over 10m00s") &&
                   Contains("suite ETA unknown: no worker is training it now"));
  }
  SECTION("on this host, by a live process (a hung worker, or another given a dead one's pid)") {
    hold_run(results, suite.runs[0], this_worker(), 20);  // this process: alive
    CHECK(suite_status(suite, results).count(RunActivity::training) == 1);
    hold_run(results, suite.runs[0], this_worker(), kStaleSeconds + 60);
    CHECK(suite_status(suite, results).count(RunActivity::stalled) == 1);
  }
}

TEST_CASE("status names the run folders of no planned run, and --fresh replacements cut short",
          "[suite_status]") {
  TempDir dir;
  const Suite suite = load_suite(dir.write("status.yaml", kStatusSuite));
  const fs::path results = dir.path() / "results";
  const fs::path folder = results / "status";
  // Runs of the suite before a setting changed: one finished, one stopped with a checkpoint.
  RunConfig before = suite.runs[0];
  for (const std::string id : {"0123456789ab", "ba9876543210"}) {
    before.id = id;
    begin_run(results, before, 10, 2.0);
  }
  std::ofstream(folder / "0123456789ab" / "summary.json") << "{}";
  std::ofstream(checkpoint_path(folder / "ba9876543210")) << "a checkpoint\n";
  // Neither a run folder nor a planned run's staging: not counted.
  fs::create_directories(folder / "notes");
  fs::create_directories(folder / ".fresh-0123456789ab");
  std::ofstream(folder / ".fresh-0123456789ab" / "summary.json") << "{}";
  // A planned run moved aside by a --fresh that a kill stopped mid-swap; another whose new
  // result never took the folder's place; a third whose --fresh is still training (no summary).
  fs::create_directories(folder / (".old-" + suite.runs[1].id));
  begin_run(results, suite.runs[2], 10, 2.0);
  const fs::path staged = folder / (".fresh-" + suite.runs[2].id);
  write_config(staged, suite.runs[2]);
  RunSummary ended;
  ended.id = suite.runs[2].id;
  ended.suite = suite.name;
  ended.model = suite.runs[2].model_name;
  ended.task = suite.runs[2].task.name;
  ended.status = "finished";
  write_summary(staged, ended);
  begin_run(results, suite.runs[3], 10, 2.0);
  fs::create_directories(folder / (".fresh-" + suite.runs[3].id));

  const SuiteStatus status = suite_status(suite, results);
  CHECK(status.outside_plan == 2);
  CHECK(status.outside_plan_stopped == 1);
  CHECK(status.replacements_cut_short == 2);
  const std::string text = format_status(suite, results, status);
  CHECK_THAT(text, Contains("2 run folders in " + folder.string() +
                            " are of no run of this plan (1 stopped with a checkpoint, which this "
                            "plan will not resume)"));
  CHECK_THAT(text, Contains("2 --fresh replacements cut short by a kill: the next `m2bench run` "
                            "puts the new result in place where it ended, else the old one back"));
}

TEST_CASE("counts read as papers quote them, the unit chosen after rounding", "[suite_status]") {
  CHECK(format_count(845) == "845");
  CHECK(format_count(999.4) == "999");
  CHECK(format_count(999.6) == "1.0k");
  CHECK(format_count(12345) == "12.3k");
  CHECK(format_count(999960) == "1.0M");
  CHECK(format_count(1.05e6) == "1.1M");
  CHECK(format_count(2.1e9) == "2.1G");
  CHECK(format_rate(1500) == "1.5k tok/s");
}
