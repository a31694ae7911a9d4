// The sbatch script of `m2bench slurm`: what each task runs, how Slurm warns it before its time
// limit, and the options Slurm would refuse or misread, refused first with their name.
#include <string>

#include "harness/cli/sbatch_script.h"
#include "tests/catch.h"

using Catch::Matchers::Contains;
using m2b::SlurmJob;

namespace {

SlurmJob sample_job() {
  SlurmJob job;
  job.program = "/opt/m2bench/build/m2bench";
  job.suite = "/home/ana/m2bench/experiments/quickstart.yaml";
  job.suite_name = "quickstart";
  job.results = "/shared/ana/results";
  job.array = 4;
  return job;
}

std::string validation_error(const SlurmJob& job) {
  try {
    m2b::validate(job);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("each task of the array runs m2bench run of the suite on the shared results root",
          "[sbatch_script]") {
  const std::string script = m2b::sbatch_script(sample_job());
  CHECK_THAT(script, Contains("#SBATCH --array=0-3\n"));
  CHECK_THAT(script, Contains("#SBATCH --job-name=m2b-quickstart\n"));
  CHECK_THAT(script, Contains("#SBATCH --output=/shared/ana/results/quickstart/slurm/%A_%a.out\n"));
  CHECK_THAT(script, Contains("setsid '/opt/m2bench/build/m2bench' run "
                              "'/home/ana/m2bench/experiments/quickstart.yaml' --results "
                              "'/shared/ana/results' --threads 1 &\n"));
  CHECK_THAT(script, !Contains("--gres"));
  CHECK_THAT(script, !Contains("--partition"));
  CHECK_THAT(script, !Contains("--time"));
}

TEST_CASE("a task is warned with SIGTERM before its time limit, and passes it to its worker once",
          "[sbatch_script]") {
  SlurmJob job = sample_job();
  job.time = "4:00:00";
  job.grace_s = 300;
  const std::string script = m2b::sbatch_script(job);
  CHECK_THAT(script, Contains("#SBATCH --time=4:00:00\n"));
  CHECK_THAT(script, Contains("#SBATCH --signal=B:TERM@300\n"));
  CHECK_THAT(script, Contains("trap 'kill -TERM \"$worker\"' TERM\n"));
  CHECK_THAT(script, Contains("#SBATCH --no-requeue\n"));
  CHECK_THAT(script, !Contains("scontrol requeue"));
}

TEST_CASE("with --requeue a task stopped by SIGTERM queues itself again", "[sbatch_script]") {
  SlurmJob job = sample_job();
  job.requeue = true;
  const std::string script = m2b::sbatch_script(job);
  CHECK_THAT(script, Contains("#SBATCH --requeue\n"));
  CHECK_THAT(script,
             Contains("if [ \"$status\" = 143 ]; then\n"
                      "  scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\""));
}

TEST_CASE("a GPU task runs one worker per GPU slot and shares its CPUs among them as threads",
          "[sbatch_script]") {
  SlurmJob job = sample_job();
  job.gpus_per_task = 2;
  job.per_gpu = 3;
  job.cpus_per_task = 12;
  job.partition = "gpu-h100";
  job.account = "proj_42";
  const std::string script = m2b::sbatch_script(job);
  CHECK_THAT(script, Contains("#SBATCH --gres=gpu:2\n"));
  CHECK_THAT(script, Contains("#SBATCH --cpus-per-task=12\n"));
  CHECK_THAT(script, Contains("#SBATCH --partition=gpu-h100\n"));
  CHECK_THAT(script, Contains("#SBATCH --account=proj_42\n"));
  CHECK_THAT(script, Contains("--gpus all --per-gpu 3 --threads 2 &\n"));
}

TEST_CASE("a path with a quote stays one word for the shell", "[sbatch_script]") {
  SlurmJob job = sample_job();
  job.suite = "/home/o'neil/suite.yaml";
  CHECK_THAT(m2b::sbatch_script(job), Contains("'/home/o'\\''neil/suite.yaml'"));
}

TEST_CASE("Slurm's time forms read as seconds; another form names the valid ones",
          "[sbatch_script]") {
  CHECK(m2b::slurm_time_seconds("90") == 90 * 60);
  CHECK(m2b::slurm_time_seconds("90:30") == 90 * 60 + 30);
  CHECK(m2b::slurm_time_seconds("4:00:00") == 4 * 3600);
  CHECK(m2b::slurm_time_seconds("2-12") == 2 * 86400 + 12 * 3600);
  CHECK(m2b::slurm_time_seconds("1-01:30") == 86400 + 3600 + 30 * 60);
  CHECK(m2b::slurm_time_seconds("1-00:00:10") == 86400 + 10);
  CHECK_THROWS_WITH(m2b::slurm_time_seconds("4h"),
                    Contains("--time 4h: not a Slurm time (valid: minutes, minutes:seconds"));
}

TEST_CASE("options Slurm would refuse or misread are refused, naming the option",
          "[sbatch_script]") {
  CHECK(validation_error(sample_job()) == "no error");
  SlurmJob job = sample_job();
  job.partition = "gpu\n#SBATCH --account=other";
  CHECK_THAT(validation_error(job), Contains("--partition gpu") && Contains("Slurm takes letters"));
  job = sample_job();
  job.account = "my account";
  CHECK_THAT(validation_error(job), Contains("--account my account"));
  job = sample_job();
  job.time = "2";
  job.grace_s = 180;
  CHECK_THAT(validation_error(job),
             Contains("--time 2: a task must run longer than --grace (180 s)"));
  job = sample_job();
  job.results = "/shared/100% done";
  CHECK_THAT(validation_error(job), Contains("--results /shared/100% done: the tasks' log folder"));
  job = sample_job();
  job.per_gpu = 2;
  CHECK_THAT(validation_error(job), Contains("--per-gpu 2: workers per GPU need GPUs"));
}
