#pragma once
// The cluster tests drive the m2bench program itself (M2BENCH_EXE, set by CMake), as a user or a
// Slurm task does, and read what it leaves in the results folder.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/read_text.h"

extern char** environ;

namespace m2b::test {

namespace fs = std::filesystem;

// A scratch folder, removed with what it holds.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name)
      : path_(fs::temp_directory_path() / (name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }
  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name, std::ios::binary) << text;
    return path_ / name;
  }

 private:
  fs::path path_;
};

// An m2bench process, its stdout and stderr going to `log`.
struct M2bench {
  pid_t pid = -1;
  fs::path log;

  M2bench(const std::vector<std::string>& args, fs::path log_file,
          const std::vector<std::string>& extra_env = {})
      : log(std::move(log_file)) {
    std::vector<std::string> env_text;
    for (char** e = environ; *e; ++e) env_text.push_back(*e);
    env_text.insert(env_text.end(), extra_env.begin(), extra_env.end());
    std::vector<char*> env, argv;
    for (std::string& e : env_text) env.push_back(e.data());
    env.push_back(nullptr);
    std::string program = M2BENCH_EXE;
    std::vector<std::string> arg_text = args;
    argv.push_back(program.data());
    for (std::string& a : arg_text) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    const int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), env.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start " + program + ": " + std::strerror(rc));
  }

  // The exit status; 128 + the signal that killed it.
  int wait() {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::string output() const { return read_text(log); }
};

struct Finished {
  int status;
  std::string output;
};

// Runs `m2bench ARGS...` to its end.
inline Finished run_m2bench(const std::vector<std::string>& args, const fs::path& log,
                            const std::vector<std::string>& extra_env = {}) {
  M2bench process(args, log, extra_env);
  const int status = process.wait();
  return {status, process.output()};
}

// Waits up to `seconds` for `done`; returns whether it came true.
inline bool wait_for(const std::function<bool()>& done, int seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

// Whole JSON lines of a run's metrics.jsonl.
inline std::vector<nlohmann::json> metrics_lines(const fs::path& run) {
  std::vector<nlohmann::json> lines;
  std::istringstream text(read_text(run / "metrics.jsonl"));
  for (std::string line; std::getline(text, line);) {
    nlohmann::json parsed = nlohmann::json::parse(line, nullptr, false);
    if (!parsed.is_discarded()) lines.push_back(std::move(parsed));
  }
  return lines;
}

// The run folders of a suite's results: every folder holding a config.yaml.
inline std::vector<fs::path> run_folders(const fs::path& suite_results) {
  std::vector<fs::path> runs;
  if (fs::is_directory(suite_results))
    for (const auto& entry : fs::directory_iterator(suite_results))
      if (fs::exists(entry.path() / "config.yaml")) runs.push_back(entry.path());
  std::sort(runs.begin(), runs.end());
  return runs;
}

// The start and resume lines of a run's metrics: which worker trained it from which step.
inline std::vector<nlohmann::json> sessions(const fs::path& run) {
  std::vector<nlohmann::json> out;
  for (const nlohmann::json& line : metrics_lines(run))
    if (line.value("kind", "") == "start" || line.value("kind", "") == "resume")
      out.push_back(line);
  return out;
}

}  // namespace m2b::test
