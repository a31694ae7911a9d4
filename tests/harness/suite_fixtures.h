#pragma once
// Shared by the suite, config, results and report tests: a scratch folder and suite files in it.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include <iostream>
#include <sstream>
#include <vector>

#include "harness/cli/cli.h"
#include "harness/config/run_schema.h"
#include "harness/results/results.h"
#include "tests/read_text.h"

namespace m2b::test {

// Clean-up that never throws (it runs in destructors); see m2b::remove_tree for why not remove_all.
inline void remove_tree(const std::filesystem::path& path) {
  try {
    m2b::remove_tree(path);
  } catch (const std::filesystem::filesystem_error&) {}
}

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("m2b_harness_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    remove_tree(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { remove_tree(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Writes `text` to path()/name (creating folders) and returns its path.
  std::filesystem::path write(const std::string& name, const std::string& text) const {
    std::filesystem::path file = path_ / name;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << text;
    return file;
  }

 private:
  std::filesystem::path path_;
};

// The ConfigError message `f` throws, or "no error".
inline std::string config_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

// What `m2bench ARGS...` did through the program's own entry point: its exit status and what it
// wrote to std::cerr and std::cout (not what it printed with fmt::print).
struct CliResult {
  int status = 0;
  std::string err, out;
};
inline CliResult m2bench_cli(const std::vector<std::string>& args) {
  std::vector<const char*> argv = {"m2bench"};
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  std::ostringstream err, out;
  std::streambuf* saved_err = std::cerr.rdbuf(err.rdbuf());
  std::streambuf* saved_out = std::cout.rdbuf(out.rdbuf());
  CliResult result;
  result.status = m2b::cli::run_cli(static_cast<int>(argv.size()), argv.data());
  std::cerr.rdbuf(saved_err);
  std::cout.rdbuf(saved_out);
  result.err = err.str();
  result.out = out.str();
  return result;
}

// Small named models on mixers that need no kernel: attention and a GRU.
inline const char* kTestModels = R"(models:
  att:
    d_model: 32
    n_layers: 2
    layers: [{mixer: attention, num_heads: 4}]
  gru:
    d_model: 32
    n_layers: 1
    layers: [{mixer: gru}]
  bad_heads:
    d_model: 64
    n_layers: 1
    layers:
      - mixer: attention
        num_heads: 3
)";

}  // namespace m2b::test
