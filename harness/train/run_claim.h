#pragma once
// The claim that keeps two workers from training one run at once, on one machine or across the
// nodes of a cluster sharing the results root.
//
// Two locks, each covering what the other cannot:
//  - flock(2) on <run_dir>/.lock. The kernel drops it when the holder exits, however it exits.
//    Linux's NFS client passes it to the server, so it holds across nodes too; but some shared
//    file systems keep flock local to a node (Lustre without `-o flock`, NFS with
//    `local_lock=flock`).
//  - an owner record, <run_dir>/.owner: the holder's host, pid, Slurm job and GPU, and a
//    heartbeat (a time the holder rewrites every kHeartbeatSeconds while it trains). It is made
//    with link(2), which succeeds for one taker only, on NFS too.
// A claim is granted when the flock is and the owner record is free or dead. A record is dead
// when its host is this one and its process has ended (a live one whose flock is free lost its
// .lock file, deleted by hand), or when its heartbeat is older than kStaleSeconds: the holder's
// node died or lost the file system. So a run whose node died is taken by the next worker that
// looks, kStaleSeconds after the node's last heartbeat (and, where the file server still holds
// the dead node's flock, once the server lets it go: NFSv4 does after its lease, about 90 s).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace m2b {

// Long enough for NFS's attribute cache (up to 60 s) and clocks a few minutes apart.
constexpr int64_t kHeartbeatSeconds = 60;
constexpr int64_t kStaleSeconds = 600;

// Who trains a run: in the owner record, the metrics' start and resume lines, `m2bench status`.
struct Worker {
  std::string host;
  int64_t pid = 0;
  std::string job;  // Slurm's <array job>_<task> or job id; empty outside Slurm
  std::string gpu;  // CUDA_VISIBLE_DEVICES; empty when unset
  // The process's start (clock ticks after boot): with the pid, which the kernel reuses, what
  // names the process on its host. 0 where unknown (records older than the field).
  int64_t process_start = 0;
};
void to_json(nlohmann::json& j, const Worker& w);
void from_json(const nlohmann::json& j, Worker& w);

Worker this_worker();
// Whether `worker`, a process of this host, is still running: it exists, is not a zombie, and
// where its start is known, started then (not a later process given its pid). Where /proc hides
// other users' processes (hidepid), a process that exists counts as running.
bool process_alive(const Worker& worker);
std::string host_name();
int64_t unix_now();  // seconds

// "host node3 pid 4121 job 880_2 gpu 1": the parts that are known
std::string describe(const Worker& worker);

struct OwnerRecord {
  Worker worker;
  int64_t claimed_at = 0, heartbeat = 0;  // unix seconds
};
// The run folder's owner record; nullopt when there is none or it cannot be read.
std::optional<OwnerRecord> read_owner(const std::filesystem::path& run_dir);

// Move-only; the claim is released (record removed, flock dropped) when the object is destroyed.
class RunClaim {
 public:
  // Creates run_dir if needed (with `create`; else nullopt where it is gone). nullopt when another
  // worker holds the run.
  static std::optional<RunClaim> try_claim(const std::filesystem::path& run_dir,
                                           bool create = true);
  RunClaim(RunClaim&& other) noexcept;
  RunClaim& operator=(RunClaim&& other) noexcept;
  RunClaim(const RunClaim&) = delete;
  RunClaim& operator=(const RunClaim&) = delete;
  ~RunClaim();
  const std::filesystem::path& run_dir() const { return run_dir_; }
  // After the claimed folder was renamed to `now`: the record to remove on release is there.
  void moved_to(std::filesystem::path now) { run_dir_ = std::move(now); }
  // The dead holder whose record this claim replaced, if any.
  const std::optional<OwnerRecord>& taken_from() const { return taken_from_; }
  // Rewrites the heartbeat when kHeartbeatSeconds have passed since the last; cheap otherwise,
  // so the trainer calls it every step. Throws when another worker has taken the run meanwhile
  // (this one's heartbeat had gone stale: a suspended process), so that it stops writing there.
  void beat();

 private:
  RunClaim(std::filesystem::path run_dir, int fd, OwnerRecord record,
           std::optional<OwnerRecord> taken_from)
      : run_dir_(std::move(run_dir)), fd_(fd), record_(std::move(record)),
        taken_from_(std::move(taken_from)) {}
  void release();
  std::filesystem::path run_dir_;
  int fd_ = -1;
  OwnerRecord record_;
  std::optional<OwnerRecord> taken_from_;
};

}  // namespace m2b
