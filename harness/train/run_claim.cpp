#include "harness/train/run_claim.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "harness/results/results.h"

namespace m2b {

namespace fs = std::filesystem;
using nlohmann::json;

void to_json(json& j, const Worker& w) {
  j = json{{"host", w.host},
           {"pid", w.pid},
           {"job", w.job},
           {"gpu", w.gpu},
           {"process_start", w.process_start}};
}

void from_json(const json& j, Worker& w) {
  j.at("host").get_to(w.host);
  j.at("pid").get_to(w.pid);
  w.job = j.value("job", "");
  w.gpu = j.value("gpu", "");
  w.process_start = j.value("process_start", int64_t{0});
}

// /proc/<pid>/stat's state (field 3) and start time (field 22); nullopt when there is no such
// process. The command name (field 2) may hold spaces and parentheses: fields resume after the
// last ')'.
struct ProcessStat {
  char state = '?';
  int64_t start = 0;
};
static std::optional<ProcessStat> process_stat(int64_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string text;
  if (!in || !std::getline(in, text)) return std::nullopt;
  std::istringstream fields(text.substr(text.rfind(')') + 1));
  ProcessStat stat;
  fields >> stat.state;
  std::string skipped;
  for (int field = 4; field < 22; ++field) fields >> skipped;
  fields >> stat.start;
  return stat;
}

bool process_alive(const Worker& worker) {
  const std::optional<ProcessStat> stat = process_stat(worker.pid);
  if (!stat)  // no such process, or one /proc does not show (hidepid): kill(2) tells which
    return ::kill(static_cast<pid_t>(worker.pid), 0) == 0 || errno == EPERM;
  return stat->state != 'Z' && stat->state != 'X' &&
         (worker.process_start == 0 || stat->start == worker.process_start);
}

std::string host_name() {
  char name[256] = {};
  return ::gethostname(name, sizeof name - 1) == 0 ? name : "unknown";
}

int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

static std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

Worker this_worker() {
  Worker w;
  w.host = host_name();
  w.pid = ::getpid();
  const std::string array = env_or_empty("SLURM_ARRAY_JOB_ID");
  w.job = array.empty() ? env_or_empty("SLURM_JOB_ID")
                        : array + "_" + env_or_empty("SLURM_ARRAY_TASK_ID");
  w.gpu = env_or_empty("CUDA_VISIBLE_DEVICES");
  if (const std::optional<ProcessStat> stat = process_stat(w.pid)) w.process_start = stat->start;
  return w;
}

std::string describe(const Worker& w) {
  std::string text = fmt::format("host {} pid {}", w.host, w.pid);
  if (!w.job.empty()) text += " job " + w.job;
  if (!w.gpu.empty()) text += " gpu " + w.gpu;
  return text;
}

static json record_json(const OwnerRecord& r) {
  return json{{"worker", r.worker}, {"claimed_at", r.claimed_at}, {"heartbeat", r.heartbeat}};
}

static bool same_claim(const OwnerRecord& a, const OwnerRecord& b) {
  return a.worker.host == b.worker.host && a.worker.pid == b.worker.pid &&
         a.claimed_at == b.claimed_at;
}

static fs::path owner_path(const fs::path& run_dir) { return run_dir / ".owner"; }

std::optional<OwnerRecord> read_owner(const fs::path& run_dir) {
  std::ifstream in(owner_path(run_dir));
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  const json j = json::parse(text.str(), nullptr, false);
  try {
    OwnerRecord r;
    j.at("worker").get_to(r.worker);
    j.at("claimed_at").get_to(r.claimed_at);
    j.at("heartbeat").get_to(r.heartbeat);
    return r;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

// A record whose holder can no longer be training: on this host, its process has ended (the
// flock being free is not enough: a .lock deleted by hand frees it under a live holder); or
// its heartbeat is older than kStaleSeconds.
static bool is_dead(const OwnerRecord& r, const Worker& me) {
  return (r.worker.host == me.host && !process_alive(r.worker)) ||
         unix_now() - r.heartbeat > kStaleSeconds;
}

// Makes `record` the run's owner record unless one is there already: written whole to a file of
// its own, then linked to .owner, which fails for every taker but one. Over NFS a link whose
// reply was lost reports failure though it was made; the link count of the file tells.
static bool link_record(const fs::path& run_dir, const OwnerRecord& record) {
  std::random_device entropy;
  const fs::path mine = run_dir / fmt::format(".owner.{}.{}.{:08x}", record.worker.host,
                                              record.worker.pid, entropy());
  const std::string text = record_json(record).dump() + "\n";
  int fd = open_for_writing(mine, O_WRONLY | O_EXCL);
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                       ::fsync(fd) == 0;
  ::close(fd);
  if (!written) {
    ::unlink(mine.c_str());
    fail_errno("cannot write", mine);
  }
  const bool linked = ::link(mine.c_str(), owner_path(run_dir).c_str()) == 0;
  const int saved = errno;
  struct stat st {};
  const bool made = linked || (::stat(mine.c_str(), &st) == 0 && st.st_nlink == 2);
  ::unlink(mine.c_str());
  if (!made && saved != EEXIST) {
    errno = saved;
    fail_errno("cannot create", owner_path(run_dir));
  }
  return made;
}

// Takes the owner record for `record`; returns false when a live worker holds it. A dead
// record is first moved aside under a name of this worker's, which only one taker can do.
static bool take_record(const fs::path& run_dir, const OwnerRecord& record,
                        std::optional<OwnerRecord>& taken_from) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (link_record(run_dir, record)) return true;
    const std::optional<OwnerRecord> holder = read_owner(run_dir);
    if (holder && !is_dead(*holder, record.worker)) return false;
    const fs::path aside =
        run_dir / fmt::format(".owner.dead.{}.{}", record.worker.host, record.worker.pid);
    if (::rename(owner_path(run_dir).c_str(), aside.c_str()) != 0) {
      if (errno == ENOENT) continue;  // another taker moved it first
      fail_errno("cannot move aside", owner_path(run_dir));
    }
    ::unlink(aside.c_str());
    taken_from = holder;
  }
  return false;
}

std::optional<RunClaim> RunClaim::try_claim(const fs::path& dir, bool create) {
  if (create) fs::create_directories(dir);
  else if (!fs::is_directory(dir)) return std::nullopt;
  const fs::path lock = dir / ".lock";
  int fd = -1;
  try {
    fd = open_for_writing(lock, O_RDWR);
  } catch (const std::runtime_error&) {
    if (!create && !fs::is_directory(dir)) return std::nullopt;  // gone meanwhile
    throw;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int saved = errno;
    ::close(fd);
    if (saved == EWOULDBLOCK) return std::nullopt;
    errno = saved;
    fail_errno("cannot lock", lock);
  }
  OwnerRecord record{this_worker(), unix_now(), unix_now()};
  std::optional<OwnerRecord> taken_from;
  try {
    if (!take_record(dir, record, taken_from)) {
      ::close(fd);
      return std::nullopt;
    }
  } catch (...) {
    ::close(fd);
    throw;
  }
  return RunClaim(dir, fd, std::move(record), std::move(taken_from));
}

void RunClaim::beat() {
  const int64_t now = unix_now();
  if (now - record_.heartbeat < kHeartbeatSeconds) return;
  const std::optional<OwnerRecord> on_disk = read_owner(run_dir_);
  if (!on_disk || !same_claim(*on_disk, record_))
    throw std::runtime_error(fmt::format(
        "{} was taken over by {} while this worker's heartbeat was more than {} s old (was the "
        "process suspended?); this worker leaves the run to it",
        run_dir_.string(), on_disk ? describe(on_disk->worker) : "another worker", kStaleSeconds));
  record_.heartbeat = now;
  write_atomic(owner_path(run_dir_), record_json(record_).dump() + "\n");
}

void RunClaim::release() {
  if (fd_ < 0) return;
  // Only this claim's own record: one that replaced it after it went stale is another worker's.
  const std::optional<OwnerRecord> on_disk = read_owner(run_dir_);
  if (on_disk && same_claim(*on_disk, record_)) ::unlink(owner_path(run_dir_).c_str());
  ::close(fd_);  // drops the flock
  fd_ = -1;
}

RunClaim::RunClaim(RunClaim&& other) noexcept
    : run_dir_(std::move(other.run_dir_)), fd_(other.fd_), record_(std::move(other.record_)),
      taken_from_(std::move(other.taken_from_)) {
  other.fd_ = -1;
}

RunClaim& RunClaim::operator=(RunClaim&& other) noexcept {
  if (this != &other) {
    release();
    run_dir_ = std::move(other.run_dir_);
    fd_ = other.fd_;
    record_ = std::move(other.record_);
    taken_from_ = std::move(other.taken_from_);
    other.fd_ = -1;
  }
  return *this;
}

RunClaim::~RunClaim() { release(); }

}  // namespace m2b
