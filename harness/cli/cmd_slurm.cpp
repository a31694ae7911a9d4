// `m2bench slurm SUITE.yaml`: the sbatch script of a job array that trains the suite on a Slurm
// cluster, printed for review, or submitted with --submit.
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "harness/cli/cli.h"
#include "harness/cli/sbatch_script.h"
#include "harness/config/suite.h"
#include "harness/results/results.h"

namespace m2b::cli {

namespace {

namespace fs = std::filesystem;

struct SlurmArgs {
  std::string suite;
  std::string results = "results";
  SlurmJob job;
  bool submit = false;
};

// Runs `sbatch --parsable SCRIPT` and returns the job id it prints.
std::string submit(const fs::path& script) {
  const std::string command = fmt::format("sbatch --parsable '{}' 2>&1", script.string());
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot start sbatch");
  std::string output;
  char chunk[512];
  while (size_t n = std::fread(chunk, 1, sizeof chunk, pipe)) output.append(chunk, n);
  const int status = ::pclose(pipe);
  while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
    throw std::runtime_error(
        "sbatch not found: --submit needs a machine with Slurm's client commands (a login node); "
        "without --submit the script is printed, to submit by hand");
  if (status != 0)
    throw std::runtime_error(fmt::format("sbatch refused {}: {}", script.string(), output));
  return output.substr(0, output.find(';'));  // "<job id>[;<cluster>]"
}

void slurm_command(SlurmArgs& args) {
  const Suite suite = load_suite(args.suite);
  SlurmJob& job = args.job;
  job.program = fs::read_symlink("/proc/self/exe");
  job.suite = fs::absolute(args.suite).lexically_normal();
  job.suite_name = suite.name;
  job.results = fs::absolute(args.results).lexically_normal();
  const int workers = job.gpus_per_task > 0 ? job.gpus_per_task * job.per_gpu : 1;
  if (job.array == 0)  // no more tasks than runs to share
    job.array = std::max<int>(1, (static_cast<int>(suite.runs.size()) + workers - 1) / workers);
  if (job.cpus_per_task == 0) job.cpus_per_task = workers;
  validate(job);
  const std::string script = sbatch_script(job);
  if (!args.submit) {
    std::cout << script;
    return;
  }
  // Slurm does not create the folder of --output; a task whose log cannot open fails.
  const fs::path logs = slurm_log_dir(job);
  fs::create_directories(logs);
  const fs::path file = logs / (suite.name + ".sbatch");
  write_atomic(file, script);
  const std::string id = submit(file);
  std::cout << fmt::format(
      "submitted job array {} ({} task{}) for suite {}: script {}, logs {}/{}_<task>.out\n"
      "follow it with: m2bench status {} --results {}\n",
      id, job.array, job.array == 1 ? "" : "s", suite.name, file.string(), logs.string(), id,
      args.suite, job.results.string());
}

}  // namespace

void add_slurm_command(CLI::App& app) {
  auto args = std::make_shared<SlurmArgs>();
  args->job.array = 0;
  args->job.cpus_per_task = 0;
  CLI::App* cmd = app.add_subcommand(
      "slurm",
      "Write the sbatch script of a Slurm job array that trains a suite: each task runs "
      "`m2bench run` on a results root shared by every node and takes runs until none "
      "is left. Printed for review; --submit hands it to sbatch");
  add_suite_arguments(cmd, args->suite, args->results,
                      "the results root, on a file system that every node shares (it holds the run "
                      "claims, checkpoints and the tasks' logs)");
  cmd->add_option("--array", args->job.array,
                  "Tasks in the array (default: enough for every run to have a worker)")
      ->transform(integer_in(1, 100000));
  cmd->add_option("--gpus-per-task", args->job.gpus_per_task,
                  "GPUs per task; each task runs `m2bench run --gpus all` over them (default 0: "
                  "train on CPUs)")
      ->transform(integer_in(0, 64));
  cmd->add_option("--per-gpu", args->job.per_gpu, "Worker processes per GPU")
      ->transform(integer_in(1, 64))
      ->capture_default_str();
  cmd->add_option("--cpus-per-task", args->job.cpus_per_task,
                  "CPUs per task, shared by its workers as training threads (default: one per "
                  "worker)")
      ->transform(integer_in(1, 4096));
  cmd->add_option("--partition", args->job.partition, "Slurm partition (default: the cluster's)");
  cmd->add_option("--account", args->job.account, "Slurm account to charge");
  cmd->add_option("--time", args->job.time,
                  "Time limit per task, as Slurm writes it (e.g. 90, 4:00:00, 1-00:00:00)");
  cmd->add_option("--grace", args->job.grace_s,
                  "Seconds before the time limit at which a task gets SIGTERM and checkpoints "
                  "(Slurm may send it up to a minute earlier)")
      ->transform(integer_in(10, 86400))
      ->capture_default_str();
  cmd->add_flag("--requeue", args->job.requeue,
                "A task stopped by SIGTERM (its time limit, preemption) puts itself back in the "
                "queue and goes on later");
  cmd->add_flag("--submit", args->submit, "Submit the script with sbatch instead of printing it");
  cmd->callback([args] { slurm_command(*args); });
}

}  // namespace m2b::cli
