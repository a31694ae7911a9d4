// The run claim: one worker per run at a time, in one process, across processes and across
// hosts sharing the results root; a holder that dies, by SIGKILL or with its node, never blocks
// the run for long.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>

#include "harness/train/run_claim.h"
#include "tests/catch.h"
#include "tests/harness/suite_fixtures.h"

using m2b::test::TempDir;
namespace fs = std::filesystem;

namespace {

// Runs `child` in a forked process and returns its exit status.
int in_child(const std::function<int()>& child) {
  pid_t pid = fork();
  if (pid == 0) _exit(child());
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A forked process that claims `run` and holds it until it is killed; its pid once it holds the
// claim, or -1 where it could not take it. The caller kills and reaps it.
pid_t forked_holder(const fs::path& run) {
  int ready[2];
  if (pipe(ready) != 0) return -1;
  pid_t holder = fork();
  if (holder == 0) {
    auto claim = m2b::RunClaim::try_claim(run);
    char byte = claim ? 'y' : 'n';
    (void)!write(ready[1], &byte, 1);
    for (;;) pause();
  }
  char byte = 0;
  const bool held = ::read(ready[0], &byte, 1) == 1 && byte == 'y';
  ::close(ready[0]);
  ::close(ready[1]);
  if (held) return holder;
  ::kill(holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
  return -1;
}

// An owner record as a worker on another node would leave it, with its last heartbeat `age`
// seconds ago.
void write_foreign_record(const fs::path& run, int64_t age) {
  fs::create_directories(run);
  const int64_t beat = m2b::unix_now() - age;
  std::ofstream(run / ".owner") << nlohmann::json{
      {"worker", {{"host", "node-elsewhere"}, {"pid", 4242}, {"job", "77_3"}, {"gpu", "1"}}},
      {"claimed_at", beat - 100},
      {"heartbeat", beat}};
}

}  // namespace

TEST_CASE("a claimed run cannot be claimed again until it is released", "[run_claim]") {
  TempDir dir;
  const fs::path run = dir.path() / "suite" / "run";
  {
    auto claim = m2b::RunClaim::try_claim(run);
    REQUIRE(claim);
    CHECK(claim->run_dir() == run);
    CHECK_FALSE(m2b::RunClaim::try_claim(run));
    // Another process is refused too.
    CHECK(in_child([&] { return m2b::RunClaim::try_claim(run) ? 1 : 0; }) == 0);
    auto moved = std::move(*claim);
    CHECK_FALSE(m2b::RunClaim::try_claim(run));
  }
  CHECK(in_child([&] { return m2b::RunClaim::try_claim(run) ? 0 : 1; }) == 0);
  CHECK(m2b::RunClaim::try_claim(run));
}

TEST_CASE("a claim records its worker's host, pid, Slurm job and GPU until it is released",
          "[run_claim]") {
  TempDir dir;
  const fs::path run = dir.path() / "run";
  ::setenv("SLURM_ARRAY_JOB_ID", "880", 1);
  ::setenv("SLURM_ARRAY_TASK_ID", "2", 1);
  ::setenv("CUDA_VISIBLE_DEVICES", "5", 1);
  {
    auto claim = m2b::RunClaim::try_claim(run);
    REQUIRE(claim);
    const auto owner = m2b::read_owner(run);
    REQUIRE(owner);
    CHECK(owner->worker.host == m2b::host_name());
    CHECK(owner->worker.pid == ::getpid());
    CHECK(owner->worker.job == "880_2");
    CHECK(owner->worker.gpu == "5");
    CHECK(m2b::unix_now() - owner->heartbeat <= 1);
    CHECK(m2b::describe(owner->worker) ==
          "host " + m2b::host_name() + " pid " + std::to_string(::getpid()) + " job 880_2 gpu 5");
  }
  ::unsetenv("SLURM_ARRAY_JOB_ID");
  ::unsetenv("SLURM_ARRAY_TASK_ID");
  ::unsetenv("CUDA_VISIBLE_DEVICES");
  CHECK_FALSE(m2b::read_owner(run));
  CHECK_FALSE(fs::exists(run / ".owner"));
}

TEST_CASE("a holder killed with SIGKILL leaves its record, and the next claim takes the run over",
          "[run_claim]") {
  TempDir dir;
  const fs::path run = dir.path() / "run";
  const pid_t holder = forked_holder(run);
  REQUIRE(holder > 0);
  CHECK_FALSE(m2b::RunClaim::try_claim(run));
  kill(holder, SIGKILL);
  waitpid(holder, nullptr, 0);
  const auto left = m2b::read_owner(run);
  REQUIRE(left);  // nothing ran to remove it
  CHECK(left->worker.pid == holder);

  auto claim = m2b::RunClaim::try_claim(run);
  REQUIRE(claim);
  REQUIRE(claim->taken_from());
  CHECK(claim->taken_from()->worker.pid == holder);
  CHECK(m2b::read_owner(run)->worker.pid == ::getpid());
}

TEST_CASE("a live holder on this host keeps its run though its .lock was deleted", "[run_claim]") {
  TempDir dir;
  const fs::path run = dir.path() / "run";
  const pid_t holder = forked_holder(run);
  REQUIRE(holder > 0);
  // Deleted by hand: the holder's flock now guards a file no one else opens.
  fs::remove(run / ".lock");
  CHECK_FALSE(m2b::RunClaim::try_claim(run));
  const auto owner = m2b::read_owner(run);
  REQUIRE(owner);
  CHECK(owner->worker.pid == holder);
  CHECK(m2b::process_alive(owner->worker));
  // Once it has ended, killed and reaped, the run is taken over.
  kill(holder, SIGKILL);
  waitpid(holder, nullptr, 0);
  CHECK_FALSE(m2b::process_alive(owner->worker));
  auto claim = m2b::RunClaim::try_claim(run);
  REQUIRE(claim);
  REQUIRE(claim->taken_from());
  CHECK(claim->taken_from()->worker.pid == holder);
}

TEST_CASE("a process is alive only as the one that started at the recorded time", "[run_claim]") {
  m2b::Worker me = m2b::this_worker();
  REQUIRE(me.process_start > 0);
  CHECK(m2b::process_alive(me));
  // The same pid with another start: a later process given a dead worker's pid.
  m2b::Worker reused = me;
  reused.process_start = me.process_start + 1;
  CHECK_FALSE(m2b::process_alive(reused));
  // A record from before starts were recorded goes by the pid alone.
  m2b::Worker old = me;
  old.process_start = 0;
  CHECK(m2b::process_alive(old));
  // A zombie: ended, not yet reaped by its parent.
  pid_t child = fork();
  if (child == 0) _exit(0);
  m2b::Worker zombie{m2b::host_name(), child, "", "", 0};
  for (int i = 0; i < 200 && m2b::process_alive(zombie); ++i) usleep(10000);
  CHECK_FALSE(m2b::process_alive(zombie));
  waitpid(child, nullptr, 0);
}

TEST_CASE("a worker on another host with a fresh heartbeat keeps its run though the flock is free",
          "[run_claim]") {
  // As on a shared file system that keeps flock to each node.
  TempDir dir;
  const fs::path run = dir.path() / "run";
  write_foreign_record(run, 30);
  CHECK_FALSE(m2b::RunClaim::try_claim(run));
  const auto owner = m2b::read_owner(run);
  REQUIRE(owner);
  CHECK(owner->worker.host == "node-elsewhere");  // left as it was
}

TEST_CASE("a run whose worker's node stopped its heartbeat is taken over after kStaleSeconds",
          "[run_claim]") {
  TempDir dir;
  const fs::path run = dir.path() / "run";
  write_foreign_record(run, m2b::kStaleSeconds + 5);
  auto claim = m2b::RunClaim::try_claim(run);
  REQUIRE(claim);
  REQUIRE(claim->taken_from());
  CHECK(claim->taken_from()->worker.host == "node-elsewhere");
  CHECK(claim->taken_from()->worker.job == "77_3");
  CHECK(m2b::read_owner(run)->worker.host == m2b::host_name());
  // Nothing of the takeover is left beside the record.
  for (const auto& entry : fs::directory_iterator(run)) {
    const std::string name = entry.path().filename().string();
    CHECK((name == ".lock" || name == ".owner"));
  }
}
