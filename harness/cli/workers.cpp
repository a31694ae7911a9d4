#include "harness/cli/workers.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <set>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include "common/options.h"
#include "harness/cli/cli.h"
#include "harness/results/provenance.h"

extern char** environ;

namespace m2b {

static std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t comma; (comma = text.find(',', start)) != std::string::npos; start = comma + 1)
    parts.push_back(text.substr(start, comma - start));
  parts.push_back(text.substr(start));
  return parts;
}

std::vector<std::string> parse_gpus(const std::string& spec) {
  if (spec == "all") {
    // Slurm, and anyone narrowing the machine's GPUs, says which through this variable.
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    if (visible && *visible) return parse_gpus(visible);
    const int64_t count = cuda_available() ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
    if (count == 0)
      throw std::invalid_argument(
          "--gpus all: no CUDA device found here (and CUDA_VISIBLE_DEVICES is not set); name the "
          "devices (--gpus 0,1) or run without --gpus");
    std::vector<std::string> all;
    for (int64_t i = 0; i < count; ++i) all.push_back(std::to_string(i));
    return all;
  }
  static const std::regex device(R"([0-9]+|(GPU|MIG)-[A-Za-z0-9/-]+)");
  std::vector<std::string> gpus = split_commas(spec);
  std::set<std::string> seen;
  for (const std::string& gpu : gpus) {
    if (!std::regex_match(gpu, device))
      throw std::invalid_argument(fmt::format(
          "--gpus {}: '{}' is not a device (valid: all, or a comma list of device ids or UUIDs "
          "as CUDA_VISIBLE_DEVICES takes them, e.g. 0,2,5)",
          excerpt(spec), excerpt(gpu)));
    if (!seen.insert(gpu).second)
      throw std::invalid_argument(fmt::format(
          "--gpus {}: device {} is listed twice (use --per-gpu N for several workers on one)",
          excerpt(spec), gpu));
  }
  return gpus;
}

namespace {

std::atomic<int> g_signals_received{0};
std::atomic<int> g_last_signal{0};

extern "C" void count_stop_signal(int signal) {
  g_last_signal = signal;
  ++g_signals_received;
}

// Set in a worker's environment: the pid of the process that started it.
constexpr const char* kParentVariable = "M2BENCH_WORKER_PARENT";

struct Slot {
  WorkerSlot worker;
  pid_t pid = -1;
  int fd = -1;          // the read end of the worker's stdout and stderr
  std::string pending;  // a line not yet ended
  int status = 0;
};

// This program with `args`, seeing only the slot's GPU where it has one, its output into a pipe,
// in a process group of its own.
void spawn(Slot& slot, const std::vector<std::string>& args) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0)
    throw std::runtime_error(fmt::format("cannot create a pipe: {}", std::strerror(errno)));
  std::vector<std::string> env_text;
  const std::optional<std::string>& gpu = slot.worker.gpu;
  for (char** e = environ; *e; ++e)
    if (!gpu || std::strncmp(*e, "CUDA_VISIBLE_DEVICES=", 21) != 0) env_text.push_back(*e);
  if (gpu) env_text.push_back("CUDA_VISIBLE_DEVICES=" + *gpu);
  env_text.push_back(fmt::format("{}={}", kParentVariable, ::getpid()));
  std::vector<char*> env, argv;
  for (std::string& e : env_text) env.push_back(e.data());
  env.push_back(nullptr);
  std::string program = "m2bench";
  std::vector<std::string> arg_text = args;
  argv.push_back(program.data());
  for (std::string& a : arg_text) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attributes, 0);
  const int rc =
      posix_spawn(&slot.pid, "/proc/self/exe", &actions, &attributes, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  ::close(pipe_fds[1]);
  if (rc != 0) {
    ::close(pipe_fds[0]);
    throw std::runtime_error(
        fmt::format("cannot start worker {}: {}", slot.worker.label, std::strerror(rc)));
  }
  slot.fd = pipe_fds[0];
}

// Prints the worker's whole lines with its label; at the end of its output, the rest too.
void forward_output(Slot& slot, std::ostream& out, bool at_end) {
  size_t start = 0;
  for (size_t end; (end = slot.pending.find('\n', start)) != std::string::npos; start = end + 1)
    out << slot.worker.label << ' ' << std::string_view(slot.pending).substr(start, end - start)
        << '\n';
  slot.pending.erase(0, start);
  if (at_end && !slot.pending.empty()) out << slot.worker.label << ' ' << slot.pending << '\n';
  out.flush();
}

}  // namespace

std::vector<WorkerSlot> gpu_slots(const std::vector<std::string>& gpus, int per_gpu) {
  std::vector<WorkerSlot> slots;
  for (const std::string& gpu : gpus)
    for (int k = 1; k <= per_gpu; ++k) slots.push_back({fmt::format("[gpu {} #{}]", gpu, k), gpu});
  return slots;
}

std::vector<WorkerSlot> cpu_slots(int count) {
  std::vector<WorkerSlot> slots;
  for (int k = 1; k <= count; ++k) slots.push_back({fmt::format("[worker {}]", k), std::nullopt});
  return slots;
}

int run_workers(const std::vector<WorkerSlot>& workers, const std::vector<std::string>& run_args,
                std::ostream& out) {
  std::vector<Slot> slots;
  for (const WorkerSlot& worker : workers) slots.push_back({worker});
  g_signals_received = 0;
  for (int signal : cli::kStopSignals) std::signal(signal, count_stop_signal);
  size_t started = 0;
  try {
    for (; started < slots.size(); ++started) {
      Slot& slot = slots[started];
      spawn(slot, run_args);
      out << fmt::format("{} pid {}", slot.worker.label, slot.pid)
          << (slot.worker.gpu ? ", CUDA_VISIBLE_DEVICES=" + *slot.worker.gpu : std::string())
          << "\n";
    }
  } catch (...) {
    for (size_t i = 0; i < started; ++i) ::kill(slots[i].pid, SIGTERM);
    for (size_t i = 0; i < started; ++i) ::waitpid(slots[i].pid, nullptr, 0);
    for (int signal : cli::kStopSignals) std::signal(signal, SIG_DFL);
    throw;
  }
  out.flush();

  int forwarded = 0;
  for (;;) {
    for (; forwarded < g_signals_received.load(); ++forwarded)
      for (const Slot& slot : slots) ::kill(slot.pid, g_last_signal.load());
    std::vector<pollfd> fds;
    std::vector<Slot*> reading;
    for (Slot& slot : slots)
      if (slot.fd >= 0) {
        fds.push_back({slot.fd, POLLIN, 0});
        reading.push_back(&slot);
      }
    if (fds.empty()) break;
    // A signal that arrives just before poll waits at most this long to be passed on.
    if (::poll(fds.data(), fds.size(), 200) < 0 && errno != EINTR)
      throw std::runtime_error(
          fmt::format("cannot read the workers' output: {}", std::strerror(errno)));
    for (size_t i = 0; i < fds.size(); ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char chunk[4096];
      const ssize_t n = ::read(fds[i].fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) {
        reading[i]->pending.append(chunk, static_cast<size_t>(n));
        forward_output(*reading[i], out, false);
      } else {
        forward_output(*reading[i], out, true);
        ::close(reading[i]->fd);
        reading[i]->fd = -1;
      }
    }
  }
  bool failed = false, any_done = false;
  for (Slot& slot : slots) {
    while (::waitpid(slot.pid, &slot.status, 0) < 0 && errno == EINTR) {}
    const int code =
        WIFEXITED(slot.status) ? WEXITSTATUS(slot.status) : 128 + WTERMSIG(slot.status);
    out << fmt::format("{} exited with status {}\n", slot.worker.label, code);
    // A worker stopped by a passed-on signal ends with 128 + it, or dies of the second one.
    const bool stopped = forwarded > 0 && code == 128 + g_last_signal.load();
    failed = failed || (code != 0 && code != 75 && !stopped);
    any_done = any_done || code == 0;
  }
  for (int signal : cli::kStopSignals) std::signal(signal, SIG_DFL);
  if (failed) return 1;
  if (forwarded > 0) return 128 + g_last_signal.load();
  return any_done ? 0 : 75;
}

void stop_with_parent() {
  const char* parent = std::getenv(kParentVariable);
  if (!parent) return;
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != std::atoi(parent)) ::kill(::getpid(), SIGTERM);  // it died before prctl
}

}  // namespace m2b
