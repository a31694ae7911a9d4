// A tiny suite, from its YAML to its table: `m2bench run` trains and evaluates every run,
// skips what is done, leaves claimed runs alone, resumes a stopped suite, and `--fresh`
// replaces results only with new ones.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness/cli/cli.h"
#include "harness/config/suite.h"
#include "harness/results/provenance.h"
#include "harness/results/report.h"
#include "harness/results/results.h"
#include "harness/train/run_claim.h"
#include "harness/train/runner.h"
#include "tests/catch.h"
#include "tests/harness/suite_fixtures.h"
#include "tests/harness/test_child.h"
#include "tests/harness/tiny_run.h"  // one intra-op thread
#include "tests/tiny_suite.h"

using namespace m2b;
using m2b::test::m2bench_cli;
using m2b::test::spawn_test_child;
using m2b::test::wait_for_file;
using m2b::test::read_text;
using m2b::test::TempDir;
namespace fs = std::filesystem;

static const std::string kTinySuite = m2b::test::tiny_suite(
    "e2e",
    "steps: 30, lr: 1.0e-2, warmup_steps: 5, log_every: 10, eval_every: 100, checkpoint_every: 10",
    "grid:\n  model: [gru, att]\n");

// Runs one m2bench subcommand line through the same CLI code as the executable.
static void m2bench(const std::string& line) {
  CLI::App app;
  app.require_subcommand(1);
  cli::add_run_command(app);
  cli::add_table_command(app);
  app.parse(line);
}

// Options that run only the suite's first run, into dir/results.
static SuiteRunOptions first_run_only(const TempDir& dir, const Suite& suite) {
  SuiteRunOptions options;
  options.results_root = dir.path() / "results";
  options.only = {suite.runs[0].id};
  return options;
}

TEST_CASE("m2bench run trains a suite and m2bench table tabulates it", "[end_to_end]") {
  TempDir dir;
  const fs::path suite_file = dir.write("e2e.yaml", kTinySuite);
  const fs::path results = dir.path() / "results";
  m2bench(fmt::format("run {} --results {}", suite_file.string(), results.string()));

  const Suite suite = load_suite(suite_file);
  REQUIRE(suite.runs.size() == 2);
  for (const RunConfig& run : suite.runs) {
    const auto summary = read_summary(run_dir(results, run));
    REQUIRE(summary);
    CHECK(summary->status == "finished");
    CHECK(summary->steps == 30);
    CHECK(summary->eval.size() == 2);
    CHECK_FALSE(read_metrics(run_dir(results, run)).empty());
  }

  m2bench(fmt::format("table {} --results {}", suite_file.string(), results.string()));
  const std::string table = read_text(results / "e2e" / "table.md");
  CHECK(table.find("gru") != std::string::npos);
  CHECK(table.find("att") != std::string::npos);
  for (const char* file : {"table.csv", "table.tex", "runs.csv"})
    CHECK(fs::exists(results / "e2e" / file));
  const auto tables = build_tables(collect_runs(suite, results), {Metric::accuracy}, {});
  REQUIRE(tables.size() == 1);
  REQUIRE(tables[0].models.size() == 2);
  REQUIRE(tables[0].lengths == std::vector<int64_t>{8, 16});
  for (const auto& row : tables[0].cells)
    for (const Cell& cell : row) CHECK(cell.values.size() == 1);
}

TEST_CASE("a second run skips finished runs and leaves claimed ones to their holder",
          "[end_to_end]") {
  TempDir dir;
  const Suite suite = load_suite(dir.write("e2e.yaml", kTinySuite));
  SuiteRunOptions options = first_run_only(dir, suite);
  CHECK(run_suite(suite, options).finished == 1);

  // Run 1 is held by "another process"; run 0 is done.
  auto claim = RunClaim::try_claim(run_dir(options.results_root, suite.runs[1]));
  REQUIRE(claim);
  options.only.clear();
  const SuiteRunReport report = run_suite(suite, options);
  CHECK(report.already_done == 1);
  CHECK(report.claimed_elsewhere == 1);
  CHECK(report.finished == 0);
  CHECK(report.unfinished.size() == 1);
  CHECK_FALSE(read_summary(run_dir(options.results_root, suite.runs[1])));
}

TEST_CASE("a suite stopped mid-run resumes that run at the next m2bench run", "[end_to_end]") {
  TempDir dir;
  const Suite suite = load_suite(dir.write("e2e.yaml", kTinySuite));
  SuiteRunOptions options;
  options.results_root = dir.path() / "results";
  int steps = 0;
  options.interrupted = [&] { return ++steps == 15; };  // Ctrl-C during the first run
  const SuiteRunReport stopped = run_suite(suite, options);
  CHECK(stopped.interrupted);
  CHECK(stopped.finished == 0);
  CHECK(stopped.stopped == 1);
  const fs::path first = run_dir(options.results_root, suite.runs[0]);
  CHECK(fs::exists(first / "checkpoint.pt"));

  options.interrupted = nullptr;
  CHECK(run_suite(suite, options).finished == 2);
  const auto summary = read_summary(first);
  REQUIRE(summary);
  CHECK(summary->steps == 30);
  int64_t last_step = 0;  // no step logged twice across the two sessions
  for (const auto& line : read_metrics(first))
    if (line.at("kind") == "train") {
      CHECK(line.at("step").get<int64_t>() > last_step);
      last_step = line.at("step").get<int64_t>();
    }
}

TEST_CASE("--fresh retrains a finished run and replaces its results whole", "[end_to_end]") {
  TempDir dir;
  const Suite suite = load_suite(dir.write("e2e.yaml", kTinySuite));
  SuiteRunOptions options;
  options.results_root = dir.path() / "results";
  options.only = {suite.runs[0].id.substr(0, 6)};  // a prefix names a run too
  REQUIRE(run_suite(suite, options).finished == 1);
  const fs::path run = run_dir(options.results_root, suite.runs[0]);
  const fs::path marker = run / "left-by-the-old-run";
  std::ofstream(marker) << "old";

  options.fresh = true;
  CHECK(run_suite(suite, options).finished == 1);
  CHECK(read_summary(run));
  CHECK_FALSE(fs::exists(marker));  // the folder is the new run's, not a mix of both
  for (const auto& entry : fs::directory_iterator(options.results_root / "e2e"))
    CHECK(entry.path().filename().string().rfind(".fresh-", 0) != 0);  // no staging left
}

TEST_CASE("a --fresh replacement that a kill cut short is finished by the next run",
          "[end_to_end]") {
  TempDir dir;
  const Suite suite = load_suite(dir.write("e2e.yaml", kTinySuite));
  SuiteRunOptions options = first_run_only(dir, suite);
  std::ostringstream log;
  options.out = &log;
  REQUIRE(run_suite(suite, options).finished == 1);
  const fs::path run = run_dir(options.results_root, suite.runs[0]);
  const fs::path staging = run.parent_path() / (".fresh-" + run.filename().string());
  const fs::path aside = run.parent_path() / (".old-" + run.filename().string());
  // Both results are the same run's; a file in each says which folder ends up in place, and the
  // new one's summary was written an hour after the old one's.
  fs::copy(run, staging);
  std::ofstream(run / "old") << "";
  std::ofstream(staging / "new") << "";
  fs::last_write_time(run / "summary.json",
                      fs::last_write_time(staging / "summary.json") - std::chrono::hours(1));
  const auto mended = [&](const std::string& what) {
    log.str("");
    const SuiteRunReport report = run_suite(suite, options);
    CHECK(report.already_done == 1);
    CHECK_THAT(log.str(), Catch::Matchers::Contains(what));
    CHECK(read_summary(run));
    CHECK_FALSE(fs::exists(aside));
  };
  const std::string new_in_place =
      "put in place the result of a --fresh run stopped before it replaced the old one";

  SECTION("killed between the two renames, the new result ended") {
    fs::rename(run, aside);
    // While a live process holds the folder it moved aside, the run is its.
    {
      std::optional<RunClaim> swapping = RunClaim::try_claim(aside);
      REQUIRE(swapping);
      const SuiteRunReport report = run_suite(suite, options);
      CHECK(report.claimed_elsewhere == 1);
      CHECK_FALSE(fs::exists(run));
    }
    mended(new_in_place);
    CHECK(fs::exists(run / "new"));
    CHECK_FALSE(fs::exists(staging));
  }
  SECTION("killed between the two renames, the new run unfinished") {
    fs::remove(staging / "summary.json");
    fs::rename(run, aside);
    mended("put back the result that a stopped --fresh run had moved aside");
    CHECK(fs::exists(run / "old"));
  }
  SECTION("killed after the new run ended, before the swap") {
    mended(new_in_place);
    CHECK(fs::exists(run / "new"));
    CHECK_FALSE(fs::exists(staging));
  }
  SECTION("killed while deleting the old result after the two renames") {
    fs::rename(staging, aside);
    mended("done already");
    CHECK(fs::exists(run / "old"));
  }
  SECTION("killed while deleting the old result after an exchange, which leaves it in staging") {
    // The new result in place, the old one (the older summary) in staging: it stays out.
    const fs::path swap = dir.path() / "swap";
    fs::rename(staging, swap);
    fs::rename(run, staging);
    fs::rename(swap, run);
    // While the swapper lives it holds the old folder; then the next run deletes it.
    {
      std::optional<RunClaim> swapping = RunClaim::try_claim(staging);
      REQUIRE(swapping);
      mended("done already");
      CHECK(fs::exists(staging));
    }
    mended("done already");
    CHECK(fs::exists(run / "new"));
    CHECK_FALSE(fs::exists(staging));
  }
}

TEST_CASE("--fresh refuses to replace another run's folder moved into its place", "[end_to_end]") {
  TempDir dir;
  const Suite suite = load_suite(dir.write("e2e.yaml", kTinySuite));
  SuiteRunOptions options = first_run_only(dir, suite);
  REQUIRE(run_suite(suite, options).finished == 1);
  // The first run's folder, unfinished (a summary would name its run too), renamed to the second
  // run's id.
  const fs::path moved = run_dir(options.results_root, suite.runs[1]);
  fs::remove(run_dir(options.results_root, suite.runs[0]) / "summary.json");
  fs::rename(run_dir(options.results_root, suite.runs[0]), moved);
  const std::string metrics = read_text(moved / "metrics.jsonl");
  options.only = {suite.runs[1].id};
  options.fresh = true;
  const SuiteRunReport report = run_suite(suite, options);
  REQUIRE(report.failures.size() == 1);
  CHECK_THAT(report.failures[0],
             Catch::Matchers::Contains("it is run " + suite.runs[0].id + "'s config, not run " +
                                       suite.runs[1].id + "'s"));
  CHECK(read_text(moved / "metrics.jsonl") == metrics);  // left as it was
  CHECK(read_text(moved / "config.yaml") == suite.runs[0].canonical_yaml);
}

TEST_CASE("a run deletes the temp files a killed writer left in its folder, nothing else",
          "[end_to_end]") {
  TempDir dir;
  const Suite suite = load_suite(dir.write("e2e.yaml", kTinySuite));
  const SuiteRunOptions options = first_run_only(dir, suite);
  const fs::path run = run_dir(options.results_root, suite.runs[0]);
  fs::create_directories(run);
  const std::vector<std::string> left = {".checkpoint.pt.tmp.4121.0badf00d",
                                         ".summary.json.tmp.77.12345678"};
  const std::vector<std::string> kept = {"notes.txt", ".checkpoint.pt.tmp", ".tmp.1.12345678"};
  for (const auto& names : {left, kept})
    for (const std::string& name : names) std::ofstream(run / name) << "x";
  REQUIRE(run_suite(suite, options).finished == 1);
  for (const std::string& name : left) CHECK_FALSE(fs::exists(run / name));
  for (const std::string& name : kept) CHECK(fs::exists(run / name));
}

TEST_CASE("--fresh leaves alone a run another process finished after it began", "[end_to_end]") {
  TempDir dir;
  const Suite suite = load_suite(dir.write("e2e.yaml", kTinySuite));
  SuiteRunOptions options;
  options.results_root = dir.path() / "results";
  REQUIRE(run_suite(suite, options).finished == 2);
  const fs::path second = run_dir(options.results_root, suite.runs[1]);
  std::stringstream summary;
  summary << std::ifstream(second / "summary.json").rdbuf();

  // While this call retrains the first run, a sibling started with --fresh finishes the second.
  options.fresh = true;
  bool sibling_done = false;
  options.interrupted = [&] {
    if (!sibling_done) {
      // Past the file clock's tick (a few ms), as any real training run would be.
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      std::ofstream(second / "summary.json") << summary.str();
    }
    sibling_done = true;
    return false;
  };
  const SuiteRunReport report = run_suite(suite, options);
  CHECK(report.finished == 1);
  CHECK(report.already_done + report.claimed_elsewhere == 1);
}

TEST_CASE("--only names a run of the suite, or the error lists them", "[end_to_end]") {
  TempDir dir;
  const Suite suite = load_suite(dir.write("e2e.yaml", kTinySuite));
  SuiteRunOptions options;
  options.results_root = dir.path() / "results";
  options.only = {"zzzz"};
  std::string message;
  try {
    run_suite(suite, options);
  } catch (const std::invalid_argument& e) {
    message = e.what();
  }
  CAPTURE(message);
  CHECK(message.find("--only zzzz: matches no run of suite e2e") != std::string::npos);
  CHECK(message.find(suite.runs[1].id) != std::string::npos);
}

TEST_CASE("a results root that cannot be written to is one error, before any run", "[end_to_end]") {
  TempDir dir;
  const std::string suite = dir.write("e2e.yaml", kTinySuite).string();
  const std::string root = dir.write("a_file", "not a folder\n").string() + "/results";
  const auto result = m2bench_cli({"run", suite, "--results", root});
  CHECK(result.status == m2b::cli::kExitError);
  CHECK_THAT(result.err, Catch::Matchers::StartsWith("m2bench: error: ") &&
                             Catch::Matchers::Contains(root + "/e2e"));
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
}

// ---- stopping, dying and sharing a suite ----------------------------------------------------

// One model, long enough to be stopped mid-way, with no checkpoint of its own before the end:
// a checkpoint on disk can only be the one a stop wrote.
static const std::string kLongSuite = m2b::test::tiny_suite(
    "long", "steps: 100000, log_every: 5, eval_every: 1000000, checkpoint_every: 1000000");

// The child process of the next test: `m2bench run $M2B_TEST_SUITE --results $M2B_TEST_RESULTS`
// through the program's own entry, exiting with its status. Hidden by its [.] tag.
TEST_CASE("run child: m2bench run until stopped", "[.run_child]") {
  const char* suite = std::getenv("M2B_TEST_SUITE");
  const char* results = std::getenv("M2B_TEST_RESULTS");
  REQUIRE(suite);
  REQUIRE(results);
  std::exit(m2bench_cli({"run", suite, "--results", results, "--threads", "1"}).status);
}

TEST_CASE("SIGTERM and SIGHUP stop m2bench run at a checkpoint, like the first Ctrl-C",
          "[end_to_end]") {
  for (int signal : {SIGTERM, SIGHUP}) {
    INFO("signal " << signal);
    TempDir dir;
    const fs::path suite_file = dir.write("long.yaml", kLongSuite);
    const fs::path results = dir.path() / "results";
    const fs::path run = run_dir(results, load_suite(suite_file).runs.at(0));
    const pid_t child = spawn_test_child("[.run_child]", {"M2B_TEST_SUITE=" + suite_file.string(),
                                                          "M2B_TEST_RESULTS=" + results.string()});
    REQUIRE(child > 0);
    REQUIRE(wait_for_file(run / "metrics.jsonl"));  // the run has begun: its start line is written
    ::kill(child, signal);
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE(WIFEXITED(status));  // it ended itself, not the signal
    CHECK(WEXITSTATUS(status) == 128 + signal);
    CHECK(fs::exists(run / "checkpoint.pt"));
    CHECK_FALSE(read_summary(run));
  }
}

TEST_CASE("a run left unfinished by a process that died is taken at the end of the pass",
          "[end_to_end]") {
  TempDir dir;
  const Suite suite = load_suite(dir.write("e2e.yaml", kTinySuite));
  SuiteRunOptions options;
  options.results_root = dir.path() / "results";
  // Run 0 is held by a process that dies while this one trains run 1.
  std::optional<RunClaim> claim = RunClaim::try_claim(run_dir(options.results_root, suite.runs[0]));
  REQUIRE(claim);
  int calls = 0;
  options.interrupted = [&] {
    if (++calls == 5) claim.reset();  // past the first look at run 0, during run 1
    return false;
  };
  const SuiteRunReport report = run_suite(suite, options);
  CHECK(report.finished == 2);
  CHECK(report.unfinished.empty());
  CHECK(read_summary(run_dir(options.results_root, suite.runs[0])));
}

TEST_CASE("m2bench run exits non-zero and lists the runs other processes still hold",
          "[end_to_end]") {
  TempDir dir;
  const fs::path suite_file = dir.write("e2e.yaml", kTinySuite);
  const Suite suite = load_suite(suite_file);
  const fs::path results = dir.path() / "results";
  auto claim = RunClaim::try_claim(run_dir(results, suite.runs[1]));  // held throughout
  REQUIRE(claim);
  const auto result = m2bench_cli(
      {"run", suite_file.string(), "--results", results.string(), "--only", suite.runs[1].id});
  CHECK(result.status == 75);
  CHECK_THAT(result.err, Catch::Matchers::Contains("unfinished, held by other m2bench processes") &&
                             Catch::Matchers::Contains(suite.runs[1].id));
}

TEST_CASE("--fresh never writes through a link planted in the results folder", "[end_to_end]") {
  TempDir dir;
  const Suite suite = load_suite(dir.write("e2e.yaml", kTinySuite));
  SuiteRunOptions options = first_run_only(dir, suite);
  REQUIRE(run_suite(suite, options).finished == 1);
  const fs::path outside = dir.path() / "outside.txt";
  std::ofstream(outside) << "precious";
  // The name --fresh's clock probe once had.
  fs::create_symlink(outside, options.results_root / "e2e" / fmt::format(".now-{}", ::getpid()));
  options.fresh = true;
  CHECK(run_suite(suite, options).finished == 1);
  CHECK(read_text(outside) == "precious");
}

TEST_CASE("a run folder or run file that is a symbolic link is refused, nothing read through it",
          "[end_to_end]") {
  TempDir dir;
  const Suite suite = load_suite(dir.write("e2e.yaml", kTinySuite));
  SuiteRunOptions options = first_run_only(dir, suite);
  const fs::path run = run_dir(options.results_root, suite.runs[0]);
  const auto refused = [&](const fs::path& link) {
    const SuiteRunReport report = run_suite(suite, options);
    REQUIRE(report.failures.size() == 1);
    CHECK_THAT(report.failures[0],
               Catch::Matchers::Contains(link.string() + " is a symbolic link"));
    CHECK(fs::is_symlink(link));  // left for the user to look at, not replaced
    // plan, status and table read the folder as run does: not a result.
    const StoredRun stored = read_stored_run(run);
    CHECK(stored.state == RunState::invalid);
    CHECK_THAT(stored.problem, Catch::Matchers::StartsWith(link.string() + " is a symbolic link"));
  };
  // A metrics.jsonl link: once it was read to keep its lines, then replaced by them.
  const fs::path secret = dir.write("outside/secret.jsonl", "{\"step\": 0, \"secret\": 1}\n");
  fs::create_directories(run);
  fs::create_symlink(secret, run / "metrics.jsonl");
  refused(run / "metrics.jsonl");
  fs::remove(run / "metrics.jsonl");
  for (const char* name : {"checkpoint.pt", "summary.json", "config.yaml"}) {
    INFO(name);
    fs::create_symlink(secret, run / name);
    refused(run / name);
    fs::remove(run / name);
  }
  CHECK(read_text(secret) == "{\"step\": 0, \"secret\": 1}\n");
  // A run folder that is a link: once the run was trained into the folder it points at.
  remove_tree(run);
  fs::create_symlink(secret.parent_path(), run);
  refused(run);
  // Nothing was written into the folder it points at.
  CHECK(std::distance(fs::directory_iterator(secret.parent_path()), fs::directory_iterator{}) == 1);
}

TEST_CASE(
    "a layer tied to the device that auto does not land on is refused before anything is "
    "written",
    "[end_to_end]") {
  TempDir dir;
  // auto lands on cuda where a GPU is usable, else on the CPU; the layer is tied to the other.
  const std::string other = cuda_available() ? "cpu" : "cuda";
  std::string text = kTinySuite;
  for (const auto& [from, to] :
       {std::pair<std::string, std::string>{"device: cpu", "device: auto"},
        {"layers: [{mixer: gru}]", "layers: [{mixer: m2rnn, backend: " + other + "}]"}})
    text.replace(text.find(from), from.size(), to);
  const Suite suite = load_suite(dir.write("e2e.yaml", text));
  SuiteRunOptions options = first_run_only(dir, suite);
  const SuiteRunReport report = run_suite(suite, options);
  REQUIRE(report.failures.size() == 1);
  CHECK_THAT(report.failures[0],
             Catch::Matchers::Contains("train.device auto computes on " +
                                       std::string(other == "cpu" ? "cuda" : "cpu") +
                                       " here, but model.layers[0] (m2rnn) has backend " + other +
                                       ", which computes only on " + other + "; on "));
  CHECK_FALSE(fs::exists(run_dir(options.results_root, suite.runs[0])));
}

TEST_CASE(
    "a run that cannot fit in memory is refused before anything is written, naming what "
    "to lower",
    "[end_to_end]") {
  TempDir dir;
  std::string text = kTinySuite;
  // 1024 layers of width 65536: some 10^13 parameters, beyond any machine.
  const std::string small = "gru: {d_model: 16, n_layers: 1,";
  text.replace(text.find(small), small.size(), "gru: {d_model: 65536, n_layers: 1024,");
  const Suite suite = load_suite(dir.write("e2e.yaml", text));
  SuiteRunOptions options = first_run_only(dir, suite);
  const SuiteRunReport report = run_suite(suite, options);
  REQUIRE(report.failures.size() == 1);
  CHECK_THAT(report.failures[0],
             Catch::Matchers::Contains("of memory, more than the") &&
                 Catch::Matchers::Contains("model.d_model 65536, model.n_layers 1024"));
  CHECK_FALSE(fs::exists(run_dir(options.results_root, suite.runs[0])));

  // A mixer's own options can size it far past d_model: a GRU of 65536 units has some 10^10
  // parameters on a model of width 16.
  text = kTinySuite;
  const std::string gru = "layers: [{mixer: gru}]";
  text.replace(text.find(gru), gru.size(), "layers: [{mixer: gru, hidden_size: 65536}]");
  const Suite wide = load_suite(dir.write("wide.yaml", text));
  options = first_run_only(dir, wide);
  const SuiteRunReport wide_report = run_suite(wide, options);
  REQUIRE(wide_report.failures.size() == 1);
  CHECK_THAT(wide_report.failures[0], Catch::Matchers::Contains("the options of model.layers"));
  CHECK_FALSE(fs::exists(run_dir(options.results_root, wide.runs[0])));
}
