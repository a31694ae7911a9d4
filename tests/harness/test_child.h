#pragma once
// Tests that stop a process mid-way (a signal, SIGKILL) run the work in a child: a fresh process
// of the test program itself that runs one hidden test case, not a fork (forking a process whose
// torch threads are running is unsafe).
#include <spawn.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace m2b::test {

// Starts this test program on the hidden test case tagged `tag` ("[.run_child]"), with `env`
// ("NAME=value") added to this process's environment; returns its pid, or -1 where it cannot.
inline pid_t spawn_test_child(const std::string& tag, const std::vector<std::string>& env) {
  std::vector<char*> envp;
  for (char** e = environ; *e; ++e) envp.push_back(*e);
  for (const std::string& entry : env) envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::string filter = tag;
  char* argv[] = {const_cast<char*>(self.c_str()), filter.data(), nullptr};
  pid_t child = -1;
  return posix_spawn(&child, self.c_str(), nullptr, nullptr, argv, envp.data()) == 0 ? child : -1;
}

// Waits up to a minute for `path` to exist; whether it does.
inline bool wait_for_file(const std::filesystem::path& path) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!std::filesystem::exists(path) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  return std::filesystem::exists(path);
}

}  // namespace m2b::test
