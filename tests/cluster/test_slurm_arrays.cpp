// `m2bench slurm --submit` against a real Slurm (slurm_main.cpp starts one on localhost): a job
// array trains a suite with each run trained once, to the very results of one process; a task
// stopped with SIGTERM leaves a checkpoint from which the next submission resumes the run.
#include <cstdio>
#include <regex>

#include "tests/catch.h"
#include "tests/cluster/m2bench_process.h"
#include "tests/tiny_suite.h"

using namespace m2b::test;
using Catch::Matchers::Contains;

namespace {

// Six tiny runs of a few hundred steps.
const std::string kSixRuns =
    tiny_suite("array", "steps: 200, log_every: 20, eval_every: 100, checkpoint_every: 50",
               "grid:\n  model: [gru, att]\n  seed: [0, 1, 2]\n");

// One run long enough to be stopped mid-way, with no checkpoint of its own before the end: a
// checkpoint on disk can only be the one SIGTERM made it write.
const std::string kOneLongRun = tiny_suite(
    "preempted", "steps: 4000, log_every: 10, eval_every: 1000, checkpoint_every: 100000");

// A shell command's output (stdout and stderr).
std::string shell(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe);
  std::string output;
  char chunk[512];
  while (size_t n = std::fread(chunk, 1, sizeof chunk, pipe)) output.append(chunk, n);
  ::pclose(pipe);
  return output;
}

// Submits the suite's array and returns the job id m2bench reports.
std::string submit(const fs::path& suite, const fs::path& results, int tasks, const fs::path& log) {
  const Finished submitted = run_m2bench({"slurm", suite.string(), "--results", results.string(),
                                          "--array", std::to_string(tasks), "--submit"},
                                         log);
  INFO(submitted.output);
  REQUIRE(submitted.status == 0);
  std::smatch id;
  REQUIRE(std::regex_search(submitted.output, id, std::regex(R"(submitted job array (\d+))")));
  return id[1];
}

// Waits until no task of the array is pending or running.
void wait_until_done(const std::string& job, int seconds) {
  const bool done = wait_for(
      [&] { return shell("squeue -h -o %i -j " + job).find(job) == std::string::npos; }, seconds);
  INFO(shell("squeue; scontrol show job " + job));
  REQUIRE(done);
}

// What must not depend on how a run was split between workers: every metrics value but the
// timings and the lines that say which worker started or resumed it.
std::vector<nlohmann::json> reproducible_metrics(const fs::path& run) {
  std::vector<nlohmann::json> out;
  for (nlohmann::json line : metrics_lines(run)) {
    if (line.at("kind") == "start" || line.at("kind") == "resume") continue;
    line.erase("wall_s");
    line.erase("tokens_per_s");
    out.push_back(line);
  }
  return out;
}

// The table's cells: table.csv whole, and table.md up to its provenance (which has wall times).
std::string table_cells(const fs::path& suite, const fs::path& results, const fs::path& log) {
  const Finished table = run_m2bench({"table", suite.string(), "--results", results.string()}, log);
  INFO(table.output);
  REQUIRE(table.status == 0);
  const fs::path dir = results / suite.stem();
  const std::string md = read_text(dir / "table.md");
  return read_text(dir / "table.csv") + md.substr(0, md.find("Provenance"));
}

}  // namespace

TEST_CASE("a job array of 3 tasks trains a 6-run suite, each run once, to one process's table",
          "[slurm]") {
  ScratchDir dir("m2b_slurm_array");
  const fs::path suite = dir.write("array.yaml", kSixRuns);
  const fs::path shared = dir.path() / "shared";
  const std::string job = submit(suite, shared, 3, dir.path() / "submit.log");
  wait_until_done(job, 300);

  const std::string states = shell("scontrol show job " + job);
  INFO(states);
  for (int task = 0; task < 3; ++task)
    CHECK(fs::exists(shared / "array" / "slurm" / (job + "_" + std::to_string(task) + ".out")));
  CHECK_THAT(states, !Contains("JobState=FAILED"));
  const std::vector<fs::path> runs = run_folders(shared / "array");
  REQUIRE(runs.size() == 6);
  for (const fs::path& run : runs) {
    INFO(run);
    CHECK(fs::exists(run / "summary.json"));
    const auto trained = sessions(run);
    REQUIRE_FALSE(trained.empty());
    CHECK(trained[0].at("kind") == "start");  // one start, and resumes only after it
    for (size_t i = 1; i < trained.size(); ++i) CHECK(trained[i].at("kind") == "resume");
    CHECK_THAT(trained[0].at("worker").at("job").get<std::string>(), Contains(job + "_"));
  }

  const fs::path single = dir.path() / "single";
  const Finished one =
      run_m2bench({"run", suite.string(), "--results", single.string(), "--threads", "1"},
                  dir.path() / "single.log");
  INFO(one.output);
  REQUIRE(one.status == 0);
  CHECK(table_cells(suite, shared, dir.path() / "table.log") ==
        table_cells(suite, single, dir.path() / "table.log"));
}

TEST_CASE(
    "a task stopped by scancel --signal=TERM checkpoints, and a resubmission resumes the "
    "run to the result of an unbroken one",
    "[slurm]") {
  ScratchDir dir("m2b_slurm_resume");
  const fs::path suite = dir.write("preempted.yaml", kOneLongRun);
  const fs::path shared = dir.path() / "shared";
  const std::string job = submit(suite, shared, 1, dir.path() / "submit.log");
  const auto at_step = [&](int64_t step) {
    const auto runs = run_folders(shared / "preempted");
    if (runs.empty()) return false;
    for (const nlohmann::json& line : metrics_lines(runs[0]))
      if (line.at("kind") == "train" && line.at("step").get<int64_t>() >= step) return true;
    return false;
  };
  REQUIRE(wait_for([&] { return at_step(100); }, 120));
  // While the task trains, status shows where it is and who trains it.
  const Finished live = run_m2bench({"status", suite.string(), "--results", shared.string()},
                                    dir.path() / "status.log");
  CHECK_THAT(live.output, Contains("1 training") && Contains("/4000  ") &&
                              Contains(" job " + job + "_0") && Contains("ETA"));

  // Signals the task's batch shell, as --signal=B:TERM does before the time limit.
  shell("scancel --batch --signal=TERM " + job + "_0");
  wait_until_done(job, 120);
  const std::vector<fs::path> runs = run_folders(shared / "preempted");
  REQUIRE(runs.size() == 1);
  const fs::path run = runs[0];
  const std::string task_log = read_text(shared / "preempted" / "slurm" / (job + "_0.out"));
  INFO(task_log);
  REQUIRE(fs::exists(run / "checkpoint.pt"));
  REQUIRE_FALSE(fs::exists(run / "summary.json"));
  CHECK_THAT(task_log, Contains("the next `m2bench run` resumes it from its checkpoint"));

  const std::string again = submit(suite, shared, 1, dir.path() / "resubmit.log");
  wait_until_done(again, 300);
  REQUIRE(fs::exists(run / "summary.json"));
  const auto trained = sessions(run);
  REQUIRE(trained.size() == 2);
  CHECK(trained[0].at("kind") == "start");
  CHECK(trained[1].at("kind") == "resume");
  CHECK(trained[1].at("step").get<int64_t>() >= 100);
  CHECK(trained[1].at("worker").at("job") == again + "_0");

  const fs::path unbroken = dir.path() / "unbroken";
  REQUIRE(run_m2bench({"run", suite.string(), "--results", unbroken.string(), "--threads", "1"},
                      dir.path() / "unbroken.log")
              .status == 0);
  const fs::path reference = unbroken / "preempted" / run.filename();
  const auto summary = nlohmann::json::parse(read_text(run / "summary.json"));
  const auto expected = nlohmann::json::parse(read_text(reference / "summary.json"));
  CHECK(summary.at("steps") == expected.at("steps"));
  CHECK(summary.at("eval") == expected.at("eval"));  // exactly: CPU training is deterministic
  CHECK(reproducible_metrics(run) == reproducible_metrics(reference));
}
