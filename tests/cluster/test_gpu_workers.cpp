// `m2bench run --gpus`: one worker per GPU slot, each seeing only its GPU, that together train
// every run of a suite once. On a machine without GPUs the suite trains on the CPU (its
// train.device says cpu) while the workers are still placed as on GPUs: CUDA_VISIBLE_DEVICES
// tells each worker its device, and each run's start line names its worker and that device.
#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "tests/catch.h"
#include "tests/cluster/m2bench_process.h"
#include "tests/tiny_suite.h"

using namespace m2b::test;
using Catch::Matchers::Contains;

namespace {

// Six tiny runs of about a second each.
const std::string kSixRuns =
    tiny_suite("workers", "steps: 60, log_every: 10, eval_every: 1000, checkpoint_every: 20",
               "grid:\n  model: [gru, att]\n  seed: [0, 1, 2]\n");

// Two runs that train until stopped, with no checkpoint of their own before the end.
const std::string kTwoLongRuns = tiny_suite(
    "long", "steps: 1000000, log_every: 5, eval_every: 10000000, checkpoint_every: 10000000",
    "grid:\n  seed: [0, 1]\n");

// The workers `run --gpus` announced: pid -> the CUDA_VISIBLE_DEVICES it was given.
std::map<int64_t, std::string> announced_workers(const std::string& output) {
  static const std::regex line(R"(\[gpu (\S+) #\d+\] pid (\d+), CUDA_VISIBLE_DEVICES=(\S+))");
  std::map<int64_t, std::string> workers;
  for (auto it = std::sregex_iterator(output.begin(), output.end(), line);
       it != std::sregex_iterator(); ++it) {
    CHECK((*it)[1] == (*it)[3]);
    workers[std::stoll((*it)[2])] = (*it)[3];
  }
  return workers;
}

}  // namespace

TEST_CASE("run --gpus places --per-gpu workers on each GPU, and they train every run once",
          "[gpu_workers]") {
  ScratchDir dir("m2b_gpu_workers");
  const fs::path suite = dir.write("workers.yaml", kSixRuns);
  const fs::path results = dir.path() / "results";
  const Finished run = run_m2bench({"run", suite.string(), "--results", results.string(), "--gpus",
                                    "3,5", "--per-gpu", "2", "--threads", "1"},
                                   dir.path() / "run.log");
  INFO(run.output);
  CHECK(run.status == 0);
  const std::map<int64_t, std::string> workers = announced_workers(run.output);
  REQUIRE(workers.size() == 4);
  std::map<std::string, int> per_gpu;
  for (const auto& [pid, gpu] : workers) ++per_gpu[gpu];
  CHECK(per_gpu == std::map<std::string, int>{{"3", 2}, {"5", 2}});

  const std::vector<fs::path> runs = run_folders(results / "workers");
  REQUIRE(runs.size() == 6);
  for (const fs::path& r : runs) {
    INFO(r);
    CHECK(fs::exists(r / "summary.json"));
    const auto trained = sessions(r);
    REQUIRE(trained.size() == 1);  // one start, no resume: trained once
    CHECK(trained[0].at("kind") == "start");
    const int64_t pid = trained[0].at("worker").at("pid");
    REQUIRE(workers.count(pid) == 1);  // by one of the workers, on its GPU
    CHECK(trained[0].at("worker").at("gpu") == workers.at(pid));
  }
  // Each worker's lines carry its slot.
  CHECK_THAT(run.output, Contains("[gpu 3 #1] ") && Contains("[gpu 5 #2] "));
}

TEST_CASE("run --gpus all takes the GPUs CUDA_VISIBLE_DEVICES names", "[gpu_workers]") {
  ScratchDir dir("m2b_gpu_all");
  const fs::path suite = dir.write("workers.yaml", kSixRuns);
  const Finished run =
      run_m2bench({"run", suite.string(), "--results", (dir.path() / "results").string(), "--gpus",
                   "all", "--threads", "1"},
                  dir.path() / "run.log", {"CUDA_VISIBLE_DEVICES=6,2"});
  INFO(run.output);
  CHECK(run.status == 0);
  std::set<std::string> gpus;
  for (const auto& [pid, gpu] : announced_workers(run.output)) gpus.insert(gpu);
  CHECK(gpus == std::set<std::string>{"2", "6"});
}

TEST_CASE("run --workers trains every run once, one thread per worker, keeping the GPUs it sees",
          "[gpu_workers]") {
  ScratchDir dir("m2b_cpu_workers");
  const fs::path suite = dir.write("workers.yaml", kSixRuns);
  const fs::path results = dir.path() / "results";
  const Finished run =
      run_m2bench({"run", suite.string(), "--results", results.string(), "--workers", "3"},
                  dir.path() / "run.log", {"CUDA_VISIBLE_DEVICES=7"});
  INFO(run.output);
  CHECK(run.status == 0);
  static const std::regex line(R"(\[worker (\d+)\] pid (\d+)\n)");
  std::set<int64_t> workers;
  for (auto it = std::sregex_iterator(run.output.begin(), run.output.end(), line);
       it != std::sregex_iterator(); ++it)
    workers.insert(std::stoll((*it)[2]));
  REQUIRE(workers.size() == 3);
  const std::vector<fs::path> runs = run_folders(results / "workers");
  REQUIRE(runs.size() == 6);
  for (const fs::path& r : runs) {
    INFO(r);
    const auto trained = sessions(r);
    REQUIRE(trained.size() == 1);
    CHECK(workers.count(trained[0].at("worker").at("pid").get<int64_t>()) == 1);
    CHECK(trained[0].at("worker").at("gpu") == "7");  // this process's, not one of its own
    std::ifstream summary(r / "summary.json");
    CHECK(nlohmann::json::parse(summary).at("provenance").at("cpu_threads") == 1);
  }
}

TEST_CASE("bad --gpus and --per-gpu values are refused, naming what is valid", "[gpu_workers]") {
  ScratchDir dir("m2b_gpu_bad");
  const fs::path suite = dir.write("workers.yaml", kSixRuns);
  const std::string results = (dir.path() / "results").string();
  const auto refused = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"run", suite.string(), "--results", results};
    args.insert(args.end(), extra.begin(), extra.end());
    const Finished run = run_m2bench(args, dir.path() / "bad.log");
    CHECK(run.status == 2);
    return run.output;
  };
  CHECK_THAT(refused({"--gpus", "0,x"}),
             Contains("--gpus 0,x: 'x' is not a device (valid: all, or a comma list"));
  CHECK_THAT(refused({"--gpus", "1,1"}), Contains("--gpus 1,1: device 1 is listed twice"));
  CHECK_THAT(refused({"--per-gpu", "2"}), Contains("--per-gpu") && Contains("--gpus"));
  CHECK_THAT(refused({"--workers", "2", "--gpus", "0"}),
             Contains("--workers") && Contains("--gpus"));
  CHECK_THAT(refused({"--workers", "0"}), Contains("--workers"));
  CHECK_FALSE(fs::exists(results));  // nothing trained
}

TEST_CASE("SIGTERM to run --gpus stops every worker at a checkpoint, and status shows them stopped",
          "[gpu_workers]") {
  ScratchDir dir("m2b_gpu_stop");
  const fs::path suite = dir.write("long.yaml", kTwoLongRuns);
  const fs::path results = dir.path() / "results";
  M2bench run(
      {"run", suite.string(), "--results", results.string(), "--gpus", "0,1", "--threads", "1"},
      dir.path() / "run.log");
  // Both workers train once each run has logged a window.
  const auto logged = [&] {
    const auto runs = run_folders(results / "long");
    return runs.size() == 2 && std::all_of(runs.begin(), runs.end(), [](const fs::path& r) {
             return metrics_lines(r).size() >= 2;
           });
  };
  const bool training = wait_for(logged, 120);
  ::kill(run.pid, SIGTERM);
  const int status = run.wait();
  INFO(run.output());
  REQUIRE(training);
  CHECK(status == 128 + SIGTERM);
  for (const fs::path& r : run_folders(results / "long")) {
    CHECK(fs::exists(r / "checkpoint.pt"));
    CHECK_FALSE(fs::exists(r / "summary.json"));
  }
  const Finished shown = run_m2bench({"status", suite.string(), "--results", results.string()},
                                     dir.path() / "status.log");
  CHECK(shown.status == 0);
  CHECK_THAT(shown.output,
             Contains("2 runs: 0 finished, 0 diverged, 0 training, 2 stopped, 0 missing"));
}
