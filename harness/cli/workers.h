#pragma once
// `m2bench run SUITE --gpus all|0,2,5 [--per-gpu N]` and `m2bench run SUITE --workers N`: worker
// processes, each an `m2bench run` of the same suite, that split it through the run claims
// (harness/train/run_claim.h), as any processes sharing a suite do. A --gpus worker sees only its
// GPU (CUDA_VISIBLE_DEVICES), so that its `cuda` device is that GPU; a --workers one sees what
// this process sees (for suites that train on the CPU, one worker per core).
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace m2b {

// The GPUs `--gpus SPEC` names, as CUDA_VISIBLE_DEVICES takes them. "all": the entries of
// CUDA_VISIBLE_DEVICES where it is set (a Slurm task's GPUs), else every device CUDA finds.
// Otherwise a comma list of distinct device ids (0, 1, ...) or UUIDs (GPU-..., MIG-...).
// Throws std::invalid_argument naming what was wrong and what is valid.
std::vector<std::string> parse_gpus(const std::string& spec);

// A worker to start: the label its lines carry, and the GPU it is to see (none: it keeps this
// process's CUDA_VISIBLE_DEVICES).
struct WorkerSlot {
  std::string label;
  std::optional<std::string> gpu;
};
// `per_gpu` slots per GPU ("[gpu 2 #1]"), or `count` slots that keep this process's GPUs
// ("[worker 3]").
std::vector<WorkerSlot> gpu_slots(const std::vector<std::string>& gpus, int per_gpu);
std::vector<WorkerSlot> cpu_slots(int count);

// Starts a worker per slot, each this program with `run_args` (a `run` command line without
// --gpus or --workers), prefixes each line they print with its slot's label and waits for them
// all. The first SIGINT, SIGTERM or SIGHUP is passed to every worker once (each stops at a
// checkpoint), a second one again (they end at once); the workers run in a process group of
// their own, so a signal sent to this one's group (Ctrl-C, Slurm) reaches them only through it.
// Returns the status `m2bench run` exits with: 1 when a worker failed, 128 + the signal when
// stopped, 0 when a worker found the whole suite done, else 75 (runs held by other processes).
int run_workers(const std::vector<WorkerSlot>& slots, const std::vector<std::string>& run_args,
                std::ostream& out);

// In a worker of run_workers (call it once its stop-signal handlers are set): SIGTERM comes when
// the parent dies, say of a SIGKILL it could not pass on, so that no worker trains unwatched.
void stop_with_parent();

}  // namespace m2b
