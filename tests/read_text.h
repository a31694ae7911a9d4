#pragma once
// A file's whole content, for the tests that compare what a run wrote. Torch- and harness-free,
// so that the cluster tests share it with the harness tests.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace m2b::test {

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace m2b::test
