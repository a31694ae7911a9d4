// Validation of suite files: every class of error is one line naming file:line:column, the key,
// what was given and what is valid; and the canonical form of a resolved run.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "harness/config/run_schema.h"
#include "harness/config/suite.h"
#include "harness/train/progress.h"
#include "tests/catch.h"
#include "tests/harness/suite_fixtures.h"

using m2b::test::config_error;
using m2b::test::kTestModels;
using m2b::test::m2bench_cli;
using m2b::test::TempDir;
namespace fs = std::filesystem;

namespace {

// A suite whose defaults end with `train_lines` (each indented under train:), so that the line
// numbers below are fixed: line 4 is the model, line 5 the task, line 7 the first train line.
std::string suite_text(const std::string& model, const std::string& task,
                       const std::string& train_lines) {
  // Not formatted: the suite's lines.
  // clang-format off
  return "suite: t\n"
         "include: models.yaml\n"
         "defaults:\n"
         "  model: " + model + "\n"
         "  task: " + task + "\n"
         "  train:\n" + train_lines;
  // clang-format on
}

struct Fixture {
  TempDir dir;
  Fixture() { dir.write("models.yaml", kTestModels); }
  std::string file(const std::string& name) const { return (dir.path() / name).string(); }
  std::string error(const std::string& text) const {
    auto path = dir.write("s.yaml", text);
    return config_error([&] { m2b::load_suite(path); });
  }
};

const std::string kTask = "{name: s3, train_max_length: 8}";

}  // namespace

TEST_CASE("an unknown key names its place and the valid keys", "[config]") {
  Fixture f;
  CHECK(f.error(suite_text("att", kTask, "    lrr: 1\n")) ==
        f.file("s.yaml") +
            ":7:5: train.lrr: unknown key 'lrr' (valid in train: steps, batch_size, lr, "
            "min_lr_ratio, warmup_steps, weight_decay, beta1, beta2, eps, grad_clip, "
            "target_accuracy, log_every, eval_every, checkpoint_every, device, precision, "
            "curriculum_steps, curriculum_start_length, target_patience_steps)");
  CHECK(f.error("suite: t\nmodles: {}\n") ==
        f.file("s.yaml") +
            ":2:1: unknown key 'modles' (valid: suite, description, include, "
            "models, defaults, grid, overrides)");
  CHECK(f.error(suite_text("att", kTask, "    lr: 1\n") + "grid:\n  tsk.name: [s3]\n") ==
        f.file("s.yaml") + ":9:3: tsk.name: unknown key 'tsk' (valid: model, seed, task, train)");
}

TEST_CASE("a key given twice names both places", "[config]") {
  Fixture f;
  CHECK(f.error(suite_text("att", kTask, "    lr: 1\n    lr: 2\n")) ==
        f.file("s.yaml") + ":8:5: defaults.train.lr: given twice (first at line 7)");
  CHECK(f.error(suite_text("att", kTask, "    lr: 1\n") + "defaults:\n  seed: 5\n") ==
        f.file("s.yaml") + ":8:1: defaults: given twice (first at line 3)");
}

TEST_CASE("a value of the wrong type says what was expected and what was given", "[config]") {
  Fixture f;
  CHECK(f.error(suite_text("att", kTask, "    lr: fast\n")) ==
        f.file("s.yaml") + ":7:9: train.lr: expected a number > 0, got \"fast\"");
  CHECK(f.error(suite_text("att", kTask, "    device: gpu\n")) ==
        f.file("s.yaml") + ":7:13: train.device: expected one of auto, cpu, cuda, got \"gpu\"");
  CHECK(f.error(suite_text("att", kTask, "    steps: [1, 2]\n")) ==
        f.file("s.yaml") +
            ":7:12: train.steps: expected an integer in [1, 1000000000], got a list");
  CHECK(f.error(suite_text("att", "{name: s3, eval_lengths: []}", "    lr: 1\n")) ==
        f.file("s.yaml") +
            ":5:34: task.eval_lengths: expected a non-empty list of lengths, got []");
}

TEST_CASE("a value out of range states the valid range", "[config]") {
  Fixture f;
  CHECK(f.error(suite_text("att", kTask, "    steps: 0\n")) ==
        f.file("s.yaml") + ":7:12: train.steps: expected an integer in [1, 1000000000], got 0");
  CHECK(f.error(suite_text("att", kTask, "    beta2: 1\n")) ==
        f.file("s.yaml") + ":7:12: train.beta2: expected a number in [0, 1), got 1");
  CHECK(f.error(suite_text("att", "{name: s3, train_min_length: 9, train_max_length: 8}",
                           "    lr: 1\n")) ==
        f.file("s.yaml") +
            ":5:59: task.train_max_length: expected train_max_length >= "
            "train_min_length, got [9, 8]");
}

TEST_CASE("an unknown model lists the defined ones", "[config]") {
  Fixture f;
  CHECK(f.error(suite_text("nope", kTask, "    lr: 1\n")) ==
        f.file("s.yaml") + ":4:10: model: unknown model 'nope' (valid: att, bad_heads, gru)");
  CHECK(f.error("suite: t\ndefaults:\n  model: att\n  task: {name: s3}\n") ==
        f.file("s.yaml") +
            ":3:10: model: unknown model 'att' (no models are defined; include "
            "experiments/models.yaml or add models:)");
}

TEST_CASE("an unknown task lists the registered ones", "[config]") {
  Fixture f;
  std::string message = f.error(suite_text("att", "{name: s7}", "    lr: 1\n"));
  CHECK_THAT(message, Catch::Matchers::StartsWith(f.file("s.yaml") +
                                                  ":5:16: task.name: unknown task 's7' (valid: "));
  CHECK_THAT(message, Catch::Matchers::Contains("s3") && Catch::Matchers::Contains("s5"));
  CHECK(f.error("suite: t\ninclude: models.yaml\ndefaults: {model: att}\n") ==
        f.file("s.yaml") + ":1:1: task.name: missing: no task is named (valid: " +
            message.substr(message.find("(valid: ") + 8));
}

TEST_CASE("task parameters and mixer options are checked against their specs", "[config]") {
  Fixture f;
  CHECK(f.error(suite_text("att", "{name: cyclic, params: {n: 1}}", "    lr: 1\n")) ==
        f.file("s.yaml") +
            ":5:36: task.params.n: task cyclic: option 'n' must be an integer in "
            "[2, 256], got 1");
  std::string inline_model = "{name: g, d_model: 8, layers: [{mixer: gru, hiden_size: 4}]}";
  CHECK(f.error(suite_text(inline_model, kTask, "    lr: 1\n")) ==
        f.file("s.yaml") +
            ":4:54: model.layers[0].hiden_size: mixer gru: unknown option "
            "'hiden_size' (valid: hidden_size)");
  CHECK_THAT(f.error(suite_text("{name: g, layers: [{mixer: gruu}]}", kTask, "    lr: 1\n")),
             Catch::Matchers::StartsWith(
                 f.file("s.yaml") + ":4:37: model.layers[0].mixer: unknown mixer 'gruu' (valid: "));
}

TEST_CASE("a head count that does not divide the width points at the option", "[config]") {
  Fixture f;
  CHECK(f.error(suite_text("bad_heads", kTask, "    lr: 1\n")) ==
        f.file("models.yaml") +
            ":15:20: model.layers[0].num_heads: mixer attention: num_heads "
            "(3) must divide d_model (64)");
}

TEST_CASE("a bad include names the file it looked for", "[config]") {
  Fixture f;
  std::string missing = f.error("suite: t\ninclude: missing.yaml\n");
  CHECK_THAT(missing, Catch::Matchers::StartsWith(f.file("s.yaml") +
                                                  ":2:10: include: cannot read 'missing.yaml' "
                                                  "(looked for "));
  CHECK_THAT(missing, Catch::Matchers::EndsWith("missing.yaml)"));
  CHECK_THAT(f.error("suite: t\ninclude: [models.yaml, s.yaml]\n"),
             Catch::Matchers::StartsWith(f.file("s.yaml") + ":2:24: include[1]: include loop: "));
  f.dir.write("more.yaml", "defaults: {seed: 1}\n");
  CHECK(f.error("suite: t\ninclude: more.yaml\n") ==
        f.file("more.yaml") +
            ":1:1: unknown key 'defaults' (valid in an included file: include, "
            "models)");
  f.dir.write("twice.yaml", "models:\n  att: {layers: [{mixer: gru}]}\n");
  CHECK(f.error("suite: t\ninclude: [models.yaml, twice.yaml]\n") ==
        f.file("twice.yaml") + ":2:3: models.att: model 'att' is defined twice (first at " +
            f.file("models.yaml") + ":3:5)");
}

TEST_CASE("broken YAML is reported with its position", "[config]") {
  Fixture f;
  CHECK_THAT(f.error("suite: t\ndefaults: {seed: 1\n"),
             Catch::Matchers::StartsWith(f.file("s.yaml") + ":3:1: not valid YAML: "));
}

TEST_CASE("bf16 and tf32 are refused on the CPU", "[config]") {
  Fixture f;
  CHECK(f.error(suite_text("att", kTask, "    device: cpu\n    precision: bf16\n")) ==
        f.file("s.yaml") +
            ":8:16: train.precision: expected fp32 on device cpu (tf32 and bf16 "
            "need cuda), got bf16");
}

TEST_CASE("a layer whose backend computes only on the other device is refused", "[config]") {
  Fixture f;
  const auto with_backend = [](const std::string& backend) {
    return "{name: m, d_model: 16, n_layers: 1, layers: [{mixer: m2rnn, backend: " + backend +
           "}]}";
  };
  CHECK(f.error(suite_text(with_backend("cuda"), kTask, "    device: cpu\n")) ==
        f.file("s.yaml") +
            ":7:13: train.device: got cpu, but model.layers[0] (m2rnn) has backend cuda, which "
            "computes only on cuda; on cpu, give that layer backend auto, reference or cpu, or set "
            "train.device cuda");
  CHECK(f.error(suite_text(with_backend("cpu"), kTask, "    device: cuda\n")) ==
        f.file("s.yaml") +
            ":7:13: train.device: got cuda, but model.layers[0] (m2rnn) has backend cpu, which "
            "computes only on cpu; on cuda, give that layer backend auto, reference, cuda or "
            "cublas, or set train.device cpu");
  // Where auto lands depends on the machine, so plan takes it; and a backend on its own device.
  for (const std::string& train : {"    device: auto\n", "    device: cpu\n"}) {
    const auto path = f.dir.write("s.yaml", suite_text(with_backend("cpu"), kTask, train));
    CHECK(m2b::load_suite(path).runs.size() == 1);
  }
}

TEST_CASE("the canonical YAML fills in every default and reads back to the same run", "[config]") {
  Fixture f;
  auto path = f.dir.write("s.yaml", suite_text("att", kTask, "    lr: 3e-4\n"));
  m2b::Suite suite = m2b::load_suite(path);
  REQUIRE(suite.runs.size() == 1);
  const m2b::RunConfig& run = suite.runs[0];
  CHECK(run.model_name == "att");
  CHECK(run.model.vocab_size == 6);  // the six permutations of S3
  CHECK(run.task.eval_lengths == std::vector<int64_t>{8, 16, 32});
  CHECK(run.train.lr == 3e-4);
  CHECK(std::get<std::string>(run.model.layers[0].options.at("positional")) == "rope");
  const std::string& yaml = run.canonical_yaml;
  CHECK_THAT(yaml, Catch::Matchers::Contains("lr: 0.0003\n"));
  CHECK_THAT(yaml, Catch::Matchers::Contains("rope_base: 10000.0\n"));
  CHECK_THAT(yaml, Catch::Matchers::Contains("eval_lengths: [8, 16, 32]\n"));
  CHECK_THAT(yaml, Catch::Matchers::Contains("weight_decay: 0.1\n"));
  CHECK(std::regex_match(run.id, std::regex("[0-9a-f]{12}")));
  CHECK(run.id == m2b::run_id(yaml));

  m2b::RunConfig back = m2b::run_config_from_yaml(yaml, "config.yaml");
  CHECK(back.canonical_yaml == yaml);
  CHECK(back.id == run.id);
  CHECK(back.suite == "t");
}

TEST_CASE("a config.yaml that was edited is validated like a suite", "[config]") {
  Fixture f;
  auto path = f.dir.write("s.yaml", suite_text("att", kTask, "    lr: 1\n"));
  std::string yaml = m2b::load_suite(path).runs[0].canonical_yaml;
  std::string edited = std::regex_replace(yaml, std::regex("vocab_size: 6"), "vocab_size: 7");
  CHECK_THAT(config_error([&] { m2b::run_config_from_yaml(edited, "config.yaml"); }),
             Catch::Matchers::Matches("config\\.yaml:[0-9]+:15: model\\.vocab_size: the task s3 "
                                      "has 6 tokens, got 7"));
}

TEST_CASE("run ids follow the config, not the spelling or place of the file", "[config]") {
  Fixture f;
  auto nested = f.dir.write("a.yaml", suite_text("att", kTask, "    lr: 0.001\n"));
  auto dotted = f.dir.write("sub/b.yaml",
                            "suite: t\ninclude: ../models.yaml\ndefaults:\n  model: att\n"
                            "  task.name: s3\n  task.train_max_length: 8\n  train.lr: 1e-3\n");
  auto other = f.dir.write("c.yaml", suite_text("att", kTask, "    lr: 0.002\n"));
  std::string id = m2b::load_suite(nested).runs[0].id;
  CHECK(m2b::load_suite(dotted).runs[0].id == id);
  CHECK(m2b::load_suite(nested).runs[0].id == id);
  CHECK(m2b::load_suite(other).runs[0].id != id);
}

TEST_CASE("every committed run config.yaml reads back to the id its folder is named by",
          "[config]") {
  // Fields added since (task bos, train.curriculum_*) must leave recorded run ids alone.
  const fs::path results = fs::path(__FILE__).parent_path().parent_path().parent_path() / "results";
  int configs = 0;
  for (const auto& entry : fs::recursive_directory_iterator(results)) {
    if (entry.path().filename() != "config.yaml") continue;
    INFO(entry.path().string());
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    const m2b::RunConfig run = m2b::run_config_from_yaml(text.str(), entry.path().string());
    CHECK(run.canonical_yaml == text.str());
    CHECK(run.id == entry.path().parent_path().filename().string());
    ++configs;
  }
  CHECK(configs > 0);
}

TEST_CASE("bos and the length curriculum enter the canonical YAML and the id only when set",
          "[config]") {
  Fixture f;
  const auto plain =
      m2b::load_suite(f.dir.write("a.yaml", suite_text("att", kTask, "    lr: 1e-3\n")));
  const std::string& yaml = plain.runs[0].canonical_yaml;
  CHECK(yaml.find("bos") == std::string::npos);
  CHECK(yaml.find("curriculum") == std::string::npos);
  CHECK_THAT(yaml, Catch::Matchers::Contains("params: {}\n"));
  // Set at their defaults: the same run.
  const auto explicit_defaults = m2b::load_suite(f.dir.write(
      "b.yaml", suite_text("att", "{name: s3, train_max_length: 8, params: {bos: false}}",
                           "    lr: 1e-3\n    curriculum_steps: 0\n")));
  CHECK(explicit_defaults.runs[0].id == plain.runs[0].id);

  const auto set = m2b::load_suite(f.dir.write(
      "c.yaml", suite_text("att", "{name: s3, train_max_length: 8, params: {bos: true}}",
                           "    lr: 1e-3\n    curriculum_steps: 500\n"
                           "    curriculum_start_length: 2\n")));
  const m2b::RunConfig& run = set.runs[0];
  CHECK(run.id != plain.runs[0].id);
  CHECK(run.model.vocab_size == 7);  // the six permutations and <bos>
  CHECK_THAT(run.canonical_yaml, Catch::Matchers::Contains("bos: true\n"));
  CHECK_THAT(run.canonical_yaml, Catch::Matchers::Contains("curriculum_steps: 500\n"));
  CHECK_THAT(run.canonical_yaml, Catch::Matchers::Contains("curriculum_start_length: 2\n"));
  CHECK(run.train.curriculum_steps == 500);
  const m2b::RunConfig back = m2b::run_config_from_yaml(run.canonical_yaml, "config.yaml");
  CHECK(back.id == run.id);
  CHECK(back.train.curriculum_start_length == 2);
}

TEST_CASE("an evaluation length given twice is refused", "[config]") {
  Fixture f;
  CHECK(f.error(suite_text("att", "{name: s3, eval_lengths: [8, 16, 8]}", "    lr: 1\n")) ==
        f.file("s.yaml") + ":5:42: task.eval_lengths[2]: expected distinct lengths, got 8 twice");
}

TEST_CASE("a curriculum that starts longer than the training lengths end is refused", "[config]") {
  Fixture f;
  CHECK(f.error(suite_text("att", kTask,
                           "    curriculum_steps: 10\n    curriculum_start_length: 9\n")) ==
        f.file("s.yaml") +
            ":8:30: train.curriculum_start_length: expected at most task.train_max_length (8), "
            "got 9");
}

TEST_CASE("a value quoted in an error is cut to a line", "[config]") {
  Fixture f;
  const std::string huge(1 << 20, 'x');
  const std::string message = f.error(huge + "\n");
  CHECK(message == f.file("s.yaml") + ":1:1: expected a suite (a mapping), got \"" +
                       std::string(60, 'x') + "...\"");
  CHECK_THAT(f.error(suite_text("att", kTask, "    device: \"gpu\\nand more\"\n")),
             Catch::Matchers::EndsWith("got \"gpu...\""));
}

TEST_CASE("every size has an upper bound, stated in the error", "[config]") {
  Fixture f;
  CHECK(f.error(suite_text("att", "{name: s3, eval_lengths: [8, 100000000]}", "    lr: 1\n")) ==
        f.file("s.yaml") +
            ":5:38: task.eval_lengths[1]: expected an integer in [1, 1000000], "
            "got 100000000");
  // The default evaluation lengths, four times train_max_length at most, are bounded too.
  CHECK(f.error(suite_text("att", "{name: s3, train_max_length: 300000}", "    lr: 1\n")) ==
        f.file("s.yaml") +
            ":5:38: task.train_max_length: the default eval_lengths [300000, 600000, 1200000] "
            "pass the largest length, 1000000: give task.eval_lengths");
  CHECK(f.error(suite_text("att", kTask, "    batch_size: 100000000\n")) ==
        f.file("s.yaml") +
            ":7:17: train.batch_size: expected an integer in [1, 65536], got "
            "100000000");
  CHECK(f.error(suite_text("att", kTask, "    lr: 1\n") + "  model.d_model: 1000000\n") ==
        f.file("s.yaml") + ":8:18: model.d_model: expected an integer in [1, 65536], got 1000000");
}

TEST_CASE("a grid of too many combinations is refused before it is expanded", "[config]") {
  Fixture f;
  std::string hundred;
  for (int i = 0; i < 100; ++i) hundred += (i ? ", " : "") + std::to_string(i);
  const std::string grid = "grid:\n  seed: [" + hundred + "]\n  train.steps: [" +
                           hundred.substr(3) + "]\n  task.eval_examples: [" + hundred.substr(3) +
                           "]\n";
  CHECK(f.error(suite_text("att", kTask, "    lr: 1\n") + grid) ==
        f.file("s.yaml") +
            ":9:3: grid: 980100 combinations (100 x 99 x 99), more than 10000 runs; "
            "shorten its lists or split the suite");
}

TEST_CASE("command-line errors are one line in the program's own style", "[config]") {
  Fixture f;
  const std::string suite = f.dir.write("s.yaml", suite_text("att", kTask, "    lr: 1\n")).string();
  const auto refused = [](const std::vector<std::string>& args, const std::string& what) {
    const auto result = m2bench_cli(args);
    INFO(result.err);
    CHECK(result.status == m2b::cli::kExitError);
    CHECK_THAT(result.err,
               Catch::Matchers::StartsWith("m2bench: error: ") && Catch::Matchers::Contains(what));
    CHECK(result.err.find('\n') == result.err.size() - 1);  // one line
    CHECK(result.err.size() < 200);
  };
  refused({"data", "--task", "parity", "--seed", "-1"}, "--seed: expected an integer >= 0, got -1");
  refused({"data", "--task", "parity", "--seed", "99999999999999999999"},
          "--seed: expected an integer >= 0, got 99999999999999999999");
  refused({"data", "--task", "parity", "--length", "1e20"},
          "--length: expected an integer in [1, 1000000], got 1e20");
  refused({"run", suite, "--threads", "0"}, "--threads: expected an integer in [1, 4096], got 0");
  refused({"run", suite, "--threads", "abc"},
          "--threads: expected an integer in [1, 4096], got abc");
  // A leading zero is decimal, as in a suite file, not CLI11's octal.
  const auto seed_010 = m2bench_cli(
      {"data", "--task", "parity", "--seed", "010", "--length", "08", "--format", "jsonl"});
  CHECK(seed_010.status == 0);
  CHECK_THAT(seed_010.out, Catch::Matchers::Contains("\"length\":8,\"seed\":10,"));
  refused({"plan"}, "suite is required");
  for (const char* command : {"plan", "run", "status", "table", "plot", "slurm"})
    refused({command, suite, "--results", ""}, "--results: expected a folder, got an empty string");
  refused({"tabel", "results/x"},
          "unknown command 'tabel' (valid: version, tasks, data, models, "
          "plan, run, status, slurm, table, plot)");
}

TEST_CASE("plan lists each run with its model's parameter count and its state", "[config]") {
  Fixture f;
  const std::string path = f.dir
                               .write("s.yaml", suite_text("att", kTask, "    steps: 7\n") +
                                                    "grid:\n  model: [att, gru]\n")
                               .string();
  const auto result = m2bench_cli({"plan", path, "--results", f.file("results")});
  REQUIRE(result.status == 0);
  CHECK_THAT(result.out, Catch::Matchers::Contains("2 runs") &&
                             Catch::Matchers::Contains("0 finished, 0 diverged, 0 started (no "
                                                       "summary yet), 2 missing"));
  const m2b::Suite suite = m2b::load_suite(path);
  for (const m2b::RunConfig& run : suite.runs) {
    INFO(run.model_name);
    // id, model, params, task, seed, train lengths, eval lengths, steps, result
    const std::regex row(run.id + " +" + run.model_name + " +" +
                         m2b::format_count(static_cast<double>(run.model.parameter_count())) +
                         " +s3 +0 +1-8 +[0-9,]+ +7 +missing\n");
    CHECK(std::regex_search(result.out, row));
  }
  // The GRU model: d_model 32, one layer, hidden 32, MLP 88 wide; s3's 6 tokens in and out.
  CHECK(suite.runs[1].model.parameter_count() ==
        2 * 6 * 32 + 32 + (2 * 32 + 3 * 32 * 88) + (3 * 32 * (32 + 32 + 2) + 32 * 32));
}

TEST_CASE("a model of the suite that no run uses is checked too", "[config]") {
  Fixture f;
  CHECK(f.error(suite_text("att", kTask, "    lr: 1\n") +
                "models:\n  spare: {d_model: abc, layers: [{mixer: gru}]}\n") ==
        f.file("s.yaml") +
            ":9:20: models.spare.d_model: expected an integer in [1, 65536], got "
            "\"abc\"");
}

TEST_CASE("an include of a folder or a FIFO is refused, not read", "[config]") {
  Fixture f;
  std::filesystem::create_directories(f.dir.path() / "folder.yaml");
  CHECK_THAT(f.error("suite: t\ninclude: folder.yaml\n"),
             Catch::Matchers::StartsWith(f.file("s.yaml") + ":2:10: include: 'folder.yaml' is a "
                                                            "folder, not a YAML file"));
  REQUIRE(::mkfifo((f.dir.path() / "fifo.yaml").c_str(), 0600) == 0);
  CHECK_THAT(f.error("suite: t\ninclude: fifo.yaml\n"),  // would wait for a writer forever
             Catch::Matchers::StartsWith(f.file("s.yaml") + ":2:10: include: 'fifo.yaml' is not "
                                                            "a regular file"));
}
