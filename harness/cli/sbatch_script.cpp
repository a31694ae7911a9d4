#include "harness/cli/sbatch_script.h"

#include <algorithm>
#include <regex>
#include <stdexcept>

#include <fmt/format.h>

#include "common/options.h"

namespace m2b {

namespace fs = std::filesystem;

fs::path slurm_log_dir(const SlurmJob& job) { return job.results / job.suite_name / "slurm"; }

int64_t slurm_time_seconds(const std::string& time) {
  static const std::regex form(R"((?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?)");
  std::smatch m;
  if (time.size() > 12 || !std::regex_match(time, m, form))
    throw std::invalid_argument(fmt::format(
        "--time {}: not a Slurm time (valid: minutes, minutes:seconds, hours:minutes:seconds, "
        "days-hours, days-hours:minutes or days-hours:minutes:seconds, e.g. 90 or 1-12:00:00)",
        excerpt(time)));
  const auto part = [&](int i) { return m[i].matched ? std::stoll(m[i].str()) : 0; };
  if (m[1].matched)  // days-hours[:minutes[:seconds]]
    return ((part(1) * 24 + part(2)) * 60 + part(3)) * 60 + part(4);
  if (m[4].matched) return (part(2) * 60 + part(3)) * 60 + part(4);  // hours:minutes:seconds
  return part(2) * 60 + part(3);                                     // minutes[:seconds]
}

// What Slurm reads from an #SBATCH line as one value: no spaces, quotes or line breaks.
static void check_word(const std::string& option, const std::string& value) {
  static const std::regex word(R"([A-Za-z0-9_.,:+@=-]+)");
  if (!std::regex_match(value, word))
    throw std::invalid_argument(fmt::format(
        "{} {}: Slurm takes letters, digits and _ . , : + @ = - here", option, excerpt(value)));
}

void validate(const SlurmJob& job) {
  if (job.array < 1 || job.array > 100000)
    throw std::invalid_argument(
        fmt::format("--array {}: the tasks must number 1 to 100000", job.array));
  if (job.per_gpu > 1 && job.gpus_per_task == 0)
    throw std::invalid_argument(fmt::format(
        "--per-gpu {}: workers per GPU need GPUs; give --gpus-per-task too", job.per_gpu));
  if (!job.partition.empty()) check_word("--partition", job.partition);
  if (!job.account.empty()) check_word("--account", job.account);
  if (!job.time.empty() && slurm_time_seconds(job.time) <= job.grace_s)
    throw std::invalid_argument(fmt::format(
        "--time {}: a task must run longer than --grace ({} s), the time it is warned before its "
        "limit",
        job.time, job.grace_s));
  // Slurm expands % in --output and splits #SBATCH lines at spaces.
  const std::string logs = slurm_log_dir(job).string();
  if (logs.find_first_of(" \t\n\"'%\\") != std::string::npos)
    throw std::invalid_argument(fmt::format(
        "--results {}: the tasks' log folder {} holds a space, quote, backslash or %, which an "
        "#SBATCH line cannot carry; choose a results root without them",
        job.results.string(), logs));
}

// One word for bash, whatever the path holds.
static std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string sbatch_script(const SlurmJob& job) {
  const int workers = job.gpus_per_task > 0 ? job.gpus_per_task * job.per_gpu : 1;
  const int threads = std::max(1, job.cpus_per_task / workers);
  std::string run = fmt::format("{} run {} --results {}", shell_quote(job.program.string()),
                                shell_quote(job.suite.string()), shell_quote(job.results.string()));
  if (job.gpus_per_task > 0) run += fmt::format(" --gpus all --per-gpu {}", job.per_gpu);
  run += fmt::format(" --threads {}", threads);

  std::string s = "#!/bin/bash\n";
  s += fmt::format(
      "# m2bench: suite {} as a job array of {} task{}.\n"
      "#   suite file    {}\n"
      "#   results root  {} (shared by every node)\n"
      "# Each task runs `m2bench run` on the results root, taking runs until none is left; the\n"
      "# run claims keep two tasks off one run. Follow it with `m2bench status SUITE --results ROOT`.\n"
      "# Slurm does not create the folder of --output: given to sbatch by hand, this script needs\n"
      "#   mkdir -p {}\n"
      "# first, or its tasks fail without a log (`m2bench slurm --submit` makes it).\n",
      job.suite_name, job.array, job.array == 1 ? "" : "s", job.suite.string(),
      job.results.string(), shell_quote(slurm_log_dir(job).string()));
  s += fmt::format("#SBATCH --job-name=m2b-{}\n", job.suite_name);
  s += fmt::format("#SBATCH --array=0-{}\n", job.array - 1);
  s += "#SBATCH --ntasks=1\n";
  s += fmt::format("#SBATCH --cpus-per-task={}\n", job.cpus_per_task);
  if (job.gpus_per_task > 0) s += fmt::format("#SBATCH --gres=gpu:{}\n", job.gpus_per_task);
  if (!job.partition.empty()) s += fmt::format("#SBATCH --partition={}\n", job.partition);
  if (!job.account.empty()) s += fmt::format("#SBATCH --account={}\n", job.account);
  if (!job.time.empty()) s += fmt::format("#SBATCH --time={}\n", job.time);
  s += fmt::format("#SBATCH --signal=B:TERM@{}\n", job.grace_s);
  s += job.requeue ? "#SBATCH --requeue\n" : "#SBATCH --no-requeue\n";
  s += fmt::format("#SBATCH --output={}/%A_%a.out\n", slurm_log_dir(job).string());
  s += "#SBATCH --open-mode=append\n";
  s += fmt::format(
      "\n"
      "# SIGTERM comes to this shell {} s before the time limit (--signal=B:TERM), or from\n"
      "# `scancel --batch --signal=TERM`. The worker runs in a session of its own, so that it\n"
      "# hears the signal once, from the trap: it writes a checkpoint and exits, and the run goes\n"
      "# on in whichever task takes it next.\n"
      "setsid {} &\n"
      "worker=$!\n"
      "trap 'kill -TERM \"$worker\"' TERM\n"
      "status=0\n"
      "wait \"$worker\" || status=$?\n"
      "# The trap ends the first wait early; the worker's own status comes with the next.\n"
      "while kill -0 \"$worker\" 2>/dev/null; do status=0; wait \"$worker\" || status=$?; done\n",
      job.grace_s, run);
  if (job.requeue)
    s += "# Stopped by SIGTERM (time limit, preemption): back into the queue, to go on later.\n"
         "if [ \"$status\" = 143 ]; then\n"
         "  scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"\n"
         "fi\n";
  s += "# 75: the runs left are held by other tasks; this task's share is done.\n"
       "if [ \"$status\" = 75 ]; then status=0; fi\n"
       "exit \"$status\"\n";
  return s;
}

}  // namespace m2b
