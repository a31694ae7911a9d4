// Resuming: a run stopped or killed at any point and started again ends exactly where an
// unbroken run ends, and no results file is lost or left half-written.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "harness/results/provenance.h"
#include "harness/results/results.h"
#include "harness/train/checkpoint.h"
#include "harness/train/run_claim.h"
#include "harness/train/trainer.h"
#include "tests/catch.h"
#include "tests/harness/suite_fixtures.h"
#include "tests/harness/test_child.h"
#include "tests/harness/tiny_run.h"
#include "tests/read_text.h"

using namespace m2b;
using m2b::test::read_text;
using m2b::test::spawn_test_child;
using m2b::test::wait_for_file;
using m2b::test::resolved;
using m2b::test::TempDir;
using m2b::test::tiny_run;
namespace fs = std::filesystem;

// The killed run: long enough that the kill lands mid-way, checkpoints every 10 steps.
static RunConfig killable_run() { return resolved(tiny_run("s3", 400)); }

// What must not depend on where a run was interrupted: every metrics value but the timings and
// the lines that say which worker started or resumed the run.
static std::vector<nlohmann::json> reproducible_metrics(const fs::path& dir) {
  std::vector<nlohmann::json> out;
  for (nlohmann::json line : read_metrics(dir)) {
    if (line.at("kind") == "start" || line.at("kind") == "resume") continue;
    line.erase("wall_s");
    line.erase("tokens_per_s");
    out.push_back(line);
  }
  return out;
}

static void require_same_result(const fs::path& unbroken, const fs::path& resumed) {
  const auto a = read_summary(unbroken), b = read_summary(resumed);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->status == b->status);
  CHECK(a->steps == b->steps);
  CHECK(a->stopped_early == b->stopped_early);
  REQUIRE(a->eval.size() == b->eval.size());
  for (size_t i = 0; i < a->eval.size(); ++i) {
    CHECK(a->eval[i].length == b->eval[i].length);
    CHECK(a->eval[i].loss == b->eval[i].loss);  // exactly: CPU training is deterministic
    CHECK(a->eval[i].accuracy == b->eval[i].accuracy);
    CHECK(a->eval[i].sequence_accuracy == b->eval[i].sequence_accuracy);
  }
  const auto metrics_a = reproducible_metrics(unbroken), metrics_b = reproducible_metrics(resumed);
  CHECK(metrics_a.size() == metrics_b.size());
  CHECK(metrics_a == metrics_b);
  CHECK_FALSE(fs::exists(checkpoint_path(resumed)));
}

// Every line of metrics.jsonl is whole JSON (a resumed run cuts a torn tail before appending).
static void require_whole_lines(const fs::path& dir) {
  std::ifstream in(dir / "metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    INFO(line);
    CHECK_FALSE(nlohmann::json::parse(line, nullptr, false).is_discarded());
  }
}

TEST_CASE("a run stopped between checkpoints and resumed ends exactly like an unbroken run",
          "[resume]") {
  TempDir scratch;
  const RunConfig run = resolved(tiny_run("s3", 60));
  REQUIRE(train_run(run, scratch.path() / "unbroken"));

  const fs::path dir = scratch.path() / "resumed";
  TrainOptions stop_at_17;  // neither a log (5) nor a checkpoint (10) step
  stop_at_17.stop_requested = [](int64_t step) { return step == 17; };
  CHECK_FALSE(train_run(run, dir, stop_at_17));
  CHECK(fs::exists(checkpoint_path(dir)));
  CHECK_FALSE(read_summary(dir));
  REQUIRE(train_run(run, dir));
  require_same_result(scratch.path() / "unbroken", dir);
}

TEST_CASE("a run resumed inside its early stop's patience stops where an unbroken one does",
          "[resume]") {
  TempDir scratch;
  RunConfig patient = tiny_run("s3", 60);
  patient.train.target_accuracy = 0.01;  // every window reaches it, from step 5 on
  patient.train.target_patience_steps = 20;
  const RunConfig run = resolved(patient);
  REQUIRE(train_run(run, scratch.path() / "unbroken"));
  const fs::path dir = scratch.path() / "resumed";
  TrainOptions stop_at_17;  // inside the stretch of on-target windows that began at step 5
  stop_at_17.stop_requested = [](int64_t step) { return step == 17; };
  CHECK_FALSE(train_run(run, dir, stop_at_17));
  REQUIRE(train_run(run, dir));
  require_same_result(scratch.path() / "unbroken", dir);
  CHECK(read_summary(dir)->steps == 25);
}

TEST_CASE("a checkpoint written before the early stop's patience resumes", "[resume]") {
  // tests/harness/fixtures/checkpoint_before_patience: tiny_run("s3", 60) stopped at step 17 by
  // the code before TrainProgress::on_target_since, whose checkpoints lack that counter (the
  // stopped runs of the S3 sittings among them). Made with tiny_run's model: change one, remake
  // the other.
  TempDir scratch;
  const fs::path fixture =
      fs::path(__FILE__).parent_path() / "fixtures" / "checkpoint_before_patience";
  fs::copy(fixture, scratch.path());
  const RunConfig run = resolved(tiny_run("s3", 60));
  TrainOptions resume;
  std::ostringstream progress;
  resume.progress = &progress;
  const auto summary = train_run(run, scratch.path(), resume);
  REQUIRE(summary);
  CHECK_THAT(progress.str(), Catch::Matchers::Contains("resuming from step 17"));
  CHECK(summary->steps == 60);
}

TEST_CASE("another run's folder or checkpoint is refused, not resumed as this run", "[resume]") {
  TempDir scratch;
  const RunConfig seed_3 = resolved(tiny_run("s3", 60));
  RunConfig other = tiny_run("s3", 60);
  other.seed = 4;
  const RunConfig seed_4 = resolved(other);
  const fs::path stopped = scratch.path() / "stopped";
  TrainOptions stop_at_17;
  stop_at_17.stop_requested = [](int64_t step) { return step == 17; };
  CHECK_FALSE(train_run(seed_3, stopped, stop_at_17));
  const auto error_of = [](const RunConfig& run, const fs::path& dir) {
    try {
      train_run(run, dir);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("trained");
  };
  // The whole folder, renamed to the other run's id: its config.yaml says whose it is, and stays.
  const std::string config = read_text(stopped / "config.yaml");
  CHECK(error_of(seed_4, stopped) ==
        (stopped / "config.yaml").string() + ": it is run " + seed_3.id + "'s config, not run " +
            seed_4.id + "'s: the folder was moved or copied from run " + seed_3.id +
            "'s; move it back, or delete it to train run " + seed_4.id + " from the beginning");
  CHECK(read_text(stopped / "config.yaml") == config);
  // The checkpoint alone, copied into the other run's folder: it names its run.
  const fs::path copied = scratch.path() / "copied";
  fs::create_directories(copied);
  fs::copy_file(checkpoint_path(stopped), checkpoint_path(copied));
  CHECK_THAT(error_of(seed_4, copied),
             Catch::Matchers::StartsWith(checkpoint_path(copied).string() + ": it names run " +
                                         seed_3.id + ", so it is another run's checkpoint"));
  // A checkpoint from before run ids were stored (the fixture's), in a run of another width:
  // its shapes give it away.
  RunConfig wider = tiny_run("s3", 60);
  wider.model.d_model = 32;
  const fs::path old = scratch.path() / "old";
  fs::copy(fs::path(__FILE__).parent_path() / "fixtures" / "checkpoint_before_patience", old);
  fs::remove(old / "config.yaml");
  CHECK(error_of(resolved(wider), old) ==
        checkpoint_path(old).string() + ": its block0.mixer.out.weight is 16x16, where run " +
            resolved(wider).id +
            "'s model has 32x32, so it is another run's checkpoint (copied "
            "or moved here?); move it back, or delete it to train run " +
            resolved(wider).id + " from the beginning");
  // The run the stopped folder belongs to still resumes from it.
  REQUIRE(train_run(seed_3, stopped));
}

TEST_CASE("a checkpoint damaged on disk is refused, naming the file and what to do", "[resume]") {
  TempDir scratch;
  const RunConfig run = resolved(tiny_run("s3", 60));
  const fs::path dir = scratch.path() / "run";
  TrainOptions stop_at_17;
  stop_at_17.stop_requested = [](int64_t step) { return step == 17; };
  CHECK_FALSE(train_run(run, dir, stop_at_17));
  // One bit of one byte in the middle: LibTorch's loader would read it as a changed weight.
  std::string bytes = read_text(checkpoint_path(dir));
  bytes[bytes.size() / 2] ^= 1;
  std::ofstream(checkpoint_path(dir), std::ios::binary) << bytes;
  std::string message;
  try {
    train_run(run, dir);
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  CHECK(message == checkpoint_path(dir).string() +
                       ": its bytes do not match the checksum written with them (damaged on "
                       "disk?); delete it to restart this run from the beginning");
  CHECK_FALSE(read_summary(dir));
}

TEST_CASE("a resumed run says from which step it goes on", "[resume]") {
  TempDir scratch;
  const RunConfig run = resolved(tiny_run("s3", 30));
  TrainOptions stop_at_17;
  stop_at_17.stop_requested = [](int64_t step) { return step == 17; };
  std::ostringstream first;
  stop_at_17.progress = &first;
  CHECK_FALSE(train_run(run, scratch.path(), stop_at_17));
  CHECK_THAT(first.str(), !Catch::Matchers::Contains("resuming"));
  TrainOptions resume;
  std::ostringstream second;
  resume.progress = &second;
  REQUIRE(train_run(run, scratch.path(), resume));
  CHECK_THAT(second.str(), Catch::Matchers::Contains("resuming from step 17"));
}

TEST_CASE("metrics.jsonl names the worker and build of one start and of a resume per later session",
          "[resume]") {
  TempDir scratch;
  const RunConfig run = resolved(tiny_run("s3", 30));
  TrainOptions stop_at_17;
  stop_at_17.stop_requested = [](int64_t step) { return step == 17; };
  CHECK_FALSE(train_run(run, scratch.path(), stop_at_17));
  REQUIRE(train_run(run, scratch.path()));
  std::vector<std::pair<std::string, int64_t>> sessions;
  for (const nlohmann::json& line : read_metrics(scratch.path())) {
    if (line.at("kind") != "start" && line.at("kind") != "resume") continue;
    sessions.emplace_back(line.at("kind"), line.at("step"));
    CHECK(line.at("worker").at("host") == host_name());
    CHECK(line.at("worker").at("pid") == ::getpid());
    CHECK(line.at("build").at("git_sha") == m2b::kGitSha);
    CHECK(line.at("build").at("git_dirty") == m2b::kGitDirty);
  }
  CHECK(sessions == std::vector<std::pair<std::string, int64_t>>{{"start", 0}, {"resume", 17}});
}

TEST_CASE("a run resumed twice, once past its last evaluation, still matches", "[resume]") {
  TempDir scratch;
  const RunConfig run = resolved(tiny_run("s3", 60));
  REQUIRE(train_run(run, scratch.path() / "unbroken"));
  const fs::path dir = scratch.path() / "resumed";
  for (int64_t stop : {20, 45}) {  // 20: an evaluation and a checkpoint step
    TrainOptions options;
    options.stop_requested = [stop](int64_t step) { return step == stop; };
    CHECK_FALSE(train_run(run, dir, options));
  }
  REQUIRE(train_run(run, dir));
  require_same_result(scratch.path() / "unbroken", dir);
}

// The child process of the next test: trains the killable run in $M2B_TEST_RUN_DIR until the
// parent kills it. Hidden from normal runs by its [.] tag.
TEST_CASE("resume child: train until killed", "[.resume_child]") {
  const char* dir = std::getenv("M2B_TEST_RUN_DIR");
  REQUIRE(dir);
  train_run(killable_run(), dir);
}

TEST_CASE("a run killed with SIGKILL after a checkpoint resumes to the same result, no file torn",
          "[resume]") {
  TempDir scratch;
  const fs::path dir = scratch.path() / "killed";
  const pid_t child = spawn_test_child("[.resume_child]", {"M2B_TEST_RUN_DIR=" + dir.string()});
  REQUIRE(child > 0);
  REQUIRE(wait_for_file(checkpoint_path(dir)));
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(WIFSIGNALED(status));  // killed mid-way, not finished
  REQUIRE(fs::exists(checkpoint_path(dir)));
  CHECK_FALSE(read_summary(dir));
  std::ifstream config(dir / "config.yaml");
  std::ostringstream config_text;
  config_text << config.rdbuf();
  CHECK(config_text.str() == killable_run().canonical_yaml);

  REQUIRE(train_run(killable_run(), dir));  // resumes; a torn checkpoint would throw here
  require_whole_lines(dir);
  REQUIRE(train_run(killable_run(), scratch.path() / "unbroken"));
  require_same_result(scratch.path() / "unbroken", dir);
}
