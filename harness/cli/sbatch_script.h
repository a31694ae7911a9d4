#pragma once
// The sbatch script of `m2bench slurm`: a job array whose tasks each run `m2bench run` of one
// suite on a results root that every node shares. A task takes runs until none is left (the run
// claims of harness/train/run_claim.h keep two tasks off one run); near its time limit Slurm
// sends it SIGTERM, on which its worker writes a checkpoint and exits, and the run is resumed by
// whichever task takes it next.
#include <cstdint>
#include <filesystem>
#include <string>

namespace m2b {

struct SlurmJob {
  std::filesystem::path program;  // the m2bench the tasks run; absolute
  std::filesystem::path suite;    // absolute
  std::string suite_name;
  std::filesystem::path results;  // the shared results root; absolute
  int array = 1;                  // tasks
  int gpus_per_task = 0;          // 0: the runs train on CPUs
  int per_gpu = 1;                // workers per GPU (`m2bench run --per-gpu`)
  int cpus_per_task = 1;
  std::string partition, account, time;  // empty: the cluster's defaults
  int grace_s = 180;                     // SIGTERM this long before the time limit
  bool requeue = false;                  // a task stopped by SIGTERM queues itself again
};

// Where the tasks' logs (and a submitted script) go: <results>/<suite>/slurm.
std::filesystem::path slurm_log_dir(const SlurmJob& job);

// Throws std::invalid_argument naming the option that Slurm would refuse or misread, and what is
// valid.
void validate(const SlurmJob& job);

// Slurm's --time forms ("minutes", "minutes:seconds", "hours:minutes:seconds", "days-hours",
// "days-hours:minutes", "days-hours:minutes:seconds") in seconds; throws std::invalid_argument.
int64_t slurm_time_seconds(const std::string& time);

// The script, commented for review. Call validate first.
std::string sbatch_script(const SlurmJob& job);

}  // namespace m2b
